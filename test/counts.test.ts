import fc from 'fast-check';
import { ConfigError } from '../curation/errors';
import {
  addDense,
  countsFromBinary,
  countsFromEntryJson,
  countsFromIdJson,
  countsToBinary,
  countsToEntryJson,
  countsToIdJson,
  denseFromSparse,
  headTailStats,
  pToT,
  sparseFromDense,
  tToP,
  topEntries,
  totalMatches,
} from '../curation/counts';

const dense = (xs: number[]) => Float64Array.from(xs);

/** numpy's p_to_t, read literally: sort, cumsum / sum, argmin |· − p| (first index of the minimum). */
function refPToT(counts: number[], p: number): number {
  const s = [...counts].sort((a, b) => a - b);
  const total = s.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let cum = 0;
  const diffs = s.map((c) => Math.abs((cum += c) / total - p));
  const min = Math.min(...diffs);
  return s[diffs.indexOf(min)];
}

/** Integer count vectors with many ties (so that count groups matter) and some zeros. */
const countsArb = fc.array(fc.oneof(fc.constantFrom(0, 1, 2, 3, 5, 8), fc.integer({ min: 0, max: 60 })), { minLength: 1, maxLength: 60 });

describe('dense counts', () => {
  test('denseFromSparse / sparseFromDense round trip; ids outside the metadata are rejected', () => {
    const sparse = new Map([[0, 3], [4, 1], [2, 7]]);
    const d = denseFromSparse(sparse, 6);
    expect([...d]).toEqual([3, 0, 7, 0, 1, 0]);
    expect(sparseFromDense(d)).toEqual(sparse);
    expect(() => denseFromSparse(new Map([[6, 1]]), 6)).toThrow(ConfigError);
    expect(() => denseFromSparse(new Map([[-1, 1]]), 6)).toThrow(/outside the metadata/);
  });

  test('addDense adds element-wise and refuses vectors of different sizes; totalMatches sums', () => {
    const a = dense([1, 2, 3]);
    addDense(a, dense([10, 0, 5]));
    expect([...a]).toEqual([11, 2, 8]);
    expect(totalMatches(a)).toBe(21);
    expect(totalMatches(dense([]))).toBe(0);
    expect(() => addDense(a, dense([1, 2]))).toThrow(/differ in size/);
  });
});

describe('binary form: little-endian uint64 per entry id', () => {
  test('bytes of a hand example', () => {
    const buf = countsToBinary(dense([1, 256, 2 ** 40 + 5, 0, 2 ** 53 - 1]));
    expect(buf.length).toBe(5 * 8);
    expect([...buf.subarray(0, 8)]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect([...buf.subarray(8, 16)]).toEqual([0, 1, 0, 0, 0, 0, 0, 0]);
    expect([...buf.subarray(16, 24)]).toEqual([5, 0, 0, 0, 0, 1, 0, 0]); // 2^40 sets bit 0 of byte 5
    expect([...buf.subarray(24, 32)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect([...buf.subarray(32, 40)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0]);
    expect([...countsFromBinary(buf)]).toEqual([1, 256, 2 ** 40 + 5, 0, 2 ** 53 - 1]);
  });

  test('property: round trip, 8 bytes per entry, each readable as a little-endian uint64', () => {
    fc.assert(
      fc.property(fc.array(fc.maxSafeNat(), { maxLength: 50 }), (xs) => {
        const buf = countsToBinary(dense(xs));
        expect(buf.length).toBe(8 * xs.length);
        xs.forEach((x, e) => expect(buf.readBigUInt64LE(8 * e)).toBe(BigInt(x)));
        expect([...countsFromBinary(buf)]).toEqual(xs);
      }),
      { numRuns: 300 },
    );
  });

  test('a length that is not a multiple of 8 is rejected', () => {
    expect(() => countsFromBinary(Buffer.alloc(12))).toThrow(ConfigError);
    expect(() => countsFromBinary(Buffer.alloc(12))).toThrow(/multiple of 8 bytes, got 12/);
    expect(countsFromBinary(Buffer.alloc(0)).length).toBe(0);
  });
});

describe('id JSON form ({"<entry id>": count})', () => {
  test('non-zero entries only, ascending ids; round trip with and without a metadata size', () => {
    const d = dense([0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 2, 9]);
    const json = countsToIdJson(d);
    expect(json).toEqual({ '1': 4, '10': 2, '11': 9 });
    expect(Object.keys(json)).toEqual(['1', '10', '11']);
    const back = JSON.parse(JSON.stringify(json));
    expect(countsFromIdJson(back, 12)).toEqual(d);
    expect(countsFromIdJson(back)).toEqual(d); // size = largest id + 1
    expect(countsFromIdJson(back, 20).length).toBe(20);
    expect(countsFromIdJson({}).length).toBe(0);
  });

  test('property: round trip through JSON text', () => {
    fc.assert(
      fc.property(fc.array(fc.maxSafeNat(), { maxLength: 40 }), (xs) => {
        const d = dense(xs);
        expect(countsFromIdJson(JSON.parse(JSON.stringify(countsToIdJson(d))), xs.length)).toEqual(d);
      }),
      { numRuns: 300 },
    );
  });

  test.each<[string, Record<string, unknown>, number | undefined, RegExp]>([
    ['an id past the metadata', { '12': 1 }, 12, /entry id 12 is outside the metadata \(12 entries\)/],
    ['a negative id', { '-1': 1 }, undefined, /not an entry id/],
    ['a non-integer id', { '1.5': 1 }, undefined, /not an entry id/],
    ['a word', { dog: 1 }, undefined, /not an entry id/],
    ['an empty key', { '': 1 }, undefined, /not an entry id/],
    ['a padded key', { ' 1': 1 }, undefined, /not an entry id/],
    ['a non-canonical key', { '01': 1 }, undefined, /not an entry id/],
    ['a negative count', { '1': -1 }, undefined, /non-negative integer/],
    ['a fractional count', { '1': 0.5 }, undefined, /non-negative integer/],
    ['a string count', { '1': '3' }, undefined, /non-negative integer/],
    ['a null count', { '1': null }, undefined, /non-negative integer/],
  ])('rejects %s with a ConfigError', (_, json, size, message) => {
    expect(() => countsFromIdJson(json as Record<string, number>, size)).toThrow(ConfigError);
    expect(() => countsFromIdJson(json as Record<string, number>, size)).toThrow(message);
  });
});

describe("MetaCLIP's entry-string JSON form", () => {
  const metadata = ['dog', 'New York', 'York', 'cat', 'hot dog'];

  test('entry string → count for non-zero entries, in metadata order; round trip', () => {
    const d = dense([3, 0, 2, 7, 0]);
    const json = countsToEntryJson(d, metadata);
    expect(json).toEqual({ dog: 3, York: 2, cat: 7 });
    expect(Object.keys(json)).toEqual(['dog', 'York', 'cat']);
    expect(countsFromEntryJson(JSON.parse(JSON.stringify(json)), metadata)).toEqual(d);
    expect(countsFromEntryJson({}, metadata)).toEqual(dense([0, 0, 0, 0, 0]));
  });

  test('property: round trip through JSON text for any metadata strings (including "__proto__", "constructor", digits)', () => {
    const entry = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'toString', '0', '99', 'hasOwnProperty'));
    fc.assert(
      fc.property(fc.uniqueArray(entry, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(1000), { minLength: 30, maxLength: 30 }), (meta, cs) => {
        const d = dense(meta.map((_, e) => cs[e]));
        const text = JSON.stringify(countsToEntryJson(d, meta));
        expect(countsFromEntryJson(JSON.parse(text), meta)).toEqual(d);
      }),
      { numRuns: 300 },
    );
  });

  test('rejects entries not in the metadata with a clear error naming them', () => {
    const json = { dog: 1, wolf: 2, 'new york': 3, Cat: 4, fox: 5 };
    expect(() => countsFromEntryJson(json, metadata)).toThrow(ConfigError);
    expect(() => countsFromEntryJson(json, metadata)).toThrow('counts name 4 entries not in the metadata, e.g. ["wolf","new york","Cat"]');
  });

  test.each<[string, unknown]>([
    ['negative', -2],
    ['fractional', 1.5],
    ['string', '3'],
    ['null', null],
  ])('rejects a %s count with a ConfigError', (_, c) => {
    expect(() => countsFromEntryJson({ dog: 1, cat: c } as Record<string, number>, metadata)).toThrow(ConfigError);
  });
});

describe('t_to_p / p_to_t (spec §3, MetaCLIP 2)', () => {
  // Hand example. counts = [5, 1, 3, 0, 1, 10], Σ = 20; sorted 0 1 1 3 5 10, ascending cumulative share
  // 0, .05, .10, .25, .50, 1.
  const hand = dense([5, 1, 3, 0, 1, 10]);

  test('t_to_p = Σ count[e] for count[e] < t / Σ count[e], on the hand example', () => {
    expect(tToP(hand, 0)).toBe(0);
    expect(tToP(hand, 1)).toBe(0); // count < 1: only the zero
    expect(tToP(hand, 2)).toBe(2 / 20); // the two 1s
    expect(tToP(hand, 3)).toBe(2 / 20); // strict: the 3 is not in the tail at t = 3
    expect(tToP(hand, 3.5)).toBe(5 / 20);
    expect(tToP(hand, 10)).toBe(10 / 20);
    expect(tToP(hand, 11)).toBe(1);
    expect(tToP(dense([0, 0]), 5)).toBe(0);
  });

  test('p_to_t = the count where the ascending cumulative share is closest to p (first index of the minimum), on the hand example', () => {
    expect(pToT(hand, 0)).toBe(0); // share 0 at the zero entry
    expect(pToT(hand, 0.06)).toBe(1); // .05 is closest
    expect(pToT(hand, 0.3)).toBe(3); // .25
    expect(pToT(hand, 0.375)).toBe(3); // exact tie between .25 (value 3) and .50 (value 5): first index wins
    expect(pToT(hand, 0.38)).toBe(5);
    expect(pToT(hand, 0.8)).toBe(10);
    expect(pToT(hand, 1)).toBe(10);
    expect(pToT(dense([0, 0, 0]), 0.5)).toBe(0);
    // Ties inside a group: with counts [2, 2, 2, 2] the shares are .25 .5 .75 1, every index holds 2.
    expect(pToT(dense([2, 2, 2, 2]), 0.6)).toBe(2);
  });

  test('property: pToT equals the literal numpy reading (sort, cumsum/sum, argmin); input is not modified', () => {
    fc.assert(
      fc.property(countsArb, fc.double({ min: 0, max: 1, noNaN: true }), (xs, p) => {
        const d = dense(xs);
        expect(pToT(d, p)).toBe(refPToT(xs, p));
        expect([...d]).toEqual(xs);
      }),
      { numRuns: 1000 },
    );
  });

  /*
   * Round trip t_to_p(p_to_t(p)) vs p, from the definitions. Sort ascending: c_0 ≤ … ≤ c_{n−1}, S_i the
   * cumulative share. p_to_t(p) = v = c_i* with i* the first argmin of |S_i − p|. Let j be the first index
   * holding v; t_to_p(v) = S_{j−1} (shares of counts strictly below v; S_{−1} = 0). Then:
   *   (a) t_to_p(p_to_t(p)) ≤ p for p in [0, 1]: if S_{j−1} > p, index j − 1 < i* would be at least as close.
   *   (b) p − t_to_p(p_to_t(p)) ≤ G(v) + c_{i*+1} / (2Σ), where G(v) is the share of the whole group of
   *       entries with count v: S_{i*} − S_{j−1} ≤ G(v), and p − S_{i*} ≤ (S_{i*+1} − S_{i*}) / 2 because
   *       S_{i*} is at least as close as S_{i*+1}. The second term only matters when i* ends the group.
   * So the share of the largest count group alone is NOT a bound: the next entry's half-step adds to it
   * (see the counter-example below). The uniform bound is max over consecutive distinct values of
   * G(v) + v_next / (2Σ) ≤ 1.5 · (largest group share).
   */
  test('round trip: t_to_p(p_to_t(p)) ≤ p and p − t_to_p(p_to_t(p)) ≤ G(v) + c_next/(2Σ) (property)', () => {
    fc.assert(
      fc.property(countsArb, fc.double({ min: 0, max: 1, noNaN: true }), (xs, p) => {
        const d = dense(xs);
        const total = xs.reduce((a, b) => a + b, 0);
        fc.pre(total > 0);
        const v = pToT(d, p);
        const back = tToP(d, v);
        expect(back).toBeLessThanOrEqual(p);
        const group = (xs.filter((c) => c === v).length * v) / total;
        const larger = xs.filter((c) => c > v);
        const nextHalfStep = larger.length ? Math.min(...larger) / (2 * total) : 0;
        expect(p - back).toBeLessThanOrEqual(group + nextHalfStep + 1e-12);
        // and the uniform bound 1.5 × the largest group share
        const groups = new Map<number, number>();
        for (const c of xs) groups.set(c, (groups.get(c) ?? 0) + c / total);
        expect(p - back).toBeLessThanOrEqual(1.5 * Math.max(...groups.values()) + 1e-12);
      }),
      { numRuns: 2000 },
    );
  });

  test('round trip counter-example: ten 1s and one 12 — the error (0.72) exceeds the largest group share (12/22) but not G(1) + 12/(2·22)', () => {
    const d = dense([...Array(10).fill(1), 12]);
    expect(pToT(d, 0.72)).toBe(1); // |10/22 − .72| = .265 < |1 − .72| = .28
    expect(tToP(d, 1)).toBe(0);
    expect(0.72 - 0).toBeGreaterThan(12 / 22);
    expect(0.72).toBeLessThanOrEqual(10 / 22 + 12 / 44);
  });

  test('round trip on a fine-grained pool: with no large group the error is small', () => {
    // 2000 entries with distinct-ish counts: every group share is tiny, so t_to_p(p_to_t(p)) ≈ p.
    const xs = Array.from({ length: 2000 }, (_, e) => 1 + ((e * 7919) % 997));
    const d = dense(xs);
    const total = xs.reduce((a, b) => a + b, 0);
    const groups = new Map<number, number>();
    for (const c of xs) groups.set(c, (groups.get(c) ?? 0) + c / total);
    const bound = 1.5 * Math.max(...groups.values());
    expect(bound).toBeLessThan(0.005);
    for (let p = 0; p <= 1; p += 0.01) {
      const back = tToP(d, pToT(d, p));
      expect(back).toBeLessThanOrEqual(p);
      expect(p - back).toBeLessThanOrEqual(bound);
    }
  });

  /*
   * The other way: p = t_to_p(t) is exactly S_{j−1} (j = first sorted index with count ≥ t), so p_to_t(p)
   * returns the largest non-zero count below t (the top of the tail). It is consistent with t: thresholding
   * just above it (t' + 1, counts are integers) puts exactly the same entries in the tail. When the tail is
   * empty (p = 0), p_to_t returns 0 if some entry has count 0, else the smallest count (≥ t), and the tail
   * share at that value is still 0.
   */
  test('property: p_to_t(t_to_p(t)) is the top of the tail, and t_to_p of just above it gives back t_to_p(t)', () => {
    fc.assert(
      fc.property(countsArb, fc.integer({ min: 0, max: 70 }), (xs, t) => {
        const d = dense(xs);
        fc.pre(xs.some((c) => c > 0));
        const p = tToP(d, t);
        const back = pToT(d, p);
        if (p > 0) {
          expect(back).toBe(Math.max(...xs.filter((c) => c > 0 && c < t)));
          expect(back).toBeLessThan(t);
          expect(tToP(d, back + 1)).toBe(p);
        } else {
          expect(back).toBe(xs.includes(0) ? 0 : Math.min(...xs));
          expect(tToP(d, back)).toBe(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('hand example: p_to_t(t_to_p(t))', () => {
    expect(pToT(hand, tToP(hand, 4))).toBe(3); // tail {1, 1, 3}, share .25 → 3
    expect(pToT(hand, tToP(hand, 11))).toBe(10);
    expect(pToT(hand, tToP(hand, 1))).toBe(0);
  });
});

describe('headTailStats and topEntries', () => {
  const d = dense([0, 40, 5, 40, 100, 1, 0, 20]);

  test('headTailStats on a hand example (head = count ≥ t)', () => {
    expect(headTailStats(d, 20)).toEqual({
      t: 20,
      entriesMatched: 6,
      headEntries: 4, // 40, 40, 100, 20
      tailEntries: 2, // 5, 1
      headMatches: 200,
      tailMatches: 6,
      tailShare: 6 / 206,
      totalMatches: 206,
    });
    expect(headTailStats(d, 20).tailShare).toBe(tToP(d, 20));
    expect(headTailStats(d, 1000)).toMatchObject({ headEntries: 0, tailEntries: 6, tailShare: 1 });
    expect(headTailStats(dense([0, 0]), 5)).toMatchObject({ entriesMatched: 0, tailShare: 0, totalMatches: 0 });
  });

  test('property: head + tail add up; tailShare = t_to_p', () => {
    fc.assert(
      fc.property(countsArb, fc.integer({ min: 0, max: 70 }), (xs, t) => {
        const d2 = dense(xs);
        const s = headTailStats(d2, t);
        expect(s.headEntries + s.tailEntries).toBe(s.entriesMatched);
        expect(s.entriesMatched).toBe(xs.filter((c) => c > 0).length);
        expect(s.headMatches + s.tailMatches).toBe(totalMatches(d2));
        expect(s.tailShare).toBe(tToP(d2, t));
      }),
      { numRuns: 500 },
    );
  });

  test('topEntries: largest counts first, ties by id, zero counts never listed', () => {
    expect(topEntries(d, 3)).toEqual([[4, 100], [1, 40], [3, 40]]);
    expect(topEntries(d, 100)).toEqual([[4, 100], [1, 40], [3, 40], [7, 20], [2, 5], [5, 1]]);
    expect(topEntries(d, 0)).toEqual([]);
    expect(topEntries(dense([0, 0]), 2)).toEqual([]);
  });
});

describe('countsToEntryJsonText', () => {
  test('writes MetaCLIP form in metadata order, numeric-looking entries included, equal to the object form', () => {
    const { countsToEntryJson, countsToEntryJsonText } = require('../curation/counts') as typeof import('../curation/counts');
    const metadata = ['dog', '7', 'New York', '0', '"quoted"'];
    const counts = Float64Array.from([3, 2, 0, 5, 1]);
    const text = countsToEntryJsonText(counts, metadata);
    expect(text).toBe('{"dog":3,"7":2,"0":5,"\\"quoted\\"":1}');
    expect(JSON.parse(text)).toEqual(countsToEntryJson(counts, metadata));
  });
});
