import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  addCounts,
  countsFromIdJson,
  countsToIdJson,
  drawFromKeys,
  entryProbability,
  fmix32,
  isSelected,
  mergeCounts,
  pairKey,
  seedKey,
  textProbability,
  uniformDraw,
  type DrawStream,
  type EntryCounts,
  type Key64,
} from '../curation/balance';

/*
 * Statistical tests in this file are deterministic (every input is a fixed hash), so they pass or fail the
 * same way on every run. Tolerances: counts within 5σ of their expectation; chi-square statistics below the
 * α = 1e-6 critical value (df = 63 → 131.37, computed from the regularised upper incomplete gamma function).
 */
const CHI2_63_ALPHA_1E6 = 131.37;
const N = 200_000;

// ---- independent reference for murmur3's fmix32, in BigInt arithmetic ----
const M32 = (1n << 32n) - 1n;
function fmix32Big(x: number): number {
  let h = BigInt(x >>> 0);
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M32;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M32;
  h ^= h >> 16n;
  return Number(h);
}
/** Multiplicative inverse modulo 2^32 (extended Euclid over BigInt). */
function inv32(a: bigint): number {
  let [r0, r1] = [1n << 32n, a];
  let [t0, t1] = [0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  return Number(((t0 % (1n << 32n)) + (1n << 32n)) % (1n << 32n));
}
const INV1 = inv32(0x85ebca6bn);
const INV2 = inv32(0xc2b2ae35n);
function unfmix32(h: number): number {
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, INV2) >>> 0;
  h = (h ^ (h >>> 13) ^ (h >>> 26)) >>> 0;
  h = Math.imul(h, INV1) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h;
}
/** The pair key whose draw under `seed` has Feistel outputs (l, r2): inverts the three rounds. */
function keyForOutputs(seed: Key64, l: number, r2: number): Key64 {
  const r = (unfmix32(r2) ^ l) >>> 0;
  return { hi: (unfmix32(l) ^ seed.hi ^ r) >>> 0, lo: (unfmix32(r) ^ seed.lo) >>> 0 };
}

function chiSquare(observed: ArrayLike<number>, expected: number): number {
  let x = 0;
  for (let i = 0; i < observed.length; i++) x += (observed[i] - expected) ** 2 / expected;
  return x;
}

describe('balancing maths (spec §3)', () => {
  test('p[e] = 1 below t, t / count at or above', () => {
    expect(entryProbability(19_999, 20_000)).toBe(1);
    expect(entryProbability(20_000, 20_000)).toBe(1);
    expect(entryProbability(80_000, 20_000)).toBe(0.25);
    expect(entryProbability(0, 1)).toBe(1);
  });

  test('text probability is 1 − Π(1 − p[e])', () => {
    const counts: EntryCounts = new Map([[1, 40], [2, 80], [3, 5]]);
    expect(textProbability([1], counts, 20)).toBeCloseTo(0.5, 12);
    expect(textProbability([1, 2], counts, 20)).toBeCloseTo(1 - 0.5 * 0.75, 12);
    expect(textProbability([1, 3], counts, 20)).toBe(1); // a tail entry keeps the text
    expect(textProbability([], counts, 20)).toBe(0);
    expect(textProbability([1, 99], counts, 20)).toBe(1); // an entry absent from counts has count 0 < t: p = 1
  });

  test('property: text probability equals 1 − Π(1 − min(1, t/count)) and is non-decreasing in t', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat(20), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 21, maxLength: 21 }),
        fc.integer({ min: 1, max: 1200 }),
        fc.integer({ min: 0, max: 500 }),
        (ids, cs, t, dt) => {
          const sorted = [...ids].sort((a, b) => a - b);
          const counts: EntryCounts = new Map(cs.map((c, e) => [e, c]));
          let none = 1;
          for (const e of sorted) none *= 1 - Math.min(1, t / cs[e]);
          const p = textProbability(sorted, counts, t);
          expect(p).toBeCloseTo(1 - none, 12);
          expect(p).toBeGreaterThanOrEqual(0);
          expect(p).toBeLessThanOrEqual(1);
          expect(textProbability(sorted, counts, t + dt)).toBeGreaterThanOrEqual(p);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('sparse counts: addCounts / mergeCounts add up, id JSON is ascending and round-trips', () => {
    const a: EntryCounts = new Map();
    addCounts(a, [3, 1]);
    addCounts(a, [1]);
    expect([...a.entries()].sort()).toEqual([[1, 2], [3, 1]]);
    const b: EntryCounts = new Map([[10, 5], [1, 1]]);
    mergeCounts(a, b);
    expect(a.get(1)).toBe(3);
    expect(a.get(10)).toBe(5);
    const json = countsToIdJson(a);
    expect(Object.keys(json)).toEqual(['1', '3', '10']);
    expect(countsFromIdJson(JSON.parse(JSON.stringify(json)))).toEqual(a);
  });
});

describe('draw keys and fmix32 (spec §4)', () => {
  test('fmix32 equals murmur3 fmix32 on values computed independently (Python) and by BigInt arithmetic', () => {
    // Computed with Python integers: h ^= h >> 16; h = h * 0x85ebca6b mod 2^32; h ^= h >> 13; h = h * 0xc2b2ae35 mod 2^32; h ^= h >> 16.
    const known: Array<[number, number]> = [
      [0, 0],
      [1, 1364076727],
      [2, 821347078],
      [0xdeadbeef, 233162409],
      [0xffffffff, 2180083513],
      [0x80000000, 1832674720],
      [123456789, 3126909082],
    ];
    for (const [x, y] of known) {
      expect(fmix32(x)).toBe(y);
      expect(fmix32Big(x)).toBe(y);
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (x) => {
        expect(fmix32(x)).toBe(fmix32Big(x));
        expect(unfmix32(fmix32(x))).toBe(x); // and it is a bijection (the test's inverse undoes it)
      }),
      { numRuns: 2000 },
    );
  });

  test('pairKey / seedKey are the first 8 bytes (big-endian) of SHA-256(a \\0 b); the separator keeps fields apart', () => {
    const h = createHash('sha256').update('abc\u0000a dog', 'utf8').digest();
    expect(pairKey('abc', 'a dog')).toEqual({ hi: h.readUInt32BE(0), lo: h.readUInt32BE(4) });
    const s = createHash('sha256').update('pass1\u000042', 'utf8').digest();
    expect(seedKey('42', 'pass1')).toEqual({ hi: s.readUInt32BE(0), lo: s.readUInt32BE(4) });
    expect(seedKey('42')).toEqual(seedKey('42', 'final'));
    expect(pairKey('ab', 'c')).not.toEqual(pairKey('a', 'bc'));
    expect(seedKey('1', 'final')).not.toEqual(seedKey('1', 'pick'));
  });

  test('drawFromKeys is the 3-round Feistel of fmix32: u = ((l >>> 11)·2^32 + r2) / 2^53, reaching exactly 0 and (2^53 − 1)/2^53', () => {
    // Invert the network to find the key that produces chosen outputs (l, r2), then check the draw.
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (sHi, sLo, l, r2) => {
          const k = keyForOutputs({ hi: sHi, lo: sLo }, l, r2);
          expect(drawFromKeys(sHi, sLo, k.hi, k.lo)).toBe(((l >>> 11) * 2 ** 32 + r2) / 2 ** 53);
        },
      ),
      { numRuns: 2000 },
    );
    const seed = seedKey('extremes');
    const top = keyForOutputs(seed, 0xffffffff, 0xffffffff);
    const u = drawFromKeys(seed.hi, seed.lo, top.hi, top.lo);
    expect(u).toBe((2 ** 53 - 1) / 2 ** 53);
    expect(u).toBeLessThan(1);
    const bottom = keyForOutputs(seed, 0x7ff, 0); // low 11 bits of l are dropped
    expect(drawFromKeys(seed.hi, seed.lo, bottom.hi, bottom.lo)).toBe(0);
  });

  test('property: drawFromKeys is in [0, 1) and a multiple of 2^-53', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(u32, u32, u32, u32, (a, b, c, d) => {
        const u = drawFromKeys(a, b, c, d);
        expect(u).toBeGreaterThanOrEqual(0);
        expect(u).toBeLessThan(1);
        expect(Number.isInteger(u * 2 ** 53)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  describe('over 200k candidates', () => {
    const keyHi = new Uint32Array(N);
    const keyLo = new Uint32Array(N);
    beforeAll(() => {
      for (let i = 0; i < N; i++) {
        const k = pairKey(`uuid-${i}`, `text ${i % 97}`);
        keyHi[i] = k.hi;
        keyLo[i] = k.lo;
      }
    });
    const cache = new Map<string, Float64Array>();
    const draws = (seed: Key64) => {
      const id = `${seed.hi}:${seed.lo}`;
      let u = cache.get(id);
      if (!u) {
        u = new Float64Array(N);
        for (let i = 0; i < N; i++) u[i] = drawFromKeys(seed.hi, seed.lo, keyHi[i], keyLo[i]);
        cache.set(id, u);
      }
      return u;
    };
    test('selection frequency matches p for a fixed p (200k candidates, |hits − np| < 5σ, σ = √(np(1−p))), is nested in p, and isSelected ≡ uniformDraw < p', () => {
      const u = draws(seedKey('seed'));
      for (const p of [0.01, 0.3, 0.75]) {
        let hits = 0;
        for (let i = 0; i < N; i++) if (u[i] < p) hits++;
        const sigma = Math.sqrt(N * p * (1 - p));
        expect(Math.abs(hits - N * p)).toBeLessThan(5 * sigma);
      }
      for (let i = 0; i < 3000; i++) {
        expect(isSelected('seed', `uuid-${i}`, `text ${i % 97}`, 0.3)).toBe(u[i] < 0.3);
        if (u[i] < 0.2) expect(isSelected('seed', `uuid-${i}`, `text ${i % 97}`, 0.4)).toBe(true);
      }
      expect(isSelected('s', 'u', 't', 0)).toBe(false);
      expect(isSelected('s', 'u', 't', 1)).toBe(true);
    });

    test.each<DrawStream>(['final', 'pass1', 'pick'])(
      'uniform, stream %s: chi-square over 64 bins < 131.37 (df 63, α = 1e-6); no two of 200k draws collide',
      (stream) => {
        const u = draws(seedKey('seed-a', stream));
        const bins = new Float64Array(64);
        for (const x of u) bins[Math.floor(x * 64)]++;
        expect(chiSquare(bins, N / 64)).toBeLessThan(CHI2_63_ALPHA_1E6);
        const sorted = Float64Array.from(u).sort();
        let collisions = 0;
        for (let i = 1; i < N; i++) if (sorted[i] === sorted[i - 1]) collisions++;
        expect(collisions).toBe(0);
      },
    );

    test('uniform on structured keys (keyHi = 0, keyLo = 0…199999): chi-square over 64 bins < 131.37 (df 63, α = 1e-6)', () => {
      const s = seedKey('seed-a');
      const bins = new Float64Array(64);
      for (let i = 0; i < N; i++) bins[Math.floor(drawFromKeys(s.hi, s.lo, 0, i) * 64)]++;
      expect(chiSquare(bins, N / 64)).toBeLessThan(CHI2_63_ALPHA_1E6);
    });

    test.each<[string, DrawStream, string, DrawStream]>([
      ['seed-a', 'final', 'seed-b', 'final'],
      ['seed-a', 'final', 'seed-a', 'pass1'],
      ['seed-a', 'final', 'seed-a', 'pick'],
      ['0', 'final', '1', 'final'],
    ])(
      'independent: %s/%s vs %s/%s — overlap of p = 0.5 selections within 5σ of n/4, joint 8×8 chi-square < 131.37 (df 63, α = 1e-6)',
      (s1, st1, s2, st2) => {
        const a = draws(seedKey(s1, st1));
        const b = draws(seedKey(s2, st2));
        let both = 0;
        const joint = new Float64Array(64);
        for (let i = 0; i < N; i++) {
          if (a[i] < 0.5 && b[i] < 0.5) both++;
          joint[Math.floor(a[i] * 8) * 8 + Math.floor(b[i] * 8)]++;
        }
        const sigma = Math.sqrt(N * 0.25 * 0.75);
        expect(Math.abs(both - N / 4)).toBeLessThan(5 * sigma);
        expect(chiSquare(joint, N / 64)).toBeLessThan(CHI2_63_ALPHA_1E6);
      },
    );
  });

  test('uniformDraw is a fixed function of (seed, uuid, text, stream) in [0, 1) and equals drawFromKeys(seedKey, pairKey)', () => {
    const u = uniformDraw('0', 'abc', 'a dog');
    expect(u).toBe(uniformDraw('0', 'abc', 'a dog'));
    expect(u).toBe(uniformDraw('0', 'abc', 'a dog', 'final'));
    expect(u).not.toBe(uniformDraw('1', 'abc', 'a dog'));
    expect(u).not.toBe(uniformDraw('0', 'abc', 'a cat'));
    expect(u).not.toBe(uniformDraw('0', 'abd', 'a dog'));
    expect(u).not.toBe(uniformDraw('0', 'abc', 'a dog', 'pass1'));
    expect(u).toBeGreaterThanOrEqual(0);
    expect(u).toBeLessThan(1);
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.constantFrom<DrawStream>('final', 'pass1', 'pick'), (seed, uuid, text, stream) => {
        const s = seedKey(seed, stream);
        const k = pairKey(uuid, text);
        const v = uniformDraw(seed, uuid, text, stream);
        expect(v).toBe(drawFromKeys(s.hi, s.lo, k.hi, k.lo));
        expect(v).toBe(uniformDraw(seed, uuid, text, stream));
        expect(isSelected(seed, uuid, text, v, stream)).toBe(false); // u < p is strict
        expect(isSelected(seed, uuid, text, v + 2 ** -53, stream)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

});
