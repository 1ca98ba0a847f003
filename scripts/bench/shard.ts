/**
 * `npx curate bench shard`: one whole shard through our processShard path next to MetaCLIP's own per-shard
 * Python path (scripts/bench/shard_baseline.py), on the same file, single thread each, with the same outputs.
 *
 * Input: the Common-Crawl-size gen-samples WARC and WAT of `bench shardcost` (scripts/bench/shardcost.ts
 * ensureCorpus, cached under .data/bench/shardcost/; ≈ 1 GiB decompressed each by default, `--mb` for less)
 * and the synthetic 500,000-entry bench metadata (ensureMetadata in scripts/commands/bench.ts).
 *
 * Our side (a child Node process per run): read → gunzip → records → <img> candidates → fastText lid.176
 * (curation/lid.ts) → Matcher (matchShard, curation/shard.ts) → candidates Parquet (writeCandidatesParquet) +
 * counts JSON, with the languages of processShard's default (texts of every language kept with their language,
 * only `en` counted). The baseline: warcio + selectolax (WARC) or WATCurator's gzip + json line reader (WAT),
 * fastText lid.176 through fasttext-predict, pyahocorasick, pyarrow; both load the same lid.176.ftz (the one in
 * npm fasttext.wasm.js). CPU = user + system of the process (all threads); metadata/index build and model load
 * are one-off costs per worker, reported apart and not in the shard path.
 *
 * Stages: the baseline times its stages inside its pass (records go through the stages in batches of 500);
 * ours stream through one pass, so, as `bench shardcost` does, they come from the increments between extra
 * passes over the file in another child: read+gunzip, extract without LID, extract with LID, matchShard; the
 * write is timed in the runs themselves. The increments are differences of noisy figures (small files: ±0.5 s).
 *
 * The outputs must agree: every candidate row (uuid, url, key, text, lang, entry ids) in the same order, and the
 * counts, read back from both sides' files. Figures go to stdout and .data/bench/shard.json; exit 1 on a mismatch.
 */
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../curation/errors';
import type { CandidateRow, ShardMatchStats } from '../../curation/shard';
import type { ParsedArgs } from '../args';
import { timed, type Timed } from './shardcost';
import {
  DATA, PY_DIR, ROOT, ensureMetadata, ensureVenv, int, machineInfo, mb, nowS, profileSummary, progress, rel, runJson, runOurs, secs, sha256,
  writeFileAtomic,
} from '../commands/bench';

const OUT = path.join(DATA, 'shard');
const TARGET = 3;
const KEEP = ['en'];
const STAGES = ['read_inflate', 'parse_extract', 'lid', 'match', 'write'] as const;
type Stage = (typeof STAGES)[number];
const STAGE_LABEL: Record<Stage, string> = {
  read_inflate: 'read + inflate',
  parse_extract: 'parse + extract',
  lid: 'LID (fastText)',
  match: 'match',
  write: 'write Parquet + counts',
};

/** The lid.176 model our side loads (fasttext.wasm.js's node entry reads ./assets/lid.176.ftz of this folder). */
export function lidModelPath(): string {
  const pkg = path.dirname(require.resolve('fasttext.wasm.js/package.json', { paths: [ROOT] }));
  const file = path.join(pkg, 'dist', 'models', 'language-identification', 'assets', 'lid.176.ftz');
  if (!existsSync(file)) throw new ConfigError(`the fastText model is not where fasttext.wasm.js keeps it: ${file}`);
  return file;
}

// ---------------------------------------------------------------------------------------------------------
// output comparison (pure)

export interface RowsComparison {
  ours: number;
  baseline: number;
  /** Every row equal at the same position. */
  identicalInOrder: boolean;
  /** Index of the first row that differs (or where one side ends), null when identical. */
  firstDifference: number | null;
  /** Rows (as multisets) on one side only: 0 and 0 with identicalInOrder false means a different order. */
  onlyOurs: number;
  onlyBaseline: number;
  examples: Array<{ side: 'ours' | 'baseline'; row: CandidateRow }>;
}

export interface CountsComparison {
  ours: number;
  baseline: number;
  identical: boolean;
  /** Entries whose count differs or that one side lacks. */
  differing: number;
  examples: Array<{ entry: string; ours: number | null; baseline: number | null }>;
}

export interface OutputComparison {
  rows: RowsComparison;
  counts: CountsComparison;
  /** Distinct entry ids over all rows' entry_ids. */
  matchedEntries: { ours: number; baseline: number; identical: boolean };
  ok: boolean;
}

function rowKey(r: CandidateRow): string {
  return JSON.stringify([r.uuid, r.url, r.key, r.text, r.lang, Array.from(r.entry_ids)]);
}

function sameRow(a: CandidateRow, b: CandidateRow): boolean {
  if (a.uuid !== b.uuid || a.url !== b.url || a.key !== b.key || a.text !== b.text || a.lang !== b.lang) return false;
  if (a.entry_ids.length !== b.entry_ids.length) return false;
  for (let i = 0; i < a.entry_ids.length; i++) if (a.entry_ids[i] !== b.entry_ids[i]) return false;
  return true;
}

function entrySet(rows: readonly CandidateRow[]): Set<number> {
  const s = new Set<number>();
  for (const r of rows) for (const e of r.entry_ids) s.add(e);
  return s;
}

/** Compares the two sides' candidate rows (in order, then as multisets) and counts ({"entry id": count}). */
export function compareShardOutputs(
  ours: { rows: readonly CandidateRow[]; counts: Record<string, number> },
  base: { rows: readonly CandidateRow[]; counts: Record<string, number> },
  maxExamples = 5,
): OutputComparison {
  const a = ours.rows;
  const b = base.rows;
  let firstDifference: number | null = null;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n && firstDifference === null; i++) if (!sameRow(a[i], b[i])) firstDifference = i;
  if (firstDifference === null && a.length !== b.length) firstDifference = n;
  let onlyOurs = 0;
  let onlyBaseline = 0;
  const examples: RowsComparison['examples'] = [];
  if (firstDifference !== null) {
    const bag = new Map<string, number>();
    for (const r of b) {
      const k = rowKey(r);
      bag.set(k, (bag.get(k) ?? 0) + 1);
    }
    for (const r of a) {
      const k = rowKey(r);
      const c = bag.get(k) ?? 0;
      if (c > 0) bag.set(k, c - 1);
      else {
        onlyOurs++;
        if (examples.filter((e) => e.side === 'ours').length < maxExamples) examples.push({ side: 'ours', row: r });
      }
    }
    for (const r of b) {
      const k = rowKey(r);
      const c = bag.get(k) ?? 0;
      if (c > 0) {
        bag.set(k, c - 1);
        onlyBaseline++;
        if (examples.filter((e) => e.side === 'baseline').length < maxExamples) examples.push({ side: 'baseline', row: r });
      }
    }
  }
  const rows: RowsComparison = {
    ours: a.length, baseline: b.length, identicalInOrder: firstDifference === null, firstDifference, onlyOurs, onlyBaseline, examples,
  };

  const keys = new Set([...Object.keys(ours.counts), ...Object.keys(base.counts)]);
  let differing = 0;
  const countExamples: CountsComparison['examples'] = [];
  for (const k of keys) {
    const x = Object.prototype.hasOwnProperty.call(ours.counts, k) ? ours.counts[k] : null;
    const y = Object.prototype.hasOwnProperty.call(base.counts, k) ? base.counts[k] : null;
    if (x === y) continue;
    differing++;
    if (countExamples.length < maxExamples) countExamples.push({ entry: k, ours: x, baseline: y });
  }
  const counts: CountsComparison = {
    ours: Object.keys(ours.counts).length, baseline: Object.keys(base.counts).length, identical: differing === 0, differing, examples: countExamples,
  };
  const ea = entrySet(a);
  const eb = entrySet(b);
  const entriesSame = ea.size === eb.size && [...ea].every((e) => eb.has(e));
  return {
    rows,
    counts,
    matchedEntries: { ours: ea.size, baseline: eb.size, identical: entriesSame },
    ok: rows.identicalInOrder && counts.identical && entriesSame,
  };
}

// ---------------------------------------------------------------------------------------------------------
// our side (child processes)

/** The file as processShard reads a local shard (1 MiB chunks). */
const readInput = (file: string): AsyncIterable<Buffer> => createReadStream(file, { highWaterMark: 1 << 20 });

export interface OursRun {
  impl: string;
  input_bytes: number;
  cpu_s: number;
  wall_s: number;
  /** matchShard (read … match, rows and counts built) and the write, apart. */
  match_path: { cpu_s: number; wall_s: number };
  write: { cpu_s: number; wall_s: number };
  one_off: { metadata_and_index_cpu_s: number; metadata_and_index_wall_s: number; lid_load_cpu_s: number; lid_load_wall_s: number; entries: number };
  rows: number;
  count_entries: number;
  parquet_bytes: number;
  counts_json_bytes: number;
  stats: ShardMatchStats;
  max_rss_bytes: number;
}

export async function childShard(spec: { input: string; metadata: string; outDir: string; keep: string[] }): Promise<void> {
  const { Matcher } = await import('../../curation/matcher');
  const { LanguageIdentifier } = await import('../../curation/lid');
  const { ShardExtractor } = await import('../../curation/extract');
  const { matchShard } = await import('../../curation/shard');
  const { countsToIdJson } = await import('../../curation/balance');
  const { writeCandidatesParquet } = await import('../../storage/parquet');
  await writeCandidatesParquet([]); // warms the writer (and loads zstd) before the clock starts

  const index = await timed(async () => {
    const entries = JSON.parse(readFileSync(spec.metadata, 'utf8')) as string[];
    return { matcher: new Matcher(entries), entries: entries.length };
  });
  const lidLoad = await timed(() => LanguageIdentifier.load());
  const lid = lidLoad.value;
  const keep = new Set(spec.keep);
  mkdirSync(spec.outDir, { recursive: true });

  const extractor = new ShardExtractor({ lid });
  const timer = setInterval(() => progress(`ours: ${int(extractor.stats.records)} records, ${int(extractor.stats.texts)} texts`), 5000);
  timer.unref();
  (globalThis as { gc?: () => void }).gc?.();
  const c0 = process.cpuUsage();
  const w0 = nowS();
  const out = await matchShard(readInput(spec.input), extractor, index.value.matcher, keep);
  const c1 = process.cpuUsage();
  const w1 = nowS();
  const parquet = await writeCandidatesParquet(out.rows);
  const counts = JSON.stringify(countsToIdJson(out.counts));
  writeFileSync(path.join(spec.outDir, 'candidates.parquet'), parquet);
  writeFileSync(path.join(spec.outDir, 'counts.json'), counts);
  const c2 = process.cpuUsage();
  const w2 = nowS();
  clearInterval(timer);
  const cpu = (from: NodeJS.CpuUsage, to: NodeJS.CpuUsage): number => (to.user - from.user + to.system - from.system) / 1e6;

  const summary: OursRun = {
    impl: `node ${process.version}: matchShard (ShardExtractor, fasttext.wasm.js lid.176, Matcher) + storage/parquet-writer.ts (ZSTD)`,
    input_bytes: statSync(spec.input).size,
    cpu_s: cpu(c0, c2),
    wall_s: w2 - w0,
    match_path: { cpu_s: cpu(c0, c1), wall_s: w1 - w0 },
    write: { cpu_s: cpu(c1, c2), wall_s: w2 - w1 },
    one_off: {
      metadata_and_index_cpu_s: index.cpu, metadata_and_index_wall_s: index.wall, lid_load_cpu_s: lidLoad.cpu, lid_load_wall_s: lidLoad.wall,
      entries: index.value.entries,
    },
    rows: out.rows.length,
    count_entries: out.counts.size,
    parquet_bytes: parquet.length,
    counts_json_bytes: Buffer.byteLength(counts),
    stats: out.stats,
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}

interface Pass {
  cpu_s: number;
  wall_s: number;
}
export interface OursStages {
  bytes: number;
  read_gunzip: Pass;
  extract: Pass;
  extract_lid: Pass;
  extract_lid_match: Pass;
  /** fastText predictions in the extract + LID pass (the same texts as the shard path). */
  lid_calls: number;
}

/**
 * Extra passes for our per-stage figures, in one process: read+gunzip, extract with the language filter off,
 * extract with LID, and matchShard (extract + LID + match, rows and counts built).
 */
export async function childShardStages(spec: { input: string; metadata: string; keep: string[] }): Promise<void> {
  const { LanguageIdentifier } = await import('../../curation/lid');
  const { ShardExtractor, extractCandidateBatches } = await import('../../curation/extract');
  const { decompressIfGzip } = await import('../../curation/warc');
  const pass = (t: Timed<unknown>): Pass => ({ cpu_s: t.cpu, wall_s: t.wall });
  progress('ours (stages): read + gunzip…');
  const gz = await timed(async () => {
    let n = 0;
    // The shard path's own inflater (libdeflate members where built, else zlib), as extraction runs it.
    for await (const c of decompressIfGzip(readInput(spec.input))) n += c.length;
    return n;
  });
  progress('ours (stages): extract, language filter off…');
  const ex = await timed(async () => {
    let n = 0;
    for await (const batch of extractCandidateBatches(readInput(spec.input), new ShardExtractor({ lid: null }))) for (const c of batch) n += c.texts.length;
    return n;
  });
  const lid = await LanguageIdentifier.load();
  // Counts the fastText predictions (LanguageIdentifier memoises repeated texts) here rather than in the timed run.
  let lidCalls = 0;
  const guess = lid.guess.bind(lid);
  lid.guess = (text: string) => {
    lidCalls++;
    return guess(text);
  };
  progress('ours (stages): extract + LID…');
  const exLid = await timed(async () => {
    let n = 0;
    for await (const batch of extractCandidateBatches(readInput(spec.input), new ShardExtractor({ lid }))) for (const c of batch) n += c.texts.length;
    return n;
  });
  const { Matcher } = await import('../../curation/matcher');
  const { matchShard } = await import('../../curation/shard');
  const matcher = new Matcher(JSON.parse(readFileSync(spec.metadata, 'utf8')) as string[]);
  const lid2 = await LanguageIdentifier.load(); // a fresh model: the memo of the last pass must not help this one
  progress('ours (stages): extract + LID + match (matchShard)…');
  const full = await timed(async () => (await matchShard(readInput(spec.input), new ShardExtractor({ lid: lid2 }), matcher, new Set(spec.keep))).rows.length);
  const out: OursStages = {
    bytes: gz.value, read_gunzip: pass(gz), extract: pass(ex), extract_lid: pass(exLid), extract_lid_match: pass(full), lid_calls: lidCalls,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

// ---------------------------------------------------------------------------------------------------------
// the bench

interface BaseRun {
  impl: string;
  input_bytes: number;
  cpu_s: number;
  wall_s: number;
  stages_cpu_s: Record<Stage, number>;
  stages_wall_s: Record<Stage, number>;
  one_off: { metadata_and_index_cpu_s: number; metadata_and_index_wall_s: number; lid_load_cpu_s: number; lid_load_wall_s: number; entries: number };
  rows: number;
  count_entries: number;
  parquet_bytes: number;
  counts_json_bytes: number;
  stats: Record<string, number>;
  max_rss_bytes: number;
}

/** Our per-stage CPU seconds: increments between the passes of one process (see the header), write from the best run. */
export function oursStageCpu(stages: OursStages, best: OursRun): Record<Stage, number> {
  return {
    read_inflate: stages.read_gunzip.cpu_s,
    parse_extract: stages.extract.cpu_s - stages.read_gunzip.cpu_s,
    lid: stages.extract_lid.cpu_s - stages.extract.cpu_s,
    match: stages.extract_lid_match.cpu_s - stages.extract_lid.cpu_s,
    write: best.write.cpu_s,
  };
}

const best = <T extends { cpu_s: number }>(runs: T[]): T => runs.reduce((x, y) => (y.cpu_s < x.cpu_s ? y : x));

async function readSide(dir: string): Promise<{ rows: CandidateRow[]; counts: Record<string, number> }> {
  const { readCandidatesParquet } = await import('../../storage/parquet');
  const rows = await readCandidatesParquet(readFileSync(path.join(dir, 'candidates.parquet')));
  const counts = JSON.parse(readFileSync(path.join(dir, 'counts.json'), 'utf8')) as Record<string, number>;
  return { rows, counts };
}

export async function benchShard(flags: ParsedArgs['flags']): Promise<void> {
  const targetMiB = Number(flags.mb);
  const entries = Number(flags.entries);
  const seed = Number(flags.seed);
  const runs = Number(flags.runs);
  const rebuild = flags.rebuild === true;
  const formats = (flags.formats as string[] | undefined) ?? ['warc', 'wat'];
  if (!(Number.isInteger(targetMiB) && targetMiB >= 1)) throw new ConfigError(`--mb must be a positive integer, got ${flags.mb}`);
  if (!(runs >= 1)) throw new ConfigError('--runs must be ≥ 1');
  for (const f of formats) if (f !== 'warc' && f !== 'wat') throw new ConfigError(`--formats takes warc and/or wat, got ${JSON.stringify(f)}`);
  const py = ensureVenv();
  const meta = ensureMetadata(entries, seed, py, rebuild);
  const { ensureCorpus, PAGES_PER_PIECE } = await import('./shardcost');
  const corpus = await ensureCorpus(targetMiB, rebuild);
  const model = lidModelPath();
  const modelSha = sha256(readFileSync(model));

  const results: Record<string, unknown> = {};
  const lines = [
    '',
    `== bench shard: one shard through processShard's path vs MetaCLIP's per-shard Python path, single thread each, best of ${runs} ==`,
    `  corpus: gen-samples, ${targetMiB} MiB decompressed per file (${rel(path.dirname(corpus.warc.path))}); metadata: ${rel(meta.file)} (${int(meta.info.entries)} entries)`,
    `  LID: ${rel(model)} (sha256 ${modelSha.slice(0, 12)}…) on both sides; rows keep every language, counts count ${KEEP.join(', ')}`,
  ];
  let allOk = true;
  let allMet = true;
  for (const format of formats as Array<'warc' | 'wat'>) {
    const file = corpus[format];
    const label = format.toUpperCase();
    const oursDir = path.join(OUT, `${format}-ours`);
    const baseDir = path.join(OUT, `${format}-baseline`);
    const oursRuns: OursRun[] = [];
    const baseRuns: BaseRun[] = [];
    const profile = flags.profile ? path.join(DATA, 'profiles', `shard-${format}-ours.cpuprofile`) : null;
    for (let run = 1; run <= runs; run++) {
      progress(`${label} run ${run}/${runs}: our side on ${rel(file.path)} (${mb(file.bytes)} decompressed)…`);
      const o = await runOurs<OursRun>({ kind: 'shard', input: file.path, metadata: meta.file, outDir: oursDir, keep: KEEP }, { profile: run === 1 ? profile : null });
      oursRuns.push(o);
      progress(`${label} run ${run}/${runs}: ours ${secs(o.cpu_s)} CPU, ${secs(o.wall_s)} wall; now the Python baseline…`);
      const b = await runJson<BaseRun>(py, [
        path.join(PY_DIR, 'shard_baseline.py'), '--mode', format, '--input', file.path, '--metadata', meta.file, '--lid-model', model,
        '--out-dir', baseDir, '--keep', KEEP.join(','),
      ], `${format} shard baseline`);
      baseRuns.push(b);
      progress(`${label} run ${run}/${runs}: baseline ${secs(b.cpu_s)} CPU, ${secs(b.wall_s)} wall`);
    }
    progress(`${label}: our per-stage passes (read+gunzip, extract, extract+LID, matchShard)…`);
    const stages = await runOurs<OursStages>({ kind: 'shard-stages', input: file.path, metadata: meta.file, keep: KEEP }, { profile: null });
    progress(`${label}: comparing the outputs (both Parquet files read back)…`);
    const cmp = compareShardOutputs(await readSide(oursDir), await readSide(baseDir));
    allOk &&= cmp.ok;

    const o = best(oursRuns);
    const b = best(baseRuns);
    const oStages = oursStageCpu(stages, o);
    const ratioCpu = b.cpu_s / o.cpu_s;
    const ratioWall = b.wall_s / o.wall_s;
    const met = ratioCpu >= TARGET;
    allMet &&= met;
    const mbs = (bytes: number, s: number): string => `${(bytes / 1e6 / s).toFixed(1)}`;
    const width = 44;
    const row = (l: string, x: string, y: string, r = ''): string => `  ${l.padEnd(30)} ${x.padEnd(width)} ${y.padEnd(width)} ${r}`;
    const ratio = (x: number, y: number): string => (x > 0 && y > 0 ? `${(y / x).toFixed(2)}×` : '');
    lines.push(
      '',
      `  -- ${label}: ${rel(file.path)}: ${mb(file.compressedBytes)} gz, ${mb(file.bytes)} decompressed, ${int(file.pages)} pages (${file.pieces} gen-samples pieces) --`,
      row('', 'ours', 'Python baseline', 'Python ÷ ours'),
      row('implementation', o.impl.slice(0, width - 2), b.impl.slice(0, width - 2)),
      row('one-off: metadata + index', `${secs(o.one_off.metadata_and_index_cpu_s)} CPU`, `${secs(b.one_off.metadata_and_index_cpu_s)} CPU`, ratio(o.one_off.metadata_and_index_cpu_s, b.one_off.metadata_and_index_cpu_s)),
      row('one-off: LID model load', `${secs(o.one_off.lid_load_cpu_s)} CPU`, `${secs(b.one_off.lid_load_cpu_s)} CPU`),
      ...STAGES.map((s) => row(`${STAGE_LABEL[s]} (CPU s)`, oStages[s].toFixed(2), b.stages_cpu_s[s].toFixed(2), ratio(oStages[s], b.stages_cpu_s[s]))),
      row('  stages summed (CPU s)', STAGES.reduce((t, s) => t + oStages[s], 0).toFixed(2), STAGES.reduce((t, s) => t + b.stages_cpu_s[s], 0).toFixed(2)),
      `  (stages: ours = increments between extra passes of one process, write from the best run; Python = timed inside its pass)`,
      row(`shard path CPU s (best of ${runs})`, secs(o.cpu_s), secs(b.cpu_s), ratio(o.cpu_s, b.cpu_s)),
      row('shard path wall s (same run)', secs(o.wall_s), secs(b.wall_s), ratio(o.wall_s, b.wall_s)),
      row('MB/s decompressed per CPU s', mbs(file.bytes, o.cpu_s), mbs(file.bytes, b.cpu_s)),
      row('MB/s decompressed, wall', mbs(file.bytes, o.wall_s), mbs(file.bytes, b.wall_s)),
      row('all runs CPU s', oursRuns.map((r) => r.cpu_s.toFixed(1)).join(', '), baseRuns.map((r) => r.cpu_s.toFixed(1)).join(', ')),
      row('records / candidates / texts', `${int(o.stats.records)} / ${int(o.stats.candidates)} / ${int(o.stats.texts)}`,
        `${int(b.stats.records)} / ${int(b.stats.candidates)} / ${int(b.stats.texts)}`),
      row('fastText predictions', `${int(stages.lid_calls)} (memoised per text)`, `${int(b.stats.lid_calls)} (every text)`),
      row('matched rows / counted / matches', `${int(o.rows)} / ${int(o.stats.countedTexts)} / ${int(o.stats.matches)}`,
        `${int(b.rows)} / ${int(b.stats.counted_texts)} / ${int(b.stats.matches)}`),
      row('Parquet / counts JSON', `${mb(o.parquet_bytes)} / ${mb(o.counts_json_bytes)}`, `${mb(b.parquet_bytes)} / ${mb(b.counts_json_bytes)}`),
      row('peak RSS', mb(o.max_rss_bytes), mb(b.max_rss_bytes)),
      `  ratio ours vs Python: ${ratioCpu.toFixed(2)}× per core (CPU s), ${ratioWall.toFixed(2)}× wall (target ≥ ${TARGET}× per core: ${met ? 'met' : 'MISSED'})`,
      `  outputs: ${int(cmp.rows.ours)} vs ${int(cmp.rows.baseline)} candidate rows, ` +
        (cmp.rows.identicalInOrder ? 'identical in order' : cmp.rows.onlyOurs + cmp.rows.onlyBaseline === 0
          ? `same rows in another order (first difference at row ${cmp.rows.firstDifference})`
          : `only ours ${int(cmp.rows.onlyOurs)}, only baseline ${int(cmp.rows.onlyBaseline)} (first difference at row ${cmp.rows.firstDifference})`) +
        `; counts ${int(cmp.counts.ours)} vs ${int(cmp.counts.baseline)} entries${cmp.counts.identical ? ', identical' : `, ${int(cmp.counts.differing)} differ`}` +
        `; matched entries ${int(cmp.matchedEntries.ours)} vs ${int(cmp.matchedEntries.baseline)}: ${cmp.ok ? 'ok' : 'MISMATCH'}`,
    );
    for (const e of cmp.rows.examples) lines.push(`    only ${e.side}: ${JSON.stringify({ ...e.row, entry_ids: Array.from(e.row.entry_ids) })}`);
    for (const e of cmp.counts.examples) lines.push(`    count of entry ${e.entry}: ours ${e.ours ?? '(none)'}, baseline ${e.baseline ?? '(none)'}`);
    if (profile) lines.push(...profileSummary(profile));
    results[format] = {
      file: { ...file, path: rel(file.path) },
      ours: { best: o, runs: oursRuns.map((r) => ({ cpu_s: r.cpu_s, wall_s: r.wall_s })), stage_passes: stages, stages_cpu_s: oStages },
      baseline: { best: b, runs: baseRuns.map((r) => ({ cpu_s: r.cpu_s, wall_s: r.wall_s })) },
      mb_per_cpu_s: { ours: file.bytes / 1e6 / o.cpu_s, baseline: file.bytes / 1e6 / b.cpu_s },
      mb_per_wall_s: { ours: file.bytes / 1e6 / o.wall_s, baseline: file.bytes / 1e6 / b.wall_s },
      ratio_cpu: ratioCpu,
      ratio_wall: ratioWall,
      target: TARGET,
      target_met: met,
      outputs: cmp,
    };
  }
  console.log(lines.join('\n'));
  const report = {
    name: 'shard',
    date: new Date().toISOString(),
    machine: machineInfo(),
    runs,
    corpus: { targetMiB, generator: `gen-samples (scripts/samples.ts), ${PAGES_PER_PIECE} pages per piece, seeds shardcost-<k>, concatenated`, dir: rel(path.dirname(corpus.warc.path)) },
    metadata: { file: rel(meta.file), ...meta.info },
    lid_model: { file: rel(model), sha256: modelSha },
    keep_languages: KEEP,
    ...results,
    all_outputs_ok: allOk,
    all_targets_met: allMet,
  };
  const jsonFile = path.join(DATA, 'shard.json');
  writeFileAtomic(jsonFile, JSON.stringify(report, null, 2) + '\n');
  console.log(`  figures written to ${rel(jsonFile)}`);
  if (!allOk) throw new Error(`bench shard: the outputs of the two sides differ (MISMATCH above; details in ${rel(jsonFile)})`);
}
