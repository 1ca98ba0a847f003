/**
 * The child process of `bench extract`'s side (`node dist/scripts/bench/extract-child.js <spec>`): our extraction
 * of one file, first pass and steady state, and plain gunzips of the same file in the same process. It loads the
 * extraction path only (what a cpu worker's task thread runs for a shard), not the bench's corpus builders,
 * Temporal client and scale harness: measured, a heap holding those made every pass 15-20% slower (V8's
 * mark-compacts, started by the zlib output buffers, mark the whole heap).
 */
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { createGunzip, gunzipSync } from 'node:zlib';
import { CorruptInputError } from '../../curation/errors';
import { ShardExtractor, extractCandidateBatches, type Candidate } from '../../curation/extract';
import { gzipMembersNative } from '../../curation/gzip-members';
import { int, nowS, progress } from './log';


/** Plain gunzips of a file (read included), each way best of `reps`; the fastest way is the limit. */
export interface GunzipLimit {
  /** Best seconds per way. */
  ways: Record<GunzipWay, number>;
  fastest: GunzipWay;
  seconds: number;
  /** Decompressed bytes (checked equal for every way). */
  bytes: number;
  reps: number;
}

export type GunzipWay = 'gunzipSync' | 'createGunzip' | 'createGunzip1MiB';

export const GUNZIP_WAYS: Record<GunzipWay, string> = {
  gunzipSync: 'zlib.gunzipSync(readFileSync(file))',
  createGunzip: 'createReadStream(file, 1 MiB reads) → zlib.createGunzip() (16 KiB chunks)',
  createGunzip1MiB: 'createReadStream(file, 1 MiB reads) → zlib.createGunzip({ chunkSize: 1 MiB })',
};

/**
 * The time of a plain gunzip of `file`, reading included, the fastest of three honest ways in Node (one-shot
 * gunzipSync of the whole file, and streaming createGunzip with its default and with 1 MiB output chunks), each
 * best of `reps`. Every way must produce the same number of bytes.
 */
async function measureGunzip(file: string, reps: number, beforeEach: () => void = (): void => undefined): Promise<GunzipLimit> {
  const ways = {} as Record<GunzipWay, number>;
  let bytes = -1;
  const check = (way: GunzipWay, n: number): void => {
    if (bytes >= 0 && n !== bytes) throw new Error(`gunzip of ${file}: ${way} gave ${n} bytes, another way ${bytes}`);
    bytes = n;
  };
  const stream = async (chunkSize?: number): Promise<number> => {
    let n = 0;
    const gunzip = createGunzip(chunkSize ? { chunkSize } : {});
    createReadStream(file, { highWaterMark: 1 << 20 }).on('error', (e) => gunzip.destroy(e)).pipe(gunzip);
    for await (const chunk of gunzip) n += (chunk as Buffer).length;
    return n;
  };
  for (let r = 0; r < reps; r++) {
    for (const way of Object.keys(GUNZIP_WAYS) as GunzipWay[]) {
      beforeEach();
      const t = nowS();
      const n = way === 'gunzipSync' ? gunzipSync(readFileSync(file)).length : await stream(way === 'createGunzip1MiB' ? 1 << 20 : undefined);
      const s = nowS() - t;
      check(way, n);
      if (!(way in ways) || s < ways[way]) ways[way] = s;
    }
  }
  const fastest = (Object.keys(ways) as GunzipWay[]).reduce((a, b) => (ways[b] < ways[a] ? b : a));
  return { ways, fastest, seconds: ways[fastest], bytes, reps };
}

/** Passes of our extraction in each bench child after its first, before the timed steady-state rounds (JIT warm-up). */
export const EXTRACT_WARM_UP_PASSES = 2;

/** One steady-state round of the extract bench: our pass and a plain gunzip, back to back in the same process. */
export interface SteadyRound {
  ours: number;
  gunzip: number;
  /** gunzip seconds / our seconds: our throughput as a share of the gunzip's. */
  share: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One extraction of `input` in this process: what it found and its time; CorruptInputError is reported, not thrown. */
async function extractOnce(input: string, keep: Candidate[] | null, onProgress?: (ex: ShardExtractor, n: number) => void): Promise<{ seconds: number; extractor: ShardExtractor; candidates: number; error?: string }> {
  const extractor = new ShardExtractor({ lid: null, keepLanguages: null });
  let candidates = 0;
  let error: string | undefined;
  const timer = onProgress ? setInterval(() => onProgress(extractor, candidates), 2000) : null;
  timer?.unref();
  const t = nowS();
  try {
    for await (const batch of extractCandidateBatches(createReadStream(input, { highWaterMark: 1 << 20 }), extractor)) {
      candidates += batch.length;
      if (keep) for (const c of batch) keep.push(c);
    }
  } catch (err) {
    if (!(err instanceof CorruptInputError)) throw err;
    error = err.message;
  }
  const seconds = nowS() - t;
  if (timer) clearInterval(timer);
  return { seconds, extractor, candidates, ...(error ? { error } : {}) };
}

/**
 * Our extraction of one file, timed twice over: the first pass of a fresh process (the figure compared with the
 * Python baseline, whose processes are fresh too), and the steady state of a worker that has run the extraction
 * before (its next shard). For the steady state, after EXTRACT_WARM_UP_PASSES passes, each of `rounds` rounds times
 * a plain gunzip of the same file (fastest of the three ways) and then our pass, within a second of each other, so
 * that the host's drift between minutes hits both sides of a round's share alike.
 */
export async function childExtract(spec: { input: string; out: string; gunzipReps?: number; rounds?: number }): Promise<void> {
  const found: Candidate[] = [];
  const first = await extractOnce(spec.input, found, (ex, n) => progress(`ours: ${int(ex.stats.records)} records, ${int(n)} candidates`));
  const maxRss = process.resourceUsage().maxRSS * 1024;
  writeFileSync(spec.out, found.map((c) => JSON.stringify([c.uuid, c.texts.map(([, text]) => text)])).join('\n') + (found.length ? '\n' : ''));
  const candidates = found.length;
  const texts = found.reduce((s, c) => s + c.texts.length, 0);
  // The later passes run on a heap cleared of the first pass's candidates (a worker writes them out and drops them).
  found.length = 0;
  const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);
  gc();
  // A forced gc() runs before every gunzip and before each untimed pass, never right before a timed pass. Measured:
  // V8 keeps the maps of dead objects alive through natural GCs (--retain-maps-for-n-gc), but a forced full GC
  // clears them, and with them every optimized function that embeds one: after gc(), 26 of the extraction's hot
  // functions were deoptimized ("embedded weak objects cleared") and the pass after it re-compiled them, 20-30%
  // slower than a pass after a pass; in 20 passes without gc() the natural GCs deoptimized 0 in 18 of them. A worker
  // never forces a GC, so the timed pass follows an untimed one, which pays for the forced GC's re-compilation
  // (and for the allocator and caches left by gunzipSync's whole-file buffer: a pass right after it ran up to 1.6x
  // slower).
  const pass = async (collectFirst: boolean): Promise<number> => {
    if (collectFirst) gc();
    const again = await extractOnce(spec.input, null);
    if (again.candidates !== candidates || again.extractor.stats.records !== first.extractor.stats.records) {
      throw new Error(`a later pass found ${again.candidates} candidates in ${again.extractor.stats.records} records, the first ${candidates} in ${first.extractor.stats.records}`);
    }
    return again.seconds;
  };
  const warmUp: number[] = [];
  for (let i = 0; i < EXTRACT_WARM_UP_PASSES; i++) warmUp.push(await pass(true));
  const rounds: SteadyRound[] = [];
  let gunzip: GunzipLimit | null = null;
  const nRounds = spec.rounds ?? 5;
  for (let r = 0; r < nRounds; r++) {
    const limit = await measureGunzip(spec.input, 1, gc);
    await pass(true);
    const ours = await pass(false);
    rounds.push({ ours, gunzip: limit.seconds, share: limit.seconds / ours });
    gunzip = gunzip === null ? limit : mergeGunzip(gunzip, limit);
  }
  // The first pass's limit: the fastest gunzip of the process (as before the steady rounds existed), best of at least gunzipReps.
  if (gunzip === null || gunzip.reps < (spec.gunzipReps ?? 3)) {
    const more = await measureGunzip(spec.input, Math.max(1, (spec.gunzipReps ?? 3) - (gunzip?.reps ?? 0)), gc);
    gunzip = gunzip === null ? more : mergeGunzip(gunzip, more);
  }
  const summary = {
    impl: `node ${process.version} ShardExtractor (curation/warc.ts + ${inflater()} + extract.ts)`,
    inflate: gzipMembersNative() !== null ? 'libdeflate' : 'zlib',
    seconds: first.seconds,
    records: first.extractor.stats.records,
    candidates,
    texts,
    max_rss_bytes: maxRss,
    warm_up_seconds: warmUp,
    steady: { rounds, share: median(rounds.map((x) => x.share)), seconds: median(rounds.map((x) => x.ours)), gunzipSeconds: median(rounds.map((x) => x.gunzip)) },
    gunzip,
    stats: first.extractor.stats,
    ...(first.error ? { error: first.error } : {}),
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}

/** Which inflater our side runs: libdeflate whole members when the native library is built, else zlib. */
function inflater(): string {
  return gzipMembersNative() !== null ? 'libdeflate members (gzip-members.ts)' : 'zlib (gunzip.ts)';
}

/** Two measurements of the same file's gunzip as one: each way's best, and the fastest of them. */
function mergeGunzip(a: GunzipLimit, b: GunzipLimit): GunzipLimit {
  if (a.bytes !== b.bytes) throw new Error(`gunzip gave ${a.bytes} and ${b.bytes} bytes`);
  const ways = { ...a.ways };
  for (const w of Object.keys(b.ways) as GunzipWay[]) if (!(w in ways) || b.ways[w] < ways[w]) ways[w] = b.ways[w];
  const fastest = (Object.keys(ways) as GunzipWay[]).reduce((x, y) => (ways[y] < ways[x] ? y : x));
  return { ways, fastest, seconds: ways[fastest], bytes: a.bytes, reps: a.reps + b.reps };
}

if (require.main === module) {
  childExtract(JSON.parse(process.argv[2])).catch((err) => {
    process.stderr.write(`[bench child] ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}
