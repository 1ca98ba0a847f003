/**
 * `npx curate bench shardcost`: what one shard costs in CPU on the shard path of a run (processShard's core:
 * read → gunzip → WARC/WAT records → <img> candidates → language id → match against a 500k-entry metadata →
 * candidates Parquet + counts JSON), measured in-process, single-threaded, on a Common-Crawl-size WARC and WAT
 * (≈ 1 GiB decompressed each by default) built from `gen-samples` shards (scripts/samples.ts), concatenated:
 * WARC and WAT files are sequences of gzip members, so the concatenation is itself a valid shard.
 *
 * Stages are separate passes over the same file so each is timed alone (CPU = user + system of the process,
 * all threads; zlib runs on libuv's pool):
 *   read+gunzip   the file through the shard path's inflater (decompressIfGzip: libdeflate members where built, else zlib)
 *   extract       extractCandidateBatches with the language filter off
 *   +lid          the same with fastText LID of every text (lid = this − extract)
 *   +match        matchShard: extract + LID + Matcher over every text, rows and counts built (match = this − +lid)
 *   write         writeCandidatesParquet(rows) + the counts JSON
 * One-off costs per worker thread (metadata load + Matcher build, LID model load) are reported apart.
 * Figures go to stdout and .data/bench/shardcost.json; the corpus is cached under .data/bench/shardcost/.
 */
import { appendFileSync, createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { countsToIdJson } from '../../curation/balance';
import { ShardExtractor, extractCandidateBatches } from '../../curation/extract';
import { LanguageIdentifier } from '../../curation/lid';
import { Matcher } from '../../curation/matcher';
import { matchShard } from '../../curation/shard';
import { decompressIfGzip } from '../../curation/warc';
import { writeCandidatesParquet } from '../../storage/parquet';
import type { ParsedArgs } from '../args';
import { generateSamples } from '../samples';
import { DATA, ensureMetadata, int, machineInfo, mb, nowS, progress, readJsonIf, rel, secs, throttle, writeFileAtomic } from '../commands/bench';

const DIR = path.join(DATA, 'shardcost');
const CORPUS_VERSION = 1;
/** gen-samples pages per generated shard (≈ 11 MB WARC, 16 MB WAT decompressed); shards differ by seed. */
export const PAGES_PER_PIECE = 2000;
const MiB = 1024 * 1024;
const MAX_DISTINCT = 5_000_000;
const PER_TEXT_SAMPLE = 50_000;

export interface CorpusFile {
  path: string;
  compressedBytes: number;
  bytes: number;
  pieces: number;
  pages: number;
}
export interface Corpus {
  version: number;
  targetMiB: number;
  warc: CorpusFile;
  wat: CorpusFile;
}

/** Appends gen-samples shards (seeds shardcost-<k>) to one WARC and one WAT until each holds `targetMiB` decompressed. */
export async function ensureCorpus(targetMiB: number, rebuild: boolean): Promise<Corpus> {
  const manifestFile = path.join(DIR, 'corpus.json');
  const have = readJsonIf<Corpus>(manifestFile);
  if (!rebuild && have && have.version === CORPUS_VERSION && have.targetMiB === targetMiB && existsSync(have.warc.path) && existsSync(have.wat.path)) return have;
  mkdirSync(DIR, { recursive: true });
  const target = targetMiB * MiB;
  const files: Record<'warc' | 'wat', CorpusFile> = {
    warc: { path: path.join(DIR, `corpus-${targetMiB}MiB.warc.gz`), compressedBytes: 0, bytes: 0, pieces: 0, pages: 0 },
    wat: { path: path.join(DIR, `corpus-${targetMiB}MiB.warc.wat.gz`), compressedBytes: 0, bytes: 0, pieces: 0, pages: 0 },
  };
  for (const f of Object.values(files)) writeFileSync(f.path, Buffer.alloc(0));
  const tmp = path.join(DIR, 'pieces');
  const t0 = nowS();
  for (let k = 0; files.warc.bytes < target || files.wat.bytes < target; k++) {
    rmSync(tmp, { recursive: true, force: true });
    const formats = (['warc', 'wat'] as const).filter((f) => files[f].bytes < target);
    const res = await generateSamples({ outDir: tmp, shards: 1, pages: PAGES_PER_PIECE, seed: `shardcost-${k}`, formats });
    for (const d of res.details) {
      const f = files[d.format];
      const bytes = readFileSync(d.path);
      appendFileSync(f.path, bytes);
      f.compressedBytes += bytes.length;
      f.bytes += gunzipSync(bytes).length;
      f.pieces++;
      f.pages += d.pages;
    }
    const done = Math.min(files.warc.bytes, target) + Math.min(files.wat.bytes, target);
    progress(`corpus: WARC ${mb(files.warc.bytes)}, WAT ${mb(files.wat.bytes)} decompressed of ${mb(target)} each ` +
      `(${((100 * done) / (2 * target)).toFixed(0)}%, ${secs(nowS() - t0)})`);
  }
  rmSync(tmp, { recursive: true, force: true });
  const corpus: Corpus = { version: CORPUS_VERSION, targetMiB, warc: files.warc, wat: files.wat };
  writeFileAtomic(manifestFile, JSON.stringify(corpus, null, 2) + '\n');
  return corpus;
}

export interface Timed<T> {
  cpu: number;
  wall: number;
  value: T;
}

/** CPU (user + system, all threads) and wall seconds of `fn`, after a GC when the process allows one. */
export async function timed<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  (globalThis as { gc?: () => void }).gc?.();
  const c0 = process.cpuUsage();
  const w0 = nowS();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1e6, wall: nowS() - w0, value };
}

/** The file as the activity reads it (1 MiB chunks), with a throttled progress line. */
function input(file: string, label: string): AsyncIterable<Buffer> {
  const total = statSync(file).size;
  const tick = throttle(5);
  let read = 0;
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  return (async function* () {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      read += chunk.length;
      tick(() => `${label}: ${((100 * read) / total).toFixed(0)}% of ${mb(total)}`);
      yield chunk;
    }
  })();
}

interface StageFigures {
  cpu_s: number;
  wall_s: number;
}

interface FileFigures {
  format: 'warc' | 'wat';
  file: string;
  compressed_bytes: number;
  bytes: number;
  pages: number;
  records: number;
  candidates: number;
  texts: number;
  /** Distinct texts (capped at MAX_DISTINCT). */
  distinct_texts: number;
  rows: number;
  parquet_bytes: number;
  counts_json_bytes: number;
  stages: Record<'read_gunzip' | 'extract' | 'extract_lid' | 'extract_lid_match' | 'write', StageFigures>;
  /** Per-stage increments: gunzip, parse+extract (beyond gunzip), lid, match, write. */
  increments: Record<'gunzip' | 'extract' | 'lid' | 'match' | 'write', number>;
  shard_path_cpu_s: number;
  mb_per_cpu_s: number;
  cpu_ms_per_page: number;
  /** fastText guess and Matcher.match per distinct text, no cache (µs of CPU). */
  per_distinct_text_us: { lid: number; match: number; sample: number };
  max_rss_bytes: number;
}

async function measureFile(format: 'warc' | 'wat', f: CorpusFile, matcher: Matcher, lid: LanguageIdentifier): Promise<FileFigures> {
  const label = format.toUpperCase();
  const stage = (t: Timed<unknown>): StageFigures => ({ cpu_s: t.cpu, wall_s: t.wall });

  const distinct = new Set<string>();
  progress(`${label}: read + gunzip…`);
  const gz = await timed(async () => {
    let n = 0;
    for await (const c of decompressIfGzip(input(f.path, `${label} read+gunzip`))) n += c.length;
    return n;
  });
  progress(`${label}: extract (language filter off)…`);
  const ex = await timed(async () => {
    const extractor = new ShardExtractor({ lid: null });
    let candidates = 0;
    let texts = 0;
    for await (const batch of extractCandidateBatches(input(f.path, `${label} extract`), extractor)) {
      for (const c of batch) {
        candidates++;
        texts += c.texts.length;
        for (const [, t] of c.texts) if (distinct.size < MAX_DISTINCT) distinct.add(t);
      }
    }
    return { candidates, texts, records: extractor.stats.records };
  });
  // A fresh model per pass: LanguageIdentifier memoises per text, and the next pass must not find this one's cache.
  const lid1 = await LanguageIdentifier.load();
  progress(`${label}: extract + LID…`);
  const exLid = await timed(async () => {
    const extractor = new ShardExtractor({ lid: lid1 });
    let n = 0;
    for await (const batch of extractCandidateBatches(input(f.path, `${label} extract+lid`), extractor)) for (const c of batch) n += c.texts.length;
    return n;
  });
  const lid2 = await LanguageIdentifier.load();
  progress(`${label}: extract + LID + match (matchShard)…`);
  const full = await timed(() => matchShard(input(f.path, `${label} matchShard`), new ShardExtractor({ lid: lid2 }), matcher, new Set(['en'])));
  progress(`${label}: candidates Parquet + counts JSON…`);
  const write = await timed(async () => {
    const parquet = await writeCandidatesParquet(full.value.rows);
    const counts = JSON.stringify(countsToIdJson(full.value.counts));
    const out = path.join(DIR, `out-${format}`);
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'candidates.parquet'), parquet);
    writeFileSync(path.join(out, 'counts.json'), counts);
    return { parquet: parquet.length, counts: Buffer.byteLength(counts) };
  });
  // Per distinct text, uncached: LID memoises per text and generated corpora repeat texts more than real pages do.
  const sample = [...distinct].slice(0, PER_TEXT_SAMPLE);
  const lidPer = await timed(async () => {
    for (const t of sample) lid.guess(t);
  });
  const matchPer = await timed(async () => {
    for (const t of sample) matcher.match(t);
  });
  const shardPath = full.cpu + write.cpu;
  const figures: FileFigures = {
    format,
    file: rel(f.path),
    compressed_bytes: f.compressedBytes,
    bytes: gz.value,
    pages: f.pages,
    records: ex.value.records,
    candidates: ex.value.candidates,
    texts: ex.value.texts,
    distinct_texts: distinct.size,
    rows: full.value.rows.length,
    parquet_bytes: write.value.parquet,
    counts_json_bytes: write.value.counts,
    stages: { read_gunzip: stage(gz), extract: stage(ex), extract_lid: stage(exLid), extract_lid_match: stage(full), write: stage(write) },
    increments: {
      gunzip: gz.cpu,
      extract: ex.cpu - gz.cpu,
      lid: exLid.cpu - ex.cpu,
      match: full.cpu - exLid.cpu,
      write: write.cpu,
    },
    shard_path_cpu_s: shardPath,
    mb_per_cpu_s: gz.value / 1e6 / shardPath,
    cpu_ms_per_page: (1000 * shardPath) / f.pages,
    per_distinct_text_us: { lid: (1e6 * lidPer.cpu) / sample.length, match: (1e6 * matchPer.cpu) / sample.length, sample: sample.length },
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  return figures;
}

export async function benchShardCost(flags: ParsedArgs['flags']): Promise<void> {
  const targetMiB = Number(flags.mb ?? 1024);
  const entries = Number(flags.entries ?? 500_000);
  const seed = Number(flags.seed ?? 1);
  if (!(Number.isInteger(targetMiB) && targetMiB >= 1)) throw new Error(`--mb must be a positive integer, got ${targetMiB}`);
  const rebuild = flags.rebuild === true;
  const benchPy = path.join(DATA, '..', '..', '.tools', 'bench-venv', 'bin', 'python');
  const meta = ensureMetadata(entries, seed, existsSync(benchPy) ? benchPy : null, rebuild);
  const corpus = await ensureCorpus(targetMiB, rebuild);

  progress(`loading the metadata (${int(meta.info.entries)} entries) and building the Matcher…`);
  const build = await timed(async () => new Matcher(JSON.parse(readFileSync(meta.file, 'utf8')) as string[]));
  const lidLoad = await timed(() => LanguageIdentifier.load());
  const files: FileFigures[] = [];
  for (const format of ['warc', 'wat'] as const) files.push(await measureFile(format, corpus[format], build.value, lidLoad.value));

  const lines = [
    `== bench shardcost: the shard path in one thread, on ${targetMiB} MiB (decompressed) gen-samples WARC and WAT ==`,
    `  metadata: ${rel(meta.file)} (${int(meta.info.entries)} entries; Matcher built in ${secs(build.cpu)} CPU), LID model loaded in ${secs(lidLoad.cpu)} CPU`,
  ];
  for (const f of files) {
    const s = f.stages;
    lines.push(
      `  ${f.format.toUpperCase()}: ${mb(f.compressed_bytes)} gz, ${mb(f.bytes)} decompressed, ${int(f.pages)} pages, ${int(f.records)} records, ` +
        `${int(f.candidates)} candidates / ${int(f.texts)} texts (${int(f.distinct_texts)} distinct), ${int(f.rows)} matched rows (Parquet ${mb(f.parquet_bytes)})`,
      `    CPU s per pass: read+gunzip ${s.read_gunzip.cpu_s.toFixed(2)}, extract ${s.extract.cpu_s.toFixed(2)}, +lid ${s.extract_lid.cpu_s.toFixed(2)}, ` +
        `+match ${s.extract_lid_match.cpu_s.toFixed(2)}, write ${s.write.cpu_s.toFixed(2)}`,
      `    increments: gunzip ${f.increments.gunzip.toFixed(2)} s, parse+extract ${f.increments.extract.toFixed(2)} s, LID ${f.increments.lid.toFixed(2)} s, ` +
        `match ${f.increments.match.toFixed(2)} s, write ${f.increments.write.toFixed(2)} s`,
      `    per distinct text, uncached: LID ${f.per_distinct_text_us.lid.toFixed(1)} µs, match ${f.per_distinct_text_us.match.toFixed(1)} µs (${int(f.per_distinct_text_us.sample)} texts)`,
      `    shard path: ${f.shard_path_cpu_s.toFixed(2)} CPU s = ${f.mb_per_cpu_s.toFixed(1)} MB (decompressed) per CPU s, ${f.cpu_ms_per_page.toFixed(3)} CPU ms per page`,
    );
  }
  console.log(lines.join('\n'));
  const report = {
    bench: 'shardcost',
    date: new Date().toISOString(),
    machine: machineInfo(),
    corpus: { ...corpus, generator: `gen-samples (scripts/samples.ts generateSamples), ${PAGES_PER_PIECE} pages per piece, seeds shardcost-<k>, concatenated` },
    metadata: { file: rel(meta.file), ...meta.info },
    one_off: { matcher_build_cpu_s: build.cpu, lid_load_cpu_s: lidLoad.cpu },
    files,
  };
  writeFileAtomic(path.join(DATA, 'shardcost.json'), JSON.stringify(report, null, 2) + '\n');
  progress(`figures written to ${rel(path.join(DATA, 'shardcost.json'))}`);
}
