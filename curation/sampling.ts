/**
 * Counting and sampling over columnar candidates (the hot path of balancing, planning and rebalancing).
 * A pool is held as flat typed arrays: candidate i matches entryIds[offsets[i] .. offsets[i+1]) and has the
 * 64-bit pair key (keyHi[i], keyLo[i]) = SHA-256(uuid \0 text)[0..8). No strings in the loops.
 */
import { drawFromKeys, pairKey, type Key64 } from './balance';
import type { DenseCounts } from './counts';

export interface MatchColumns {
  /** Number of candidates. */
  n: number;
  /** n + 1 offsets into entryIds. */
  offsets: Uint32Array;
  entryIds: Int32Array;
  keyHi: Uint32Array;
  keyLo: Uint32Array;
}

/** Builds columns from row objects (uuid, text, entry_ids). */
export function columnsFromRows(rows: ReadonlyArray<{ uuid: string; text: string; entry_ids: readonly number[] }>): MatchColumns {
  const n = rows.length;
  let total = 0;
  for (const r of rows) total += r.entry_ids.length;
  const offsets = new Uint32Array(n + 1);
  const entryIds = new Int32Array(total);
  const keyHi = new Uint32Array(n);
  const keyLo = new Uint32Array(n);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    offsets[i] = o;
    for (const e of r.entry_ids) entryIds[o++] = e;
    const k = pairKey(r.uuid, r.text);
    keyHi[i] = k.hi;
    keyLo[i] = k.lo;
  }
  offsets[n] = o;
  return { n, offsets, entryIds, keyHi, keyLo };
}

/** Largest entry id + 1 (the size of a dense count vector when no metadata size is known). */
export function entryRange(cols: MatchColumns): number {
  let max = -1;
  const ids = cols.entryIds;
  for (let j = 0; j < ids.length; j++) if (ids[j] > max) max = ids[j];
  return max + 1;
}

/**
 * Adds each candidate's matches to `into` (dense, indexed by entry id). `eligible` (optional) restricts the
 * count to some candidates, e.g. the one text per image.
 */
export function countMatches(cols: MatchColumns, into: DenseCounts, eligible?: Uint8Array): DenseCounts {
  const { offsets, entryIds } = cols;
  if (!eligible) {
    for (let j = 0; j < entryIds.length; j++) into[entryIds[j]]++;
    return into;
  }
  for (let i = 0; i < cols.n; i++) {
    if (!eligible[i]) continue;
    for (let j = offsets[i]; j < offsets[i + 1]; j++) into[entryIds[j]]++;
  }
  return into;
}

/** p[e] for every entry: 1 below t, t / count at or above (spec §3). */
export function entryProbabilities(counts: DenseCounts, t: number): Float64Array {
  const p = new Float64Array(counts.length);
  for (let e = 0; e < counts.length; e++) p[e] = counts[e] < t ? 1 : t / counts[e];
  return p;
}

export interface SampleResult {
  /** Indexes of the selected candidates, ascending. */
  selected: Uint32Array;
  /** Selection probability of each selected candidate. */
  probability: Float64Array;
  /** Σ of the selection probabilities over the eligible candidates (the expected selected count). */
  expected: number;
  /** Candidates considered (eligible). */
  considered: number;
}

/**
 * Algorithm 1 with a fixed draw per candidate: candidate i is selected iff u_i < 1 − Π_e (1 − p[e]), the
 * product taken in the stored (ascending id) order; u_i comes from (seed key, pair key).
 */
export function sampleColumns(cols: MatchColumns, p: Float64Array, seed: Key64, eligible?: Uint8Array): SampleResult {
  const { n, offsets, entryIds, keyHi, keyLo } = cols;
  const selected = new Uint32Array(n);
  const probability = new Float64Array(n);
  let count = 0;
  let expected = 0;
  let considered = 0;
  const sHi = seed.hi;
  const sLo = seed.lo;
  for (let i = 0; i < n; i++) {
    if (eligible && !eligible[i]) continue;
    considered++;
    let keepNone = 1;
    const end = offsets[i + 1];
    for (let j = offsets[i]; j < end; j++) {
      const pe = p[entryIds[j]];
      if (pe >= 1) {
        keepNone = 0;
        break;
      }
      keepNone *= 1 - pe;
    }
    const prob = 1 - keepNone;
    expected += prob;
    if (drawFromKeys(sHi, sLo, keyHi[i], keyLo[i]) < prob) {
      selected[count] = i;
      probability[count] = prob;
      count++;
    }
  }
  return { selected: selected.slice(0, count), probability: probability.slice(0, count), expected, considered };
}

/**
 * "One text per image" (MetaCLIP v2): among the candidates of one image (same uuid), the eligible one is
 * the one with the smallest `pick` draw (ties: first). Deterministic for a seed, independent of row order.
 * Returns a 0/1 mask over the candidates.
 */
export function oneTextPerImage(uuids: readonly string[], cols: MatchColumns, pickSeed: Key64): Uint8Array {
  const best = new Map<string, number>();
  const draws = new Float64Array(cols.n);
  for (let i = 0; i < cols.n; i++) {
    draws[i] = drawFromKeys(pickSeed.hi, pickSeed.lo, cols.keyHi[i], cols.keyLo[i]);
    const b = best.get(uuids[i]);
    if (b === undefined || draws[i] < draws[b]) best.set(uuids[i], i);
  }
  const mask = new Uint8Array(cols.n);
  for (const i of best.values()) mask[i] = 1;
  return mask;
}
