/**
 * Cross-pool URL/text dedup (spec §1e): a (uuid, text) pair is kept at its first occurrence in pool order
 * (shard order, then position); later occurrences are dropped. The pool is hash-partitioned by uuid, so all
 * pairs of one image land in one bucket and each bucket is deduped on its own (no process holds the pool).
 */

/** Most buckets a run may have: with ≤ 64 child workflows per phase, each child stays far below 4,000 events. */
export const MAX_BUCKETS = 16_384;
/** A bucket is held in memory by its dedup and balance activities: 500k pairs is ≈ 150–250 MB. */
export const DEFAULT_PAIRS_PER_BUCKET = 500_000;

/** Buckets for a pool of `pairs` kept-language pairs: ⌈pairs / pairsPerBucket⌉, 1..MAX_BUCKETS. */
export function bucketsForPairs(pairs: number, pairsPerBucket = DEFAULT_PAIRS_PER_BUCKET): number {
  return Math.min(MAX_BUCKETS, Math.max(1, Math.ceil(pairs / pairsPerBucket)));
}

/** The bucket of an image: its uuid (hex of a SHA-224 prefix, uniformly distributed) modulo the bucket count. */
export function bucketOf(uuid: string, buckets: number): number {
  const v = parseInt(uuid.slice(0, 8), 16);
  if (!Number.isFinite(v)) throw new Error(`uuid ${JSON.stringify(uuid)} is not hex`);
  return v % buckets;
}

export interface DedupStats {
  /** Pairs read (in the kept languages). */
  inputPairs: number;
  /** Pairs kept (first occurrences). */
  uniquePairs: number;
  /** Pairs dropped because the same (uuid, text) came earlier in pool order. */
  duplicatePairs: number;
  /** Distinct images (uuids) kept. */
  uniqueImages: number;
}

/** Streaming first-occurrence filter; feed pairs in pool order. */
export class PairDedup {
  private readonly seen = new Map<string, Set<string> | string>();
  readonly stats: DedupStats = { inputPairs: 0, uniquePairs: 0, duplicatePairs: 0, uniqueImages: 0 };

  /** True when (uuid, text) is new: keep it. */
  offer(uuid: string, text: string): boolean {
    this.stats.inputPairs++;
    const texts = this.seen.get(uuid);
    if (texts === undefined) {
      // Most images have one text: store it bare, promote to a Set on the second.
      this.seen.set(uuid, text);
      this.stats.uniqueImages++;
    } else if (typeof texts === 'string') {
      if (texts === text) return this.duplicate();
      this.seen.set(uuid, new Set([texts, text]));
    } else {
      if (texts.has(text)) return this.duplicate();
      texts.add(text);
    }
    this.stats.uniquePairs++;
    return true;
  }

  private duplicate(): false {
    this.stats.duplicatePairs++;
    return false;
  }
}

export function addDedupStats(into: DedupStats, from: DedupStats): DedupStats {
  into.inputPairs += from.inputPairs;
  into.uniquePairs += from.uniquePairs;
  into.duplicatePairs += from.duplicatePairs;
  into.uniqueImages += from.uniqueImages;
  return into;
}
