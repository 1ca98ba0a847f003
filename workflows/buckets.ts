/**
 * Per-item work (batches to partition, buckets to dedup/balance/plan/download) fanned out as child workflows of
 * a range of items each, so the parent's history holds at most MAX_CHILDREN children per phase and each child
 * at most a few hundred activities, however large the pool. Inputs and results are O(1): a child gets a range
 * and a key template, and returns sums; per-item results stay in the store (each activity's marker).
 */
import { executeChild, proxyActivities, ParentClosePolicy } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { DownloadBucketInput, DownloadBucketResult, ImagePoolResult } from '../activities/images';
import type { BalanceBucketInput, BalanceBucketResult, BalanceTotals, PlanBucketInput } from '../activities/types';
import { keyAt, layout } from '../curation/layout';
import { addDedupStats, type DedupStats } from '../curation/dedup';
import { mapLimit } from '../curation/limit';
import { addPlanRows, type PlanRow } from '../curation/planner';
import { downloadOptions, cpuOptions } from './activity-options';
import { TASK_QUEUES } from './search-attributes';

/** Children per phase at most; each gets ⌈items / MAX_CHILDREN⌉ items, at least MIN_ITEMS_PER_CHILD. */
export const MAX_CHILDREN = 64;
export const MIN_ITEMS_PER_CHILD = 64;

export function itemsPerChild(items: number): number {
  return Math.max(MIN_ITEMS_PER_CHILD, Math.ceil(items / MAX_CHILDREN));
}

type BalanceParams = Omit<BalanceBucketInput, 'outRoot' | 'runId' | 'bucket' | 'input'>;
type PlanParams = Omit<PlanBucketInput, 'outRoot' | 'runId' | 'bucket' | 'input'>;
type DownloadParams = Omit<DownloadBucketInput, 'outRoot' | 'runId' | 'bucket' | 'input' | 'outDir'>;

export type BucketOp =
  | { op: 'partition'; params: { buckets: number; langs: string[] | null } }
  | { op: 'dedup'; params: { buckets: number; batches: number } }
  | { op: 'balance'; params: BalanceParams }
  | { op: 'plan'; params: PlanParams }
  | { op: 'download'; params: DownloadParams }
  | { op: 'imageSignatures'; params: { partitions: number; maxDistance: number } }
  | { op: 'imageDedup'; params: { maxDistance: number; partitions: number; buckets: number } }
  | { op: 'imagePool'; params: { duplicatesKey?: string; duplicatesVersion?: string } };

export interface BucketTasksInput {
  outRoot: string;
  runId: string;
  /** Items first..first+count-1 (buckets, or batches for partition). */
  first: number;
  count: number;
  /** Input key template of an item (layout EACH), for the ops that read one. */
  inputs?: string;
  spec: BucketOp;
  concurrency: number;
  heartbeatTimeoutSeconds?: number;
}

/** Download outcomes summed over buckets. */
export interface DownloadTotals {
  images: number;
  successes: number;
  failed: number;
  bytes: number;
  failures: Record<string, number>;
  resumedChunks: number;
}

export interface PoolTotals {
  pairs: number;
  images: number;
  duplicatePairs: number;
}

export interface BucketTasksResult {
  dedup?: DedupStats;
  balance?: BalanceTotals;
  plan?: PlanRow[];
  download?: DownloadTotals;
  imagePool?: PoolTotals;
}

export function emptyBalanceTotals(): BalanceTotals {
  return { considered: 0, selected: 0, images: 0, expected: 0 };
}

export function addBalanceTotals(into: BalanceTotals, from: BalanceTotals | BalanceBucketResult): BalanceTotals {
  into.considered += from.considered;
  into.selected += from.selected;
  into.images += from.images;
  into.expected += from.expected;
  return into;
}

export function emptyDownloadTotals(): DownloadTotals {
  return { images: 0, successes: 0, failed: 0, bytes: 0, failures: {}, resumedChunks: 0 };
}

export function addDownloadTotals(into: DownloadTotals, from: DownloadTotals): DownloadTotals {
  into.images += from.images;
  into.successes += from.successes;
  into.failed += from.failed;
  into.bytes += from.bytes;
  into.resumedChunks += from.resumedChunks;
  for (const [k, n] of Object.entries(from.failures)) into.failures[k] = (into.failures[k] ?? 0) + n;
  return into;
}

function downloadTotalsOf(d: DownloadBucketResult): DownloadTotals {
  return {
    images: d.images, successes: d.stats.successes, failed: d.stats.failed, bytes: d.stats.bytes, failures: d.stats.failures, resumedChunks: d.resumedChunks,
  };
}

export function addPoolTotals(into: PoolTotals, from: PoolTotals | ImagePoolResult): PoolTotals {
  into.pairs += from.pairs;
  into.images += from.images;
  into.duplicatePairs += from.duplicatePairs;
  return into;
}

/** Child workflow: one operation over a range of items, aggregated. */
export async function bucketTasks(input: BucketTasksInput): Promise<BucketTasksResult> {
  const options = cpuOptions(input.heartbeatTimeoutSeconds);
  const cpu = proxyActivities<typeof activities>(options);
  const run = { outRoot: input.outRoot, runId: input.runId };
  const spec = input.spec;
  const items = Array.from({ length: input.count }, (_, k) => input.first + k);
  const inputOf = (item: number) => keyAt(input.inputs!, item);
  const each = <R>(f: (item: number) => Promise<R>) => mapLimit(items, input.concurrency, f);
  const out: BucketTasksResult = {};
  switch (spec.op) {
    case 'partition': {
      // Each batch's pair counts are in its partition marker; the run already knows its total from matching.
      await each((batch) => cpu.partitionBatch.executeWithOptions(
        { ...options, summary: `split batch ${batch} into ${spec.params.buckets} dedup buckets` },
        [{ ...run, batch, ...spec.params }],
      ));
      return out;
    }
    case 'dedup': {
      const results = await each((bucket) => cpu.dedupBucket.executeWithOptions(
        { ...options, summary: `dedup bucket ${bucket}` }, [{ ...run, bucket, ...spec.params }]));
      out.dedup = results.reduce((s, r) => addDedupStats(s, r.stats), { inputPairs: 0, uniquePairs: 0, duplicatePairs: 0, uniqueImages: 0 });
      return out;
    }
    case 'balance': {
      const results = await each((bucket) => cpu.balanceBucket.executeWithOptions(
        { ...options, summary: `${spec.params.stream} balance bucket ${bucket}, t=${spec.params.t}` },
        [{ ...run, ...spec.params, bucket, input: inputOf(bucket) }],
      ));
      out.balance = results.reduce(addBalanceTotals, emptyBalanceTotals());
      return out;
    }
    case 'download': {
      const dl = downloadOptions(input.heartbeatTimeoutSeconds);
      const io = proxyActivities<typeof activities>(dl);
      const results = await each((bucket) => io.downloadBucket.executeWithOptions(
        { ...dl, summary: `download images of bucket ${bucket}` },
        [{ ...run, ...spec.params, bucket, input: inputOf(bucket), outDir: layout.imagesDir(input.runId, bucket) }],
      ));
      out.download = results.reduce((s, r) => addDownloadTotals(s, downloadTotalsOf(r)), emptyDownloadTotals());
      return out;
    }
    case 'imageSignatures':
      await each((bucket) => cpu.imageSignaturesBucket.executeWithOptions(
        { ...options, summary: `image signatures of bucket ${bucket}` },
        [{ ...run, bucket, imagesDir: layout.imagesDir(input.runId, bucket), ...spec.params }],
      ));
      return out;
    case 'imageDedup':
      await each((partition) => cpu.imageDedupPartition.executeWithOptions(
        { ...options, summary: `image dedup partition ${partition}` }, [{ ...run, partition, ...spec.params }]));
      return out;
    case 'imagePool': {
      const results = await each((bucket) => cpu.imagePoolBucket.executeWithOptions(
        { ...options, summary: `pool of downloaded images, bucket ${bucket}` },
        [{ ...run, bucket, input: inputOf(bucket), imagesDir: layout.imagesDir(input.runId, bucket), ...spec.params }],
      ));
      out.imagePool = results.reduce(addPoolTotals, { pairs: 0, images: 0, duplicatePairs: 0 });
      return out;
    }
    case 'plan': {
      const rows = await each((bucket) => cpu.planBucket.executeWithOptions(
        { ...options, summary: `plan bucket ${bucket} for ${spec.params.ts.length} thresholds` },
        [{ ...run, ...spec.params, bucket, input: inputOf(bucket) }],
      ));
      out.plan = rows.reduce((acc, r) => addPlanRows(acc, r), [] as PlanRow[]);
      return out;
    }
  }
}

export interface BucketPhase {
  /** Prefix of the children's workflow ids, e.g. `<runId>/dedup`. */
  idPrefix: string;
  outRoot: string;
  runId: string;
  /** Input key template per item (layout EACH); absent for ops that need none. */
  inputs?: string;
  /** Items (buckets, or batches for partition). */
  buckets: number;
  spec: BucketOp;
  /** Chunks in flight at once, and activities in flight per chunk. */
  childWindow: number;
  concurrency: number;
  heartbeatTimeoutSeconds?: number;
  summary: string;
}

/** Runs an operation over all items in chunked children; returns each child's sums in item order. */
export async function runBucketPhase(phase: BucketPhase): Promise<BucketTasksResult[]> {
  const per = itemsPerChild(phase.buckets);
  const chunks: Array<{ first: number; count: number }> = [];
  for (let b = 0; b < phase.buckets; b += per) chunks.push({ first: b, count: Math.min(per, phase.buckets - b) });
  return mapLimit(chunks, phase.childWindow, ({ first, count }) =>
    executeChild(bucketTasks, {
      workflowId: `${phase.idPrefix}/buckets-${String(first).padStart(5, '0')}`,
      taskQueue: TASK_QUEUES.orchestration,
      args: [{
        outRoot: phase.outRoot, runId: phase.runId, first, count, inputs: phase.inputs,
        spec: phase.spec, concurrency: phase.concurrency, heartbeatTimeoutSeconds: phase.heartbeatTimeoutSeconds,
      }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      staticSummary: `${phase.summary}: ${first}..${first + count - 1}`,
    }));
}
