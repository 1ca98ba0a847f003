/**
 * The image download activity (IO task queue): one pool part (a bucket of pass-1 selections) → WebDataset
 * tars of `imagesPerTar` images, each with its Parquet index, then the bucket's stats. A chunk is published
 * tar first, index last (the index is the chunk's marker): a retried activity skips published chunks, so no
 * image of a finished chunk is downloaded twice and no truncated tar is ever visible.
 */
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Context, heartbeat } from '@temporalio/activity';
import { downloadOne, imageTasks, indexRowOf, sampleOf, type DownloadOutcome } from '../curation/download';
import { ImageFetcher, type FetchPolicy } from '../curation/fetch';
import { configureSharpForWorker, processImage, validateImageOptions, type ImageOptions } from '../curation/image';
import { duplicateEdges, partitionOf, representatives, signaturesOf, type DuplicateEdge, type Signature } from '../curation/image-dedup';
import { mapLimit } from '../curation/limit';
import { addCounts, countsToIdJson, type EntryCounts } from '../curation/balance';
import { layout } from '../curation/layout';
import { readCuratedParquet, readPoolParquet, writePoolParquet, type PoolRow } from '../storage/parquet';
import {
  imageStatsJson, imageStatsOf, mergeImageStats, readImageIndexParquet, writeImageIndexParquet, type ImageIndexRow, type ImageStats,
} from '../storage/image-index';
import { openStore } from '../storage/store';
import { publishTar, TarFileWriter } from '../storage/webdataset';
import type { RunRef } from './types';

export interface DownloadBucketInput extends RunRef {
  bucket: number;
  /** The pool part whose images are downloaded (pass-1 selections). */
  input: string;
  /** Output directory: chunk-<c>.tar, chunk-<c>.parquet, stats.json. */
  outDir: string;
  imagesPerTar: number;
  /** Downloads in flight in this activity (the fetcher also limits per host). */
  concurrency: number;
  fetch: Partial<FetchPolicy>;
  image: Partial<ImageOptions>;
  /**
   * A retry (`retry-<stamp>`): only images whose latest index row is a retryable failure are downloaded,
   * into `<retry>-chunk-<c>` files; a later row for a key supersedes earlier ones.
   */
  retry?: string;
}

export interface DownloadBucketResult {
  bucket: number;
  images: number;
  chunks: number;
  /** Chunks found already published (resumed, not downloaded again). */
  resumedChunks: number;
  stats: ImageStats;
}

const pad5 = (n: number) => String(n).padStart(5, '0');
export const chunkKeys = (dir: string, chunk: number, prefix = 'chunk') => ({
  tar: `${dir}/${prefix}-${pad5(chunk)}.tar`, index: `${dir}/${prefix}-${pad5(chunk)}.parquet`,
});

/** Every key's latest index row: index files in name order (chunks, then retries by time), later rows win. */
async function latestIndexRows(store: ReturnType<typeof openStore>, imagesDir: string): Promise<Map<string, ImageIndexRow>> {
  const latest = new Map<string, ImageIndexRow>();
  for (const k of (await store.list(imagesDir + '/')).filter((x) => /chunk-\d+\.parquet$/.test(x)).sort()) {
    for (const r of await readImageIndexParquet(await store.get(k))) latest.set(r.key, r);
  }
  return latest;
}

let sharpConfigured = false;
const faultDelayMs = Number(process.env.CURATE_FAULT_IMAGE_DELAY_MS) || 0;

export async function downloadBucket(input: DownloadBucketInput): Promise<DownloadBucketResult> {
  if (!sharpConfigured) {
    configureSharpForWorker();
    sharpConfigured = true;
  }
  const store = openStore(input.outRoot);
  const imageOptions = validateImageOptions(input.image);
  let tasks = imageTasks(input.bucket, await readCuratedParquet(await store.get(input.input)));
  if (input.retry) {
    const latest = await latestIndexRows(store, input.outDir);
    tasks = tasks.filter((t) => {
      const r = latest.get(t.key);
      return r !== undefined && r.status === 'failed' && r.retryable === true;
    });
  }
  const prefix = input.retry ? `${input.retry}-chunk` : 'chunk';
  const chunks = Math.ceil(tasks.length / input.imagesPerTar);
  const statsKey = `${input.outDir}/${input.retry ? `${input.retry}-` : ''}stats.json`;
  const ctx = Context.current();
  // Every in-flight fetch listens on the cancellation signal: lift Node's 10-listener warning for it.
  setMaxListeners(0, ctx.cancellationSignal);
  const fetcher = new ImageFetcher(input.fetch);
  const tmp = mkdtempSync(path.join(tmpdir(), 'curate-images-'));
  const all: ImageStats[] = [];
  let resumed = 0;
  let imagesDone = 0;
  const beat = setInterval(() => heartbeat({ bucket: input.bucket, imagesDone, chunks }), 2_000);
  try {
    for (let c = 0; c < chunks; c++) {
      const keys = chunkKeys(input.outDir, c, prefix);
      const chunk = tasks.slice(c * input.imagesPerTar, (c + 1) * input.imagesPerTar);
      if (await store.exists(keys.index)) {
        // Published by an earlier attempt: its images are final.
        all.push(imageStatsOf(await readImageIndexParquet(await store.get(keys.index))));
        resumed++;
        imagesDone += chunk.length;
        continue;
      }
      const outcomes: DownloadOutcome[] = await mapLimit(chunk, input.concurrency, async (task) => {
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
        const o = await downloadOne(task, (url) => fetcher.fetch(url, ctx.cancellationSignal), (bytes) => processImage(bytes, imageOptions));
        // Fault injection for the crash tests: widen the window in which a worker can be killed mid-download.
        if (faultDelayMs > 0) await new Promise((r) => setTimeout(r, faultDelayMs));
        imagesDone++;
        return o;
      });
      const tarName = path.posix.basename(keys.tar);
      const writer = await TarFileWriter.open(path.join(tmp, tarName));
      const rows: ImageIndexRow[] = [];
      for (const o of outcomes) {
        if ('image' in o) await writer.addSample(sampleOf(o));
        rows.push(indexRowOf(o, 'image' in o ? tarName : null));
      }
      await publishTar(store, keys.tar, writer);
      await store.put(keys.index, await writeImageIndexParquet(rows));
      all.push(imageStatsOf(rows));
    }
    const stats = mergeImageStats(...all);
    await store.put(statsKey, imageStatsJson(stats));
    return { bucket: input.bucket, images: tasks.length, chunks, resumedChunks: resumed, stats };
  } finally {
    clearInterval(beat);
    await fetcher.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The bucket's downloaded images (latest row per key is a success), in key order. */
async function downloadedImages(store: ReturnType<typeof openStore>, imagesDir: string): Promise<ImageIndexRow[]> {
  const latest = await latestIndexRows(store, imagesDir);
  return [...latest.values()].filter((r) => r.status === 'success' && r.tar).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export interface ImageSignaturesInput extends RunRef {
  bucket: number;
  imagesDir: string;
  partitions: number;
  maxDistance: number;
}

/** Step 1 of image dedup: a bucket's downloaded images as signatures, routed to dedup partitions. */
export async function imageSignaturesBucket(input: ImageSignaturesInput): Promise<{ bucket: number; images: number }> {
  const store = openStore(input.outRoot);
  const byPartition = new Map<number, Signature[]>();
  const images = await downloadedImages(store, input.imagesDir);
  for (const r of images) {
    for (const sig of signaturesOf({ key: r.key, sha256: r.sha256!, phash: r.phash! }, input.maxDistance)) {
      const p = partitionOf(sig.sig, input.partitions);
      let list = byPartition.get(p);
      if (!list) byPartition.set(p, (list = []));
      list.push(sig);
    }
  }
  for (const [p, sigs] of byPartition) await store.put(layout.imageSignatures(input.runId, p, input.bucket), JSON.stringify(sigs));
  return { bucket: input.bucket, images: images.length };
}

/** Step 2: one partition's duplicate edges (images sharing a signature, compared). */
export async function imageDedupPartition(input: RunRef & { partition: number; maxDistance: number }): Promise<{ partition: number; edges: number }> {
  const store = openStore(input.outRoot);
  const sigs: Signature[] = [];
  for (const k of (await store.list(layout.imageSignaturesDir(input.runId, input.partition))).sort()) {
    sigs.push(...(JSON.parse((await store.get(k)).toString('utf8')) as Signature[]));
  }
  const edges = duplicateEdges(sigs, input.maxDistance);
  await store.put(layout.imageEdges(input.runId, input.partition), JSON.stringify(edges));
  return { partition: input.partition, edges: edges.length };
}

export interface ImageDuplicatesResult {
  key: string;
  duplicates: number;
  exact: number;
  near: number;
}

/** Step 3: every duplicate image → its group's first image in pool order (images/duplicates.json). */
export async function resolveImageDuplicates(input: RunRef & { partitions: number }): Promise<ImageDuplicatesResult> {
  const store = openStore(input.outRoot);
  const edges: DuplicateEdge[] = [];
  for (let p = 0; p < input.partitions; p++) {
    const k = layout.imageEdges(input.runId, p);
    if (await store.exists(k)) edges.push(...(JSON.parse((await store.get(k)).toString('utf8')) as DuplicateEdge[]));
  }
  const reps = representatives(edges);
  const exactKeys = new Set(edges.filter((e) => e.kind === 'exact').map((e) => e.key));
  let exact = 0;
  for (const k of reps.keys()) if (exactKeys.has(k)) exact++;
  const key = layout.imageDuplicates(input.runId);
  await store.put(key, JSON.stringify(Object.fromEntries(reps)));
  return { key, duplicates: reps.size, exact, near: reps.size - exact };
}

export interface ImagePoolInput extends RunRef {
  bucket: number;
  /** The pass-1 part whose images were downloaded into `imagesDir`. */
  input: string;
  imagesDir: string;
  /** images/duplicates.json (duplicate key → representative key); absent: no image dedup. */
  duplicatesKey?: string;
  /** Changes whenever duplicates.json is rewritten (a retry), so a worker's cached copy is not reused. */
  duplicatesVersion?: string;
}

export interface ImagePoolResult {
  bucket: number;
  pairs: number;
  images: number;
  /** Pairs dropped because their image duplicates an earlier one. */
  duplicatePairs: number;
}

let duplicatesCache: { key: string; map: Map<string, string> } | null = null;

/**
 * The pool after downloads: the part's pairs whose image was downloaded, each pointing at its image
 * (WebDataset key + tar), and their entry counts (the recount). Image dedup will narrow this further.
 */
export async function imagePoolBucket(input: ImagePoolInput): Promise<ImagePoolResult> {
  const store = openStore(input.outRoot);
  const out = layout.imagePool(input.runId, input.bucket);
  const success = new Map<string, { key: string; tar: string }>();
  for (const r of await downloadedImages(store, input.imagesDir)) success.set(r.uuid, { key: r.key, tar: `${input.imagesDir}/${r.tar}` });
  let duplicates = new Map<string, string>();
  if (input.duplicatesKey) {
    const cacheKey = `${input.outRoot}|${input.duplicatesKey}|${input.duplicatesVersion ?? ''}`;
    if (duplicatesCache?.key !== cacheKey) {
      const json = JSON.parse((await store.get(input.duplicatesKey)).toString('utf8')) as Record<string, string>;
      duplicatesCache = { key: cacheKey, map: new Map(Object.entries(json)) };
    }
    duplicates = duplicatesCache.map;
  }
  const kept: PoolRow[] = [];
  const counts: EntryCounts = new Map();
  let duplicatePairs = 0;
  for (const row of await readPoolParquet(await store.get(input.input))) {
    const image = success.get(row.uuid);
    if (!image) continue;
    if (duplicates.has(image.key)) {
      // The same picture came earlier in pool order: only its first image (and that image's texts) stays.
      duplicatePairs++;
      continue;
    }
    kept.push({ ...row, image_key: image.key, image_tar: image.tar });
    addCounts(counts, row.entry_ids);
  }
  await store.put(out.data, await writePoolParquet(kept));
  await store.put(out.counts, JSON.stringify(countsToIdJson(counts)));
  return { bucket: input.bucket, pairs: kept.length, images: new Set(kept.map((r) => r.uuid)).size, duplicatePairs };
}
