/**
 * Entry counts over a pool, dense (indexed by entry id). Values are exact integers in doubles (exact up
 * to 2^53 matches, far beyond any crawl); the binary form stores them as little-endian uint64, one per
 * entry id, so `numpy.fromfile(path, dtype='<u8')` reads it back.
 */
import { ConfigError } from './errors';
import type { EntryCounts } from './balance';

export type DenseCounts = Float64Array;

export function denseFromSparse(sparse: EntryCounts, size: number): DenseCounts {
  const out = new Float64Array(size);
  for (const [e, c] of sparse) {
    if (e < 0 || e >= size) throw new ConfigError(`entry id ${e} is outside the metadata (${size} entries)`);
    out[e] += c;
  }
  return out;
}

export function sparseFromDense(counts: DenseCounts): EntryCounts {
  const out: EntryCounts = new Map();
  for (let e = 0; e < counts.length; e++) if (counts[e] !== 0) out.set(e, counts[e]);
  return out;
}

export function addDense(into: DenseCounts, from: DenseCounts): void {
  if (into.length !== from.length) throw new Error(`count vectors differ in size: ${into.length} vs ${from.length}`);
  for (let e = 0; e < into.length; e++) into[e] += from[e];
}

export function totalMatches(counts: DenseCounts): number {
  let s = 0;
  for (let e = 0; e < counts.length; e++) s += counts[e];
  return s;
}

export function countsToBinary(counts: DenseCounts): Buffer {
  const buf = Buffer.alloc(counts.length * 8);
  for (let e = 0; e < counts.length; e++) buf.writeBigUInt64LE(BigInt(counts[e]), e * 8);
  return buf;
}

export function countsFromBinary(buf: Buffer): DenseCounts {
  if (buf.length % 8 !== 0) throw new ConfigError(`binary counts must be a multiple of 8 bytes, got ${buf.length}`);
  const out = new Float64Array(buf.length / 8);
  for (let e = 0; e < out.length; e++) out[e] = Number(buf.readBigUInt64LE(e * 8));
  return out;
}

/** `{"<entry id>": count}` for non-zero entries, ascending ids (the `curate counts` contract). */
export function countsToIdJson(counts: DenseCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (let e = 0; e < counts.length; e++) if (counts[e] !== 0) out[String(e)] = counts[e];
  return out;
}

export function countsFromIdJson(json: Record<string, number>, size?: number): DenseCounts {
  let max = -1;
  for (const k of Object.keys(json)) {
    const e = Number(k);
    // Canonical decimal only: Number('') is 0 and Number('01') is 1, which would silently land on (or overwrite) another entry.
    if (!Number.isInteger(e) || e < 0 || String(e) !== k) throw new ConfigError(`counts: key ${JSON.stringify(k)} is not an entry id`);
    if (e > max) max = e;
  }
  const n = size ?? max + 1;
  if (max >= n) throw new ConfigError(`counts: entry id ${max} is outside the metadata (${n} entries)`);
  const out = new Float64Array(n);
  for (const [k, v] of Object.entries(json)) {
    if (!(Number.isSafeInteger(v) && v >= 0)) throw new ConfigError(`counts: entry ${k} has count ${JSON.stringify(v)}, expected a non-negative integer`);
    out[Number(k)] = v;
  }
  return out;
}

/**
 * MetaCLIP's published form (`entry_counts_400m.json`): entry string → count, every entry with a non-zero
 * count. A repeated metadata string matches exactly the same texts as its first copy, so both ids have the
 * same count and the single key loses nothing. (As an object, integer-like keys such as "0".."99" iterate
 * first; `countsToEntryJsonText` keeps metadata order in the file.)
 */
export function countsToEntryJson(counts: DenseCounts, metadata: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (let e = 0; e < counts.length; e++) {
    if (counts[e] === 0) continue;
    const m = metadata[e];
    // `out['__proto__'] = n` would set the prototype (a no-op for a number) and lose the entry.
    if (m === '__proto__') Object.defineProperty(out, m, { value: counts[e], enumerable: true, writable: true, configurable: true });
    else out[m] = counts[e];
  }
  return out;
}

/** The same mapping serialised in metadata order (what is written to counts/<stage>.json). */
export function countsToEntryJsonText(counts: DenseCounts, metadata: readonly string[]): string {
  const parts: string[] = [];
  const seen = new Set<string>();
  for (let e = 0; e < counts.length; e++) {
    if (counts[e] === 0 || seen.has(metadata[e])) continue;
    seen.add(metadata[e]);
    parts.push(`${JSON.stringify(metadata[e])}:${counts[e]}`);
  }
  return `{${parts.join(',')}}`;
}

/** Reads MetaCLIP's form back against a metadata list; entries missing from it count 0. */
export function countsFromEntryJson(json: Record<string, number>, metadata: readonly string[]): DenseCounts {
  const index = new Map<string, number>();
  metadata.forEach((m, i) => index.set(m, i));
  const out = new Float64Array(metadata.length);
  const unknown: string[] = [];
  for (const [entry, c] of Object.entries(json)) {
    const e = index.get(entry);
    if (e === undefined) {
      unknown.push(entry);
      continue;
    }
    if (!(Number.isSafeInteger(c) && c >= 0)) throw new ConfigError(`counts: entry ${JSON.stringify(entry)} has count ${JSON.stringify(c)}, expected a non-negative integer`);
    out[e] = c;
  }
  if (unknown.length) throw new ConfigError(`counts name ${unknown.length} entries not in the metadata, e.g. ${JSON.stringify(unknown.slice(0, 3))}`);
  return out;
}

/** MetaCLIP 2's t_to_p: the share of matches held by tail entries (count < t). */
export function tToP(counts: DenseCounts, t: number): number {
  let tail = 0;
  let all = 0;
  for (let e = 0; e < counts.length; e++) {
    all += counts[e];
    if (counts[e] < t) tail += counts[e];
  }
  return all === 0 ? 0 : tail / all;
}

/**
 * MetaCLIP 2's p_to_t: sort the counts ascending, take the cumulative share, and return the count at the
 * first position where the share is closest to p (numpy's argmin of |cumsum/sum − p|).
 */
export function pToT(counts: DenseCounts, p: number): number {
  const sorted = Float64Array.from(counts).sort();
  const all = totalMatches(sorted);
  if (all === 0) return 0;
  let cum = 0;
  let best = 0;
  let bestDiff = Infinity;
  for (let i = 0; i < sorted.length; i++) {
    cum += sorted[i];
    const diff = Math.abs(cum / all - p);
    if (diff < bestDiff) {
      bestDiff = diff;
      best = i;
    }
  }
  return sorted[best];
}

export interface HeadTailStats {
  t: number;
  /** Entries with at least one match. */
  entriesMatched: number;
  headEntries: number;
  tailEntries: number;
  headMatches: number;
  tailMatches: number;
  /** t_to_p: the tail's share of matches. */
  tailShare: number;
  totalMatches: number;
}

export function headTailStats(counts: DenseCounts, t: number): HeadTailStats {
  const s: HeadTailStats = { t, entriesMatched: 0, headEntries: 0, tailEntries: 0, headMatches: 0, tailMatches: 0, tailShare: 0, totalMatches: 0 };
  for (let e = 0; e < counts.length; e++) {
    const c = counts[e];
    if (c === 0) continue;
    s.entriesMatched++;
    if (c >= t) {
      s.headEntries++;
      s.headMatches += c;
    } else {
      s.tailEntries++;
      s.tailMatches += c;
    }
  }
  s.totalMatches = s.headMatches + s.tailMatches;
  s.tailShare = s.totalMatches === 0 ? 0 : s.tailMatches / s.totalMatches;
  return s;
}

/** The k entries with the largest counts (ties by id), as [id, count]. */
export function topEntries(counts: DenseCounts, k: number): Array<[number, number]> {
  const ids: number[] = [];
  for (let e = 0; e < counts.length; e++) if (counts[e] > 0) ids.push(e);
  ids.sort((a, b) => counts[b] - counts[a] || a - b);
  return ids.slice(0, k).map((e) => [e, counts[e]]);
}
