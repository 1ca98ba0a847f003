/**
 * The image download activity (IO task queue): one pool part (a bucket of pass-1 selections) → WebDataset
 * tars of `imagesPerTar` images, each with its Parquet index, then the bucket's stats. A chunk is published
 * tar first, index last (the index is the chunk's marker); a chunk of more than `imagesPerPart` images is
 * committed in parts staged next to it as they complete, then assembled. A retried activity skips published
 * chunks and committed parts, so a kill loses at most the parts in flight, no image of a finished part is
 * downloaded twice, and no truncated tar is ever visible.
 */
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Context, heartbeat } from '@temporalio/activity';
import { downloadOne, imageTasks, indexRowOf, sampleOf, type DownloadOutcome, type ImageTask } from '../curation/download';
import { ImageFetcher, type FetchPolicy } from '../curation/fetch';
import { configureSharpForWorker, processImage, validateImageOptions, type ImageOptions } from '../curation/image';
import { duplicateEdges, partitionOf, representatives, signaturesOf, type DuplicateEdge, type Signature } from '../curation/image-dedup';
import { addCounts, countsToIdJson, type EntryCounts } from '../curation/balance';
import { layout } from '../curation/layout';
import { readCuratedParquet, readPoolParquet, writePoolParquet, type PoolRow } from '../storage/parquet';
import {
  imageStatsJson, imageStatsOf, mergeImageStats, readImageIndexParquet, writeImageIndexParquet, type ImageIndexRow, type ImageStats,
} from '../storage/image-index';
import { encodeShuffle, readShuffleSegment } from '../storage/shuffle';
import { openStore } from '../storage/store';
import { publishTar, readTar, TarFileWriter } from '../storage/webdataset';
import { ImageMeter } from './metrics';
import type { RunRef } from './types';

export interface DownloadBucketInput extends RunRef {
  bucket: number;
  /** The pool part whose images are downloaded (pass-1 selections). */
  input: string;
  /** Output directory: chunk-<c>.tar, chunk-<c>.parquet, stats.json. */
  outDir: string;
  imagesPerTar: number;
  /**
   * Images per committed part of a chunk (default 100): a chunk of more is downloaded as parts staged in
   * the store, so a killed attempt loses at most the parts in flight, not the whole chunk.
   */
  imagesPerPart?: number;
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
  /** Parts of unpublished chunks found already committed (resumed, not downloaded again). */
  resumedParts: number;
  stats: ImageStats;
}

export const DEFAULT_IMAGES_PER_PART = 100;

const pad5 = (n: number) => String(n).padStart(5, '0');
export const chunkKeys = (dir: string, chunk: number, prefix = 'chunk') => ({
  tar: `${dir}/${prefix}-${pad5(chunk)}.tar`, index: `${dir}/${prefix}-${pad5(chunk)}.parquet`,
});
/** Where a chunk's parts are staged: `<prefix>-<c>.part-<from>-<to>.{tar,parquet}` (images [from, to) of the chunk). */
export const partPrefix = (dir: string, chunk: number, prefix = 'chunk') => `${dir}/${prefix}-${pad5(chunk)}.part-`;
export const partKeys = (dir: string, chunk: number, from: number, to: number, prefix = 'chunk') => {
  const base = `${partPrefix(dir, chunk, prefix)}${pad5(from)}-${pad5(to)}`;
  return { tar: `${base}.tar`, index: `${base}.parquet` };
};

/**
 * Every key's latest index row: index files in name order (chunks, then retries by time), later rows win.
 * Staged parts (`….part-….parquet`) are not read; nor are the files of `exceptRetry` (a retry's own
 * output, so its task list is the same on every attempt).
 */
async function latestIndexRows(store: ReturnType<typeof openStore>, imagesDir: string, exceptRetry?: string): Promise<Map<string, ImageIndexRow>> {
  const latest = new Map<string, ImageIndexRow>();
  const own = exceptRetry ? `${imagesDir}/${exceptRetry}-` : null;
  for (const k of (await store.list(imagesDir + '/')).filter((x) => /chunk-\d+\.parquet$/.test(x) && !(own && x.startsWith(own))).sort()) {
    for (const r of await readImageIndexParquet(await store.get(k))) latest.set(r.key, r);
  }
  return latest;
}

let sharpConfigured = false;
const faultDelayMs = Number(process.env.CURATE_FAULT_IMAGE_DELAY_MS) || 0;

/** A unit of commit: a whole chunk (published directly) or a part of one (staged, then assembled). */
interface Unit {
  chunk: number;
  keys: { tar: string; index: string };
  tasks: ImageTask[];
  /** The chunk is this one unit: its files are the chunk's own. */
  whole: boolean;
  outcomes: DownloadOutcome[];
  left: number;
}

/**
 * Downloads a bucket's images into chunks of `imagesPerTar`. A chunk is published tar first, index last
 * (the index is its marker). A chunk of more than `imagesPerPart` images is downloaded as parts, each
 * committed as it completes (staged tar, then staged index); when all its parts are committed the chunk's
 * tar is assembled from theirs (the same members in the same order: the same bytes as written at once),
 * published with its index, and the parts are removed. A retried attempt skips published chunks and
 * committed parts, so a kill loses only the parts in flight (at most `imagesPerPart` + `concurrency`
 * images), and the outputs are byte-identical to an undisturbed run's.
 */
export async function downloadBucket(input: DownloadBucketInput): Promise<DownloadBucketResult> {
  if (!sharpConfigured) {
    configureSharpForWorker();
    sharpConfigured = true;
  }
  const perTar = input.imagesPerTar;
  const perPartWanted = input.imagesPerPart ?? DEFAULT_IMAGES_PER_PART;
  for (const [name, v] of [['imagesPerTar', perTar], ['imagesPerPart', perPartWanted]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`downloadBucket: ${name} must be a positive integer, got ${v}`);
  }
  const perPart = Math.min(perPartWanted, perTar);
  const store = openStore(input.outRoot);
  const imageOptions = validateImageOptions(input.image);
  let tasks = imageTasks(input.bucket, await readCuratedParquet(await store.get(input.input)));
  if (input.retry) {
    const latest = await latestIndexRows(store, input.outDir, input.retry);
    tasks = tasks.filter((t) => {
      const r = latest.get(t.key);
      return r !== undefined && r.status === 'failed' && r.retryable === true;
    });
  }
  const prefix = input.retry ? `${input.retry}-chunk` : 'chunk';
  const chunks = Math.ceil(tasks.length / perTar);
  const statsKey = `${input.outDir}/${input.retry ? `${input.retry}-` : ''}stats.json`;
  const ctx = Context.current();
  // Every in-flight fetch listens on the cancellation signal: lift Node's 10-listener warning for it.
  setMaxListeners(0, ctx.cancellationSignal);
  const fetcher = new ImageFetcher(input.fetch);
  const imageMeter = new ImageMeter();
  const tmp = mkdtempSync(path.join(tmpdir(), 'curate-images-'));
  const chunkStats = new Array<ImageStats | undefined>(chunks);
  const partsOf: Array<Array<{ keys: { tar: string; index: string }; tasks: ImageTask[] }>> = [];
  const partsLeft = new Array<number>(chunks).fill(0);
  const pending: Unit[] = [];
  const assembleNow: number[] = [];
  let resumed = 0;
  let resumedParts = 0;
  let imagesDone = 0;
  const beat = setInterval(() => heartbeat({ bucket: input.bucket, imagesDone, chunks }), 2_000);

  const chunkTar = (c: number) => path.posix.basename(chunkKeys(input.outDir, c, prefix).tar);

  /** Writes a unit's tar (members named after the chunk's tar in its rows) then its index. */
  const commit = async (u: Unit): Promise<void> => {
    const writer = await TarFileWriter.open(path.join(tmp, path.posix.basename(u.keys.tar)));
    const rows: ImageIndexRow[] = [];
    try {
      for (const o of u.outcomes) {
        if ('image' in o) await writer.addSample(sampleOf(o));
        rows.push(indexRowOf(o, 'image' in o ? chunkTar(u.chunk) : null));
      }
    } catch (err) {
      await writer.abort();
      throw err;
    }
    await publishTar(store, u.keys.tar, writer);
    await store.put(u.keys.index, await writeImageIndexParquet(rows));
    u.outcomes = [];
    if (u.whole) chunkStats[u.chunk] = imageStatsOf(rows);
    else if (--partsLeft[u.chunk] === 0) await assemble(u.chunk);
  };

  /** A chunk whose parts are all committed: its tar and index from theirs, published, then the parts removed. */
  const assemble = async (c: number): Promise<void> => {
    const keys = chunkKeys(input.outDir, c, prefix);
    const writer = await TarFileWriter.open(path.join(tmp, chunkTar(c)));
    const rows: ImageIndexRow[] = [];
    try {
      for (const part of partsOf[c]) {
        const partRows = await readImageIndexParquet(await store.get(part.keys.index));
        if (partRows.length !== part.tasks.length || partRows.some((r, i) => r.key !== part.tasks[i].key || r.uuid !== part.tasks[i].uuid)) {
          // Not this chunk's part (written for another task list): drop it so the next attempt downloads it again.
          await store.delete(part.keys.index);
          throw new Error(`staged part ${part.keys.index} does not hold the images expected there; removed, it is downloaded again on retry`);
        }
        rows.push(...partRows);
        for (const m of readTar(await store.get(part.keys.tar))) await writer.add(m.name, m.data);
      }
    } catch (err) {
      await writer.abort();
      throw err;
    }
    await publishTar(store, keys.tar, writer);
    await store.put(keys.index, await writeImageIndexParquet(rows));
    chunkStats[c] = imageStatsOf(rows);
    for (const k of await store.list(partPrefix(input.outDir, c, prefix))) await store.delete(k);
  };

  try {
    const listed = await store.list(`${input.outDir}/`);
    const listedSet = new Set(listed);
    for (let c = 0; c < chunks; c++) {
      const keys = chunkKeys(input.outDir, c, prefix);
      const chunk = tasks.slice(c * perTar, (c + 1) * perTar);
      const staged = listed.filter((k) => k.startsWith(partPrefix(input.outDir, c, prefix)));
      partsOf.push([]);
      if (listedSet.has(keys.index)) {
        // Published by an earlier attempt: its images are final (parts left by a kill before their cleanup go).
        chunkStats[c] = imageStatsOf(await readImageIndexParquet(await store.get(keys.index)));
        resumed++;
        imagesDone += chunk.length;
        for (const k of staged) await store.delete(k);
        continue;
      }
      if (chunk.length <= perPart) {
        pending.push({ chunk: c, keys, tasks: chunk, whole: true, outcomes: new Array(chunk.length), left: chunk.length });
        continue;
      }
      for (let from = 0; from < chunk.length; from += perPart) {
        const to = Math.min(from + perPart, chunk.length);
        const part = { keys: partKeys(input.outDir, c, from, to, prefix), tasks: chunk.slice(from, to) };
        partsOf[c].push(part);
        if (listedSet.has(part.keys.index)) {
          resumedParts++;
          imagesDone += part.tasks.length;
        } else {
          partsLeft[c]++;
          pending.push({ chunk: c, keys: part.keys, tasks: part.tasks, whole: false, outcomes: new Array(part.tasks.length), left: part.tasks.length });
        }
      }
      if (partsLeft[c] === 0) assembleNow.push(c);
    }
    for (const c of assembleNow) await assemble(c);

    // One pipeline over every image still to download, in order; a unit is committed as soon as its last
    // image is in. On a failure (or cancellation) no new image is started, and the activity ends only once
    // every lane has stopped, so no commit of this attempt runs on after it.
    // A window bounds what a crash can cost: no image of unit k + 2 starts before unit k is committed, so a
    // killed attempt leaves at most two units (the one committing, the next one) plus the images in flight to
    // fetch again. Without it, fast lanes could run ahead of a slow commit (fsync) without limit.
    const work = pending.flatMap((u, seq) => u.tasks.map((task, i) => ({ u, seq, i, task })));
    const committed = new Array<boolean>(pending.length).fill(false);
    let lowestOpen = 0;
    let waiting: Array<() => void> = [];
    const wakeAll = () => {
      const w = waiting;
      waiting = [];
      for (const resolve of w) resolve();
    };
    let next = 0;
    let failure: { err: unknown } | null = null;
    const lane = async () => {
      while (!failure && next < work.length) {
        const { u, seq, i, task } = work[next++];
        try {
          while (!failure && seq > lowestOpen + 1) await new Promise<void>((resolve) => waiting.push(resolve));
          if (failure) break;
          if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
          const outcome = (u.outcomes[i] = await downloadOne(task, (url) => fetcher.fetch(url, ctx.cancellationSignal), (bytes) => processImage(bytes, imageOptions)));
          imageMeter.image('error' in outcome ? outcome.error.reason : undefined, 'image' in outcome ? outcome.image.bytes.length : 0);
          // Fault injection for the crash tests: widen the window in which a worker can be killed mid-download.
          if (faultDelayMs > 0) await new Promise((r) => setTimeout(r, faultDelayMs));
          imagesDone++;
          if (--u.left === 0) {
            await commit(u);
            committed[seq] = true;
            while (lowestOpen < committed.length && committed[lowestOpen]) lowestOpen++;
            wakeAll();
          }
        } catch (err) {
          failure ??= { err };
          wakeAll();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(input.concurrency, work.length)) }, lane));
    if (failure) throw (failure as { err: unknown }).err;
    if (chunkStats.some((s) => s === undefined)) throw new Error('downloadBucket: a chunk was neither published nor resumed (internal error)');
    const stats = mergeImageStats(...(chunkStats as ImageStats[]));
    await store.put(statsKey, imageStatsJson(stats));
    imageMeter.done();
    return { bucket: input.bucket, images: tasks.length, chunks, resumedChunks: resumed, resumedParts, stats };
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
  // One file per bucket, a segment per partition (storage/shuffle.ts): objects grow with buckets, not buckets².
  const segments = Array.from({ length: input.partitions }, (_, p) => (byPartition.has(p) ? Buffer.from(JSON.stringify(byPartition.get(p))) : null));
  await store.put(layout.imageSignatures(input.runId, input.bucket), encodeShuffle(segments));
  return { bucket: input.bucket, images: images.length };
}

/** Step 2: one partition's duplicate edges (images sharing a signature, compared), its segment of every bucket read in bucket order. */
export async function imageDedupPartition(input: RunRef & { partition: number; partitions: number; buckets: number; maxDistance: number }): Promise<{ partition: number; edges: number }> {
  const store = openStore(input.outRoot);
  const sigs: Signature[] = [];
  for (let bucket = 0; bucket < input.buckets; bucket++) {
    const segment = await readShuffleSegment(store, layout.imageSignatures(input.runId, bucket), input.partition, input.partitions);
    if (segment.length) sigs.push(...(JSON.parse(segment.toString('utf8')) as Signature[]));
    if (bucket % 64 === 63) heartbeat(bucket);
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
