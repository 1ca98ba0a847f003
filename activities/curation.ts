/**
 * Thin Temporal activities: read inputs by key, run the core (in worker threads when CPU-heavy),
 * write outputs + markers, heartbeat, classify failures.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { Piscina } from 'piscina';
import { countsFromIdJson, countsToIdJson, mergeCounts, type EntryCounts } from '../curation/balance';
import { countsToEntryJson, denseFromSparse } from '../curation/counts';
import { ConfigError } from '../curation/errors';
import { metadataHash, parseMetadata } from '../curation/metadata';
import { layout, shardConfigHash } from '../curation/run';
import { readLocation } from '../storage/sources';
import { openStore } from '../storage/store';
import type { Task } from './tasks';
import type {
  BalanceBatchInput, BalanceBatchResult, PrepareRunResult, ProcessShardInput, PublishCountsInput, RunRef,
  ShardResult, SumCountsInput, SumCountsResult, WriteManifestInput,
} from './types';

let pool: Piscina | null = null;
function taskPool(): Piscina {
  pool ??= new Piscina({
    filename: path.join(__dirname, 'tasks.js'),
    maxThreads: Number(process.env.CURATE_CPU_THREADS) || availableParallelism(),
    idleTimeout: 60_000,
  });
  return pool;
}

export async function closeTaskPool(): Promise<void> {
  await pool?.destroy();
  pool = null;
}

/** Runs a task in the pool, heartbeating from this (free) thread until it settles. */
async function runHeartbeating<T>(task: Task, transfer: any[] = [], details: () => unknown = () => undefined): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => heartbeat(details()), 2_000);
  try {
    return (await taskPool().run(task, { transferList: transfer, signal: ctx.cancellationSignal })) as T;
  } finally {
    clearInterval(timer);
  }
}

/** Copies the metadata into the run, writes run.json once (the run registry is the store, not Temporal). */
export async function prepareRun(input: RunRef & { metadataSource: string; lid: 'on' | 'off'; config: unknown }): Promise<PrepareRunResult> {
  const store = openStore(input.outRoot);
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

/** Fetch → extract → match one shard into candidates.parquet + counts.json. Bad input is returned as a failed result. */
export async function processShard(input: ProcessShardInput): Promise<ShardResult> {
  const { port1, port2 } = new MessageChannel();
  let latest: unknown = { shard: input.shard.id, records: 0 };
  port1.on('message', (p) => (latest = { shard: input.shard.id, ...p }));
  try {
    return await runHeartbeating<ShardResult>({ kind: 'shard', input, progress: port2 }, [port2], () => latest);
  } finally {
    port1.close();
  }
}

/** Sums sparse id-keyed count files into one. */
export async function sumCounts(input: SumCountsInput): Promise<SumCountsResult> {
  const store = openStore(input.outRoot);
  const total: EntryCounts = new Map();
  for (const key of input.inputs) {
    mergeCounts(total, countsFromIdJson(JSON.parse((await store.get(key)).toString('utf8'))));
    heartbeat(key);
  }
  await store.put(input.output, JSON.stringify(countsToIdJson(total)));
  let matches = 0;
  for (const c of total.values()) matches += c;
  return { entries: total.size, matches };
}

/** Writes the global counts in MetaCLIP's published form (entry string → count) beside the id form. */
export async function publishEntryCounts(input: PublishCountsInput): Promise<void> {
  const store = openStore(input.outRoot);
  const counts = countsFromIdJson(JSON.parse((await store.get(input.countsKey)).toString('utf8')));
  const metadata = parseMetadata((await store.get(layout.metadata(input.runId))).toString('utf8'));
  await store.put(layout.entryCounts(input.runId), JSON.stringify(countsToEntryJson(denseFromSparse(counts, metadata.length), metadata)));
}

export async function writeBatchManifest(input: RunRef & { batch: number; results: ShardResult[]; countsKey: string }): Promise<string> {
  const store = openStore(input.outRoot);
  const key = layout.batchManifest(input.runId, input.batch);
  await store.put(key, JSON.stringify({ batch: input.batch, countsKey: input.countsKey, shards: input.results }, null, 1));
  return key;
}

export async function balanceBatch(input: BalanceBatchInput): Promise<BalanceBatchResult> {
  return runHeartbeating<BalanceBatchResult>({ kind: 'balance', input }, [], () => ({ batch: input.batch }));
}

/** The run manifest: config snapshot, metadata hash, per-shard status and counts (read back from batch manifests). */
export async function writeRunManifest(input: WriteManifestInput): Promise<string> {
  const store = openStore(input.outRoot);
  const shards: ShardResult[] = [];
  for (const b of input.batches) shards.push(...JSON.parse((await store.get(b.manifestKey)).toString('utf8')).shards);
  const curated = {
    t: input.config.t,
    seed: input.config.seed,
    dir: layout.curatedDir(input.runId, input.config.t, input.config.seed),
    candidates: input.balance.reduce((s, b) => s + b.candidates, 0),
    selected: input.balance.reduce((s, b) => s + b.selected, 0),
    expected: input.balance.reduce((s, b) => s + b.expected, 0),
    parts: input.balance.map((b) => b.key),
  };
  const manifest = {
    runId: input.runId,
    status: input.status,
    startedAt: input.startedAt,
    finishedAt: new Date().toISOString(),
    config: input.config,
    metadata: { hash: input.prepared.metadataHash, entries: input.prepared.metadataEntries },
    shards: {
      total: shards.length,
      done: shards.filter((s) => s.status === 'done').length,
      failed: shards.filter((s) => s.status === 'failed').length,
      list: shards,
    },
    counts: { ...input.counts, key: layout.entryCounts(input.runId) },
    curated,
  };
  await store.put(layout.manifest(input.runId), JSON.stringify(manifest, null, 2));
  return store.uri(layout.manifest(input.runId));
}
