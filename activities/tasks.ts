/**
 * CPU-heavy work, run in worker threads (piscina) so the activity worker's event loop stays free to
 * heartbeat. Each task reads its inputs from the object store and publishes its outputs atomically,
 * marker last, so a retried or repeated task returns the recorded result without redoing work.
 */
import type { MessagePort } from 'node:worker_threads';
import { addCounts, countsToIdJson as sparseCountsToIdJson, seedKey, type EntryCounts } from '../curation/balance';
import { countsFromIdJson, type DenseCounts } from '../curation/counts';
import { bucketOf, PairDedup } from '../curation/dedup';
import { expectedSizes, type PlanRow } from '../curation/planner';
import { columnsFromRows, entryProbabilities, oneTextPerImage as oneTextPerImage_, sampleColumns, type MatchColumns } from '../curation/sampling';
import { bucketPart } from '../curation/layout';
import { ConfigError, CorruptInputError, capReason } from '../curation/errors';
import { ShardExtractor } from '../curation/extract';
import { LanguageIdentifier } from '../curation/lid';
import { Matcher } from '../curation/matcher';
import { parseMetadata } from '../curation/metadata';
import { layout } from '../curation/run';
import { matchShard } from '../curation/shard';
import { openInput } from '../storage/sources';
import { openStore } from '../storage/store';
import {
  readCandidatesParquet, readPoolParquet, writeCandidatesParquet, writeCuratedParquet, writePoolParquet, type CuratedRow, type PoolRow,
} from '../storage/parquet';
import { readShardSlice, writeShardFailure } from '../storage/shard-list';
import { encodeShuffle, readShuffleSegment } from '../storage/shuffle';
import { mapLimit } from '../curation/limit';
import type { ShardSample } from './metrics';
import type {
  BalanceBucketInput, BalanceBucketResult, DedupBucketInput, DedupBucketResult, PartitionBatchInput, PartitionBatchResult, PlanBucketInput,
  ProcessShardInput, ShardOutcome, ShardResult,
} from './types';

export type Task =
  | { kind: 'shard'; input: ProcessShardInput; progress?: MessagePort }
  | { kind: 'partition'; input: PartitionBatchInput }
  | { kind: 'dedup'; input: DedupBucketInput }
  | { kind: 'balance'; input: BalanceBucketInput }
  | { kind: 'plan'; input: PlanBucketInput };

/** Thread-local caches: building a 500k-entry matcher takes seconds, so keep it per metadata copy. */
let matcherCache: { key: string; matcher: Matcher } | null = null;
let lidModel: Promise<LanguageIdentifier> | null = null;
let countsCache: { key: string; counts: DenseCounts } | null = null;

async function matcherFor(outRoot: string, runId: string): Promise<Matcher> {
  const key = `${outRoot}|${runId}`;
  if (matcherCache?.key !== key) {
    const store = openStore(outRoot);
    const entries = parseMetadata((await store.get(layout.metadata(runId))).toString('utf8'), layout.metadata(runId));
    matcherCache = { key, matcher: new Matcher(entries) };
  }
  return matcherCache.matcher;
}

/** A shard task's outcome: what the activity returns, plus the numbers it records as metrics (activities/metrics.ts). */
export type ShardTaskOutcome = ShardOutcome & { sample?: ShardSample };

/** Passes the chunks through, telling `count` their sizes (the compressed bytes read from a shard). */
async function* countingBytes(source: AsyncIterable<Buffer>, count: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    count(chunk.length);
    yield chunk;
  }
}

/**
 * Fetch → extract → match one shard of the run's list. The full result goes into the shard's marker
 * (_SUCCESS.json, or _FAILED.json for bad input); the batch gets only the status and a capped reason.
 */
async function processShard(input: ProcessShardInput, progress?: MessagePort): Promise<ShardTaskOutcome> {
  const store = openStore(input.outRoot);
  const [shard] = await readShardSlice(store, input.list, input.index, 1);
  progress?.postMessage({ shard: shard.id, uri: shard.uri, records: 0 });
  const marker = layout.shardMarker(input.runId, shard.id);
  if (await store.exists(marker)) {
    const recorded = JSON.parse((await store.get(marker)).toString('utf8'));
    if (recorded.shardConfigHash === input.shardConfigHash) return { index: shard.index, status: 'done' };
  }
  const started = Date.now();
  const matcher = await matcherFor(input.outRoot, input.runId);
  const lid = input.lid === 'on' ? await (lidModel ??= LanguageIdentifier.load()) : null;
  const extractor = new ShardExtractor({ lid });
  const keep = input.lid === 'on' ? new Set(input.langs) : null;
  let failure: string;
  try {
    let bytes = 0;
    const source = countingBytes(await openInput(shard.uri), (n) => (bytes += n));
    const out = await matchShard(source, extractor, matcher, keep, (p) => progress?.postMessage({ shard: shard.id, ...p }));
    // Fault injection for the crash tests: widen the window in which a worker can be killed mid-shard.
    const delay = Number(process.env.CURATE_FAULT_SHARD_DELAY_MS);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    await store.put(layout.shardCandidates(input.runId, shard.id), await writeCandidatesParquet(out.rows));
    await store.put(layout.shardCounts(input.runId, shard.id), JSON.stringify(sparseCountsToIdJson(out.counts)));
    const result: ShardResult = {
      shard, status: 'done', rows: out.rows.length, stats: out.stats, seconds: (Date.now() - started) / 1000,
    };
    await store.put(marker, JSON.stringify({ shardConfigHash: input.shardConfigHash, result }, null, 1));
    const sample: ShardSample = {
      bytes, records: out.stats.records, candidates: out.stats.candidates, matchedTexts: out.stats.matchedTexts, matches: out.stats.matches,
      seconds: result.seconds!,
    };
    return { index: shard.index, status: 'done', sample };
  } catch (err) {
    // Bad input is a result, not a crash: the batch records it and the run goes on.
    if (err instanceof CorruptInputError) failure = `CorruptInput: ${err.message}`;
    else if (err instanceof ConfigError) failure = `InputUnavailable: ${err.message}`;
    else throw err;
  } finally {
    progress?.close();
  }
  const reason = capReason(failure);
  await writeShardFailure(store, input.runId, shard, reason);
  return { index: shard.index, status: 'failed', reason };
}

/** Dense counts of a pool (id JSON), cached per thread: every bucket of a phase reads the same file. */
async function poolCounts(outRoot: string, key: string, size: number): Promise<DenseCounts> {
  const id = `${outRoot}|${key}|${size}`;
  if (countsCache?.key !== id) {
    const json = JSON.parse((await openStore(outRoot).get(key)).toString('utf8')) as Record<string, number>;
    countsCache = { key: id, counts: countsFromIdJson(json, size) };
  }
  return countsCache.counts;
}

/**
 * A batch's done shards → kept-language pairs grouped by uuid bucket into one shuffle file (storage/shuffle.ts),
 * every bucket's rows in pool order (shard, then position).
 */
async function partitionBatch(input: PartitionBatchInput): Promise<PartitionBatchResult> {
  const store = openStore(input.outRoot);
  const markerKey = layout.partitionMarker(input.runId, input.batch);
  const params = { buckets: input.buckets, langs: input.langs, format: 'shuffle-1' };
  const recorded = await readMarker<PartitionBatchResult>(store, markerKey, params);
  if (recorded) return recorded;
  const keep = input.langs ? new Set(input.langs) : null;
  const byBucket: PoolRow[][] = Array.from({ length: input.buckets }, () => []);
  const batch = JSON.parse((await store.get(layout.batchManifest(input.runId, input.batch))).toString('utf8')) as { shards: ShardResult[] };
  let pairs = 0;
  for (const { shard } of batch.shards.filter((r) => r.status === 'done')) {
    const rows = await readCandidatesParquet(await store.get(layout.shardCandidates(input.runId, shard.id)));
    for (let position = 0; position < rows.length; position++) {
      const row = rows[position];
      if (keep && (row.lang === null || !keep.has(row.lang))) continue;
      byBucket[bucketOf(row.uuid, input.buckets)].push({ ...row, shard: shard.id, position });
      pairs++;
    }
  }
  const segments: Array<Buffer | null> = [];
  let nonEmptyBuckets = 0;
  for (const rows of byBucket) {
    segments.push(rows.length ? await writePoolParquet(rows) : null);
    if (rows.length) nonEmptyBuckets++;
  }
  await store.put(layout.partition(input.runId, input.batch), encodeShuffle(segments));
  const result: PartitionBatchResult = { batch: input.batch, nonEmptyBuckets, pairs };
  await writeMarker(store, markerKey, params, result);
  return result;
}

/** Batches whose shuffle segments are fetched at once by one bucket's dedup (the order of use is kept). */
const SHUFFLE_READ_WINDOW = 64;
const SHUFFLE_READS_IN_FLIGHT = 16;

/** One bucket of the pool: its segment of every batch's shuffle file in batch order, first occurrence of each (uuid, text) kept. */
async function dedupBucket(input: DedupBucketInput): Promise<DedupBucketResult> {
  const store = openStore(input.outRoot);
  const markerKey = layout.dedupMarker(input.runId, input.bucket);
  const params = { buckets: input.buckets, batches: input.batches };
  const recorded = await readMarker<DedupBucketResult>(store, markerKey, params);
  if (recorded) return recorded;
  const dedup = new PairDedup();
  const kept: PoolRow[] = [];
  const counts: EntryCounts = new Map();
  // Batches hold consecutive shards, so batch order is pool order.
  for (let first = 0; first < input.batches; first += SHUFFLE_READ_WINDOW) {
    const window = Array.from({ length: Math.min(SHUFFLE_READ_WINDOW, input.batches - first) }, (_, k) => first + k);
    const segments = await mapLimit(window, SHUFFLE_READS_IN_FLIGHT, (batch) =>
      readShuffleSegment(store, layout.partition(input.runId, batch), input.bucket, input.buckets));
    for (const segment of segments) {
      if (segment.length === 0) continue;
      for (const row of await readPoolParquet(segment)) {
        if (!dedup.offer(row.uuid, row.text)) continue;
        kept.push(row);
        addCounts(counts, row.entry_ids);
      }
    }
  }
  await store.put(layout.dedupBucket(input.runId, input.bucket), await writePoolParquet(kept));
  await store.put(layout.dedupCounts(input.runId, input.bucket), JSON.stringify(sparseCountsToIdJson(counts)));
  const result: DedupBucketResult = { bucket: input.bucket, stats: dedup.stats };
  await writeMarker(store, markerKey, params, result);
  return result;
}

async function loadColumns(store: ReturnType<typeof openStore>, key: string): Promise<{ rows: PoolRow[]; cols: MatchColumns }> {
  const rows = await readPoolParquet(await store.get(key));
  return { rows, cols: columnsFromRows(rows) };
}

function eligibleMask(rows: PoolRow[], cols: MatchColumns, oneTextPerImage: boolean, seed: string): Uint8Array | undefined {
  return oneTextPerImage ? oneTextPerImage_(rows.map((r) => r.uuid), cols, seedKey(seed, 'pick')) : undefined;
}

/** Algorithm 1 over one bucket; writes the selected pairs (with p), their counts and a marker. */
async function balanceBucket(input: BalanceBucketInput): Promise<BalanceBucketResult> {
  const store = openStore(input.outRoot);
  const out = bucketPart(input.outDir, input.bucket);
  const params = { input: input.input, countsKey: input.countsKey, t: input.t, seed: input.seed, stream: input.stream, one: input.oneTextPerImage };
  const recorded = await readMarker<BalanceBucketResult>(store, out.marker, params);
  if (recorded) return recorded;
  const counts = await poolCounts(input.outRoot, input.countsKey, input.metadataEntries);
  const { rows, cols } = await loadColumns(store, input.input);
  const eligible = eligibleMask(rows, cols, input.oneTextPerImage, input.seed);
  const sample = sampleColumns(cols, entryProbabilities(counts, input.t), seedKey(input.seed, input.stream), eligible);
  const selected: CuratedRow[] = new Array(sample.selected.length);
  const selectedCounts: EntryCounts = new Map();
  const images = new Set<string>();
  for (let k = 0; k < sample.selected.length; k++) {
    const row = rows[sample.selected[k]];
    selected[k] = { ...row, p: sample.probability[k] };
    addCounts(selectedCounts, row.entry_ids);
    images.add(row.uuid);
  }
  await store.put(out.data, await writeCuratedParquet(selected));
  await store.put(out.counts, JSON.stringify(sparseCountsToIdJson(selectedCounts)));
  const result: BalanceBucketResult = {
    bucket: input.bucket, considered: sample.considered, selected: selected.length, images: images.size, expected: sample.expected,
  };
  await writeMarker(store, out.marker, params, result);
  return result;
}

/** Expected sizes of one bucket for many t (summed over buckets by the workflow). */
async function planBucket(input: PlanBucketInput): Promise<PlanRow[]> {
  const store = openStore(input.outRoot);
  const counts = await poolCounts(input.outRoot, input.countsKey, input.metadataEntries);
  const { rows, cols } = await loadColumns(store, input.input);
  return expectedSizes(cols, counts, input.ts, eligibleMask(rows, cols, input.oneTextPerImage, input.seed));
}

/** A marker records the parameters it was made with: a different request redoes the work. */
export async function readMarker<T>(store: ReturnType<typeof openStore>, key: string, params: unknown): Promise<T | null> {
  if (!(await store.exists(key))) return null;
  const recorded = JSON.parse((await store.get(key)).toString('utf8')) as { params: unknown; result: T };
  return JSON.stringify(recorded.params) === JSON.stringify(params) ? recorded.result : null;
}

async function writeMarker(store: ReturnType<typeof openStore>, key: string, params: unknown, result: unknown): Promise<void> {
  await store.put(key, JSON.stringify({ params, result }, null, 1));
}

export default async function runTask(task: Task): Promise<unknown> {
  switch (task.kind) {
    case 'shard':
      return processShard(task.input, task.progress);
    case 'partition':
      return partitionBatch(task.input);
    case 'dedup':
      return dedupBucket(task.input);
    case 'balance':
      return balanceBucket(task.input);
    case 'plan':
      return planBucket(task.input);
  }
  throw new Error(`unknown task ${(task as { kind: string }).kind}`);
}
