/** Turning `curate start` flags into a validated CurationConfig. */
import path from 'node:path';
import { ConfigError } from '../curation/errors';
import { DEFAULTS, T1_FACTOR, defaultDedupBuckets, newRunId, shardRefs, validateConfig, type CurationConfig } from '../curation/run';
import { localPath } from '../storage/sources';
import type { Command, ParsedArgs } from './args';
import { DATA_DIR } from './devserver';
import { resolveShards } from './shards';

export const RUN_FLAGS: Command['flags'] = {
  shards: { type: 'list', help: 'shards: paths/URIs (file://, https://, s3://), list files (.txt/.paths[.gz]), directories or globs' },
  out: { type: 'string', help: 'output root: a directory or s3://bucket/prefix', default: path.join(DATA_DIR, 'out') },
  metadata: { type: 'string', help: 'metadata JSON (array of strings); default: the WordNet stand-in built by build-metadata' },
  t: { type: 'number', help: 'balancing threshold t', default: DEFAULTS.t },
  t1: { type: 'number', help: `pass-1 threshold, applied before images (default: ${T1_FACTOR} × t)` },
  seed: { type: 'string', help: 'sampling seed (selection = hash(seed, uuid, text) < p)', default: DEFAULTS.seed },
  'one-text-per-image': { type: 'boolean', help: 'MetaCLIP v2: one seeded text per image is a candidate (default: every text)' },
  'dedup-buckets': { type: 'number', help: 'hash partitions for cross-pool dedup and balancing (default: shards / 32, 1..1024)' },
  lid: { type: 'string', help: 'language filter: on keeps --langs for counting and balancing, off keeps all', default: DEFAULTS.lid },
  langs: { type: 'list', help: 'languages kept when --lid on', default: DEFAULTS.langs.join(',') },
  'run-id': { type: 'string', help: 'run id (default: timestamp + random suffix)' },
  'shards-per-batch': { type: 'number', help: 'shards per batch child workflow', default: DEFAULTS.shardsPerBatch },
  'max-concurrent-batches': { type: 'number', help: 'batch workflows running at once', default: DEFAULTS.maxConcurrentBatches },
  'max-failed-ratio': { type: 'number', help: 'fail the run when more than this share of shards failed', default: DEFAULTS.maxFailedShardRatio },
  'cc-prefix': { type: 'string', help: 'prefix for relative keys in Common Crawl path lists', default: 's3://commoncrawl/' },
};

export function configFromFlags(flags: ParsedArgs['flags'], defaultMetadata: () => string): CurationConfig {
  const shardArgs = (flags.shards as string[] | undefined) ?? [];
  if (shardArgs.length === 0) throw new ConfigError('--shards is required: paths, a list file, a directory or a glob');
  const out = String(flags.out);
  const outLocal = localPath(out);
  const metadata = typeof flags.metadata === 'string' ? flags.metadata : defaultMetadata();
  const metaLocal = localPath(metadata);
  const shards = shardRefs(resolveShards(shardArgs, String(flags['cc-prefix'])));
  const t = flags.t as number;
  return validateConfig({
    runId: typeof flags['run-id'] === 'string' ? flags['run-id'] : newRunId(),
    outRoot: outLocal !== null ? path.resolve(outLocal) : out,
    shards,
    metadataSource: metaLocal !== null ? path.resolve(metaLocal) : metadata,
    lid: String(flags.lid) as 'on' | 'off',
    langs: flags.langs as string[],
    t,
    t1: typeof flags.t1 === 'number' ? flags.t1 : T1_FACTOR * t,
    seed: String(flags.seed),
    oneTextPerImage: flags['one-text-per-image'] === true,
    dedupBuckets: typeof flags['dedup-buckets'] === 'number' ? flags['dedup-buckets'] : defaultDedupBuckets(shards.length),
    shardsPerBatch: flags['shards-per-batch'] as number,
    maxConcurrentBatches: flags['max-concurrent-batches'] as number,
    maxFailedShardRatio: flags['max-failed-ratio'] as number,
  });
}
