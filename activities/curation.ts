/**
 * Thin Temporal activities: read inputs by key, run the core (in worker threads when CPU-heavy),
 * write outputs + markers, heartbeat, classify failures.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { Piscina } from 'piscina';
import { classifyTaskCrash, recordTaskHeapLimit, taskHeapLimitMb } from '../curation/task-crash';
import { createHash } from 'node:crypto';
import { countsFromIdJson, countsToIdJson, mergeCounts, type EntryCounts } from '../curation/balance';
import {
  countsFromIdJson as denseFromIdJson, countsToBinary, countsToEntryJsonText, countsToIdJson as denseCountsToIdJson,
  headTailStats, topEntries, totalMatches, type HeadTailStats,
} from '../curation/counts';
import { buildDatacard } from '../curation/datacard';
import { EACH, bucketPart, keysOf, type KeyRange } from '../curation/layout';
import type { PlanRow } from '../curation/planner';
import { svgToPng } from '../storage/render';
import { ConfigError, capReason } from '../curation/errors';
import { metadataHash, parseMetadata } from '../curation/metadata';
import { layout, shardConfigHash, type CurationConfig, type ShardListRef, type ShardRef } from '../curation/run';
import { readShardSlice, verifyShardList, writeShardFailure } from '../storage/shard-list';
import { readLocation } from '../storage/sources';
import { openStore } from '../storage/store';
import { recordShard } from './metrics';
import type { ShardTaskOutcome, Task } from './tasks';
import type {
  BalanceBucketInput, BalanceBucketResult, BalanceInput, BatchSummary, CountsSummary, CuratedSetSummary, DedupBucketInput, DedupBucketResult,
  FinalizeSetInput, FinishBatchInput, PartitionBatchInput, PartitionBatchResult, PlanBucketInput, PlanResult, PrepareRunResult, ProcessShardInput,
  PublishCountsInput, RecordShardFailureInput, RunRef, ShardOutcome, ShardResult, WriteManifestInput,
} from './types';

let pool: Piscina | null = null;
function taskPool(): Piscina {
  if (pool === null) {
    // Each thread has a heap limit (CURATE_TASK_HEAP_MB, default: 60% of memory over the threads, ≤ 4 GB): a shard
    // that needs more ends its own thread with ERR_WORKER_OUT_OF_MEMORY (see curation/task-crash.ts), and
    // piscina starts another, instead of the whole worker process dying with every activity it runs.
    const maxThreads = Number(process.env.CURATE_CPU_THREADS) || availableParallelism();
    const heapMb = taskHeapLimitMb(maxThreads);
    recordTaskHeapLimit(heapMb);
    pool = new Piscina({
      filename: path.join(__dirname, 'tasks.js'),
      maxThreads,
      idleTimeout: 60_000,
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
    });
  }
  return pool;
}

export async function closeTaskPool(): Promise<void> {
  await pool?.destroy();
  pool = null;
}

/**
 * Runs a task in the pool, heartbeating from this (free) thread until it settles. A task that exhausts its
 * thread's heap fails for good (ResourceExhausted, not retried: the same input needs the same memory).
 */
async function runHeartbeating<T>(task: Task, transfer: any[] = [], details: () => unknown = () => undefined): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => heartbeat(details()), 2_000);
  try {
    return (await taskPool().run(task, { transferList: transfer, signal: ctx.cancellationSignal })) as T;
  } catch (err) {
    const exhausted = classifyTaskCrash(err);
    if (exhausted !== null) throw ApplicationFailure.nonRetryable(exhausted, 'ResourceExhausted');
    throw err;
  } finally {
    clearInterval(timer);
  }
}

/** Copies the metadata into the run, writes run.json once (the run registry is the store, not Temporal). */
export async function prepareRun(input: RunRef & { metadataSource: string; lid: 'on' | 'off'; config: unknown; shardList: ShardListRef }): Promise<PrepareRunResult> {
  const store = openStore(input.outRoot);
  try {
    await verifyShardList(store, input.shardList);
  } catch (err) {
    if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(err.message, 'ConfigError');
    throw err;
  }
  const key = layout.metadata(input.runId);
  let text: string;
  if (await store.exists(key)) {
    text = (await store.get(key)).toString('utf8');
  } else {
    try {
      text = (await readLocation(input.metadataSource)).toString('utf8');
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`cannot read metadata ${input.metadataSource}: ${(err as Error).message}`, 'ConfigError');
    }
  }
  let entries: string[];
  try {
    entries = parseMetadata(text, input.metadataSource);
  } catch (err) {
    if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(err.message, 'ConfigError');
    throw err;
  }
  if (!(await store.exists(key))) await store.put(key, text);
  const hash = metadataHash(entries);
  const result: PrepareRunResult = { metadataHash: hash, metadataEntries: entries.length, shardConfigHash: shardConfigHash(hash, { lid: input.lid }) };
  if (!(await store.exists(layout.runJson(input.runId)))) {
    await store.put(layout.runJson(input.runId), JSON.stringify({ runId: input.runId, config: input.config, ...result, createdAt: new Date().toISOString() }, null, 2));
  }
  return result;
}

/**
 * Fetch → extract → match shard `index` of the run's list into candidates.parquet + counts.json. Bad input is
 * returned as a failed outcome with a classified, capped reason (and recorded in the shard's _FAILED.json).
 */
export async function processShard(input: ProcessShardInput): Promise<ShardOutcome> {
  const { port1, port2 } = new MessageChannel();
  let latest: unknown = { index: input.index, records: 0 };
  port1.on('message', (p) => (latest = { index: input.index, ...p }));
  try {
    // The task's metric sample is recorded here and not returned: the workflow gets the same small outcome.
    const { sample, ...outcome } = await runHeartbeating<ShardTaskOutcome>({ kind: 'shard', input, progress: port2 }, [port2], () => latest);
    recordShard(outcome.status, outcome.reason, sample);
    return outcome;
  } catch (err) {
    // A shard that exhausts its thread's heap is a failed shard with its reason, like corrupt input.
    if (!(err instanceof ApplicationFailure && err.type === 'ResourceExhausted')) throw err;
    const store = openStore(input.outRoot);
    const [shard] = await readShardSlice(store, input.list, input.index, 1);
    const reason = capReason(err.message);
    await writeShardFailure(store, input.runId, shard, reason);
    recordShard('failed', reason);
    return { index: input.index, status: 'failed', reason };
  } finally {
    port1.close();
  }
}

/** A shard whose activity failed for good (retries exhausted, a lost worker): its reason, where the batch manifest finds it. */
export async function recordShardFailure(input: RecordShardFailureInput): Promise<void> {
  const store = openStore(input.outRoot);
  const [shard] = await readShardSlice(store, input.list, input.index, 1);
  await writeShardFailure(store, input.runId, shard, input.reason);
  recordShard('failed', input.reason);
}

/** How many failures a batch summary carries to the workflow (every one is in the batch manifest). */
const BATCH_FAILURE_SAMPLE = 3;

/**
 * Closes a batch from its shards' markers: the batch manifest (every shard's result), the batch's summed counts
 * and its totals. Nothing per shard goes back through Temporal but a sample of failures.
 */
export async function finishBatch(input: FinishBatchInput): Promise<BatchSummary> {
  const store = openStore(input.outRoot);
  const shards = await readShardSlice(store, input.list, input.first, input.count);
  const results: ShardResult[] = [];
  const total: EntryCounts = new Map();
  const summary: BatchSummary = { batch: input.batch, shards: shards.length, done: 0, failed: 0, rows: 0, pairs: 0, failures: [] };
  for (const shard of shards) {
    const marker = layout.shardMarker(input.runId, shard.id);
    const done = (await store.exists(marker)) ? JSON.parse((await store.get(marker)).toString('utf8')) as { shardConfigHash: string; result: ShardResult } : null;
    if (done && done.shardConfigHash === input.shardConfigHash) {
      results.push(done.result);
      summary.done++;
      summary.rows += done.result.rows ?? 0;
      summary.pairs += done.result.stats?.countedTexts ?? 0;
      mergeCounts(total, countsFromIdJson(JSON.parse((await store.get(layout.shardCounts(input.runId, shard.id))).toString('utf8'))));
    } else {
      const failedKey = layout.shardFailure(input.runId, shard.id);
      const failed = (await store.exists(failedKey)) ? (JSON.parse((await store.get(failedKey)).toString('utf8')) as { result: ShardResult }).result : null;
      const result: ShardResult = failed ?? { shard, status: 'failed', reason: 'Unknown: the shard has neither a result nor a recorded failure' };
      results.push(result);
      summary.failed++;
      if (summary.failures.length < BATCH_FAILURE_SAMPLE) summary.failures.push({ shard: shard.id, reason: capReason(result.reason ?? 'unknown') });
    }
    heartbeat(shard.index);
  }
  if (summary.done > 0) await store.put(layout.batchCounts(input.runId, input.batch), JSON.stringify(countsToIdJson(total)));
  await store.put(layout.batchManifest(input.runId, input.batch), JSON.stringify({ batch: input.batch, first: input.first, count: input.count, shards: results }, null, 1));
  return summary;
}

let metadataCache: { key: string; entries: string[] } | null = null;
async function runMetadata(outRoot: string, runId: string): Promise<string[]> {
  const key = `${outRoot}|${runId}`;
  if (metadataCache?.key !== key) {
    const store = openStore(outRoot);
    metadataCache = { key, entries: parseMetadata((await store.get(layout.metadata(runId))).toString('utf8'), layout.metadata(runId)) };
  }
  return metadataCache.entries;
}

/**
 * Sums a stage's sparse count files (one per bucket) and writes every form: id JSON (what balancing reads),
 * MetaCLIP's entry-string JSON, little-endian uint64 per entry id, and head/tail statistics.
 */
export async function publishCounts(input: PublishCountsInput): Promise<CountsSummary> {
  const store = openStore(input.outRoot);
  const metadata = await runMetadata(input.outRoot, input.runId);
  const total = new Float64Array(metadata.length);
  for (const key of keysOf(input.inputs)) {
    if (input.inputs.optional && !(await store.exists(key))) continue;
    const sparse = countsFromIdJson(JSON.parse((await store.get(key)).toString('utf8')));
    for (const [e, c] of sparse) total[e] += c;
    heartbeat(key);
  }
  const keys = layout.counts(input.runId, input.stage);
  let entries = 0;
  let maxCount = 0;
  for (let e = 0; e < total.length; e++) {
    if (total[e] > 0) entries++;
    if (total[e] > maxCount) maxCount = total[e];
  }
  const summary: CountsSummary = {
    stage: input.stage, key: keys.ids, entriesKey: keys.entries, binaryKey: keys.binary, statsKey: keys.stats,
    entries, matches: totalMatches(total), maxCount, fingerprint: input.fingerprint,
    headTail: input.thresholds.map((t) => headTailStats(total, t)),
  };
  await store.put(keys.ids, JSON.stringify(denseCountsToIdJson(total)));
  await store.put(keys.entries, countsToEntryJsonText(total, metadata));
  await store.put(keys.binary, countsToBinary(total));
  await store.put(keys.stats, JSON.stringify({
    ...summary,
    top: topEntries(total, 50).map(([id, count]) => ({ id, entry: metadata[id], count })),
  }, null, 2));
  return summary;
}

export async function partitionBatch(input: PartitionBatchInput): Promise<PartitionBatchResult> {
  return runHeartbeating<PartitionBatchResult>({ kind: 'partition', input }, [], () => ({ batch: input.batch }));
}

export async function dedupBucket(input: DedupBucketInput): Promise<DedupBucketResult> {
  return runHeartbeating<DedupBucketResult>({ kind: 'dedup', input }, [], () => ({ bucket: input.bucket }));
}

export async function balanceBucket(input: BalanceBucketInput): Promise<BalanceBucketResult> {
  return runHeartbeating<BalanceBucketResult>({ kind: 'balance', input }, [], () => ({ bucket: input.bucket }));
}

export async function planBucket(input: PlanBucketInput): Promise<PlanRow[]> {
  return runHeartbeating<PlanRow[]>({ kind: 'plan', input }, [], () => ({ bucket: input.bucket }));
}

/** Head/tail statistics of a pool's counts at many t, and its largest count (to lay out the planner's grid). */
export async function describeCounts(input: RunRef & { countsKey: string; metadataEntries: number; ts: number[] }): Promise<{ maxCount: number; headTail: HeadTailStats[] }> {
  const store = openStore(input.outRoot);
  const counts = denseFromIdJson(JSON.parse((await store.get(input.countsKey)).toString('utf8')), input.metadataEntries);
  let maxCount = 0;
  for (let e = 0; e < counts.length; e++) if (counts[e] > maxCount) maxCount = counts[e];
  return { maxCount, headTail: input.ts.map((t) => headTailStats(counts, t)) };
}

export async function writeBalanceInput(input: RunRef & { balanceInput: BalanceInput }): Promise<string> {
  const store = openStore(input.outRoot);
  await store.put(layout.balanceInput(input.runId), JSON.stringify(input.balanceInput, null, 1));
  return layout.balanceInput(input.runId);
}

/**
 * The stored pool a rebalance or plan reads. Its counts are recomputed (from the per-part counts) only when
 * the pool changed since they were written: the fingerprint of the parts' markers no longer matches.
 */
export async function loadBalanceInput(input: RunRef): Promise<BalanceInput> {
  const store = openStore(input.outRoot);
  const key = layout.balanceInput(input.runId);
  if (!(await store.exists(key))) {
    throw ApplicationFailure.nonRetryable(
      `run ${input.runId} has no balance input (${store.uri(key)}): it has not finished its first balancing pass`, 'ConfigError',
    );
  }
  const bi = JSON.parse((await store.get(key)).toString('utf8')) as BalanceInput;
  const partCounts: KeyRange = { template: bi.partCounts, count: bi.buckets };
  const fingerprint = await poolFingerprint(store, partCounts);
  if (fingerprint === bi.counts.fingerprint && (await store.exists(bi.counts.key))) return bi;
  const counts = await publishCounts({
    ...input, inputs: partCounts, stage: bi.counts.stage, thresholds: bi.counts.headTail.map((h) => h.t), fingerprint,
  });
  const updated = { ...bi, counts };
  await store.put(key, JSON.stringify(updated, null, 1));
  return updated;
}

/** Identifies a pool by the content of its per-part count files (they change whenever a part changes). */
export async function poolFingerprint(store: ReturnType<typeof openStore>, partCounts: KeyRange): Promise<string> {
  const h = createHash('sha256');
  for (const k of keysOf(partCounts)) {
    if (partCounts.optional && !(await store.exists(k))) continue;
    h.update(k).update('\0').update(await store.get(k)).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

export async function fingerprintParts(input: RunRef & { partCounts: KeyRange }): Promise<string> {
  return poolFingerprint(openStore(input.outRoot), input.partCounts);
}

/**
 * Closes a curated set: sums the selected pairs' counts, writes the datacard (JSON + figures as SVG and PNG)
 * and the set's manifest. Earlier sets are never touched: everything lives under curated/<setId>/.
 */
export async function finalizeCuratedSet(input: FinalizeSetInput): Promise<CuratedSetSummary> {
  const store = openStore(input.outRoot);
  const dir = layout.curatedDir(input.runId, input.setId);
  const metadata = await runMetadata(input.outRoot, input.runId);
  const after = new Float64Array(metadata.length);
  const partKeys: string[] = [];
  const parts: BalanceBucketResult[] = [];
  for (let bucket = 0; bucket < input.balanceInput.buckets; bucket++) {
    const keys = bucketPart(dir, bucket);
    partKeys.push(keys.data);
    parts.push((JSON.parse((await store.get(keys.marker)).toString('utf8')) as { result: BalanceBucketResult }).result);
    for (const [e, c] of countsFromIdJson(JSON.parse((await store.get(keys.counts)).toString('utf8')))) after[e] += c;
  }
  const before = denseFromIdJson(JSON.parse((await store.get(input.balanceInput.counts.key)).toString('utf8')), metadata.length);
  const sum = (f: (p: BalanceBucketResult) => number) => parts.reduce((s, p) => s + f(p), 0);
  const selected = sum((p) => p.selected);
  const stages = [
    ...input.balanceInput.stages,
    ...(input.oneTextPerImage ? [{ stage: 'one text per image', pairs: sum((p) => p.considered) }] : []),
    { stage: `curated (t=${input.t})`, pairs: selected, images: sum((p) => p.images) },
  ];
  const card = buildDatacard({
    runId: input.runId, setId: input.setId, t: input.t, seed: input.seed, oneTextPerImage: input.oneTextPerImage,
    stages, metadata, countsBefore: before, countsAfter: after, expectedPairs: sum((p) => p.expected), selectedPairs: selected,
    createdAt: new Date().toISOString(),
  });
  const figures: string[] = [];
  for (const fig of card.figures) {
    await store.put(layout.datacardFigure(input.runId, input.setId, fig.name, 'svg'), fig.svg);
    const png = layout.datacardFigure(input.runId, input.setId, fig.name, 'png');
    await store.put(png, await svgToPng(fig.svg));
    figures.push(store.uri(png));
    heartbeat(fig.name);
  }
  await store.put(layout.datacard(input.runId, input.setId), JSON.stringify(card.json, null, 2));
  const summary: CuratedSetSummary = {
    setId: input.setId, dir: store.uri(dir), t: input.t, seed: input.seed, oneTextPerImage: input.oneTextPerImage,
    considered: sum((p) => p.considered), selected, images: sum((p) => p.images), expected: sum((p) => p.expected),
    datacard: store.uri(layout.datacard(input.runId, input.setId)), figures, manifest: store.uri(layout.curatedManifest(input.runId, input.setId)),
  };
  await store.put(layout.curatedManifest(input.runId, input.setId), JSON.stringify({
    ...summary,
    runId: input.runId,
    tSource: input.tSource,
    workflowId: input.workflowId,
    balanceInput: { stage: input.balanceInput.stage, pairs: input.balanceInput.pairs, counts: input.balanceInput.counts.key, fingerprint: input.balanceInput.counts.fingerprint },
    parts: parts.map((p, i) => ({ ...p, key: partKeys[i] })),
    finishedAt: new Date().toISOString(),
  }, null, 2));
  return summary;
}

export async function writePlan(input: RunRef & { plan: Omit<PlanResult, 'key'> }): Promise<PlanResult> {
  const store = openStore(input.outRoot);
  const key = layout.plan(input.runId, input.plan.planId);
  const plan: PlanResult = { ...input.plan, key: store.uri(key) };
  await store.put(key, JSON.stringify(plan, null, 2));
  return plan;
}

/** Lists a run's curated sets (their manifests), newest layout first by set id. */
export async function listCuratedSets(input: RunRef): Promise<Array<Record<string, unknown>>> {
  const store = openStore(input.outRoot);
  const keys = (await store.list(layout.curatedRoot(input.runId))).filter((k) => k.endsWith('/manifest.json')).sort();
  const out: Array<Record<string, unknown>> = [];
  for (const k of keys) out.push(JSON.parse((await store.get(k)).toString('utf8')));
  return out;
}

/** Failures listed in the run manifest itself; all of them are in failed-shards.jsonl. */
const MANIFEST_FAILURE_SAMPLE = 100;

/**
 * The run manifest: config snapshot, metadata hash, shard totals (every shard's result is in its batch's
 * manifest; every failure in failed-shards.jsonl), dedup, both balancing passes and the curated set.
 */
export async function writeRunManifest(input: WriteManifestInput): Promise<string> {
  const store = openStore(input.outRoot);
  const failedLines: string[] = [];
  const sample: Array<{ shard: ShardRef; reason: string }> = [];
  for (let batch = 0; batch < input.batches; batch++) {
    const manifest = JSON.parse((await store.get(layout.batchManifest(input.runId, batch))).toString('utf8')) as { shards: ShardResult[] };
    for (const r of manifest.shards) {
      if (r.status !== 'failed') continue;
      failedLines.push(JSON.stringify({ shard: r.shard, reason: r.reason }));
      if (sample.length < MANIFEST_FAILURE_SAMPLE) sample.push({ shard: r.shard, reason: r.reason ?? 'unknown' });
    }
    heartbeat(batch);
  }
  await store.put(layout.failedShards(input.runId), failedLines.join('\n') + (failedLines.length ? '\n' : ''));
  const manifest = {
    runId: input.runId,
    status: input.status,
    startedAt: input.startedAt,
    finishedAt: new Date().toISOString(),
    config: input.config,
    metadata: { hash: input.prepared.metadataHash, entries: input.prepared.metadataEntries },
    shards: {
      total: input.shards.shards,
      done: input.shards.done,
      failed: input.shards.failed,
      rows: input.shards.rows,
      pairs: input.shards.pairs,
      list: store.uri(layout.shardListRef(input.runId)),
      batches: { count: input.batches, manifests: layout.batchManifest(input.runId, EACH) },
      failedList: layout.failedShards(input.runId),
      failures: sample,
    },
    counts: { ...input.counts, key: layout.counts(input.runId, 'matched').entries },
    dedup: { ...input.dedup, buckets: input.buckets, counts: input.dedupCounts },
    pass1: input.pass1,
    images: input.images ?? null,
    balanceInput: layout.balanceInput(input.runId),
    curated: input.curated,
  };
  await store.put(layout.manifest(input.runId), JSON.stringify(manifest, null, 2));
  return store.uri(layout.manifest(input.runId));
}

/** The configuration a run was started with (run.json), for workflows that continue its work. */
export async function loadRunConfig(input: RunRef): Promise<CurationConfig> {
  const store = openStore(input.outRoot);
  const key = layout.runJson(input.runId);
  if (!(await store.exists(key))) throw ApplicationFailure.nonRetryable(`no run ${input.runId} under ${store.uri(layout.run(input.runId))}`, 'ConfigError');
  return (JSON.parse((await store.get(key)).toString('utf8')) as { config: CurationConfig }).config;
}

/** After `retry-failed`: the balance input's pool, counts and image stages reflect the new downloads. */
export async function refreshBalanceInput(input: RunRef & { counts: CountsSummary; pairs: number; pooledImages: number; duplicatePairs: number; newImages: number }): Promise<BalanceInput> {
  const store = openStore(input.outRoot);
  const key = layout.balanceInput(input.runId);
  const bi = JSON.parse((await store.get(key)).toString('utf8')) as BalanceInput;
  const stages = bi.stages.map((s) => {
    if (s.stage === 'images downloaded') return { ...s, pairs: input.pairs + input.duplicatePairs, images: (s.images ?? 0) + input.newImages };
    if (s.stage === 'image dedup') return { ...s, pairs: input.pairs, images: input.pooledImages };
    return s;
  });
  const updated: BalanceInput = { ...bi, counts: input.counts, pairs: input.pairs, stages };
  await store.put(key, JSON.stringify(updated, null, 1));
  return updated;
}
