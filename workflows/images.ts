/**
 * The image stage (download → image dedup → pool of downloaded pairs), shared by the curation workflow and
 * `retry-failed`, which runs it again over the retryable failures only (`retry`).
 */
import { ApplicationFailure, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { ImageDuplicatesResult } from '../activities/images';
import { EACH, bucketPart, layout } from '../curation/layout';
import type { ImagesConfig } from '../curation/run';
import { IO_OPTIONS } from './activity-options';
import type { Fanout } from './balance-set';
import { addDownloadTotals, addPoolTotals, emptyDownloadTotals, runBucketPhase, type DownloadTotals, type PoolTotals } from './buckets';
import { PHASE, RUN_ID, SOURCE_RUN_ID } from './search-attributes';

const io = proxyActivities<typeof activities>(IO_OPTIONS);

/** Download outcomes of the whole pool (summed from the children's per-bucket sums), image dedup and the pool. */
export interface ImagesSummary extends DownloadTotals {
  /** Downloaded images that duplicate an earlier one (exact bytes, or pHash within the distance only). */
  duplicates: { images: number; exact: number; near: number; pairs: number };
  /** Pairs (and images) whose image was downloaded and is not a duplicate: the pool of the final balance. */
  pairs: number;
  pooledImages: number;
}

export function summariseImages(downloads: DownloadTotals[], pools: PoolTotals[], dup: ImageDuplicatesResult): ImagesSummary {
  const d = downloads.reduce(addDownloadTotals, emptyDownloadTotals());
  const p = pools.reduce(addPoolTotals, { pairs: 0, images: 0, duplicatePairs: 0 });
  return {
    ...d, pairs: p.pairs, pooledImages: p.images,
    duplicates: { images: dup.duplicates, exact: dup.exact, near: dup.near, pairs: p.duplicatePairs },
  };
}


export interface ImageStageInput {
  outRoot: string;
  runId: string;
  buckets: number;
  /** Pass-1 part of each bucket, a key template (the images to download and the pairs they carry). */
  pass1Parts: string;
  images: ImagesConfig;
  fan: Fanout;
  /** Prefix of child workflow ids. */
  idPrefix: string;
  /** A retry id: download only the retryable failures, then redo dedup and the pool. */
  retry?: string;
}

export async function imageStage(input: ImageStageInput): Promise<ImagesSummary> {
  const { images, buckets } = input;
  const run = { outRoot: input.outRoot, runId: input.runId };
  const common = { ...input.fan, ...run, inputs: input.pass1Parts, buckets };
  const downloads = await runBucketPhase({
    ...common, idPrefix: `${input.idPrefix}/images`, concurrency: images.bucketConcurrency,
    spec: {
      op: 'download',
      params: { imagesPerTar: images.imagesPerTar, concurrency: images.concurrency, fetch: images.fetch, image: images.image, retry: input.retry },
    },
    summary: input.retry ? `retry failed downloads (${input.retry})` : `download images of run ${input.runId}`,
  });
  // Image dedup (exact bytes and pHash within a distance): signatures routed to partitions, edges per
  // partition, then one map of duplicates → the first image of their group in pool order.
  const maxDistance = images.phashDistance;
  await runBucketPhase({
    ...common, idPrefix: `${input.idPrefix}/image-signatures`, spec: { op: 'imageSignatures', params: { partitions: buckets, maxDistance } },
    summary: 'image dedup signatures',
  });
  await runBucketPhase({ ...common, inputs: undefined, idPrefix: `${input.idPrefix}/image-dedup`, spec: { op: 'imageDedup', params: { maxDistance, partitions: buckets, buckets } }, summary: 'image dedup partitions' });
  const duplicates = await io.resolveImageDuplicates({ ...run, partitions: buckets });
  const pools = await runBucketPhase({
    ...common, idPrefix: `${input.idPrefix}/image-pool`,
    spec: { op: 'imagePool', params: { duplicatesKey: duplicates.key, duplicatesVersion: input.retry ?? 'initial' } },
    summary: 'pool of downloaded, deduplicated images',
  });
  return summariseImages(downloads.flatMap((r) => r.download ?? []), pools.flatMap((r) => r.imagePool ?? []), duplicates);
}

export interface RetryFailedRequest {
  outRoot: string;
  runId: string;
  /** `retry-<stamp>`: names the new chunks; later retries supersede earlier rows. */
  retryId: string;
  maxConcurrent: number;
}

export interface RetryFailedResult {
  runId: string;
  retryId: string;
  /** Images retried (retryable failures) and how they went. */
  retried: number;
  successes: number;
  failed: number;
  failures: Record<string, number>;
  /** The pool of the final balance after the retry. */
  pairs: number;
  pooledImages: number;
  balanceInput: string;
}

/**
 * `curate retry-failed`: downloads again only the images whose latest outcome is a retryable failure
 * (timeouts, resets, 5xx, 429), then redoes image dedup and the pool and refreshes the run's balance input,
 * so the next `curate rebalance` recounts and uses the new images. Nothing else is redone.
 */
export async function retryFailed(req: RetryFailedRequest): Promise<RetryFailedResult> {
  upsertSearchAttributes([{ key: RUN_ID, value: `${req.runId}.${req.retryId}` }, { key: SOURCE_RUN_ID, value: req.runId }, { key: PHASE, value: 'images' }]);
  const run = { outRoot: req.outRoot, runId: req.runId };
  const config = await io.loadRunConfig(run);
  if (!config.images) throw ApplicationFailure.nonRetryable(`run ${req.runId} ran without the image stage (--images off): nothing to retry`, 'ConfigError');
  // The bucket count may have been chosen by the run from its pool: the balance input records it.
  const { buckets } = await io.loadBalanceInput(run);
  const pass1Dir = layout.pass1Dir(req.runId, config.t1, config.seed);
  const summary = await imageStage({
    ...run, buckets, images: config.images, retry: req.retryId, idPrefix: `${req.runId}.${req.retryId}`,
    pass1Parts: bucketPart(pass1Dir, EACH).data,
    fan: { idPrefix: `${req.runId}.${req.retryId}`, childWindow: req.maxConcurrent, concurrency: 4, heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds },
  });
  upsertSearchAttributes([{ key: PHASE, value: 'recount' }]);
  const partCounts = { template: layout.imagePool(req.runId, EACH).counts, count: buckets };
  const counts = await io.publishCounts({
    ...run, inputs: partCounts, stage: 'images', thresholds: [config.t, config.t1], fingerprint: await io.fingerprintParts({ ...run, partCounts }),
  });
  await io.refreshBalanceInput({
    ...run, counts, pairs: summary.pairs, pooledImages: summary.pooledImages, duplicatePairs: summary.duplicates.pairs, newImages: summary.successes,
  });
  upsertSearchAttributes([{ key: PHASE, value: 'done' }]);
  return {
    runId: req.runId, retryId: req.retryId, retried: summary.images, successes: summary.successes, failed: summary.failed, failures: summary.failures,
    pairs: summary.pairs, pooledImages: summary.pooledImages, balanceInput: layout.balanceInput(req.runId),
  };
}
