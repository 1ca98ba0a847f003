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
export const chunkKeys = (dir: string, chunk: number) => ({ tar: `${dir}/chunk-${pad5(chunk)}.tar`, index: `${dir}/chunk-${pad5(chunk)}.parquet` });

let sharpConfigured = false;

export async function downloadBucket(input: DownloadBucketInput): Promise<DownloadBucketResult> {
  if (!sharpConfigured) {
    configureSharpForWorker();
    sharpConfigured = true;
  }
  const store = openStore(input.outRoot);
  const imageOptions = validateImageOptions(input.image);
  const tasks = imageTasks(input.bucket, await readCuratedParquet(await store.get(input.input)));
  const chunks = Math.ceil(tasks.length / input.imagesPerTar);
  const statsKey = `${input.outDir}/stats.json`;
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
      const keys = chunkKeys(input.outDir, c);
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

export interface ImagePoolInput extends RunRef {
  bucket: number;
  /** The pass-1 part whose images were downloaded into `imagesDir`. */
  input: string;
  imagesDir: string;
}

export interface ImagePoolResult {
  bucket: number;
  pairs: number;
  images: number;
}

/**
 * The pool after downloads: the part's pairs whose image was downloaded, each pointing at its image
 * (WebDataset key + tar), and their entry counts (the recount). Image dedup will narrow this further.
 */
export async function imagePoolBucket(input: ImagePoolInput): Promise<ImagePoolResult> {
  const store = openStore(input.outRoot);
  const out = layout.imagePool(input.runId, input.bucket);
  const success = new Map<string, { key: string; tar: string }>();
  for (const k of (await store.list(input.imagesDir + '/')).filter((x) => /chunk-\d+\.parquet$/.test(x)).sort()) {
    for (const r of await readImageIndexParquet(await store.get(k))) {
      if (r.status === 'success' && r.tar) success.set(r.uuid, { key: r.key, tar: `${input.imagesDir}/${r.tar}` });
    }
  }
  const kept: PoolRow[] = [];
  const counts: EntryCounts = new Map();
  for (const row of await readPoolParquet(await store.get(input.input))) {
    const image = success.get(row.uuid);
    if (!image) continue;
    kept.push({ ...row, image_key: image.key, image_tar: image.tar });
    addCounts(counts, row.entry_ids);
  }
  await store.put(out.data, await writePoolParquet(kept));
  await store.put(out.counts, JSON.stringify(countsToIdJson(counts)));
  return { bucket: input.bucket, pairs: kept.length, images: new Set(kept.map((r) => r.uuid)).size };
}
