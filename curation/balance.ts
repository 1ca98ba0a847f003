/**
 * Balancing maths (spec §3–4), pure. Sampling is a fixed function of (seed, uuid, text): retries give
 * identical output, any worker count gives identical output, and selections are nested in t.
 *
 * The draw is split in two 64-bit keys so that sampling never hashes strings in its hot loop:
 *   pairKey = SHA-256(uuid \0 text)[0..8)          (once per candidate, independent of the seed)
 *   seedKey = SHA-256(stream \0 seed)[0..8)        (once per run; `stream` separates pass 1 from the final pass)
 *   u       = 53 bits of a keyed bijection of pairKey (a 3-round Feistel network of murmur3's fmix32)
 * For a fixed seed the bijection maps uniform keys to uniform draws; a different seed or stream gives an
 * unrelated draw. The same function is written in numpy in scripts/bench/balance_baseline.py.
 */
import { createHash } from 'node:crypto';

/** Sparse entry counts: entry id → number of (text, entry) matches. */
export type EntryCounts = Map<number, number>;

/** 64 bits as two unsigned 32-bit halves. */
export interface Key64 {
  hi: number;
  lo: number;
}

/**
 * Independent draw streams of one seed: `final` is the balance users ask for (and the `curate balance`
 * contract); `pass1` is the pre-download balance; `pick` chooses the one text per image.
 */
export type DrawStream = 'final' | 'pass1' | 'pick';

function key64(s: string): Key64 {
  const h = createHash('sha256').update(s, 'utf8').digest();
  return { hi: h.readUInt32BE(0), lo: h.readUInt32BE(4) };
}

export function seedKey(seed: string, stream: DrawStream = 'final'): Key64 {
  return key64(`${stream}\u0000${seed}`);
}

export function pairKey(uuid: string, text: string): Key64 {
  return key64(`${uuid}\u0000${text}`);
}

/** murmur3's 32-bit finaliser: a bijection with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** u in [0, 1) from (seed key, pair key): 21 high bits of the left half and all 32 of the right half. */
export function drawFromKeys(seedHi: number, seedLo: number, keyHi: number, keyLo: number): number {
  const r = fmix32((keyLo ^ seedLo) >>> 0);
  const l = fmix32((keyHi ^ seedHi ^ r) >>> 0);
  const r2 = fmix32((r ^ l) >>> 0);
  return ((l >>> 11) * 0x100000000 + r2) / 9007199254740992; // 2^53
}

/** The candidate's uniform draw in [0, 1) for a seed and stream. */
export function uniformDraw(seed: string, uuid: string, text: string, stream: DrawStream = 'final'): number {
  const s = seedKey(seed, stream);
  const k = pairKey(uuid, text);
  return drawFromKeys(s.hi, s.lo, k.hi, k.lo);
}

export function isSelected(seed: string, uuid: string, text: string, probability: number, stream: DrawStream = 'final'): boolean {
  return uniformDraw(seed, uuid, text, stream) < probability;
}

/** p[e] = 1 if count[e] < t else t / count[e]; entries absent from counts have p = 1. */
export function entryProbability(count: number, t: number): number {
  return count < t ? 1 : t / count;
}

/** Selection probability of a text: 1 − Π_{e ∈ matches} (1 − p[e]), multiplied in the given (ascending id) order. */
export function textProbability(entryIds: readonly number[], counts: EntryCounts, t: number): number {
  let keepNone = 1;
  for (const e of entryIds) {
    const p = entryProbability(counts.get(e) ?? 0, t);
    if (p >= 1) return 1;
    keepNone *= 1 - p;
  }
  return 1 - keepNone;
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
