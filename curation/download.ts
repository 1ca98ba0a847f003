/**
 * Downloading the images of a pool part (pure of Temporal and storage): group the selected pairs by image
 * (one download per image however many of its texts were selected), fetch and process each image once, and
 * describe the outcome as WebDataset samples plus index rows. Chunks of images are the unit of resumption:
 * the caller publishes one tar + index per chunk and skips chunks already published.
 */
import type { CuratedRow } from '../storage/parquet';
import type { ImageIndexRow } from '../storage/image-index';
import type { WebDatasetSample } from '../storage/webdataset';
import type { FetchResult } from './fetch';
import type { ProcessedImage } from './image';

export interface ImageTask {
  /** WebDataset key: zero-padded bucket + image index within the bucket. */
  key: string;
  uuid: string;
  url: string;
  /** The pool's pairs of this image, in pool order. */
  pairs: CuratedRow[];
}

export function imageKey(bucket: number, index: number): string {
  return `${String(bucket).padStart(5, '0')}${String(index).padStart(7, '0')}`;
}

/** Pairs grouped by image in order of first appearance. */
export function imageTasks(bucket: number, rows: readonly CuratedRow[]): ImageTask[] {
  const byUuid = new Map<string, ImageTask>();
  const tasks: ImageTask[] = [];
  for (const row of rows) {
    let task = byUuid.get(row.uuid);
    if (!task) {
      task = { key: imageKey(bucket, tasks.length), uuid: row.uuid, url: row.url, pairs: [] };
      byUuid.set(row.uuid, task);
      tasks.push(task);
    }
    task.pairs.push(row);
  }
  return tasks;
}

export type DownloadOutcome =
  | { task: ImageTask; fetched: Omit<Extract<FetchResult, { ok: true }>, 'bytes'>; image: Extract<ProcessedImage, { ok: true }> }
  | { task: ImageTask; error: { reason: string; detail: string; retryable: boolean }; attempts: number };

/**
 * Fetch then process one image; every failure is classified, nothing throws for bad input. The downloaded
 * body is not kept in the outcome (a chunk holds its outcomes until its tar is written).
 */
export async function downloadOne(
  task: ImageTask,
  fetch: (url: string) => Promise<FetchResult>,
  process: (bytes: Buffer) => Promise<ProcessedImage>,
): Promise<DownloadOutcome> {
  const fetched = await fetch(task.url);
  if (!fetched.ok) return { task, error: { reason: fetched.reason, detail: fetched.detail, retryable: fetched.retryable }, attempts: fetched.attempts };
  const image = await process(fetched.bytes);
  if (!image.ok) return { task, error: { reason: image.reason, detail: image.detail, retryable: false }, attempts: fetched.attempts };
  const { bytes: _body, ...meta } = fetched;
  return { task, fetched: meta, image };
}

/** The sample written to the tar: the image, its first selected text, and everything about it as JSON. */
export function sampleOf(o: Extract<DownloadOutcome, { image: unknown }>): WebDatasetSample {
  const { task, image } = o;
  return {
    key: task.key,
    image: { ext: image.ext, bytes: image.bytes },
    text: task.pairs[0].text,
    json: {
      key: task.key,
      uuid: task.uuid,
      url: task.url,
      texts: task.pairs.map((p) => p.text),
      entry_ids: task.pairs.map((p) => p.entry_ids),
      width: image.width,
      height: image.height,
      original_width: image.originalWidth,
      original_height: image.originalHeight,
      sha256: image.sha256,
      phash: image.phash,
    },
  };
}

export function indexRowOf(o: DownloadOutcome, tar: string | null): ImageIndexRow {
  const base = { key: o.task.key, uuid: o.task.uuid, url: o.task.url };
  if ('error' in o) {
    return {
      ...base, status: 'failed', error: `${o.error.reason}: ${o.error.detail}`, sha256: null, phash: null, width: null, height: null,
      original_width: null, original_height: null, bytes: null, tar: null, attempts: o.attempts, retryable: o.error.retryable,
    };
  }
  return {
    ...base, status: 'success', error: null, sha256: o.image.sha256, phash: o.image.phash, width: o.image.width, height: o.image.height,
    original_width: o.image.originalWidth, original_height: o.image.originalHeight, bytes: o.image.bytes.length, tar, attempts: o.fetched.attempts,
    retryable: null,
  };
}
