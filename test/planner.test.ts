import fc from 'fast-check';
import { seedKey, textProbability } from '../curation/balance';
import { sparseFromDense } from '../curation/counts';
import {
  addPlanRows,
  bracketTarget,
  coarseGrid,
  expectedSizes,
  fineGrid,
  interpolateT,
  roundT,
  logGrid,
  type PlanRow,
} from '../curation/planner';
import { columnsFromRows, countMatches, entryProbabilities, sampleColumns, type MatchColumns } from '../curation/sampling';

import { uuidOf, zipfRows as zipfPool, type Row } from './support/pools';

const zipfRows = (n: number, entries: number, seed: number): Row[] => zipfPool(n, entries, seed, { emptyEvery: 50 });

const rowsArb = fc.array(
  fc.record({ img: fc.nat(30), txt: fc.nat(3), entries: fc.uniqueArray(fc.nat(9), { maxLength: 4 }) }).map((r) => ({
    uuid: uuidOf(r.img),
    text: `t${r.txt}`,
    entry_ids: [...r.entries].sort((a, b) => a - b),
  })),
  { minLength: 1, maxLength: 120 },
);

const row = (t: number, expectedPairs: number): PlanRow => ({ t, expectedPairs, expectedMatches: 0 });

describe('expectedSizes (spec §3: E(t) = Σ_texts 1 − Π (1 − p[e]))', () => {
  test('property: equals Σ textProbability for each t, and expectedMatches = Σ p · |matches|', () => {
    fc.assert(
      fc.property(rowsArb, fc.uniqueArray(fc.integer({ min: 1, max: 150 }), { minLength: 1, maxLength: 8 }), (rows, ts) => {
        const cols = columnsFromRows(rows);
        const counts = countMatches(cols, new Float64Array(10));
        const sparse = sparseFromDense(counts);
        const plan = expectedSizes(cols, counts, ts);
        expect(plan.map((r) => r.t)).toEqual(ts);
        ts.forEach((t, q) => {
          let pairs = 0;
          let matches = 0;
          for (const r of rows) {
            const p = textProbability(r.entry_ids, sparse, t);
            pairs += p;
            matches += p * r.entry_ids.length;
          }
          expect(plan[q].expectedPairs).toBeCloseTo(pairs, 9);
          expect(plan[q].expectedMatches).toBeCloseTo(matches, 9);
          // and sampleColumns reports the same expectation
          expect(sampleColumns(cols, entryProbabilities(counts, t), seedKey('x')).expected).toBeCloseTo(pairs, 9);
        });
      }),
      { numRuns: 200 },
    );
  });

  test('property: E(t) is non-decreasing in t; E(max count + 1) = candidates with a match; E ≤ candidates', () => {
    fc.assert(
      fc.property(rowsArb, (rows) => {
        const cols = columnsFromRows(rows);
        const counts = countMatches(cols, new Float64Array(10));
        const ts = Array.from({ length: 80 }, (_, i) => i * 1.5 + 0.5);
        const plan = expectedSizes(cols, counts, ts);
        const drops = plan.filter((r, q) => q > 0 && r.expectedPairs < plan[q - 1].expectedPairs);
        expect(drops).toEqual([]);
        const withMatch = rows.filter((r) => r.entry_ids.length > 0).length;
        const max = Math.max(...counts);
        expect(expectedSizes(cols, counts, [max + 1])[0].expectedPairs).toBe(withMatch);
        expect(Math.max(...plan.map((r) => r.expectedPairs))).toBeLessThanOrEqual(withMatch + 1e-9);
      }),
      { numRuns: 200 },
    );
  });

  test('honours `eligible`, and rows of buckets add up to the rows of the whole pool (addPlanRows)', () => {
    const rows = zipfRows(3000, 200, 3);
    const cols = columnsFromRows(rows);
    const counts = countMatches(cols, new Float64Array(200));
    const ts = coarseGrid(counts, 12);
    const eligible = new Uint8Array(cols.n);
    for (let i = 0; i < cols.n; i += 2) eligible[i] = 1;
    const evens = expectedSizes(columnsFromRows(rows.filter((_, i) => i % 2 === 0)), counts, ts);
    expectedSizes(cols, counts, ts, eligible).forEach((r, q) => expect(r.expectedPairs).toBeCloseTo(evens[q].expectedPairs, 8));

    let sum: PlanRow[] = [];
    for (let b = 0; b < 4; b++) sum = addPlanRows(sum, expectedSizes(columnsFromRows(rows.filter((_, i) => i % 4 === b)), counts, ts));
    const whole = expectedSizes(cols, counts, ts);
    whole.forEach((r, q) => {
      expect(sum[q].t).toBe(r.t);
      expect(sum[q].expectedPairs).toBeCloseTo(r.expectedPairs, 8);
      expect(sum[q].expectedMatches).toBeCloseTo(r.expectedMatches, 8);
    });
    const first = expectedSizes(cols, counts, [1, 2]);
    expect(addPlanRows([], first)).not.toBe(first); // copies, does not alias
    expect(() => addPlanRows(expectedSizes(cols, counts, [1, 2]), expectedSizes(cols, counts, [1, 3]))).toThrow(/disagree on t/);
  });
});

describe('grids', () => {
  test('logGrid: ascending unique integers, both ends included, at most n, log-spaced', () => {
    expect(logGrid(1, 1000, 4)).toEqual([1, 10, 100, 1000]);
    expect(logGrid(5, 5, 10)).toEqual([5]);
    expect(logGrid(7, 100, 1)).toEqual([7]);
    expect(logGrid(0.2, 3.5, 3)).toEqual([1, 2, 4]); // lo floored and clamped to 1, hi rounded up
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 0, max: 1e7 }), fc.integer({ min: 2, max: 80 }), (lo, span, n) => {
        const hi = lo + span;
        const g = logGrid(lo, hi, n);
        expect(g[0]).toBe(lo);
        expect(g[g.length - 1]).toBe(hi);
        expect(g.length).toBeLessThanOrEqual(n);
        expect(g.every((x, q) => Number.isInteger(x) && (q === 0 || x > g[q - 1]))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  test('coarseGrid runs from 1 to one past the largest count', () => {
    const g = coarseGrid(Float64Array.from([3, 0, 999, 12]), 40);
    expect(g[0]).toBe(1);
    expect(g[g.length - 1]).toBe(1000);
    expect(g.length).toBeLessThanOrEqual(40);
    expect(coarseGrid(Float64Array.from([0, 0]), 40)).toEqual([1]);
  });

  test('fineGrid: at most n evenly spread thresholds, both ends included, rounded by roundT (integers from 1,000, 4 significant digits below)', () => {
    expect(fineGrid(0, 100, 5)).toEqual([0, 25, 50, 75, 100]);
    expect(fineGrid(2, 3, 5)).toEqual([2, 2.25, 2.5, 2.75, 3]);
    expect(fineGrid(1000, 1003, 7)).toEqual([1000, 1001, 1002, 1003]); // integers above 1,000: deduplicated
    expect(fineGrid(3, 2, 5)).toEqual([]);
    expect(roundT(1.23456)).toBe(1.235);
    expect(roundT(999.94)).toBe(999.9);
    expect(roundT(20_000.4)).toBe(20_000);
    fc.assert(
      fc.property(fc.double({ min: 0.5, max: 1e6, noNaN: true }), fc.double({ min: 0, max: 1e5, noNaN: true }), fc.integer({ min: 2, max: 60 }), (lo, span, n) => {
        const hi = lo + span;
        const g = fineGrid(lo, hi, n);
        expect(g[0]).toBe(lo);
        expect(g[g.length - 1]).toBe(hi);
        expect(g.length).toBeLessThanOrEqual(n);
        expect(g.every((x, q) => q === 0 || x > g[q - 1])).toBe(true);
        for (let q = 1; q < g.length - 1; q++) expect(g[q]).toBe(roundT(g[q]));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('bracketTarget / interpolateT', () => {
  const rows = [row(1, 10), row(10, 40), row(100, 40), row(1000, 90)];

  test('below, above, exact (smallest t on a plateau), between', () => {
    expect(bracketTarget(rows, 5)).toEqual({ kind: 'below', min: rows[0] });
    expect(bracketTarget(rows, 91)).toEqual({ kind: 'above', max: rows[3] });
    expect(bracketTarget(rows, 10)).toEqual({ kind: 'exact', t: 1 });
    expect(bracketTarget(rows, 40)).toEqual({ kind: 'exact', t: 10 });
    expect(bracketTarget(rows, 90)).toEqual({ kind: 'exact', t: 1000 });
    expect(bracketTarget(rows, 25)).toEqual({ kind: 'between', lo: rows[0], hi: rows[1] });
    expect(bracketTarget(rows, 41)).toEqual({ kind: 'between', lo: rows[2], hi: rows[3] });
    expect(() => bracketTarget([], 1)).toThrow(/empty plan/);
  });

  test('property: a between-bracket satisfies lo.E < target < hi.E with adjacent rows', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 20 }), fc.double({ min: -5, max: 2100, noNaN: true }), (steps, target) => {
        let e = 0;
        const table = steps.map((s, q) => row(q + 1, (e += s)));
        const b = bracketTarget(table, target);
        if (b.kind === 'below') expect(target).toBeLessThan(table[0].expectedPairs);
        else if (b.kind === 'above') expect(target).toBeGreaterThan(table[table.length - 1].expectedPairs);
        else if (b.kind === 'exact') {
          const q = table.findIndex((r) => r.expectedPairs === target);
          expect(b.t).toBe(table[q].t);
        } else {
          expect(b.lo.expectedPairs).toBeLessThan(target);
          expect(b.hi.expectedPairs).toBeGreaterThan(target);
          expect(b.hi.t).toBe(b.lo.t + 1); // adjacent rows of the table
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('interpolateT: linear in E between the rows, rounded and clamped to [lo.t, hi.t]', () => {
    expect(interpolateT(row(100, 10), row(200, 20), 15)).toBe(150);
    expect(interpolateT(row(100, 10), row(200, 20), 12.5)).toBe(125);
    expect(interpolateT(row(100, 10), row(200, 20), 10)).toBe(100);
    expect(interpolateT(row(100, 10), row(200, 20), 20)).toBe(200);
    expect(interpolateT(row(100, 10), row(200, 20), 99)).toBe(200);
    expect(interpolateT(row(100, 10), row(200, 20), -3)).toBe(100);
    expect(interpolateT(row(100, 10), row(200, 10), 10)).toBe(100); // flat: no span
    expect(interpolateT(row(1, 0), row(4, 1), 0.5)).toBe(2.5); // fractional t below 1,000 (4 significant digits)
    expect(interpolateT(row(1, 0), row(4, 3), 1)).toBe(2);
    expect(interpolateT(row(1, 0), row(2, 3), 1)).toBe(1.333);
    expect(interpolateT(row(1000, 0), row(4000, 1), 0.5)).toBe(2500);
    expect(interpolateT(row(1000, 0), row(1003, 3), 1.4)).toBe(1001); // integers from 1,000
  });
});

describe('planning a synthetic pool (20k Zipf candidates)', () => {
  let rows: Row[];
  let cols: MatchColumns;
  let counts: Float64Array;
  beforeAll(() => {
    rows = zipfRows(20_000, 1500, 99);
    cols = columnsFromRows(rows);
    counts = countMatches(cols, new Float64Array(1500));
  });

  /** Two rounds: the coarse log grid brackets the target, a fine grid inside the bracket, then interpolate. */
  function solve(target: number): { t: number; coarse: PlanRow[]; fine: PlanRow[] } {
    const coarse = expectedSizes(cols, counts, coarseGrid(counts, 40));
    const b1 = bracketTarget(coarse, target);
    if (b1.kind !== 'between') throw new Error(`coarse bracket is ${b1.kind}`);
    const fine = expectedSizes(cols, counts, fineGrid(b1.lo.t, b1.hi.t, 40));
    const b2 = bracketTarget(fine, target);
    if (b2.kind === 'exact') return { t: b2.t, coarse, fine };
    if (b2.kind !== 'between') throw new Error(`fine bracket is ${b2.kind}`);
    return { t: interpolateT(b2.lo, b2.hi, target), coarse, fine };
  }

  // E(t) is continuous in t and t may be fractional below 1,000, so every reachable target is hit within 1%,
  // including small ones where one integer step of t moves E(t) by 20%.
  test.each([0.08, 0.1, 0.2, 0.35, 0.5, 0.6, 0.75, 0.85, 0.95])('target = %p of the pool: coarse then fine grid, E(t) of the solved t is within 1% of the target', (share) => {
    const target = share * cols.n;
    const { t, coarse, fine } = solve(target);
    expect(coarse.length).toBeGreaterThan(20);
    expect(fine[0].expectedPairs).toBeLessThan(target);
    expect(fine[fine.length - 1].expectedPairs).toBeGreaterThan(target);
    const [at] = expectedSizes(cols, counts, [t]).map((r) => r.expectedPairs);
    expect(Math.abs(at - target) / target).toBeLessThan(0.01);
  });

  test.each(['0', 'seed-7'])('seed %j: the realised selected count is within 5σ (σ² = Σ p(1 − p)) of E(t) for several t', (seed) => {
    const sparse = sparseFromDense(counts);
    for (const t of [5, 50, 400, solve(0.4 * 20_000).t]) {
      const e = expectedSizes(cols, counts, [t])[0].expectedPairs;
      let variance = 0;
      for (const r of rows) {
        const p = textProbability(r.entry_ids, sparse, t);
        variance += p * (1 - p);
      }
      const got = sampleColumns(cols, entryProbabilities(counts, t), seedKey(seed)).selected.length;
      expect(variance).toBeGreaterThan(100); // a real spread of probabilities, so 5σ is a meaningful bound
      expect(Math.abs(got - e)).toBeLessThan(5 * Math.sqrt(variance));
    }
  });

  test('targets outside the reachable range are reported, not guessed', () => {
    const coarse = expectedSizes(cols, counts, coarseGrid(counts, 40));
    expect(bracketTarget(coarse, cols.n * 2).kind).toBe('above');
    expect(bracketTarget(coarse, coarse[coarse.length - 1].expectedPairs).kind).toBe('exact');
    expect(bracketTarget(coarse, coarse[0].expectedPairs / 2).kind).toBe('below');
  });
});
