/**
 * Per-bucket work (dedup, balance, plan) fanned out as child workflows of up to BUCKETS_PER_CHILD buckets each,
 * so the parent's history holds one child per chunk, not one activity per bucket, however large the pool.
 */
import { executeChild, proxyActivities, ParentClosePolicy } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { DownloadBucketInput, DownloadBucketResult, ImagePoolResult } from '../activities/images';
import type { BalanceBucketInput, BalanceBucketResult, DedupBucketResult, PlanBucketInput } from '../activities/types';
import { layout } from '../curation/layout';
import { addDedupStats, type DedupStats } from '../curation/dedup';
import { mapLimit } from '../curation/limit';
import { addPlanRows, type PlanRow } from '../curation/planner';
import { DOWNLOAD_OPTIONS, cpuOptions } from './activity-options';
import { TASK_QUEUES } from './search-attributes';

export const BUCKETS_PER_CHILD = 64;

type BalanceParams = Omit<BalanceBucketInput, 'outRoot' | 'runId' | 'bucket' | 'input'>;
type PlanParams = Omit<PlanBucketInput, 'outRoot' | 'runId' | 'bucket' | 'input'>;
type DownloadParams = Omit<DownloadBucketInput, 'outRoot' | 'runId' | 'bucket' | 'input' | 'outDir'>;

export type BucketOp =
  | { op: 'dedup' }
  | { op: 'balance'; params: BalanceParams }
  | { op: 'plan'; params: PlanParams }
  | { op: 'download'; params: DownloadParams }
  | { op: 'imageSignatures'; params: { partitions: number; maxDistance: number } }
  | { op: 'imageDedup'; params: { maxDistance: number } }
  | { op: 'imagePool'; params: { duplicatesKey?: string; duplicatesVersion?: string } };

export interface BucketTasksInput {
  outRoot: string;
  runId: string;
  /** Buckets handled by this child, with their input keys (unused for dedup). */
  buckets: number[];
  inputs: string[];
  spec: BucketOp;
  concurrency: number;
  heartbeatTimeoutSeconds?: number;
}

export interface BucketTasksResult {
  dedup?: DedupStats;
  balance?: BalanceBucketResult[];
  plan?: PlanRow[];
  download?: DownloadBucketResult[];
  imagePool?: ImagePoolResult[];
}

/** Child workflow: one operation over a chunk of buckets, aggregated. */
export async function bucketTasks(input: BucketTasksInput): Promise<BucketTasksResult> {
  const cpu = proxyActivities<typeof activities>(cpuOptions(input.heartbeatTimeoutSeconds));
  const run = { outRoot: input.outRoot, runId: input.runId };
  const spec = input.spec;
  if (spec.op === 'dedup') {
    const results: DedupBucketResult[] = await mapLimit(input.buckets, input.concurrency, (bucket) =>
      cpu.dedupBucket.executeWithOptions({ ...cpuOptions(input.heartbeatTimeoutSeconds), summary: `dedup bucket ${bucket}` }, [{ ...run, bucket }]));
    return { dedup: results.reduce((s, r) => addDedupStats(s, r.stats), { inputPairs: 0, uniquePairs: 0, duplicatePairs: 0, uniqueImages: 0 }) };
  }
  if (spec.op === 'balance') {
    const results = await mapLimit(input.buckets, input.concurrency, (bucket, i) =>
      cpu.balanceBucket.executeWithOptions(
        { ...cpuOptions(input.heartbeatTimeoutSeconds), summary: `${spec.params.stream} balance bucket ${bucket}, t=${spec.params.t}` },
        [{ ...run, ...spec.params, bucket, input: input.inputs[i] }],
      ));
    return { balance: results };
  }
  if (spec.op === 'download') {
    const options = { ...DOWNLOAD_OPTIONS, ...(input.heartbeatTimeoutSeconds ? { heartbeatTimeout: input.heartbeatTimeoutSeconds * 1000 } : {}) };
    const io = proxyActivities<typeof activities>(options);
    const results = await mapLimit(input.buckets, input.concurrency, (bucket, i) =>
      io.downloadBucket.executeWithOptions(
        { ...options, summary: `download images of bucket ${bucket}` },
        [{ ...run, ...spec.params, bucket, input: input.inputs[i], outDir: layout.imagesDir(input.runId, bucket) }],
      ));
    return { download: results };
  }
  if (spec.op === 'imageSignatures') {
    await mapLimit(input.buckets, input.concurrency, (bucket) =>
      cpu.imageSignaturesBucket.executeWithOptions(
        { ...cpuOptions(input.heartbeatTimeoutSeconds), summary: `image signatures of bucket ${bucket}` },
        [{ ...run, bucket, imagesDir: layout.imagesDir(input.runId, bucket), ...spec.params }],
      ));
    return {};
  }
  if (spec.op === 'imageDedup') {
    await mapLimit(input.buckets, input.concurrency, (partition) =>
      cpu.imageDedupPartition.executeWithOptions(
        { ...cpuOptions(input.heartbeatTimeoutSeconds), summary: `image dedup partition ${partition}` },
        [{ ...run, partition, maxDistance: spec.params.maxDistance }],
      ));
    return {};
  }
  if (spec.op === 'imagePool') {
    const results = await mapLimit(input.buckets, input.concurrency, (bucket, i) =>
      cpu.imagePoolBucket.executeWithOptions(
        { ...cpuOptions(input.heartbeatTimeoutSeconds), summary: `pool of downloaded images, bucket ${bucket}` },
        [{ ...run, bucket, input: input.inputs[i], imagesDir: layout.imagesDir(input.runId, bucket), ...spec.params }],
      ));
    return { imagePool: results };
  }
  const rows = await mapLimit(input.buckets, input.concurrency, (bucket, i) =>
    cpu.planBucket.executeWithOptions(
      { ...cpuOptions(input.heartbeatTimeoutSeconds), summary: `plan bucket ${bucket} for ${spec.params.ts.length} thresholds` },
      [{ ...run, ...spec.params, bucket, input: input.inputs[i] }],
    ));
  return { plan: rows.reduce((acc, r) => addPlanRows(acc, r), [] as PlanRow[]) };
}

export interface BucketPhase {
  /** Prefix of the children's workflow ids, e.g. `<runId>/dedup`. */
  idPrefix: string;
  outRoot: string;
  runId: string;
  /** Input key per bucket (index = bucket); empty for dedup. */
  inputs: string[];
  buckets: number;
  spec: BucketOp;
  /** Chunks in flight at once, and activities in flight per chunk. */
  childWindow: number;
  concurrency: number;
  heartbeatTimeoutSeconds?: number;
  summary: string;
}

/** Runs a bucket operation over all buckets in chunked children; returns each child's result in bucket order. */
export async function runBucketPhase(phase: BucketPhase): Promise<BucketTasksResult[]> {
  const chunks: number[][] = [];
  for (let b = 0; b < phase.buckets; b += BUCKETS_PER_CHILD) {
    chunks.push(Array.from({ length: Math.min(BUCKETS_PER_CHILD, phase.buckets - b) }, (_, k) => b + k));
  }
  return mapLimit(chunks, phase.childWindow, (buckets) =>
    executeChild(bucketTasks, {
      workflowId: `${phase.idPrefix}/buckets-${String(buckets[0]).padStart(5, '0')}`,
      taskQueue: TASK_QUEUES.orchestration,
      args: [{
        outRoot: phase.outRoot, runId: phase.runId, buckets, inputs: phase.inputs.length ? buckets.map((b) => phase.inputs[b]) : [],
        spec: phase.spec, concurrency: phase.concurrency, heartbeatTimeoutSeconds: phase.heartbeatTimeoutSeconds,
      }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      staticSummary: `${phase.summary}: buckets ${buckets[0]}..${buckets[buckets.length - 1]}`,
    }));
}
