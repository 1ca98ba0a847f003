/**
 * Orchestration only: deterministic, no I/O. The root `curation` workflow runs the stages in order:
 *   matching (batch children: fetch → extract → match each shard, then split the batch's pairs by uuid bucket)
 *   → cross-pool dedup (per bucket) → counts → pass-1 balance with t1 (per bucket) → [images: next stage]
 *   → recount → final balance with t (per bucket) → datacard → manifest.
 * Per-bucket work runs in chunked child workflows (workflows/buckets.ts). The root continues as new when the
 * history grows, carrying its (small) state, so shard and bucket counts are tuning knobs.
 */
import {
  ApplicationFailure, allHandlersFinished, condition, continueAsNew, defineQuery, executeChild, proxyActivities,
  setHandler, upsertSearchAttributes, workflowInfo, ParentClosePolicy,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type {
  BalanceBucketResult, BalanceInput, BatchSummary, CountsSummary, CuratedSetSummary, PrepareRunResult, ShardResult, SumCountsResult,
} from '../activities/types';
import type { DedupStats } from '../curation/dedup';
import type { CurationConfig, ShardRef } from '../curation/run';
import { bucketPart, layout } from '../curation/layout';
import { balanceSet, type Fanout } from './balance-set';
import { IO_OPTIONS, cpuOptions } from './activity-options';
import { runBucketPhase } from './buckets';
import { imageStage, type ImagesSummary } from './images';
import { PHASE, RUN_ID, SHARDS_DONE, SHARDS_FAILED, TASK_QUEUES } from './search-attributes';

const io = proxyActivities<typeof activities>(IO_OPTIONS);

const cpu = proxyActivities<typeof activities>(cpuOptions());

export type Phase = 'preparing' | 'matching' | 'dedup' | 'counting' | 'pass1' | 'images' | 'recount' | 'balancing' | 'datacard' | 'manifest' | 'done' | 'failed';

export interface CurationProgress {
  runId: string;
  phase: Phase;
  shardsTotal: number;
  shardsDone: number;
  shardsFailed: number;
  batchesTotal: number;
  batchesDone: number;
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
  /** First failed shards with their reasons (the full list is in the manifest). */
  failures: Array<{ shard: string; reason: string }>;
  curated?: CuratedSetSummary;
  manifest?: string;
}

export const progressQuery = defineQuery<CurationProgress>('progress');

/** State carried across continue-as-new. */
export interface CurationState {
  startedAt: string;
  prepared?: PrepareRunResult;
  batches: BatchSummary[];
  counts?: SumCountsResult;
  failures: Array<{ shard: string; reason: string }>;
  dedup?: { stats: DedupStats; counts: CountsSummary };
  pass1?: { parts: BalanceBucketResult[] };
  images?: ImagesSummary;
  balanceInput?: BalanceInput;
  curated?: CuratedSetSummary;
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

const sumParts = (parts: BalanceBucketResult[], f: (p: BalanceBucketResult) => number) => parts.reduce((s, p) => s + f(p), 0);

export async function curation(config: CurationConfig, carried?: CurationState): Promise<CurationProgress> {
  const state: CurationState = carried ?? { startedAt: new Date(workflowInfo().startTime).toISOString(), batches: [], failures: [] };
  const batches = planBatches(config.shards, config.shardsPerBatch);
  const sum = (f: (b: BatchSummary) => number) => state.batches.reduce((s, b) => s + f(b), 0);
  let phase: Phase = state.prepared ? 'matching' : 'preparing';
  let manifest: string | undefined;
  const progress = (): CurationProgress => ({
    runId: config.runId,
    phase,
    shardsTotal: config.shards.length,
    shardsDone: sum((b) => b.done),
    shardsFailed: sum((b) => b.failed),
    batchesTotal: batches.length,
    batchesDone: state.batches.length,
    matches: state.counts?.matches ?? 0,
    dedupedPairs: state.dedup?.stats.uniquePairs ?? 0,
    pass1Selected: state.pass1 ? sumParts(state.pass1.parts, (p) => p.selected) : 0,
    imagesDownloaded: state.images?.successes ?? 0,
    imagesFailed: state.images?.failed ?? 0,
    selected: state.curated?.selected ?? 0,
    failures: state.failures.slice(0, 20),
    curated: state.curated,
    manifest,
  });
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
  const fan: Fanout = { idPrefix: config.runId, childWindow: config.maxConcurrentBatches, concurrency: 4, heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds };
  const buckets = config.dedupBuckets;

  upsertSearchAttributes([{ key: RUN_ID, value: config.runId }]);
  if (!state.prepared) {
    publish();
    state.prepared = await io.prepareRun({ ...run, metadataSource: config.metadataSource, lid: config.lid, config });
  }
  const prepared = state.prepared;

  // Stage 1: every shard fetched, extracted and matched, batch by batch in child workflows; each batch then
  // splits its kept-language pairs by uuid bucket for the cross-pool dedup.
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
          heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds, buckets,
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
    const batchCounts = state.batches.filter((b) => b.done > 0).map((b) => b.countsKey);
    const matched = await io.publishCounts({
      ...run, inputs: batchCounts, stage: 'matched', thresholds: [config.t, config.t1], fingerprint: await io.fingerprintParts({ ...run, partCounts: batchCounts }),
    });
    state.counts = { entries: matched.entries, matches: matched.matches };
    if (historyFull()) return carryOn() as never;
  }

  // Stage 2: cross-pool dedup by (uuid, text), first occurrence in (shard, position) order, one activity per bucket.
  const bucketList = Array.from({ length: buckets }, (_, b) => b);
  if (!state.dedup) {
    phase = 'dedup';
    publish();
    const results = await runBucketPhase({
      ...fan, idPrefix: `${config.runId}/dedup`, ...run, inputs: [], buckets, spec: { op: 'dedup' }, summary: `dedup of run ${config.runId}`,
    });
    const stats = results.reduce((s, r) => {
      const d = r.dedup!;
      return { inputPairs: s.inputPairs + d.inputPairs, uniquePairs: s.uniquePairs + d.uniquePairs, duplicatePairs: s.duplicatePairs + d.duplicatePairs, uniqueImages: s.uniqueImages + d.uniqueImages };
    }, { inputPairs: 0, uniquePairs: 0, duplicatePairs: 0, uniqueImages: 0 });
    phase = 'counting';
    publish();
    const partCounts = bucketList.map((b) => layout.dedupCounts(config.runId, b));
    const counts = await io.publishCounts({
      ...run, inputs: partCounts, stage: 'deduped', thresholds: [config.t, config.t1],
      fingerprint: await io.fingerprintParts({ ...run, partCounts }),
    });
    state.dedup = { stats, counts };
    if (historyFull()) return carryOn() as never;
  }
  const dedup = state.dedup;

  // Stage 3: pass-1 balance with the large t1 before images (saves traffic, leaves headroom for losses).
  const pass1Dir = layout.pass1Dir(config.runId, config.t1, config.seed);
  if (!state.pass1) {
    phase = 'pass1';
    publish();
    const results = await runBucketPhase({
      ...fan, idPrefix: `${config.runId}/pass1`, ...run, buckets,
      inputs: bucketList.map((b) => layout.dedupBucket(config.runId, b)),
      spec: {
        op: 'balance',
        params: {
          countsKey: dedup.counts.key, metadataEntries: prepared.metadataEntries, t: config.t1, seed: config.seed, stream: 'pass1',
          oneTextPerImage: false, outDir: pass1Dir,
        },
      },
      summary: `pass-1 balance t1=${config.t1}`,
    });
    state.pass1 = { parts: results.flatMap((r) => r.balance ?? []) };
    if (historyFull()) return carryOn() as never;
  }
  const pass1 = state.pass1;

  // Stage 4 (optional): download the pass-1 images into WebDataset tars; the pool keeps the pairs whose image
  // arrived, each pointing at its tar. (Image dedup plugs in after this.)
  const pass1Parts = bucketList.map((b) => bucketPart(pass1Dir, b).data);
  const images = config.images;
  if (images && !state.images) {
    phase = 'images';
    publish();
    state.images = await imageStage({ ...run, buckets, pass1Parts, images, fan, idPrefix: config.runId });
    publish();
    if (historyFull()) return carryOn() as never;
  }

  // Stage 5: recount what survived; this pool is what the final balance (and any later rebalance) draws from.
  if (!state.balanceInput) {
    phase = 'recount';
    publish();
    const stage = state.images ? 'images' : 'pass1';
    const parts = state.images ? bucketList.map((b) => layout.imagePool(config.runId, b).data) : pass1Parts;
    const partCounts = bucketList.map((b) => (state.images ? layout.imagePool(config.runId, b) : bucketPart(pass1Dir, b)).counts);
    const counts = await io.publishCounts({
      ...run, inputs: partCounts, stage, thresholds: [config.t, config.t1],
      fingerprint: await io.fingerprintParts({ ...run, partCounts }),
    });
    const matchedPairs = sum((b) => b.rows);
    const bi: BalanceInput = {
      runId: config.runId, stage, parts, partCounts, counts,
      metadataEntries: prepared.metadataEntries, pairs: state.images ? state.images.pairs : sumParts(pass1.parts, (p) => p.selected),
      stages: [
        { stage: 'matched', pairs: matchedPairs, note: 'all languages' },
        { stage: config.lid === 'on' ? `language filter (${config.langs.join(',')})` : 'no language filter', pairs: dedup.stats.inputPairs },
        { stage: 'cross-pool dedup', pairs: dedup.stats.uniquePairs, images: dedup.stats.uniqueImages },
        { stage: `pass 1 (t1=${config.t1})`, pairs: sumParts(pass1.parts, (p) => p.selected), images: sumParts(pass1.parts, (p) => p.images) },
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

  // Stage 6: the final balance with t, then the datacard (same code path as `curate rebalance`).
  if (!state.curated) {
    phase = 'balancing';
    publish();
    state.curated = await balanceSet(state.balanceInput, {
      outRoot: config.outRoot, t: config.t, seed: config.seed, oneTextPerImage: config.oneTextPerImage, tSource: { kind: 'given' },
      workflowId: workflowInfo().workflowId,
    }, fan);
  }

  phase = 'manifest';
  const failedRatio = config.shards.length ? sum((b) => b.failed) / config.shards.length : 0;
  const status = failedRatio > config.maxFailedShardRatio ? 'failed' : 'completed';
  manifest = await io.writeRunManifest({
    ...run, config, prepared, batches: state.batches, counts: state.counts!, dedup: dedup.stats, dedupCounts: dedup.counts,
    pass1: {
      t1: config.t1, considered: sumParts(pass1.parts, (p) => p.considered), selected: sumParts(pass1.parts, (p) => p.selected),
      expected: sumParts(pass1.parts, (p) => p.expected), counts: state.balanceInput.counts,
    },
    images: state.images, curated: state.curated, status, startedAt: state.startedAt,
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
  /** Dedup buckets of the run: the batch splits its pairs by uuid bucket. */
  buckets: number;
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
  const partition = await cpu.partitionBatch.executeWithOptions(
    { ...cpuOptions(input.heartbeatTimeoutSeconds), summary: `split batch ${input.batch} into ${input.buckets} dedup buckets` },
    [{ outRoot: input.outRoot, runId: input.runId, batch: input.batch, batchManifest: manifestKey, buckets: input.buckets, langs: input.lid === 'on' ? input.langs : null }],
  );
  const failed = results.filter((r) => r.status === 'failed');
  return {
    summary: {
      batch: input.batch, shards: results.length, done: done.length, failed: failed.length,
      rows: done.reduce((s, r) => s + (r.rows ?? 0), 0), pairs: partition.pairs, countsKey, manifestKey,
    },
    failures: failed.map((r) => ({ shard: r.shard.id, reason: r.reason ?? 'unknown' })),
  };
}
