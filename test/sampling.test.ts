import fc from 'fast-check';
import { isSelected, pairKey, seedKey, textProbability, uniformDraw, entryProbability, type DrawStream } from '../curation/balance';
import { addDense, sparseFromDense } from '../curation/counts';
import {
  columnsFromRows,
  countMatches,
  entryProbabilities,
  entryRange,
  oneTextPerImage,
  sampleColumns,
  type MatchColumns,
} from '../curation/sampling';

import { uuidOf, zipfRows as zipfPool, type Row } from './support/pools';

const zipfRows = (n: number, entries: number, seed: number): Row[] => zipfPool(n, entries, seed, { textsPerImage: 2 });

/** The test's own reading of §3: 1 − Π_e (1 − min(1, t / count[e])). */
function refProbability(ids: readonly number[], counts: Float64Array, t: number): number {
  let none = 1;
  for (const e of ids) none *= 1 - (counts[e] < t ? 1 : t / counts[e]);
  return 1 - none;
}

/** Random small pools with many shared entries, images with several texts and some duplicate (uuid, text) rows. */
const ENTRIES = 12;
const rowArb = fc.record({ img: fc.nat(25), txt: fc.nat(4), entries: fc.uniqueArray(fc.nat(ENTRIES - 1), { maxLength: 4 }) });
const poolArb = fc.array(rowArb, { minLength: 1, maxLength: 150 });
const toRows = (pool: Array<{ img: number; txt: number; entries: number[] }>): Row[] =>
  pool.map((r) => ({ uuid: uuidOf(r.img), text: `text ${r.txt}`, entry_ids: [...r.entries].sort((a, b) => a - b) }));
const countsOf = (cols: MatchColumns) => countMatches(cols, new Float64Array(ENTRIES));

describe('columns and counts', () => {
  test('columnsFromRows lays rows out as offsets + flat ids + SHA-256 pair keys; entryRange is max id + 1', () => {
    const rows: Row[] = [
      { uuid: 'a', text: 'x', entry_ids: [1, 4] },
      { uuid: 'b', text: 'y', entry_ids: [] },
      { uuid: 'c', text: 'z', entry_ids: [0, 2, 9] },
    ];
    const cols = columnsFromRows(rows);
    expect(cols.n).toBe(3);
    expect([...cols.offsets]).toEqual([0, 2, 2, 5]);
    expect([...cols.entryIds]).toEqual([1, 4, 0, 2, 9]);
    rows.forEach((r, i) => expect({ hi: cols.keyHi[i], lo: cols.keyLo[i] }).toEqual(pairKey(r.uuid, r.text)));
    expect(entryRange(cols)).toBe(10);
    expect(entryRange(columnsFromRows([]))).toBe(0);
  });

  test('property: countMatches counts each (text, entry) match once, adds into the vector, and honours `eligible`', () => {
    fc.assert(
      fc.property(poolArb, fc.array(fc.boolean(), { minLength: 150, maxLength: 150 }), (pool, mask) => {
        const rows = toRows(pool);
        const cols = columnsFromRows(rows);
        const naive = new Float64Array(ENTRIES);
        const naiveEligible = new Float64Array(ENTRIES);
        const eligible = new Uint8Array(rows.length);
        rows.forEach((r, i) => {
          eligible[i] = mask[i] ? 1 : 0;
          for (const e of r.entry_ids) {
            naive[e]++;
            if (mask[i]) naiveEligible[e]++;
          }
        });
        expect(countsOf(cols)).toEqual(naive);
        expect(countMatches(cols, new Float64Array(ENTRIES), eligible)).toEqual(naiveEligible);
        const twice = countsOf(cols);
        countMatches(cols, twice);
        expect([...twice]).toEqual([...naive].map((c) => 2 * c));
      }),
      { numRuns: 200 },
    );
  });

  test('entryProbabilities agrees with entryProbability for every entry (1 below t, t / count at or above)', () => {
    const counts = Float64Array.from([0, 1, 5, 10, 11, 400]);
    expect([...entryProbabilities(counts, 10)]).toEqual([1, 1, 1, 1, 10 / 11, 10 / 400]);
    for (const t of [1, 3, 10, 500]) {
      const p = entryProbabilities(counts, t);
      counts.forEach((c, e) => expect(p[e]).toBe(entryProbability(c, t)));
    }
  });
});

describe('sampleColumns (spec §3–4)', () => {
  test('property: agrees with row-wise textProbability + uniformDraw / isSelected for every candidate, on every stream', () => {
    fc.assert(
      fc.property(poolArb, fc.integer({ min: 1, max: 40 }), fc.string({ maxLength: 8 }), fc.constantFrom<DrawStream>('final', 'pass1', 'pick'), (pool, t, seed, stream) => {
        const rows = toRows(pool);
        const cols = columnsFromRows(rows);
        const dense = countsOf(cols);
        const sparse = sparseFromDense(dense);
        const res = sampleColumns(cols, entryProbabilities(dense, t), seedKey(seed, stream));
        const want: number[] = [];
        let expected = 0;
        rows.forEach((r, i) => {
          const p = textProbability(r.entry_ids, sparse, t);
          expected += p;
          const sel = uniformDraw(seed, r.uuid, r.text, stream) < p;
          expect(isSelected(seed, r.uuid, r.text, p, stream)).toBe(sel);
          if (sel) want.push(i);
        });
        expect([...res.selected]).toEqual(want);
        expect([...res.probability]).toEqual(want.map((i) => textProbability(rows[i].entry_ids, sparse, t)));
        expect(res.considered).toBe(rows.length);
        expect(res.expected).toBeCloseTo(expected, 9);
      }),
      { numRuns: 150 },
    );
  });

  test('property: nested in t — for t1 < t2, same counts and seed, selections(t1) ⊆ selections(t2)', () => {
    fc.assert(
      fc.property(poolArb, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.string({ maxLength: 8 }), (pool, a, b, seed) => {
        const [t1, t2] = a <= b ? [a, b] : [b, a];
        const cols = columnsFromRows(toRows(pool));
        const dense = countsOf(cols);
        const s = seedKey(seed);
        const small = sampleColumns(cols, entryProbabilities(dense, t1), s);
        const large = new Set(sampleColumns(cols, entryProbabilities(dense, t2), s).selected);
        for (const i of small.selected) expect(large.has(i)).toBe(true);
        expect(large.size).toBeGreaterThanOrEqual(small.selected.length);
      }),
      { numRuns: 300 },
    );
  });

  test('property: identical selection whatever the row order and however the pool is cut into chunks (buckets/workers)', () => {
    fc.assert(
      fc.property(
        poolArb,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 150, maxLength: 150 }),
        fc.array(fc.nat(150), { maxLength: 8 }),
        fc.integer({ min: 1, max: 40 }),
        fc.string({ maxLength: 8 }),
        (pool, order, cuts, t, seed) => {
          const rows = toRows(pool);
          const s = seedKey(seed);
          // One pass over the whole pool, in pool order.
          const whole = columnsFromRows(rows);
          const counts = countsOf(whole);
          const p = entryProbabilities(counts, t);
          const one = sampleColumns(whole, p, s);
          const want = [...one.selected];
          // Shuffled, then cut into chunks; counts summed over chunks; each chunk sampled on its own.
          const perm = rows.map((_, i) => i).sort((x, y) => order[x] - order[y] || x - y);
          const bounds = [0, ...cuts.map((c) => c % (rows.length + 1)).sort((x, y) => x - y), rows.length];
          const chunks: number[][] = [];
          for (let c = 0; c + 1 < bounds.length; c++) chunks.push(perm.slice(bounds[c], bounds[c + 1]));
          const summed = new Float64Array(ENTRIES);
          const chunkCols = chunks.map((idx) => columnsFromRows(idx.map((i) => rows[i])));
          for (const cc of chunkCols) addDense(summed, countsOf(cc));
          expect(summed).toEqual(counts);
          const got: number[] = [];
          let expected = 0;
          chunkCols.forEach((cc, c) => {
            const r = sampleColumns(cc, entryProbabilities(summed, t), s);
            for (const j of r.selected) got.push(chunks[c][j]);
            expected += r.expected;
          });
          expect(got.sort((x, y) => x - y)).toEqual(want);
          expect(expected).toBeCloseTo(one.expected, 9);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('eligible mask: only eligible candidates are considered, selected and summed', () => {
    const rows = zipfRows(2000, 50, 7);
    const cols = columnsFromRows(rows);
    const counts = countMatches(cols, new Float64Array(50));
    const p = entryProbabilities(counts, 30);
    const eligible = new Uint8Array(cols.n);
    for (let i = 0; i < cols.n; i += 3) eligible[i] = 1;
    const all = sampleColumns(cols, p, seedKey('e'));
    const some = sampleColumns(cols, p, seedKey('e'), eligible);
    expect(some.considered).toBe(Math.ceil(2000 / 3));
    expect([...some.selected]).toEqual([...all.selected].filter((i) => eligible[i]));
    let expected = 0;
    for (let i = 0; i < cols.n; i += 3) expected += refProbability(rows[i].entry_ids, counts, 30);
    expect(some.expected).toBeCloseTo(expected, 8);
  });

  describe('selection frequency vs 1 − Π(1 − p) on 240k Zipf candidates (tolerance: 5σ, σ² = Σ p(1 − p))', () => {
    const n = 240_000;
    const E = 3000;
    const t = 400;
    let rows: Row[];
    let cols: MatchColumns;
    let counts: Float64Array;
    let prob: Float64Array;
    beforeAll(() => {
      rows = zipfRows(n, E, 20240601);
      cols = columnsFromRows(rows);
      counts = countMatches(cols, new Float64Array(E));
      prob = new Float64Array(n);
      for (let i = 0; i < n; i++) prob[i] = refProbability(rows[i].entry_ids, counts, t);
    });

    test('the pool is what the test needs: a heavy head, a long tail and a spread of probabilities', () => {
      let head = 0;
      for (const c of counts) if (c >= t) head++;
      expect(head).toBeGreaterThan(50);
      expect(counts[0]).toBeGreaterThan(50 * t);
      let low = 0;
      let one = 0;
      for (const p of prob) {
        if (p < 0.1) low++;
        if (p === 1) one++;
      }
      expect(low).toBeGreaterThan(10_000);
      expect(one).toBeGreaterThan(10_000);
    });

    test.each(['0', 'seed-1', 'another seed'])('seed %j: total selected within 5σ of Σp, and within 5σ per probability class', (seed) => {
      const res = sampleColumns(cols, entryProbabilities(counts, t), seedKey(seed));
      let sum = 0;
      let variance = 0;
      for (const p of prob) {
        sum += p;
        variance += p * (1 - p);
      }
      expect(res.expected).toBeCloseTo(sum, 6);
      expect(Math.abs(res.selected.length - sum)).toBeLessThan(5 * Math.sqrt(variance));
      // The reported probability of each selected candidate is the formula's.
      let worst = 0;
      res.selected.forEach((i, j) => (worst = Math.max(worst, Math.abs(res.probability[j] - prob[i]))));
      expect(worst).toBeLessThan(1e-12);

      // Per class of selection probability: (0, 0.05], (0.05, 0.2], (0.2, 0.5], (0.5, 1), and exactly 1 (all kept).
      const edges = [0, 0.05, 0.2, 0.5, 1];
      const classOf = (p: number) => (p === 1 ? 4 : edges.findIndex((x, k) => k < 4 && p > x && p <= edges[k + 1]));
      const size = new Float64Array(5);
      const hits = new Float64Array(5);
      const mean = new Float64Array(5);
      const varc = new Float64Array(5);
      for (const p of prob) {
        const c = classOf(p);
        if (c < 0) throw new Error(`p = ${p} is in no class`); // every candidate matches an entry: p > 0
        size[c]++;
        mean[c] += p;
        varc[c] += p * (1 - p);
      }
      for (const i of res.selected) hits[classOf(prob[i])]++;
      for (let c = 0; c < 5; c++) {
        expect(size[c]).toBeGreaterThan(5000); // every class is well populated
        if (c === 4) expect(hits[c]).toBe(size[c]);
        else expect(Math.abs(hits[c] - mean[c])).toBeLessThan(5 * Math.sqrt(varc[c]));
      }
    });
  });
});

describe('oneTextPerImage (spec §3, v2 option)', () => {
  const pickRows = (): Row[] => {
    const rows: Row[] = [];
    for (let img = 0; img < 400; img++) {
      const k = 1 + (img % 5); // 1 to 5 texts per image
      for (let j = 0; j < k; j++) rows.push({ uuid: uuidOf(img), text: `text ${j} of ${img}`, entry_ids: [j] });
    }
    return rows;
  };

  test('exactly one eligible candidate per uuid: the one with the smallest `pick` draw', () => {
    const rows = pickRows();
    const cols = columnsFromRows(rows);
    const mask = oneTextPerImage(rows.map((r) => r.uuid), cols, seedKey('s', 'pick'));
    const perImage = new Map<string, number>();
    rows.forEach((r, i) => perImage.set(r.uuid, (perImage.get(r.uuid) ?? 0) + mask[i]));
    expect(perImage.size).toBe(400);
    for (const c of perImage.values()) expect(c).toBe(1);
    rows.forEach((r, i) => {
      if (!mask[i]) return;
      const u = uniformDraw('s', r.uuid, r.text, 'pick');
      for (const o of rows) if (o.uuid === r.uuid) expect(uniformDraw('s', o.uuid, o.text, 'pick')).toBeGreaterThanOrEqual(u);
    });
  });

  test('property: the picked (uuid, text) pairs do not depend on row order', () => {
    const rows = pickRows();
    const picked = (rs: Row[], seed: string) => {
      const mask = oneTextPerImage(rs.map((r) => r.uuid), columnsFromRows(rs), seedKey(seed, 'pick'));
      return rs.filter((_, i) => mask[i]).map((r) => `${r.uuid}\u0000${r.text}`).sort();
    };
    const base = picked(rows, 'x');
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: rows.length, maxLength: rows.length }), (order) => {
        const shuffled = rows.map((r, i) => [order[i], i, r] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
        expect(picked(shuffled, 'x')).toEqual(base);
      }),
      { numRuns: 20 },
    );
    // Duplicated rows (same uuid and text) cannot change which text is picked.
    expect(picked([...rows, ...rows.slice(0, 50)], 'x')).toEqual(base);
  });

  test('the pick changes with the seed for some images, and only for multi-text images', () => {
    const rows = pickRows();
    const cols = columnsFromRows(rows);
    const uuids = rows.map((r) => r.uuid);
    const a = oneTextPerImage(uuids, cols, seedKey('a', 'pick'));
    const b = oneTextPerImage(uuids, cols, seedKey('b', 'pick'));
    const texts = new Map<string, number>();
    for (const u of uuids) texts.set(u, (texts.get(u) ?? 0) + 1);
    const changed = new Set<string>();
    rows.forEach((r, i) => {
      if (a[i] !== b[i]) changed.add(r.uuid);
      if (texts.get(r.uuid) === 1) expect(a[i]).toBe(1); // a single-text image always keeps its text
    });
    for (const u of changed) expect(texts.get(u)).toBeGreaterThan(1);
    // 320 images have 2–5 texts (80 each); a fresh seed keeps the pick with probability 1/k: E[changed] ≈ 217, σ ≈ 7.
    expect(changed.size).toBeGreaterThan(150);
    // The final stream's draw is not the pick: the seed key matters.
    expect([...oneTextPerImage(uuids, cols, seedKey('a', 'final'))]).not.toEqual([...a]);
  });
});
