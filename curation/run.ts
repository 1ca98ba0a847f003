/**
 * A curation run: its configuration (validated), shard identities and the object-store layout.
 * Everything a run writes lives under <root>/runs/<runId>/ (see README "Run layout").
 */
import { createHash } from 'node:crypto';
import { MAX_BUCKETS } from './dedup';
import { ConfigError } from './errors';

export interface ShardRef {
  /** Position in the run's shard plan (defines the deterministic pool order). */
  index: number;
  uri: string;
  /** Stable id used in keys: zero-padded index + file name. */
  id: string;
}

/** Where a run's shard list lives in its store (storage/shard-list.ts): workflows carry this, never the list. */
export interface ShardListRef {
  runId: string;
  count: number;
  /** sha256 of the list's URIs, one per line. */
  sha256: string;
}

/** A run's configuration as workflows see it and run.json records it: small whatever the pool. */
export interface CurationConfig {
  runId: string;
  /** Output root: a local directory or s3://bucket/prefix. */
  outRoot: string;
  shardList: ShardListRef;
  /** Where the metadata came from (path or URI); the run keeps a copy at runs/<id>/metadata.json. */
  metadataSource: string;
  lid: 'on' | 'off';
  langs: string[];
  /** Final balancing threshold (pass 2). */
  t: number;
  /** Pass-1 threshold, applied before images (spec §3: a much larger t, headroom for download losses). */
  t1: number;
  seed: string;
  /** MetaCLIP v2: one (seeded) text per image is a candidate; default every text is its own candidate pair. */
  oneTextPerImage: boolean;
  /**
   * Hash partitions of the pool for cross-pool dedup and balancing (one activity per bucket). Absent: chosen
   * after matching from the pairs found, ⌈pairs / pairsPerBucket⌉.
   */
  dedupBuckets?: number;
  /** Target pairs per bucket when the bucket count is chosen from the pool. */
  pairsPerBucket?: number;
  shardsPerBatch: number;
  maxConcurrentBatches: number;
  /** Fail the run when more than this share of shards failed (0..1). */
  maxFailedShardRatio: number;
  /** The image stage between the two passes (download, tars); absent or null: pass 2 runs on the pass-1 output. */
  images?: ImagesConfig | null;
  /** Heartbeat timeout of shard activities in seconds: how fast a lost worker's shard is retried elsewhere. */
  heartbeatTimeoutSeconds?: number;
}

/** Default pass-1 threshold as a multiple of t: head entries keep 5t matches, so pass 2 can still cap
 * them at t after losing up to 80% of their pairs to failed downloads and image dedup. */
export const T1_FACTOR = 5;

/** What `curate start` is given: the configuration plus the shard list, which it writes into the store. */
export type CurationRequest = Omit<CurationConfig, 'shardList'> & { shards: ShardRef[] };

/** Longest shard URI accepted (S3 keys are at most 1,024 bytes; URIs travel in activity payloads). */
export const MAX_SHARD_URI = 2_048;

export { DEFAULT_PAIRS_PER_BUCKET, MAX_BUCKETS, bucketsForPairs } from './dedup';

export interface ImagesConfig {
  /** Images per WebDataset tar (the unit of resumption). */
  imagesPerTar: number;
  /** Download activities in flight per chunk of 64 buckets. */
  bucketConcurrency: number;
  /** Downloads in flight per activity (the fetcher also limits per host). */
  concurrency: number;
  /** Fetch policy overrides (curation/fetch.ts FetchPolicy): timeouts, allowCidrs, user agent token, … */
  fetch: Record<string, unknown>;
  /** Image options (curation/image.ts ImageOptions): resizeMode, imageSize, encodeFormat, … */
  image: Record<string, unknown>;
  /** Near-duplicate images: pHashes within this many bits (of 64); -1 dedups exact copies only. */
  phashDistance: number;
}

export const DEFAULT_IMAGES: ImagesConfig = { imagesPerTar: 1000, bucketConcurrency: 2, concurrency: 32, fetch: {}, image: {}, phashDistance: 4 };

export const DEFAULTS = {
  t: 20_000,
  seed: '0',
  lid: 'on' as const,
  langs: ['en'],
  shardsPerBatch: 32,
  maxConcurrentBatches: 4,
  maxFailedShardRatio: 0.5,
  /** Shard and bucket activities heartbeat every 2 s: a lost worker's activity is retried after this. */
  heartbeatTimeoutSeconds: 15,
};

export function shardId(index: number, uri: string): string {
  const base = uri.split(/[\\/]/).pop() || 'shard';
  const clean = base.replace(/\.(gz|warc|wat|wet)$/gi, '').replace(/\.(warc|wat)$/gi, '').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  return `${String(index).padStart(6, '0')}-${clean}`;
}

export function shardRefs(uris: readonly string[]): ShardRef[] {
  return uris.map((uri, index) => ({ index, uri, id: shardId(index, uri) }));
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Seeds name output directories (curated/t=…/seed=…), so they are restricted to safe characters. */
export const SEED_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function validateConfig(c: CurationRequest): CurationRequest {
  const problems: string[] = [];
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(c.runId)) problems.push(`run id ${JSON.stringify(c.runId)} must be 1-100 characters of letters, digits, . _ -`);
  if (!c.outRoot) problems.push('an output root (--out) is required');
  if (c.shards.length === 0) problems.push('no shards: give paths, a list file or a glob with --shards');
  const long = c.shards.find((s) => s.uri.length > MAX_SHARD_URI);
  if (long) problems.push(`shard ${long.index} has a URI of ${long.uri.length} characters (at most ${MAX_SHARD_URI}): ${JSON.stringify(long.uri.slice(0, 80))}…`);
  if (!(Number.isFinite(c.t) && c.t > 0)) problems.push(`--t must be a positive number, got ${c.t}`);
  if (!(Number.isFinite(c.t1) && c.t1 >= c.t)) problems.push(`--t1 (pass-1 threshold) must be a number ≥ t (${c.t}), got ${c.t1}`);
  if (!SEED_PATTERN.test(c.seed)) problems.push(`--seed must be 1-64 characters of letters, digits, . _ -, got ${JSON.stringify(c.seed)}`);
  if (c.dedupBuckets !== undefined && !(Number.isInteger(c.dedupBuckets) && c.dedupBuckets >= 1 && c.dedupBuckets <= MAX_BUCKETS)) {
    problems.push(`--dedup-buckets must be 1..${MAX_BUCKETS}, got ${c.dedupBuckets}`);
  }
  if (c.pairsPerBucket !== undefined && !(Number.isInteger(c.pairsPerBucket) && c.pairsPerBucket >= 1)) problems.push(`--pairs-per-bucket must be a positive integer, got ${c.pairsPerBucket}`);
  const hb = c.heartbeatTimeoutSeconds;
  if (hb !== undefined && !(Number.isFinite(hb) && hb >= 5 && hb <= 3600)) problems.push(`--heartbeat-timeout must be 5..3600 seconds, got ${hb}`);
  if (c.lid !== 'on' && c.lid !== 'off') problems.push(`--lid must be on or off, got ${c.lid}`);
  if (c.lid === 'on' && c.langs.length === 0) problems.push('--langs must name at least one language when --lid on');
  if (!(Number.isInteger(c.shardsPerBatch) && c.shardsPerBatch >= 1 && c.shardsPerBatch <= 200)) problems.push(`--shards-per-batch must be 1..200, got ${c.shardsPerBatch}`);
  if (!(Number.isInteger(c.maxConcurrentBatches) && c.maxConcurrentBatches >= 1 && c.maxConcurrentBatches <= 100)) problems.push(`--max-concurrent-batches must be 1..100, got ${c.maxConcurrentBatches}`);
  if (!(c.maxFailedShardRatio >= 0 && c.maxFailedShardRatio <= 1)) problems.push(`--max-failed-ratio must be within 0..1, got ${c.maxFailedShardRatio}`);
  if (problems.length) throw new ConfigError(`invalid run configuration:\n  - ${problems.join('\n  - ')}`);
  return c;
}

/** Hash of everything that changes a shard's candidates: markers from another config are not reused. */
export function shardConfigHash(metadataHash: string, c: Pick<CurationConfig, 'lid'>): string {
  return createHash('sha256').update(JSON.stringify({ metadataHash, lid: c.lid, v: 1 })).digest('hex').slice(0, 16);
}

export { layout } from './layout';
