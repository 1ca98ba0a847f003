/** Turning `curate start` flags into a validated CurationConfig. */
import path from 'node:path';
import { ConfigError } from '../curation/errors';
import { cidrProblems, resolvePolicy } from '../curation/fetch';
import { validateImageOptions } from '../curation/image';
import {
  DEFAULT_IMAGES, DEFAULT_PAIRS_PER_BUCKET, DEFAULTS, MAX_BUCKETS, T1_FACTOR, type ImagesConfig, newRunId, shardRefs, validateConfig, type CurationRequest,
} from '../curation/run';
import { localPath } from '../storage/sources';
import type { Command, ParsedArgs } from './args';
import { DATA_DIR } from './devserver';
import { defaultCcPrefix, resolveShards } from './shards';

export const RUN_FLAGS: Command['flags'] = {
  shards: { type: 'list', help: 'shards: paths/URIs (file://, https://, s3://), list files (.txt/.paths[.gz]), directories or globs' },
  out: { type: 'string', help: 'output root: a directory or s3://bucket/prefix', default: path.join(DATA_DIR, 'out') },
  metadata: { type: 'string', help: 'metadata JSON (array of strings); default: the WordNet stand-in built by build-metadata' },
  t: { type: 'number', help: 'balancing threshold t', default: DEFAULTS.t },
  t1: { type: 'number', help: `pass-1 threshold, applied before images (default: ${T1_FACTOR} × t)` },
  seed: { type: 'string', help: 'sampling seed (selection = hash(seed, uuid, text) < p)', default: DEFAULTS.seed },
  'one-text-per-image': { type: 'boolean', help: 'MetaCLIP v2: one seeded text per image is a candidate (default: every text)' },
  'dedup-buckets': { type: 'number', help: `hash partitions for cross-pool dedup and balancing, 1..${MAX_BUCKETS} (default: chosen after matching, ⌈pairs / --pairs-per-bucket⌉)` },
  'pairs-per-bucket': { type: 'number', help: 'target pairs per dedup bucket when the bucket count is chosen from the pool', default: DEFAULT_PAIRS_PER_BUCKET },
  'heartbeat-timeout': { type: 'number', help: 'seconds without a heartbeat before a shard, bucket or download activity is retried elsewhere (they beat every 2 s)', default: DEFAULTS.heartbeatTimeoutSeconds },
  lid: { type: 'string', help: 'language filter: on keeps --langs for counting and balancing, off keeps all', default: DEFAULTS.lid },
  langs: { type: 'list', help: 'languages kept when --lid on', default: DEFAULTS.langs.join(',') },
  'run-id': { type: 'string', help: 'run id (default: timestamp + random suffix)' },
  'shards-per-batch': { type: 'number', help: 'shards per batch child workflow', default: DEFAULTS.shardsPerBatch },
  'max-concurrent-batches': { type: 'number', help: 'batch workflows running at once', default: DEFAULTS.maxConcurrentBatches },
  'max-failed-ratio': { type: 'number', help: 'fail the run when more than this share of shards failed', default: DEFAULTS.maxFailedShardRatio },
  images: { type: 'string', help: 'image stage between the passes: on (download into WebDataset tars) or off', default: 'on' },
  'images-per-tar': { type: 'number', help: 'images per WebDataset tar (the unit of resumption)', default: DEFAULT_IMAGES.imagesPerTar },
  'download-concurrency': { type: 'number', help: 'downloads in flight per download activity (plus a per-host limit)', default: DEFAULT_IMAGES.concurrency },
  'image-size': { type: 'number', help: 'target image side (img2dataset image_size)', default: 256 },
  'resize-mode': { type: 'string', help: 'no | border | keep_ratio | keep_ratio_largest | center_crop', default: 'border' },
  'encode-format': { type: 'string', help: 'jpg | webp | png', default: 'jpg' },
  'encode-quality': { type: 'number', help: 'jpg/webp quality (png: compression level 0-9)' },
  'user-agent-token': { type: 'string', help: 'token in the user agent (and the name X-Robots-Tag rules address)', default: 'metaclip-curate' },
  'phash-distance': { type: 'number', help: 'near-duplicate images: pHash distance in bits (of 64); -1 = exact copies only', default: DEFAULT_IMAGES.phashDistance },
  'allow-cidrs': { type: 'list', help: 'private address ranges downloads may reach (default none: loopback, private, link-local and metadata addresses are refused)' },
  'cc-prefix': {
    type: 'string',
    help: 'prefix for relative keys in Common Crawl path lists; default https://data.commoncrawl.org/ (Common Crawl\'s route from outside AWS), '
      + 'or s3://commoncrawl/ when AWS credentials are in the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, a web-identity role, ECS) '
      + 'and AWS_REGION is us-east-1 (on EC2 with an instance role, pass s3://commoncrawl/)',
  },
};

export function configFromFlags(flags: ParsedArgs['flags'], defaultMetadata: () => string): CurationRequest {
  const shardArgs = (flags.shards as string[] | undefined) ?? [];
  if (shardArgs.length === 0) throw new ConfigError('--shards is required: paths, a list file, a directory or a glob');
  const out = String(flags.out);
  const outLocal = localPath(out);
  const metadata = typeof flags.metadata === 'string' ? flags.metadata : defaultMetadata();
  const metaLocal = localPath(metadata);
  const shards = shardRefs(resolveShards(shardArgs, typeof flags['cc-prefix'] === 'string' ? flags['cc-prefix'] : defaultCcPrefix()));
  const images = imagesFromFlags(flags);
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
    dedupBuckets: typeof flags['dedup-buckets'] === 'number' ? flags['dedup-buckets'] : undefined,
    pairsPerBucket: flags['pairs-per-bucket'] as number,
    heartbeatTimeoutSeconds: flags['heartbeat-timeout'] as number,
    images,
    shardsPerBatch: flags['shards-per-batch'] as number,
    maxConcurrentBatches: flags['max-concurrent-batches'] as number,
    maxFailedShardRatio: flags['max-failed-ratio'] as number,
  });
}

/** The image stage's settings, validated here (client side) so a typo fails before the run starts. */
export function imagesFromFlags(flags: ParsedArgs['flags']): ImagesConfig | null {
  const mode = String(flags.images ?? 'on');
  if (mode !== 'on' && mode !== 'off') throw new ConfigError(`--images must be on or off, got ${mode}`);
  if (mode === 'off') return null;
  const fetch: Record<string, unknown> = { userAgentToken: String(flags['user-agent-token'] ?? 'metaclip-curate') };
  const allow = flags['allow-cidrs'] as string[] | undefined;
  if (allow?.length) {
    const problems = cidrProblems(allow);
    if (problems.length > 0) throw new ConfigError(`--allow-cidrs: ${problems.join('; ')} (expected a.b.c.d/n, x::y/n or an address)`);
    fetch.allowCidrs = allow;
  }
  const image: Record<string, unknown> = {
    imageSize: flags['image-size'] ?? 256, resizeMode: flags['resize-mode'] ?? 'border', encodeFormat: flags['encode-format'] ?? 'jpg',
  };
  if (flags['encode-quality'] !== undefined) image.encodeQuality = flags['encode-quality'];
  resolvePolicy(fetch as never);
  validateImageOptions(image as never);
  const perTar = Number(flags['images-per-tar'] ?? DEFAULT_IMAGES.imagesPerTar);
  const concurrency = Number(flags['download-concurrency'] ?? DEFAULT_IMAGES.concurrency);
  if (!(Number.isInteger(perTar) && perTar >= 1 && perTar <= 100_000)) throw new ConfigError(`--images-per-tar must be 1..100000, got ${perTar}`);
  if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 1024)) throw new ConfigError(`--download-concurrency must be 1..1024, got ${concurrency}`);
  const phashDistance = Number(flags['phash-distance'] ?? DEFAULT_IMAGES.phashDistance);
  if (!(Number.isInteger(phashDistance) && phashDistance >= -1 && phashDistance <= 16)) throw new ConfigError(`--phash-distance must be -1..16, got ${phashDistance}`);
  return { ...DEFAULT_IMAGES, imagesPerTar: perTar, concurrency, fetch, image, phashDistance };
}
