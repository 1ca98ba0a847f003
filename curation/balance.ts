/**
 * Balancing maths (spec §3–4), pure. Sampling is a fixed function of (seed, uuid, text): retries give
 * identical output, any worker count gives identical output, and selections are nested in t.
 */
import { createHash } from 'node:crypto';

/** Sparse entry counts: entry id → number of (text, entry) matches. */
export type EntryCounts = Map<number, number>;

/** p[e] = 1 if count[e] < t else t / count[e]; entries absent from counts have p = 1. */
export function entryProbability(count: number, t: number): number {
  return count < t ? 1 : t / count;
}

/** Selection probability of a text: 1 − Π_{e ∈ matches} (1 − p[e]). */
export function textProbability(entryIds: readonly number[], counts: EntryCounts, t: number): number {
  let keepNone = 1;
  for (const e of entryIds) {
    const p = entryProbability(counts.get(e) ?? 0, t);
    if (p >= 1) return 1;
    keepNone *= 1 - p;
  }
  return 1 - keepNone;
}

/** The candidate's uniform draw in [0, 1): 53 bits of SHA-256(seed, uuid, text). */
export function uniformDraw(seed: string, uuid: string, text: string): number {
  const h = createHash('sha256').update(`${seed}\u0000${uuid}\u0000${text}`, 'utf8').digest();
  // 53 bits: 21 from the first word, 32 from the second.
  return ((h.readUInt32BE(0) >>> 11) * 0x100000000 + h.readUInt32BE(4)) / 2 ** 53;
}

export function isSelected(seed: string, uuid: string, text: string, probability: number): boolean {
  return uniformDraw(seed, uuid, text) < probability;
}

export function addCounts(into: EntryCounts, entryIds: readonly number[]): void {
  for (const e of entryIds) into.set(e, (into.get(e) ?? 0) + 1);
}

export function mergeCounts(into: EntryCounts, from: EntryCounts): void {
  for (const [e, c] of from) into.set(e, (into.get(e) ?? 0) + c);
}

/** Sparse counts as JSON keyed by entry id (ascending ids). */
export function countsToIdJson(counts: EntryCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of [...counts.keys()].sort((a, b) => a - b)) out[String(e)] = counts.get(e)!;
  return out;
}

export function countsFromIdJson(json: Record<string, number>): EntryCounts {
  const m: EntryCounts = new Map();
  for (const [k, v] of Object.entries(json)) m.set(Number(k), v);
  return m;
}

/** MetaCLIP's published form (`entry_counts_400m.json`): entry string → count, in metadata order. */
export function countsToEntryJson(counts: EntryCounts, metadata: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of [...counts.keys()].sort((a, b) => a - b)) out[metadata[e]] = (out[metadata[e]] ?? 0) + counts.get(e)!;
  return out;
}
