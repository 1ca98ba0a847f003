/**
 * Orchestration only: deterministic, no I/O. The root `curation` workflow fans out shard batches as child
 * workflows in a sliding window, sums counts, balances per batch and writes the manifest. It continues as
 * new when the history grows, carrying its (small) state, so the shard count is a tuning knob.
 *
 * Seams for later stages (cross-pool dedup, pass-1 balance, images, rebalance) sit between phases.
 */
import {
  ApplicationFailure, allHandlersFinished, condition, continueAsNew, defineQuery, executeChild, proxyActivities,
  setHandler, upsertSearchAttributes, workflowInfo, ParentClosePolicy, type ActivityOptions,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { BalanceBatchResult, BatchSummary, PrepareRunResult, ShardResult, SumCountsResult } from '../activities/types';
import type { CurationConfig, ShardRef } from '../curation/run';
import { layout } from '../curation/layout';
import { PHASE, RUN_ID, SHARDS_DONE, SHARDS_FAILED, TASK_QUEUES } from './search-attributes';

const io = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.io,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});

// Shard work: a few attempts only; corrupt input comes back as a failed result, not an exception.
function cpuOptions(heartbeatTimeoutSeconds = 60): ActivityOptions {
  return {
    taskQueue: TASK_QUEUES.cpu,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: heartbeatTimeoutSeconds * 1000,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 3, nonRetryableErrorTypes: ['ConfigError'] },
  };
}
const cpu = proxyActivities<typeof activities>(cpuOptions());

export type Phase = 'preparing' | 'matching' | 'counting' | 'balancing' | 'manifest' | 'done' | 'failed';

export interface CurationProgress {
  runId: string;
  phase: Phase;
  shardsTotal: number;
  shardsDone: number;
  shardsFailed: number;
  batchesTotal: number;
  batchesDone: number;
  balanceDone: number;
  matches: number;
  selected: number;
  /** First failed shards with their reasons (the full list is in the manifest). */
  failures: Array<{ shard: string; reason: string }>;
  manifest?: string;
}

export const progressQuery = defineQuery<CurationProgress>('progress');

/** State carried across continue-as-new. */
export interface CurationState {
  startedAt: string;
  prepared?: PrepareRunResult;
  batches: BatchSummary[];
  balance: BalanceBatchResult[];
  counts?: SumCountsResult;
  failures: Array<{ shard: string; reason: string }>;
}

export function planBatches(shards: ShardRef[], perBatch: number): ShardRef[][] {
  const out: ShardRef[][] = [];
  for (let i = 0; i < shards.length; i += perBatch) out.push(shards.slice(i, i + perBatch));
  return out;
}

/**
 * Runs `start(i)` for the indexes, at most `window` at a time, in index order. Stops starting new ones once
 * `shouldPause()` says so (history full) and returns false after the running ones finished; true when all ran.
 */
async function slidingWindow(
  indexes: number[], window: number, start: (i: number) => Promise<void>, shouldPause: () => boolean,
): Promise<boolean> {
  const running = new Set<Promise<void>>();
  let started = 0;
  for (const i of indexes) {
    if (shouldPause()) break;
    while (running.size >= window) await Promise.race(running);
    const p: Promise<void> = start(i).finally(() => running.delete(p));
    running.add(p);
    started++;
  }
  await Promise.all(running);
  return started === indexes.length;
}

export async function curation(config: CurationConfig, carried?: CurationState): Promise<CurationProgress> {
  const state: CurationState = carried ?? { startedAt: new Date(workflowInfo().startTime).toISOString(), batches: [], balance: [], failures: [] };
  const batches = planBatches(config.shards, config.shardsPerBatch);
  const sum = (f: (b: BatchSummary) => number) => state.batches.reduce((s, b) => s + f(b), 0);
  let phase: Phase = state.counts ? 'balancing' : state.prepared ? 'matching' : 'preparing';
  const progress = (): CurationProgress => ({
    runId: config.runId,
    phase,
    shardsTotal: config.shards.length,
    shardsDone: sum((b) => b.done),
    shardsFailed: sum((b) => b.failed),
    batchesTotal: batches.length,
    batchesDone: state.batches.length,
    balanceDone: state.balance.length,
    matches: state.counts?.matches ?? 0,
    selected: state.balance.reduce((s, b) => s + b.selected, 0),
    failures: state.failures.slice(0, 20),
    manifest,
  });
  let manifest: string | undefined;
  setHandler(progressQuery, progress);
  const publish = () =>
    upsertSearchAttributes([
      { key: PHASE, value: phase },
      { key: SHARDS_DONE, value: sum((b) => b.done) },
      { key: SHARDS_FAILED, value: sum((b) => b.failed) },
    ]);
  const historyFull = () => workflowInfo().continueAsNewSuggested;
  const carryOn = async () => {
    await condition(allHandlersFinished);
    await continueAsNew<typeof curation>(config, state);
  };
  const run = { outRoot: config.outRoot, runId: config.runId };

  upsertSearchAttributes([{ key: RUN_ID, value: config.runId }]);
  if (!state.prepared) {
    publish();
    state.prepared = await io.prepareRun({ ...run, metadataSource: config.metadataSource, lid: config.lid, config });
  }
  const prepared = state.prepared;

  // Phase 1: every shard fetched, extracted and matched, batch by batch in child workflows.
  if (!state.counts) {
    phase = 'matching';
    publish();
    const doneBatches = new Set(state.batches.map((b) => b.batch));
    const todo = batches.map((_, i) => i).filter((i) => !doneBatches.has(i));
    const finished = await slidingWindow(todo, config.maxConcurrentBatches, async (i) => {
      const summary = await executeChild(shardBatch, {
        workflowId: `${config.runId}/match/batch-${String(i).padStart(5, '0')}`,
        taskQueue: TASK_QUEUES.orchestration,
        args: [{
          ...run, batch: i, shards: batches[i], lid: config.lid, langs: config.langs, shardConfigHash: prepared.shardConfigHash,
          heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
        }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `Batch ${i}: shards ${batches[i][0].index}..${batches[i][batches[i].length - 1].index} of run ${config.runId}`,
      });
      state.batches.push(summary.summary);
      for (const f of summary.failures) if (state.failures.length < 100) state.failures.push(f);
      publish();
    }, historyFull);
    if (!finished) return carryOn() as never;
    state.batches.sort((a, b) => a.batch - b.batch);

    // Seam: cross-pool uuid/text dedup and the pass-1 balance (balancing issue) plug in here.
    phase = 'counting';
    publish();
    const doneWithCounts = state.batches.filter((b) => b.done > 0);
    state.counts = await io.sumCounts({
      ...run, inputs: doneWithCounts.map((b) => b.countsKey), output: layout.entryCountsById(config.runId),
    });
    await io.publishEntryCounts({ ...run, countsKey: layout.entryCountsById(config.runId) });
  }

  // Phase 2: balance with t, one activity per batch (reads that batch's candidates, writes one part).
  phase = 'balancing';
  publish();
  const balanced = new Set(state.balance.map((b) => b.batch));
  const toBalance = state.batches.filter((b) => b.done > 0 && !balanced.has(b.batch)).map((b) => b.batch);
  const finished = await slidingWindow(toBalance, config.maxConcurrentBatches, async (i) => {
    const result = await cpu.balanceBatch.executeWithOptions(
      { ...cpuOptions(config.heartbeatTimeoutSeconds), summary: `balance batch ${i} with t=${config.t}` },
      [{ ...run, batch: i, batchManifest: layout.batchManifest(config.runId, i), t: config.t, seed: config.seed, langs: config.lid === 'on' ? config.langs : null }],
    );
    state.balance.push(result);
  }, historyFull);
  if (!finished) return carryOn() as never;
  state.balance.sort((a, b) => a.batch - b.batch);

  phase = 'manifest';
  const failedRatio = config.shards.length ? sum((b) => b.failed) / config.shards.length : 0;
  const status = failedRatio > config.maxFailedShardRatio ? 'failed' : 'completed';
  manifest = await io.writeRunManifest({
    ...run, config, prepared, batches: state.batches, balance: state.balance, counts: state.counts!, status, startedAt: state.startedAt,
  });
  phase = status === 'completed' ? 'done' : 'failed';
  publish();
  if (status === 'failed') {
    throw ApplicationFailure.nonRetryable(
      `${sum((b) => b.failed)} of ${config.shards.length} shards failed (more than ${config.maxFailedShardRatio * 100}%); manifest at ${manifest}`,
      'TooManyFailedShards',
    );
  }
  return progress();
}


export interface ShardBatchInput {
  outRoot: string;
  runId: string;
  batch: number;
  shards: ShardRef[];
  lid: 'on' | 'off';
  langs: string[];
  shardConfigHash: string;
  heartbeatTimeoutSeconds?: number;
}

export interface ShardBatchResult {
  summary: BatchSummary;
  failures: Array<{ shard: string; reason: string }>;
}

/** One batch of shards: each shard processed independently; a failed shard is recorded, never fatal. */
export async function shardBatch(input: ShardBatchInput): Promise<ShardBatchResult> {
  const results: ShardResult[] = await Promise.all(
    input.shards.map(async (shard) => {
      try {
        return await cpu.processShard.executeWithOptions(
          { ...cpuOptions(input.heartbeatTimeoutSeconds), summary: `shard ${shard.id}` },
          [{ outRoot: input.outRoot, runId: input.runId, shard, lid: input.lid, langs: input.langs, shardConfigHash: input.shardConfigHash }],
        );
      } catch (err) {
        // Retries exhausted (or non-retryable): the shard fails with its reason, the batch goes on.
        const cause = (err as { cause?: { message?: string; type?: string } }).cause;
        const reason = `${cause?.type ?? 'ActivityFailure'}: ${cause?.message ?? (err as Error).message}`;
        return { shard, status: 'failed', reason } as ShardResult;
      }
    }),
  );
  const done = results.filter((r) => r.status === 'done');
  const countsKey = layout.batchCounts(input.runId, input.batch);
  if (done.length > 0) {
    await io.sumCounts({
      outRoot: input.outRoot, runId: input.runId, output: countsKey,
      inputs: done.map((r) => layout.shardCounts(input.runId, r.shard.id)),
    });
  }
  const manifestKey = await io.writeBatchManifest({ outRoot: input.outRoot, runId: input.runId, batch: input.batch, results, countsKey });
  const failed = results.filter((r) => r.status === 'failed');
  return {
    summary: {
      batch: input.batch, shards: results.length, done: done.length, failed: failed.length,
      rows: done.reduce((s, r) => s + (r.rows ?? 0), 0), countsKey, manifestKey,
    },
    failures: failed.map((r) => ({ shard: r.shard.id, reason: r.reason ?? 'unknown' })),
  };
}
