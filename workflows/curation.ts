/**
 * Orchestration only: deterministic, no I/O. The root `curation` workflow runs the stages in order:
 *   matching (batch children: fetch → extract → match each shard) → partition (each batch's pairs grouped by
 *   uuid bucket) → cross-pool dedup (per bucket) → counts → pass-1 balance with t1 (per bucket) → [images]
 *   → recount → final balance with t (per bucket) → datacard → manifest.
 * Nothing that grows with the pool travels through Temporal: the shard list, per-shard results and per-bucket
 * results live in the store, workflows carry keys, ranges and running totals. The root continues as new
 * well before its history nears Temporal's limits, carrying that O(1) state.
 */
import {
  ApplicationFailure, allHandlersFinished, condition, continueAsNew, defineQuery, executeChild, proxyActivities,
  setHandler, upsertSearchAttributes, workflowInfo, ParentClosePolicy,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type {
  BalanceInput, BalanceTotals, BatchSummary, CountsSummary, CuratedSetSummary, PrepareRunResult, ShardTotals, SumCountsResult,
} from '../activities/types';
import { addDedupStats, bucketsForPairs, type DedupStats } from '../curation/dedup';
import { capReason } from '../curation/errors';
import type { CurationConfig, ShardListRef } from '../curation/run';
import { EACH, bucketPart, layout } from '../curation/layout';
import { balanceSet, type Fanout } from './balance-set';
import { IO_OPTIONS, cpuOptions } from './activity-options';
import { addBalanceTotals, emptyBalanceTotals, runBucketPhase } from './buckets';
import { imageStage, type ImagesSummary } from './images';
import { PHASE, RUN_ID, SHARDS_DONE, SHARDS_FAILED, TASK_QUEUES } from './search-attributes';

const io = proxyActivities<typeof activities>(IO_OPTIONS);

const cpu = proxyActivities<typeof activities>(cpuOptions());

export type Phase = 'preparing' | 'matching' | 'partitioning' | 'dedup' | 'counting' | 'pass1' | 'images' | 'recount' | 'balancing' | 'datacard' | 'manifest' | 'done' | 'failed';

export interface CurationProgress {
  runId: string;
  phase: Phase;
  shardsTotal: number;
  shardsDone: number;
  shardsFailed: number;
  batchesTotal: number;
  batchesDone: number;
  /** Dedup buckets (chosen after matching unless configured). */
  buckets: number;
  /** Matched (text, entry) pairs counted before dedup. */
  matches: number;
  /** Pairs after cross-pool dedup. */
  dedupedPairs: number;
  /** Pairs kept by pass 1 (t1). */
  pass1Selected: number;
  /** Images downloaded / failed (image stage). */
  imagesDownloaded: number;
  imagesFailed: number;
  /** Pairs in the final curated set (t). */
  selected: number;
  /** First failed shards with their (capped) reasons; all of them are in the batch manifests and failed-shards.jsonl. */
  failures: Array<{ shard: string; reason: string }>;
  curated?: CuratedSetSummary;
  manifest?: string;
}

export const progressQuery = defineQuery<CurationProgress>('progress');

/** Failures carried in the workflow state and shown by the progress query (a sample; the store has them all). */
export const FAILURE_SAMPLE = 20;

/**
 * The root continues as new past these (well below Temporal's 51,200 events / 50 MB, and below the project's
 * budget of 4,000 events / 4 MB): what runs after the check — a window of batches, or one phase of ≤ 64
 * children — adds at most ~1,000 events.
 */
export const HISTORY_EVENTS_SOFT_LIMIT = 2_000;
export const HISTORY_BYTES_SOFT_LIMIT = 2 * 1024 * 1024;

/** State carried across continue-as-new: O(1) in shards, batches and buckets. */
export interface CurationState {
  startedAt: string;
  prepared?: PrepareRunResult;
  /** Batches finished. Always the first `batchesDone` batches when the state is carried (the window drains first). */
  batchesDone: number;
  shards: ShardTotals;
  failures: Array<{ shard: string; reason: string }>;
  counts?: SumCountsResult;
  /** Dedup buckets, fixed once matching is done. */
  buckets?: number;
  partitioned?: boolean;
  dedup?: { stats: DedupStats; counts: CountsSummary };
  pass1?: BalanceTotals;
  images?: ImagesSummary;
  balanceInput?: BalanceInput;
  curated?: CuratedSetSummary;
}

export function batchCount(shards: number, perBatch: number): number {
  return Math.ceil(shards / perBatch);
}

export function emptyShardTotals(): ShardTotals {
  return { shards: 0, done: 0, failed: 0, rows: 0, pairs: 0 };
}

function addShardTotals(into: ShardTotals, from: ShardTotals): void {
  into.shards += from.shards;
  into.done += from.done;
  into.failed += from.failed;
  into.rows += from.rows;
  into.pairs += from.pairs;
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
  const state: CurationState = carried ?? {
    startedAt: new Date(workflowInfo().startTime).toISOString(), batchesDone: 0, shards: emptyShardTotals(), failures: [],
  };
  const list = config.shardList;
  const batches = batchCount(list.count, config.shardsPerBatch);
  let phase: Phase = state.prepared ? 'matching' : 'preparing';
  let manifest: string | undefined;
  const progress = (): CurationProgress => ({
    runId: config.runId,
    phase,
    shardsTotal: list.count,
    shardsDone: state.shards.done,
    shardsFailed: state.shards.failed,
    batchesTotal: batches,
    batchesDone: state.batchesDone,
    buckets: state.buckets ?? 0,
    matches: state.counts?.matches ?? 0,
    dedupedPairs: state.dedup?.stats.uniquePairs ?? 0,
    pass1Selected: state.pass1?.selected ?? 0,
    imagesDownloaded: state.images?.successes ?? 0,
    imagesFailed: state.images?.failed ?? 0,
    selected: state.curated?.selected ?? 0,
    failures: state.failures,
    curated: state.curated,
    manifest,
  });
  setHandler(progressQuery, progress);
  const publish = () =>
    upsertSearchAttributes([
      { key: PHASE, value: phase },
      { key: SHARDS_DONE, value: state.shards.done },
      { key: SHARDS_FAILED, value: state.shards.failed },
    ]);
  const historyFull = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength > HISTORY_EVENTS_SOFT_LIMIT || info.historySize > HISTORY_BYTES_SOFT_LIMIT;
  };
  const carryOn = async () => {
    await condition(allHandlersFinished);
    await continueAsNew<typeof curation>(config, state);
  };
  const run = { outRoot: config.outRoot, runId: config.runId };
  const fan: Fanout = { idPrefix: config.runId, childWindow: config.maxConcurrentBatches, concurrency: 4, heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds };

  upsertSearchAttributes([{ key: RUN_ID, value: config.runId }]);
  if (!state.prepared) {
    publish();
    state.prepared = await io.prepareRun({ ...run, metadataSource: config.metadataSource, lid: config.lid, config, shardList: list });
  }
  const prepared = state.prepared;

  // Stage 1: every shard fetched, extracted and matched, batch by batch in child workflows.
  if (!state.counts) {
    phase = 'matching';
    publish();
    const todo = Array.from({ length: batches - state.batchesDone }, (_, k) => state.batchesDone + k);
    const finished = await slidingWindow(todo, config.maxConcurrentBatches, async (i) => {
      const first = i * config.shardsPerBatch;
      const count = Math.min(config.shardsPerBatch, list.count - first);
      const summary = await executeChild(shardBatch, {
        workflowId: `${config.runId}/match/batch-${String(i).padStart(5, '0')}`,
        taskQueue: TASK_QUEUES.orchestration,
        args: [{
          ...run, list, batch: i, first, count, lid: config.lid, langs: config.langs, shardConfigHash: prepared.shardConfigHash,
          heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
        }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `Batch ${i}: shards ${first}..${first + count - 1} of run ${config.runId}`,
      });
      state.batchesDone++;
      addShardTotals(state.shards, summary);
      for (const f of summary.failures) if (state.failures.length < FAILURE_SAMPLE) state.failures.push({ shard: f.shard, reason: capReason(f.reason) });
      publish();
    }, historyFull);
    if (!finished) return carryOn() as never;
    const batchCounts = { template: layout.batchCounts(config.runId, EACH), count: batches, optional: true };
    const matched = await io.publishCounts({
      ...run, inputs: batchCounts, stage: 'matched', thresholds: [config.t, config.t1], fingerprint: await io.fingerprintParts({ ...run, partCounts: batchCounts }),
    });
    state.counts = { entries: matched.entries, matches: matched.matches };
    if (historyFull()) return carryOn() as never;
  }

  // Stage 2: each batch's kept-language pairs grouped by uuid bucket into one shuffle file. The bucket count
  // follows the pool found (⌈pairs / pairsPerBucket⌉) unless the run fixed it.
  state.buckets ??= config.dedupBuckets ?? bucketsForPairs(state.shards.pairs, config.pairsPerBucket);
  const buckets = state.buckets;
  if (!state.partitioned) {
    phase = 'partitioning';
    publish();
    await runBucketPhase({
      ...fan, idPrefix: `${config.runId}/partition`, ...run, buckets: batches,
      spec: { op: 'partition', params: { buckets, langs: config.lid === 'on' ? config.langs : null } },
      summary: `split batches into ${buckets} dedup buckets`,
    });
    state.partitioned = true;
    if (historyFull()) return carryOn() as never;
  }

  // Stage 3: cross-pool dedup by (uuid, text), first occurrence in (shard, position) order, one activity per bucket.
  if (!state.dedup) {
    phase = 'dedup';
    publish();
    const results = await runBucketPhase({
      ...fan, idPrefix: `${config.runId}/dedup`, ...run, buckets, spec: { op: 'dedup', params: { buckets, batches } }, summary: `dedup of run ${config.runId}`,
    });
    const stats = results.reduce((s, r) => addDedupStats(s, r.dedup!), { inputPairs: 0, uniquePairs: 0, duplicatePairs: 0, uniqueImages: 0 });
    phase = 'counting';
    publish();
    const partCounts = { template: layout.dedupCounts(config.runId, EACH), count: buckets };
    const counts = await io.publishCounts({
      ...run, inputs: partCounts, stage: 'deduped', thresholds: [config.t, config.t1],
      fingerprint: await io.fingerprintParts({ ...run, partCounts }),
    });
    state.dedup = { stats, counts };
    if (historyFull()) return carryOn() as never;
  }
  const dedup = state.dedup;

  // Stage 4: pass-1 balance with the large t1 before images (saves traffic, leaves headroom for losses).
  const pass1Dir = layout.pass1Dir(config.runId, config.t1, config.seed);
  if (!state.pass1) {
    phase = 'pass1';
    publish();
    const results = await runBucketPhase({
      ...fan, idPrefix: `${config.runId}/pass1`, ...run, buckets,
      inputs: layout.dedupBucket(config.runId, EACH),
      spec: {
        op: 'balance',
        params: {
          countsKey: dedup.counts.key, metadataEntries: prepared.metadataEntries, t: config.t1, seed: config.seed, stream: 'pass1',
          oneTextPerImage: false, outDir: pass1Dir,
        },
      },
      summary: `pass-1 balance t1=${config.t1}`,
    });
    state.pass1 = results.reduce((s, r) => addBalanceTotals(s, r.balance ?? emptyBalanceTotals()), emptyBalanceTotals());
    if (historyFull()) return carryOn() as never;
  }
  const pass1 = state.pass1;

  // Stage 5 (optional): download the pass-1 images into WebDataset tars, dedup the images; the pool keeps the
  // pairs whose image arrived and is not a duplicate, each pointing at its tar.
  const pass1Parts = bucketPart(pass1Dir, EACH).data;
  const images = config.images;
  if (images && !state.images) {
    phase = 'images';
    publish();
    state.images = await imageStage({ ...run, buckets, pass1Parts, images, fan, idPrefix: config.runId });
    publish();
    if (historyFull()) return carryOn() as never;
  }

  // Stage 6: recount what survived; this pool is what the final balance (and any later rebalance) draws from.
  if (!state.balanceInput) {
    phase = 'recount';
    publish();
    const stage = state.images ? 'images' : 'pass1';
    const pool = state.images ? layout.imagePool(config.runId, EACH) : bucketPart(pass1Dir, EACH);
    const partCounts = { template: pool.counts, count: buckets };
    const counts = await io.publishCounts({
      ...run, inputs: partCounts, stage, thresholds: [config.t, config.t1],
      fingerprint: await io.fingerprintParts({ ...run, partCounts }),
    });
    const bi: BalanceInput = {
      runId: config.runId, stage, buckets, parts: pool.data, partCounts: pool.counts, counts,
      metadataEntries: prepared.metadataEntries, pairs: state.images ? state.images.pairs : pass1.selected,
      stages: [
        { stage: 'matched', pairs: state.shards.rows, note: 'all languages' },
        { stage: config.lid === 'on' ? `language filter (${config.langs.join(',')})` : 'no language filter', pairs: dedup.stats.inputPairs },
        { stage: 'cross-pool dedup', pairs: dedup.stats.uniquePairs, images: dedup.stats.uniqueImages },
        { stage: `pass 1 (t1=${config.t1})`, pairs: pass1.selected, images: pass1.images },
        ...(state.images ? [
          { stage: 'images downloaded', pairs: state.images.pairs + state.images.duplicates.pairs, images: state.images.successes, note: `${state.images.failed} images failed` },
          { stage: 'image dedup', pairs: state.images.pairs, images: state.images.pooledImages, note: `${state.images.duplicates.images} duplicate images` },
        ] : []),
      ],
      t1: config.t1, seed: config.seed, t: config.t,
    };
    await io.writeBalanceInput({ ...run, balanceInput: bi });
    state.balanceInput = bi;
  }

  // Stage 7: the final balance with t, then the datacard (same code path as `curate rebalance`).
  if (!state.curated) {
    phase = 'balancing';
    publish();
    state.curated = await balanceSet(state.balanceInput, {
      outRoot: config.outRoot, t: config.t, seed: config.seed, oneTextPerImage: config.oneTextPerImage, tSource: { kind: 'given' },
      workflowId: workflowInfo().workflowId,
    }, fan);
  }

  phase = 'manifest';
  const failedRatio = list.count ? state.shards.failed / list.count : 0;
  const status = failedRatio > config.maxFailedShardRatio ? 'failed' : 'completed';
  manifest = await io.writeRunManifest({
    ...run, config, prepared, batches, shards: state.shards, counts: state.counts!, buckets, dedup: dedup.stats, dedupCounts: dedup.counts,
    pass1: { t1: config.t1, considered: pass1.considered, selected: pass1.selected, expected: pass1.expected, counts: state.balanceInput.counts },
    images: state.images, curated: state.curated, status, startedAt: state.startedAt,
  });
  phase = status === 'completed' ? 'done' : 'failed';
  publish();
  if (status === 'failed') {
    throw ApplicationFailure.nonRetryable(
      `${state.shards.failed} of ${list.count} shards failed (more than ${config.maxFailedShardRatio * 100}%); manifest at ${manifest}`,
      'TooManyFailedShards',
    );
  }
  return progress();
}

export interface ShardBatchInput {
  outRoot: string;
  runId: string;
  list: ShardListRef;
  batch: number;
  /** Shards first..first+count-1 of the list. */
  first: number;
  count: number;
  lid: 'on' | 'off';
  langs: string[];
  shardConfigHash: string;
  heartbeatTimeoutSeconds?: number;
}

/**
 * One batch of shards: each shard processed independently; a failed shard is recorded (with a classified,
 * capped reason), never fatal. Returns the batch's totals and a sample of failures; the rest is in the store.
 */
export async function shardBatch(input: ShardBatchInput): Promise<BatchSummary> {
  const run = { outRoot: input.outRoot, runId: input.runId };
  const options = cpuOptions(input.heartbeatTimeoutSeconds);
  const indexes = Array.from({ length: input.count }, (_, k) => input.first + k);
  await Promise.all(indexes.map(async (index) => {
    try {
      await cpu.processShard.executeWithOptions(
        { ...options, summary: `shard ${index}` },
        [{ ...run, list: input.list, index, lid: input.lid, langs: input.langs, shardConfigHash: input.shardConfigHash }],
      );
    } catch (err) {
      // Retries exhausted (or non-retryable): the shard fails with its reason, the batch goes on.
      const cause = (err as { cause?: { message?: string; type?: string } }).cause;
      const reason = capReason(`${cause?.type ?? 'ActivityFailure'}: ${cause?.message ?? (err as Error).message}`);
      await io.recordShardFailure({ ...run, list: input.list, index, reason });
    }
  }));
  return io.finishBatch({ ...run, list: input.list, batch: input.batch, first: input.first, count: input.count, shardConfigHash: input.shardConfigHash });
}
