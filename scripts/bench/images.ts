/**
 * `npx curate bench images`: downloading + resizing images from a loopback HTTP server, our download activity
 * (activities/images.ts `downloadBucket`: ImageFetcher → processImage → WebDataset tar chunks + Parquet index)
 * next to img2dataset 1.47.0 (PyPI, scripts/bench/images_baseline.py) on the same server, the same URLs and
 * the same resize settings, measured in the same run.
 *
 * One image server (scripts/image-server.ts) runs in this (parent) process for both sides: `--images` distinct
 * URLs http://127.0.0.1:<port>/img/bench/<i>.jpg over 64 generated 1024×768 pictures with photo-like noise,
 * each served as a JPEG of quality 95, 88 or 80 (≈ 130 KB on average); no URL fails. The server's CPU is in
 * this process, so neither side's CPU time includes it.
 *
 * Same settings on both sides: image_size 256, resize_mode border, jpg quality 95 (img2dataset's defaults,
 * which ours copy), sha256 of the downloaded bytes, timeout 10 s, no retries, `--concurrency` downloads in
 * flight (img2dataset: thread_count, one process), `--images-per-tar` samples per tar (its
 * number_sample_per_shard), captions written as `.txt`. Our side runs the download activity itself in a child
 * Node process (under @temporalio/testing's MockActivityEnvironment): it reads a curated Parquet part, downloads
 * with the fetcher's per-host limit raised to `--concurrency` (img2dataset has none) and loopback allowed,
 * writes and publishes (fsync + rename) each tar, then its Parquet index, then stats.json.
 *
 * Not the same work: ours also computes a 64-bit DCT pHash per image (for image dedup) and applies EXIF
 * orientation (the generated JPEGs have none); img2dataset's EXIF extraction and wandb are turned off.
 *
 * Measured per side: wall time and CPU time (user + sys). Ours: process.cpuUsage() of the child around the
 * activity (all its threads: libuv's sharp work, GC). img2dataset: getrusage(SELF + CHILDREN) around
 * `download()` (its spawned worker and logger processes included), and, the figure we compare against, the
 * worker's own CPU and wall time inside its shards (without spawning the worker and its imports). Checks: both
 * sides succeed on every URL, the sha256 of every URL's downloaded bytes agrees, every stored JPEG decodes to
 * 256×256, and a sample of output pairs is compared pixel by pixel (PSNR).
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';
import sharp from 'sharp';
import type { Metadata } from 'sharp';
import type { DownloadBucketInput, DownloadBucketResult } from '../../activities/images';
import { ConfigError } from '../../curation/errors';
import { mapLimit } from '../../curation/limit';
import type { FetchPolicy } from '../../curation/fetch';
import type { ImageOptions } from '../../curation/image';
import { readImageIndexParquet } from '../../storage/image-index';
import { writeCuratedParquet, type CuratedRow } from '../../storage/parquet';
import { readTar } from '../../storage/webdataset';
import type { ParsedArgs } from '../args';
import { startImageServer } from '../image-server';
import {
  DATA, PY_DIR, ensureVenv, int, machineInfo, mb, nowS, profileSummary, progress, rel, runJson, runOurs, secs, throttle, writeFileAtomic,
} from '../commands/bench';

/** Ours must process at least this multiple of img2dataset's images per CPU-second (in its shards)… */
const IMAGES_TARGET = 1.3;
/** …and at least this multiple of its images per second (wall, in its shards). */
const IMAGES_WALL_TARGET = 1.5;
/** Every sampled output pair must be at least this close (PSNR, ours vs img2dataset). */
const PSNR_TARGET_DB = 40;
const PICTURE = { variants: 64, width: 1024, height: 768, noise: 8 } as const;
/** The same resize and encode settings on both sides (img2dataset's defaults). */
const RESIZE = { imageSize: 256, resizeMode: 'border', encodeFormat: 'jpg', encodeQuality: 95 } as const;
const TIMEOUT_S = 10;
/** Output pairs compared pixel by pixel. */
const PSNR_SAMPLES = 32;

// ---------------------------------------------------------------------------------------------------------
// our side (in the bench child process)

export interface ImagesOurs {
  impl: string;
  seconds: number;
  cpu_s: number;
  cpu_user_s: number;
  cpu_system_s: number;
  /** Share of the wall time the main (JS) thread was busy. */
  event_loop_utilization: number;
  /** Garbage collections on the main thread during the run (all, mark-compact) and their pause time. */
  gc_pauses: number;
  gc_major: number;
  gc_pause_s: number;
  /** CPU seconds by thread name (Linux): main thread, "node" (libuv pool, V8 helpers), "libvips worker". */
  cpu_by_thread_s: Record<string, number>;
  images: number;
  successes: number;
  failed: number;
  failures: Record<string, number>;
  chunks: number;
  image_bytes: number;
  max_rss_bytes: number;
  [k: string]: unknown;
}

/** What the child runs: the download activity's own input, minus the run identity. */
type ChildSpec = Pick<DownloadBucketInput, 'outRoot' | 'input' | 'outDir' | 'imagesPerTar' | 'concurrency' | 'fetch' | 'image'>;

export async function childImages(spec: ChildSpec): Promise<void> {
  // Loaded before the clock starts: the activity, the Temporal activity mock, sharp, undici.
  const { MockActivityEnvironment } = await import('@temporalio/testing');
  const { downloadBucket } = await import('../../activities/images');
  const env = new MockActivityEnvironment();
  const total = spec.concurrency; // for the message only
  const tick = throttle();
  env.on('heartbeat', (d: { imagesDone?: number }) => tick(() => `ours: ${int(d?.imagesDone ?? 0)} images done (${total} in flight)`));
  const gc = { count: 0, major: 0, ms: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.ms += e.duration;
      if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === 4) gc.major++; // NODE_PERFORMANCE_GC_MAJOR
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const threads0 = threadCpu();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = nowS();
  const result: DownloadBucketResult = await env.run(downloadBucket, {
    outRoot: spec.outRoot, runId: 'bench', bucket: 0, input: spec.input, outDir: spec.outDir,
    imagesPerTar: spec.imagesPerTar, concurrency: spec.concurrency, fetch: spec.fetch, image: spec.image,
  });
  const seconds = nowS() - t0;
  const cpu = process.cpuUsage(cpu0);
  const threads = threadCpuDelta(threads0, threadCpu(), (cpu.user + cpu.system) / 1e6);
  const elu = performance.eventLoopUtilization(elu0);
  obs.disconnect();
  const summary: ImagesOurs = {
    impl: `node ${process.version} download activity (undici ${undiciVersion()}, sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips})`,
    seconds,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    cpu_user_s: cpu.user / 1e6,
    cpu_system_s: cpu.system / 1e6,
    event_loop_utilization: elu.utilization,
    gc_pauses: gc.count,
    gc_major: gc.major,
    gc_pause_s: gc.ms / 1000,
    cpu_by_thread_s: threads,
    images: result.images,
    successes: result.stats.successes,
    failed: result.stats.failed,
    failures: result.stats.failures,
    chunks: result.chunks,
    image_bytes: result.stats.bytes,
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}

export interface CostSpec {
  urls: string[];
  concurrency: number;
  fetch: Partial<FetchPolicy>;
  image: Partial<ImageOptions>;
}

export interface CostLine {
  step: string;
  /** CPU milliseconds (all threads of the process) per item. */
  cpu_ms: number;
  /** Milliseconds per item the main thread was busy (event-loop utilization). */
  main_ms: number;
}

/** Runs `fn(i)` for i < n, `concurrency` at a time; CPU (all threads) and main-thread busy time per item. */
async function costOf(step: string, n: number, concurrency: number, fn: (i: number) => Promise<unknown> | unknown): Promise<CostLine> {
  for (let i = 0; i < Math.min(n, 32); i++) await fn(i); // warm-up (JIT, libvips' first-use setup)
  const indexes = Array.from({ length: n }, (_, i) => i);
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  await mapLimit(indexes, concurrency, async (i) => fn(i));
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  return { step, cpu_ms: (cpu.user + cpu.system) / 1000 / n, main_ms: elu.active / n };
}

/**
 * `--breakdown`: what one image costs, step by step, in a fresh process like the activity's: the fetch, the JPEG
 * fast path's TurboJPEG decode (+ area resize) and encode (restated here by hand, so keep them in step with
 * curation/image.ts), the JS pHash and SHA-256, `processImage` itself; then the sharp path it replaces (a sharp
 * call's fixed cost, decode + resize, encode, and processImage with the fast path off). Same settings and
 * concurrency as the timed runs.
 */
export async function childImageCosts(spec: CostSpec): Promise<void> {
  const { createHash } = await import('node:crypto');
  const { ImageFetcher } = await import('../../curation/fetch');
  const { configureSharpForWorker, jpegDecodeScale, phashFromPixels, processImage, resizeArea, setJpegFastPath, validateImageOptions } = await import('../../curation/image');
  const { turboJpeg } = await import('../../curation/turbojpeg');
  configureSharpForWorker(); // as the worker: libvips cache off, one libvips thread per pipeline
  const o = validateImageOptions(spec.image);
  const n = spec.urls.length;
  const c = spec.concurrency;
  const fetcher = new ImageFetcher(spec.fetch);
  const bodies: Buffer[] = new Array(n);
  const lines: CostLine[] = [];
  try {
    lines.push(await costOf('fetch (HTTP GET, body in memory)', n, c, async (i) => {
      const r = await fetcher.fetch(spec.urls[i]);
      if (!r.ok) throw new Error(`fetch ${spec.urls[i]}: ${r.reason} ${r.detail}`);
      bodies[i] = r.bytes;
    }));
  } finally {
    await fetcher.close();
  }
  lines.push(await costOf('SHA-256 of the body', n, c, (i) => createHash('sha256').update(bodies[i]).digest('hex')));
  const side = o.imageSize;
  const tj = turboJpeg();
  const resized: Array<{ data: Buffer; width: number; height: number; channels: 1 | 3 }> = new Array(n);
  if (tj) {
    // The JPEG fast path's steps (curation/image.ts renderJpegFast), restated: DCT-scaled decode, area resize.
    lines.push(await costOf(`TurboJPEG: decode at a DCT reduction (jpegDecodeScale to fit ${side}) → raw`, n, c, async (i) => {
      const info = tj.readJpegInfo(bodies[i]);
      if (!info) throw new Error(`not a plain JPEG: ${spec.urls[i]}`);
      const k = Math.min(side / info.width, side / info.height);
      const tw = Math.max(1, Math.round(info.width * k));
      const th = Math.max(1, Math.round(info.height * k));
      const d = await tj.decode(bodies[i], jpegDecodeScale(info.width, info.height, tw, th), o.maxPixels);
      resized[i] = d.width === tw && d.height === th
        ? { data: d.data, width: tw, height: th, channels: d.channels }
        : { data: resizeArea(d.data, d.width, d.height, d.channels, tw, th), width: tw, height: th, channels: d.channels };
    }));
    const flat = Buffer.alloc(side * side * 3, 128);
    lines.push(await costOf(`TurboJPEG: encode ${side}×${side} flat raw → jpg q${o.encodeQuality}`, n, c, () => tj.encode(flat, side, side, 3, o.encodeQuality)));
  }
  lines.push(await costOf('pHash of those pixels (JS)', n, c, (i) => (resized[i] ? phashFromPixels(resized[i].data, resized[i].width, resized[i].height, resized[i].channels) : null)));
  lines.push(await costOf('processImage (all of the above but the fetch, + pad + encode)', n, c, async (i) => {
    const r = await processImage(bodies[i], o);
    if (!r.ok) throw new Error(`processImage ${spec.urls[i]}: ${r.reason} ${r.detail}`);
  }));
  // The sharp path it replaces for clean JPEGs (still the path of PNG/WebP/GIF, rotated, damaged or CMYK JPEGs).
  const tiny = Buffer.alloc(8 * 8 * 3, 128);
  lines.push(await costOf('sharp path: one sharp call, 8×8 raw → raw (fixed cost)', n, c, () => sharp(tiny, { raw: { width: 8, height: 8, channels: 3 } }).raw().toBuffer()));
  lines.push(await costOf(`sharp path: one sharp call, decode + resize to fit ${side} → raw`, n, c, async (i) => {
    await sharp(bodies[i], { sequentialRead: true, failOn: 'truncated' }).resize(side, side, { fit: 'inside', kernel: 'cubic' }).raw().toBuffer();
  }));
  const flatJpg = Buffer.alloc(side * side * 3, 128);
  lines.push(await costOf(`sharp path: one sharp call, ${side}×${side} flat raw → jpg q${o.encodeQuality}`, n, c, () => sharp(flatJpg, { raw: { width: side, height: side, channels: 3 } })
    .jpeg({ quality: o.encodeQuality, chromaSubsampling: '4:2:0', optimiseCoding: false }).toBuffer()));
  setJpegFastPath(false);
  lines.push(await costOf('sharp path: processImage with the JPEG fast path off', n, c, async (i) => {
    const r = await processImage(bodies[i], o);
    if (!r.ok) throw new Error(`processImage ${spec.urls[i]}: ${r.reason} ${r.detail}`);
  }));
  setJpegFastPath(true);
  process.stdout.write(JSON.stringify({ lines }) + '\n');
}

/** CPU seconds per thread of this process (Linux /proc; empty elsewhere): tid → [name, seconds]. */
function threadCpu(): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  const hz = 100; // USER_HZ
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, [tid === String(process.pid) ? 'main thread' : name, (Number(f[11]) + Number(f[12])) / hz]);
    }
  } catch {
    // not Linux
  }
  return out;
}

/** CPU seconds between two snapshots, by thread name ("node": libuv's pool and V8's helpers). */
function threadCpuDelta(before: Map<string, [string, number]>, after: Map<string, [string, number]>, total: number): Record<string, number> {
  const by: Record<string, number> = {};
  let sum = 0;
  for (const [tid, [name, s]] of after) {
    const d = s - (before.get(tid)?.[1] ?? 0);
    by[name] = (by[name] ?? 0) + d;
    sum += d;
  }
  if (after.size) by['exited threads'] = Math.max(0, total - sum);
  return by;
}

function undiciVersion(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return (require('undici/package.json') as { version: string }).version;
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------------------------------------------------
// img2dataset's side (summary printed by images_baseline.py)

interface ImagesBaseline {
  impl: string;
  seconds: number;
  cpu_s: number;
  shard_wall_s: number;
  shard_cpu_s: number;
  shards: number;
  worker_max_rss_bytes: number;
  max_rss_bytes: number;
  stats: { count: number; successes: number; failed_to_download: number; failed_to_resize: number };
  successes: number;
  tars: string[];
  tar_bytes: number;
}

interface BaselineDetail {
  url: string;
  key: string;
  status: string;
  error_message: string | null;
  sha256: string | null;
  width: number | null;
  height: number | null;
}

// ---------------------------------------------------------------------------------------------------------
// output checks

interface StoredImage {
  key: string;
  jpg: Buffer;
}

/** url → the stored JPEG, from WebDataset tars (the url is in each sample's .json). */
function imagesByUrl(tars: string[]): Map<string, StoredImage> {
  const out = new Map<string, StoredImage>();
  for (const tar of tars) {
    const pending = new Map<string, { jpg?: Buffer; url?: string }>();
    for (const m of readTar(readFileSync(tar))) {
      const dot = m.name.lastIndexOf('.');
      const key = m.name.slice(0, dot);
      const ext = m.name.slice(dot + 1);
      const s = pending.get(key) ?? {};
      if (ext === 'jpg') s.jpg = m.data;
      else if (ext === 'json') s.url = (JSON.parse(m.data.toString('utf8')) as { url: string }).url;
      pending.set(key, s);
      if (s.jpg && s.url) {
        out.set(s.url, { key, jpg: s.jpg });
        pending.delete(key);
      }
    }
  }
  return out;
}

interface DimsCheck {
  images: number;
  checked: number;
  ok: number;
  examples: string[];
}

/** Every stored image decodes (header) as a 256×256 JPEG. */
async function checkDims(images: Map<string, StoredImage>): Promise<DimsCheck> {
  const r: DimsCheck = { images: images.size, checked: 0, ok: 0, examples: [] };
  for (const [url, img] of images) {
    r.checked++;
    let meta: Metadata | null = null;
    try {
      meta = await sharp(img.jpg).metadata();
    } catch (err) {
      if (r.examples.length < 3) r.examples.push(`${url}: ${(err as Error).message}`);
      continue;
    }
    if (meta.format === 'jpeg' && meta.width === RESIZE.imageSize && meta.height === RESIZE.imageSize) r.ok++;
    else if (r.examples.length < 3) r.examples.push(`${url}: ${meta.format} ${meta.width}x${meta.height}`);
  }
  return r;
}

/** PSNR (dB) of two 8-bit RGB pictures of the same size. */
async function psnr(a: Buffer, b: Buffer): Promise<number> {
  const da = await sharp(a).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const db = await sharp(b).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (da.info.width !== db.info.width || da.info.height !== db.info.height || da.data.length !== db.data.length) return NaN;
  let se = 0;
  for (let i = 0; i < da.data.length; i++) {
    const d = da.data[i] - db.data[i];
    se += d * d;
  }
  const mse = se / da.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

// ---------------------------------------------------------------------------------------------------------
// the bench

export async function benchImages(flags: ParsedArgs['flags']): Promise<void> {
  const n = Number(flags.images);
  const runs = Number(flags.runs);
  const concurrency = Number(flags.concurrency);
  const perTar = Number(flags['images-per-tar']);
  if (!(Number.isSafeInteger(n) && n >= 1)) throw new ConfigError('--images must be a positive integer');
  if (!(Number.isInteger(runs) && runs >= 1)) throw new ConfigError('--runs must be ≥ 1');
  if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 1024)) throw new ConfigError('--concurrency must be an integer from 1 to 1024');
  if (!(Number.isInteger(perTar) && perTar >= 2)) throw new ConfigError('--images-per-tar must be an integer ≥ 2'); // img2dataset needs log10(per shard) > 0
  mkdirSync(DATA, { recursive: true });
  const py = ensureVenv();
  const profile = flags.profile ? path.join(DATA, 'profiles', 'images-ours.cpuprofile') : null;

  progress(`generating ${PICTURE.variants} ${PICTURE.width}×${PICTURE.height} pictures and starting the loopback image server…`);
  const server = await startImageServer({ variants: PICTURE.variants, width: PICTURE.width, height: PICTURE.height, noise: PICTURE.noise, missingShare: 0 });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'curate-bench-images-'));
  try {
    const urls = Array.from({ length: n }, (_, i) => `${server.baseUrl}img/bench/${i}.jpg`);
    // What is served: the mean body size over a stride of the URLs (also warms the server up).
    let sampleBytes = 0;
    const sampleN = Math.min(n, 256);
    for (let i = 0; i < sampleN; i++) {
      const res = await fetch(urls[Math.floor((i * n) / sampleN)]);
      sampleBytes += (await res.arrayBuffer()).byteLength;
    }
    const meanBytes = sampleBytes / sampleN;

    // Inputs: a curated Parquet part (ours) and a TSV (img2dataset), same URLs and captions in the same order.
    const rows: CuratedRow[] = urls.map((url, i) => ({
      uuid: `bench-${String(i).padStart(7, '0')}`, url, key: 'alt', text: `caption ${i}`, lang: 'en', entry_ids: [i % 1000], shard: 'bench', position: i, p: 1,
    }));
    const input = 'input/part-00000.parquet';
    mkdirSync(path.join(tmp, 'input'), { recursive: true });
    writeFileSync(path.join(tmp, input), await writeCuratedParquet(rows));
    const tsv = path.join(tmp, 'input', 'urls.tsv');
    writeFileSync(tsv, 'url\tcaption\n' + rows.map((r) => `${r.url}\t${r.text}`).join('\n') + '\n');

    const fetchPolicy: Partial<FetchPolicy> = {
      allowCidrs: ['127.0.0.1/32'], retries: 0, maxPerHost: concurrency, maxConcurrency: Math.max(64, concurrency),
      connectTimeoutMs: TIMEOUT_S * 1000, idleTimeoutMs: TIMEOUT_S * 1000,
    };
    const imageOptions: Partial<ImageOptions> = { ...RESIZE };

    const ours: ImagesOurs[] = [];
    const base: ImagesBaseline[] = [];
    let lastOurs = null as { dir: string } | null;
    let lastBase = null as { out: string; details: string } | null;
    const runOursOnce = async (run: number): Promise<void> => {
      if (lastOurs) rmSync(lastOurs.dir, { recursive: true, force: true });
      const outDir = `ours-${run}`;
      progress(`run ${run}/${runs}: our side (download activity, ${int(n)} images, ${concurrency} in flight)…`);
      const o = await runOurs<ImagesOurs>(
        { kind: 'images', outRoot: tmp, input, outDir, imagesPerTar: perTar, concurrency, fetch: fetchPolicy, image: imageOptions } satisfies ChildSpec & { kind: string },
        { profile: run === 1 ? profile : null },
      );
      ours.push(o);
      lastOurs = { dir: path.join(tmp, outDir) };
      progress(`run ${run}/${runs}: ours ${secs(o.seconds)} wall, ${secs(o.cpu_s)} CPU, ${int(o.successes)}/${int(n)} ok`);
    };
    const runBaseOnce = async (run: number): Promise<void> => {
      if (lastBase) rmSync(lastBase.out, { recursive: true, force: true });
      const out = path.join(tmp, `img2dataset-${run}`);
      const timing = path.join(tmp, `img2dataset-${run}-timing`);
      const details = path.join(tmp, `img2dataset-${run}-details.json`);
      mkdirSync(timing, { recursive: true });
      progress(`run ${run}/${runs}: img2dataset (${int(n)} images, 1 process × ${concurrency} threads)…`);
      const b = await runJson<ImagesBaseline>(py, [
        path.join(PY_DIR, 'images_baseline.py'), '--urls', tsv, '--out', out, '--timing', timing, '--details', details,
        '--threads', String(concurrency), '--per-shard', String(perTar), '--image-size', String(RESIZE.imageSize),
        '--resize-mode', RESIZE.resizeMode, '--encode-format', RESIZE.encodeFormat, '--encode-quality', String(RESIZE.encodeQuality),
        '--timeout', String(TIMEOUT_S), '--retries', '0',
      ], 'img2dataset baseline');
      base.push(b);
      lastBase = { out, details };
      progress(`run ${run}/${runs}: img2dataset ${secs(b.seconds)} wall (${secs(b.shard_wall_s)} in its shards), ${secs(b.cpu_s)} CPU (${secs(b.shard_cpu_s)} in its shards), ${int(b.successes)}/${int(n)} ok`);
    };
    // Interleaved, the side that goes first alternating: the host's speed drifts.
    for (let run = 1; run <= runs; run++) {
      if (run % 2 === 1) {
        await runOursOnce(run);
        await runBaseOnce(run);
      } else {
        await runBaseOnce(run);
        await runOursOnce(run);
      }
    }
    if (!lastOurs || !lastBase) throw new Error('no bench run');

    // ---- checks on the last run's outputs
    progress('checking both outputs (sha256 per URL, 256×256 JPEGs, pixels)…');
    const oursDir = lastOurs.dir;
    const oursIndex = (await Promise.all(
      readdirSync(oursDir).filter((f) => /^chunk-\d+\.parquet$/.test(f)).sort().map(async (f) => readImageIndexParquet(readFileSync(path.join(oursDir, f)))),
    )).flat();
    const baseDetails = JSON.parse(readFileSync(lastBase.details, 'utf8')) as BaselineDetail[];
    const oursSha = new Map(oursIndex.filter((r) => r.status === 'success').map((r) => [r.url, r.sha256]));
    const baseSha = new Map(baseDetails.filter((r) => r.status === 'success').map((r) => [r.url, r.sha256]));
    let shaSame = 0;
    const shaExamples: string[] = [];
    for (const url of urls) {
      const a = oursSha.get(url);
      const b = baseSha.get(url);
      if (a && a === b) shaSame++;
      else if (shaExamples.length < 3) shaExamples.push(`${url}: ours ${a ?? 'missing'}, img2dataset ${b ?? 'missing'}`);
    }
    const oursImages = imagesByUrl(readdirSync(oursDir).filter((f) => /^chunk-\d+\.tar$/.test(f)).sort().map((f) => path.join(oursDir, f)));
    const baseImages = imagesByUrl(base[base.length - 1].tars);
    const oursDims = await checkDims(oursImages);
    const baseDims = await checkDims(baseImages);
    const psnrs: number[] = [];
    for (let i = 0; i < Math.min(PSNR_SAMPLES, n); i++) {
      const url = urls[Math.floor((i * n) / Math.min(PSNR_SAMPLES, n))];
      const a = oursImages.get(url);
      const b = baseImages.get(url);
      if (a && b) psnrs.push(await psnr(a.jpg, b.jpg));
    }
    const oursTarBytes = readdirSync(oursDir).filter((f) => f.endsWith('.tar')).reduce((s, f) => s + readFileSync(path.join(oursDir, f)).length, 0);

    const checks: Array<[string, boolean, string]> = [
      ['successes: every URL on both sides', ours.every((o) => o.successes === n) && base.every((b) => b.successes === n),
        `ours ${ours.map((o) => int(o.successes)).join('/')}, img2dataset ${base.map((b) => int(b.successes)).join('/')} of ${int(n)} (runs)`],
      ['sha256 of the downloaded bytes, per URL', shaSame === n, `${int(shaSame)} / ${int(n)} equal`],
      ['ours: stored JPEGs decode as 256×256', oursDims.images === n && oursDims.ok === n, `${int(oursDims.ok)} / ${int(oursDims.images)} samples in the tars`],
      ['img2dataset: stored JPEGs decode as 256×256', baseDims.images === n && baseDims.ok === n, `${int(baseDims.ok)} / ${int(baseDims.images)} samples in the tars`],
    ];
    const psnrMin = psnrs.length ? Math.min(...psnrs) : NaN;
    const psnrMean = psnrs.length ? psnrs.reduce((s, x) => s + x, 0) / psnrs.length : NaN;
    checks.push([`pixels, ours vs img2dataset: PSNR ≥ ${PSNR_TARGET_DB} dB on every sample`, psnrs.length > 0 && psnrMin >= PSNR_TARGET_DB,
      `${psnrs.length} samples: mean ${psnrMean.toFixed(1)} dB, min ${psnrMin.toFixed(1)} dB`]);
    const allOk = checks.every(([, ok]) => ok);

    // ---- figures: best of the runs, per metric
    const minOf = (xs: number[]): number => Math.min(...xs);
    const o = {
      seconds: minOf(ours.map((x) => x.seconds)),
      cpu: minOf(ours.map((x) => x.cpu_s)),
    };
    const b = {
      seconds: minOf(base.map((x) => x.seconds)),
      cpu: minOf(base.map((x) => x.cpu_s)),
      shardSeconds: minOf(base.map((x) => x.shard_wall_s)),
      shardCpu: minOf(base.map((x) => x.shard_cpu_s)),
    };
    const rate = {
      oursWall: n / o.seconds,
      oursPerCore: n / o.cpu,
      baseWall: n / b.seconds,
      basePerCore: n / b.cpu,
      baseShardWall: n / b.shardSeconds,
      baseShardPerCore: n / b.shardCpu,
    };
    const ratioPerCore = rate.oursPerCore / rate.baseShardPerCore;
    const ratioPerCoreWhole = rate.oursPerCore / rate.basePerCore;
    const ratioWall = rate.oursWall / rate.baseShardWall;
    const ratioWallWhole = rate.oursWall / rate.baseWall;
    const met = ratioPerCore >= IMAGES_TARGET;
    const wallMet = ratioWall >= IMAGES_WALL_TARGET;
    // Per run: ours against the img2dataset run next to it in time (the host's speed drifts between runs).
    const paired = ours.map((x, i) => ({ inShards: base[i].shard_cpu_s / x.cpu_s, wholeCall: base[i].cpu_s / x.cpu_s }));
    const median = (xs: number[]): number => {
      const a = [...xs].sort((p, q) => p - q);
      return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    };

    // ---- optional: one image's costs, step by step (its own child process, after the timed runs)
    let breakdown: { images: number; lines: CostLine[]; activityCpuMsPerImage: number } | null = null;
    if (flags.breakdown) {
      const costN = Math.min(n, 2_000);
      progress(`breakdown: one image's steps, ${int(costN)} images, ${concurrency} in flight…`);
      // URLs the timed runs did not fetch (the server maps every path to one of its pictures).
      const costUrls = Array.from({ length: costN }, (_, i) => `${server.baseUrl}img/bench-costs/${i}.jpg`);
      const costs = await runOurs<{ lines: CostLine[] }>(
        { kind: 'images-costs', urls: costUrls, concurrency, fetch: fetchPolicy, image: imageOptions } satisfies CostSpec & { kind: string },
        { profile: null },
      );
      breakdown = { images: costN, lines: costs.lines, activityCpuMsPerImage: (o.cpu * 1000) / n };
    }

    const lastO = ours[ours.length - 1];
    const lastB = base[base.length - 1];
    const width = 44;
    const row = (label: string, x: string, y: string): string => `  ${label.padEnd(34)} ${x.padEnd(width)} ${y}`;
    const lines = [
      '',
      `== bench images: download + resize ${int(n)} images from a loopback server, ${concurrency} in flight, one process each ==`,
      `  server: ${server.baseUrl} (in the bench process): ${PICTURE.variants} pictures ${PICTURE.width}×${PICTURE.height} with noise ±${PICTURE.noise}, JPEG q95/88/80, mean ${(meanBytes / 1024).toFixed(1)} KiB; no failures`,
      `  settings (both): image_size ${RESIZE.imageSize}, resize_mode ${RESIZE.resizeMode}, ${RESIZE.encodeFormat} quality ${RESIZE.encodeQuality}, sha256, timeout ${TIMEOUT_S} s, retries 0, ${int(perTar)} images per tar, captions`,
      `  ours also: pHash per image, EXIF orientation; img2dataset: extract_exif off, wandb off; machine: ${os.cpus().length} cores`,
      row('', 'ours', 'img2dataset'),
      row('implementation', lastO.impl.length > width - 2 ? `${lastO.impl.slice(0, width - 3)}…` : lastO.impl, lastB.impl),
      row(`wall (best of ${runs})`, secs(o.seconds), `${secs(b.seconds)} download() / ${secs(b.shardSeconds)} in shards`),
      row(`CPU user+sys (best of ${runs})`, secs(o.cpu), `${secs(b.cpu)} process tree / ${secs(b.shardCpu)} worker in shards`),
      row('all runs: wall', ours.map((x) => secs(x.seconds)).join(', '), base.map((x) => `${secs(x.seconds)} (${secs(x.shard_wall_s)})`).join(', ')),
      row('all runs: CPU', ours.map((x) => secs(x.cpu_s)).join(', '), base.map((x) => `${secs(x.cpu_s)} (${secs(x.shard_cpu_s)})`).join(', ')),
      row('images/s (wall)', int(rate.oursWall), `${int(rate.baseWall)} / ${int(rate.baseShardWall)} in shards`),
      row('images per CPU-second ("per core")', int(rate.oursPerCore), `${int(rate.basePerCore)} / ${int(rate.baseShardPerCore)} in shards`),
      row('successes', `${int(lastO.successes)} / ${int(n)}`, `${int(lastB.successes)} / ${int(n)}`),
      row('tar bytes (last run)', mb(oursTarBytes), mb(lastB.tar_bytes)),
      row('peak RSS', mb(Math.max(...ours.map((x) => x.max_rss_bytes))), `${mb(Math.max(...base.map((x) => x.worker_max_rss_bytes)))} (worker)`),
      row('ours: CPU by thread (last run)', Object.entries(lastO.cpu_by_thread_s ?? {}).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', '), ''),
      row('ours: main thread busy, GC', `${(100 * lastO.event_loop_utilization).toFixed(0)}% of wall; ${lastO.gc_pauses} GCs (${lastO.gc_major} major), ${secs(lastO.gc_pause_s)} paused`, ''),
      `  ratio images per CPU-second, ours / img2dataset in its shards: ${ratioPerCore.toFixed(2)}× (target ≥ ${IMAGES_TARGET}×: ${met ? 'met' : 'MISSED'}); ` +
        `vs its whole download(): ${ratioPerCoreWhole.toFixed(2)}×`,
      `  the same ratio per pair of adjacent runs: ${paired.map((p) => `${p.inShards.toFixed(2)}×`).join(', ')} (median ${median(paired.map((p) => p.inShards)).toFixed(2)}×); ` +
        `vs its whole download(): ${paired.map((p) => `${p.wholeCall.toFixed(2)}×`).join(', ')} (median ${median(paired.map((p) => p.wholeCall)).toFixed(2)}×)`,
      `  ratio images/s (wall), ours / img2dataset in its shards: ${ratioWall.toFixed(2)}× (target ≥ ${IMAGES_WALL_TARGET}×: ${wallMet ? 'met' : 'MISSED'}); ` +
        `vs its whole download(): ${ratioWallWhole.toFixed(2)}×`,
      `  checks: ${allOk ? 'all ok' : 'FAILED'}`,
      ...checks.map(([label, ok, detail]) => `    ${ok ? 'ok  ' : 'FAIL'} ${label}: ${detail}`),
      ...[...shaExamples, ...oursDims.examples, ...baseDims.examples].map((e) => `      ${e}`),
      ...(breakdown ? [
        `  breakdown (ours, ${int(breakdown.images)} images, ${concurrency} in flight; ms per image, CPU of all threads / main thread busy):`,
        ...breakdown.lines.map((l) => `    ${l.step.padEnd(64)} ${l.cpu_ms.toFixed(2).padStart(6)} / ${l.main_ms.toFixed(2).padStart(5)}`),
        `    ${'the whole download activity (best timed run above)'.padEnd(64)} ${breakdown.activityCpuMsPerImage.toFixed(2).padStart(6)}`,
      ] : []),
    ];
    console.log(lines.join('\n'));
    const report = {
      name: 'images',
      date: new Date().toISOString(),
      machine: machineInfo(),
      profiled: profile !== null,
      images: n,
      concurrency,
      imagesPerTar: perTar,
      runs,
      server: { ...PICTURE, qualities: [95, 88, 80], missingShare: 0, meanBodyBytes: meanBytes },
      settings: { ...RESIZE, sha256: true, timeoutS: TIMEOUT_S, retries: 0, ourFetchPolicy: fetchPolicy },
      ours: { runs: ours, bestSeconds: o.seconds, bestCpuSeconds: o.cpu, imagesPerS: rate.oursWall, imagesPerCpuS: rate.oursPerCore, tarBytes: oursTarBytes },
      baseline: {
        runs: base.map(({ tars: _t, ...rest }) => rest),
        bestSeconds: b.seconds, bestCpuSeconds: b.cpu, bestShardSeconds: b.shardSeconds, bestShardCpuSeconds: b.shardCpu,
        imagesPerS: rate.baseWall, imagesPerCpuS: rate.basePerCore, shardImagesPerS: rate.baseShardWall, shardImagesPerCpuS: rate.baseShardPerCore,
      },
      ratioPerCore,
      ratioPerCoreWholeCall: ratioPerCoreWhole,
      pairedRatiosPerCore: paired,
      pairedRatioPerCoreMedian: { inShards: median(paired.map((p) => p.inShards)), wholeCall: median(paired.map((p) => p.wholeCall)) },
      ratioWall,
      ratioWallWholeCall: ratioWallWhole,
      target: IMAGES_TARGET,
      targetMet: met,
      wallTarget: IMAGES_WALL_TARGET,
      wallTargetMet: wallMet,
      checks: { ok: allOk, list: checks.map(([check, ok, detail]) => ({ check, ok, detail })), psnr: { samples: psnrs.length, meanDb: psnrMean, minDb: psnrMin } },
      ...(breakdown ? { breakdown } : {}),
    };
    const jsonFile = path.join(DATA, 'images.json');
    writeFileAtomic(jsonFile, JSON.stringify(report, null, 2) + '\n');
    console.log(`  figures written to ${rel(jsonFile)}`);
    if (profile) console.log(profileSummary(profile).join('\n'));
    if (!allOk) throw new Error(`images bench checks FAILED (see above and ${rel(jsonFile)})`);
  } finally {
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}
