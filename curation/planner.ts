/**
 * The size planner: the expected curated size for many t at once, Σ_candidates 1 − Π_e (1 − p_e(t)), in one
 * pass over a pool, and the t that gives a target size. E(t) is continuous and non-decreasing in t, so a
 * coarse log grid brackets the target and a fine grid inside the bracket pins it down (two passes).
 */
import type { DenseCounts } from './counts';
import type { MatchColumns } from './sampling';

export interface PlanRow {
  t: number;
  /** Expected selected pairs. */
  expectedPairs: number;
  /** Expected (pair, entry) matches among the selected pairs. */
  expectedMatches: number;
}

/** Per-candidate sums for each t (additive across buckets: sum the rows of each bucket). */
export function expectedSizes(cols: MatchColumns, counts: DenseCounts, ts: readonly number[], eligible?: Uint8Array): PlanRow[] {
  const k = ts.length;
  const pairs = new Float64Array(k);
  const matches = new Float64Array(k);
  const keepNone = new Float64Array(k);
  const { offsets, entryIds } = cols;
  for (let i = 0; i < cols.n; i++) {
    if (eligible && !eligible[i]) continue;
    keepNone.fill(1);
    const start = offsets[i];
    const end = offsets[i + 1];
    for (let j = start; j < end; j++) {
      const c = counts[entryIds[j]];
      for (let q = 0; q < k; q++) {
        const t = ts[q];
        keepNone[q] *= c < t ? 0 : 1 - t / c;
      }
    }
    const m = end - start;
    for (let q = 0; q < k; q++) {
      const prob = 1 - keepNone[q];
      pairs[q] += prob;
      matches[q] += prob * m;
    }
  }
  return ts.map((t, q) => ({ t, expectedPairs: pairs[q], expectedMatches: matches[q] }));
}

export function addPlanRows(into: PlanRow[], from: readonly PlanRow[]): PlanRow[] {
  if (into.length === 0) return from.map((r) => ({ ...r }));
  from.forEach((r, q) => {
    if (into[q].t !== r.t) throw new Error(`plan rows disagree on t: ${into[q].t} vs ${r.t}`);
    into[q].expectedPairs += r.expectedPairs;
    into[q].expectedMatches += r.expectedMatches;
  });
  return into;
}

/** n log-spaced integer thresholds from lo to hi (inclusive, deduplicated). */
export function logGrid(lo: number, hi: number, n: number): number[] {
  lo = Math.max(1, Math.floor(lo));
  hi = Math.max(lo, Math.ceil(hi));
  const out = new Set<number>();
  for (let q = 0; q < n; q++) out.add(Math.round(lo * Math.pow(hi / lo, n === 1 ? 0 : q / (n - 1))));
  return [...out].sort((a, b) => a - b);
}

/** Thresholds below 1 (every matched entry is then in the head): they let the planner reach small targets. */
export const SUB_UNIT_THRESHOLDS: readonly number[] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5];

/** The coarse grid for a pool: from 1 to one past the largest count (where every pair is kept). */
export function coarseGrid(counts: DenseCounts, n = 40): number[] {
  let max = 0;
  for (let e = 0; e < counts.length; e++) if (counts[e] > max) max = counts[e];
  return logGrid(1, max + 1, n);
}

export type Bracket =
  | { kind: 'exact'; t: number }
  | { kind: 'between'; lo: PlanRow; hi: PlanRow }
  | { kind: 'below'; min: PlanRow }
  | { kind: 'above'; max: PlanRow };

/** Where the target falls in a table sorted by t. */
export function bracketTarget(rows: readonly PlanRow[], target: number): Bracket {
  if (rows.length === 0) throw new Error('empty plan');
  if (target < rows[0].expectedPairs) return { kind: 'below', min: rows[0] };
  const last = rows[rows.length - 1];
  if (target > last.expectedPairs) return { kind: 'above', max: last };
  for (let q = 0; q < rows.length; q++) {
    if (rows[q].expectedPairs === target) {
      // The smallest t reaching it exactly.
      return { kind: 'exact', t: rows[q].t };
    }
    if (rows[q].expectedPairs > target) return { kind: 'between', lo: rows[q - 1], hi: rows[q] };
  }
  return { kind: 'exact', t: last.t };
}

/**
 * Thresholds need not be integers (p[e] = t / count is defined for any t > 0, and E(t) is continuous), so
 * the planner can hit a target on small pools too: t keeps 4 significant digits below 1,000, integers above.
 */
export function roundT(t: number): number {
  return t >= 1000 ? Math.round(t) : Number(t.toPrecision(4));
}

/** Linear interpolation of t between two rows (E is close to linear over a fine-grid step), clamped to [lo.t, hi.t]. */
export function interpolateT(lo: PlanRow, hi: PlanRow, target: number): number {
  const span = hi.expectedPairs - lo.expectedPairs;
  const f = span > 0 ? (target - lo.expectedPairs) / span : 0;
  return Math.min(hi.t, Math.max(lo.t, roundT(lo.t + f * (hi.t - lo.t))));
}

/** The fine grid inside a bracket: n evenly spaced thresholds (rounded by roundT, deduplicated), both ends included. */
export function fineGrid(lo: number, hi: number, n = 40): number[] {
  if (hi < lo) return [];
  const out = new Set<number>([lo, hi]);
  for (let q = 1; q < n - 1; q++) out.add(Math.min(hi, Math.max(lo, roundT(lo + ((hi - lo) * q) / (n - 1)))));
  return [...out].sort((a, b) => a - b);
}
