/**
 * `npx curate bench balance`: counting + sampling (spec §3–4) over a synthetic pool of (entry, candidate)
 * matches, ours (curation/sampling.ts: countMatches + entryProbabilities + sampleColumns, one thread) next to
 * the same algorithm in numpy (scripts/bench/balance_baseline.py), measured in the same run.
 *
 * The pool is generated once (seeded) and cached under .data/bench/balance/<params>/ as raw little-endian
 * columns both sides read: entry_ids.i32 (ascending and distinct within a candidate), offsets.u32 (n + 1),
 * key_hi.u32, key_lo.u32 (the pair keys; random 32-bit values, as real keys are SHA-256 prefixes). Entry
 * popularity is Zipf-like (P(rank ≤ k) ≈ ln(k + 1) / ln(E + 1), ranks shuffled over the ids), 1–6 entries
 * per candidate (mean ≈ 2.5).
 *
 * Timed on both sides: the dense counts, p[e], P = 1 − Π(1 − p[e]) per candidate, the draw u (seedKey of
 * the `final` stream × pair key) and u < P. Loading the columns is not timed. Both sides must select the
 * same candidates with the same probabilities (hashes compared); a mismatch fails the command.
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { drawFromKeys, entryProbability, seedKey } from '../../curation/balance';
import { headTailStats } from '../../curation/counts';
import { countMatches, entryProbabilities, sampleColumns, type MatchColumns } from '../../curation/sampling';
import { ConfigError } from '../../curation/errors';
import type { ParsedArgs } from '../args';
import {
  DATA, PY_DIR, Rng, ensureVenv, int, machineInfo, mb, nowS, profileSummary, progress, readJsonIf, rel, runJson, runOurs,
  secs, throttle, writeFileAtomic,
} from '../commands/bench';

/** Bump when the generator changes: cached pools with another version are rebuilt. */
const POOL_VERSION = 1;
/** Our time may be at most this multiple of numpy's. */
const BALANCE_TARGET = 1.5;
/** Entries per candidate: weights of 1..6 (mean 2.51). */
const SIZE_WEIGHTS = [0.28, 0.3, 0.2, 0.11, 0.07, 0.04];
const DRAW_STREAM = 'final';

const FILES = { entryIds: 'entry_ids.i32', offsets: 'offsets.u32', keyHi: 'key_hi.u32', keyLo: 'key_lo.u32' } as const;

interface PoolInfo {
  version: number;
  matches: number;
  entries: number;
  candidates: number;
  seed: number;
  generator: string;
  files: Record<keyof typeof FILES, string>;
}

// ---------------------------------------------------------------------------------------------------------
// raw little-endian columns

type Typed = Int32Array | Uint32Array;

function writeTyped(file: string, a: Typed, length = a.length): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, length * a.BYTES_PER_ELEMENT);
    for (let o = 0; o < bytes.length; ) o += writeSync(fd, bytes, o, Math.min(1 << 30, bytes.length - o));
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

function readTyped<T extends Typed>(file: string, Ctor: { new (n: number): T; BYTES_PER_ELEMENT: number }): T {
  const size = statSync(file).size;
  if (size % Ctor.BYTES_PER_ELEMENT !== 0) throw new Error(`${file}: ${size} bytes is not a multiple of ${Ctor.BYTES_PER_ELEMENT}`);
  const out = new Ctor(size / Ctor.BYTES_PER_ELEMENT);
  const bytes = new Uint8Array(out.buffer, out.byteOffset, size);
  const fd = openSync(file, 'r');
  try {
    for (let o = 0; o < size; ) {
      const got = readSync(fd, bytes, o, Math.min(1 << 30, size - o), o);
      if (got === 0) throw new Error(`${file}: short read at ${o}`);
      o += got;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function loadColumns(dir: string): MatchColumns {
  const entryIds = readTyped(path.join(dir, FILES.entryIds), Int32Array);
  const offsets = readTyped(path.join(dir, FILES.offsets), Uint32Array);
  const keyHi = readTyped(path.join(dir, FILES.keyHi), Uint32Array);
  const keyLo = readTyped(path.join(dir, FILES.keyLo), Uint32Array);
  const n = offsets.length - 1;
  if (n < 0 || keyHi.length !== n || keyLo.length !== n || offsets[n] !== entryIds.length) throw new Error(`inconsistent balance pool in ${dir}`);
  return { n, offsets, entryIds, keyHi, keyLo };
}

// ---------------------------------------------------------------------------------------------------------
// the synthetic pool

function generatePool(dir: string, matches: number, entries: number, seed: number): PoolInfo {
  const rng = new Rng(seed * 1_000_003 + 7);
  // Popularity rank → entry id: a seeded shuffle, so the head is spread over the id range like real metadata.
  const byRank = new Int32Array(entries);
  for (let i = 0; i < entries; i++) byRank[i] = i;
  for (let i = entries - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const x = byRank[i];
    byRank[i] = byRank[j];
    byRank[j] = x;
  }
  const cum: number[] = [];
  let acc = 0;
  for (const w of SIZE_WEIGHTS) cum.push((acc += w));
  const logRange = Math.log(entries + 1);
  const maxPer = Math.min(SIZE_WEIGHTS.length, entries);

  const entryIds = new Int32Array(matches);
  const offsets = new Uint32Array(matches + 1); // n + 1 ≤ matches + 1
  const row = new Int32Array(SIZE_WEIGHTS.length);
  const tick = throttle();
  let o = 0;
  let n = 0;
  while (o < matches) {
    const u = rng.next() * acc;
    let k = 1;
    while (k < maxPer && u >= cum[k - 1]) k++;
    k = Math.min(k, matches - o);
    let got = 0;
    while (got < k) {
      // Zipf-like rank: P(rank ≤ r) ≈ ln(r + 1) / ln(E + 1) (exponent 1).
      let rank = Math.floor(Math.exp(rng.next() * logRange)) - 1;
      if (rank >= entries) rank = entries - 1;
      const e = byRank[rank];
      let dup = false;
      for (let q = 0; q < got; q++) if (row[q] === e) dup = true;
      if (!dup) row[got++] = e;
    }
    // ascending within the candidate (insertion sort of ≤ 6)
    for (let a = 1; a < k; a++) {
      const x = row[a];
      let b = a - 1;
      while (b >= 0 && row[b] > x) {
        row[b + 1] = row[b];
        b--;
      }
      row[b + 1] = x;
    }
    offsets[n++] = o;
    for (let a = 0; a < k; a++) entryIds[o++] = row[a];
    if ((n & 0xffff) === 0) tick(() => `balance pool: ${int(o)} / ${int(matches)} matches`);
  }
  offsets[n] = o;
  const keyHi = new Uint32Array(n);
  const keyLo = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    keyHi[i] = (rng.next() * 4294967296) >>> 0;
    keyLo[i] = (rng.next() * 4294967296) >>> 0;
  }
  progress(`balance pool: writing ${int(matches)} matches over ${int(n)} candidates to ${rel(dir)}…`);
  writeTyped(path.join(dir, FILES.entryIds), entryIds);
  writeTyped(path.join(dir, FILES.offsets), offsets, n + 1);
  writeTyped(path.join(dir, FILES.keyHi), keyHi);
  writeTyped(path.join(dir, FILES.keyLo), keyLo);
  const info: PoolInfo = {
    version: POOL_VERSION,
    matches,
    entries,
    candidates: n,
    seed,
    generator: `mulberry32(seed); entry popularity Zipf-like (exponent 1, ranks shuffled over ids); entries per candidate 1..6 with weights ${SIZE_WEIGHTS.join('/')}; random 32-bit pair keys`,
    files: { ...FILES },
  };
  writeFileAtomic(path.join(dir, 'info.json'), JSON.stringify(info, null, 2) + '\n');
  return info;
}

function ensurePool(matches: number, entries: number, seed: number, rebuild: boolean): { dir: string; info: PoolInfo } {
  const dir = path.join(DATA, 'balance', `m${matches}-e${entries}-s${seed}`);
  const info = readJsonIf<PoolInfo>(path.join(dir, 'info.json'));
  const complete = (i: PoolInfo): boolean =>
    i.version === POOL_VERSION && i.matches === matches && i.entries === entries && i.seed === seed &&
    Object.values(FILES).every((f) => existsSync(path.join(dir, f))) &&
    statSync(path.join(dir, FILES.entryIds)).size === matches * 4 && statSync(path.join(dir, FILES.offsets)).size === (i.candidates + 1) * 4;
  if (!rebuild && info && complete(info)) return { dir, info };
  progress(`generating the balance pool (${int(matches)} matches, ${int(entries)} entries, seed ${seed}; once, cached in ${rel(dir)})…`);
  rmSync(path.join(dir, 'info.json'), { force: true });
  return { dir, info: generatePool(dir, matches, entries, seed) };
}

// ---------------------------------------------------------------------------------------------------------
// results of one side

export interface BalanceSide {
  impl: string;
  load_s: number;
  /** Each timed run: total, count phase, and p + P + draw + select phase. */
  run_s: number[];
  count_s: number[];
  sample_s: number[];
  seconds: number;
  matches: number;
  candidates: number;
  entries: number;
  considered: number;
  selected: number;
  expected: number;
  counts_sha256: string;
  selected_sha256: string;
  probability_sha256: string;
  max_rss_bytes: number;
  head_entries?: number;
  head_matches?: number;
  tail_share?: number;
  reference_check?: { checked: number; mismatches: number; examples: string[] };
  [k: string]: unknown;
}

const hashOf = (a: ArrayBufferView): string => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

/** Our side (in the bench child process). */
export async function childBalance(spec: { dir: string; entries: number; t: number; seedHi: number; seedLo: number; runs: number }): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  let t0 = nowS();
  const cols = loadColumns(spec.dir);
  const loadS = nowS() - t0;
  const seed = { hi: spec.seedHi >>> 0, lo: spec.seedLo >>> 0 };
  const runS: number[] = [];
  const countS: number[] = [];
  const sampleS: number[] = [];
  let last: { counts: Float64Array; result: ReturnType<typeof sampleColumns> } | null = null;
  for (let run = 0; run < spec.runs; run++) {
    last = null;
    gc();
    progress(`ours: run ${run + 1}/${spec.runs}…`);
    t0 = nowS();
    const counts = countMatches(cols, new Float64Array(spec.entries));
    const t1 = nowS();
    const p = entryProbabilities(counts, spec.t);
    const result = sampleColumns(cols, p, seed);
    const t2 = nowS();
    countS.push(t1 - t0);
    sampleS.push(t2 - t1);
    runS.push(t2 - t0);
    last = { counts, result };
  }
  if (!last) throw new Error('no run');
  const { counts, result } = last;
  const refCheck = referenceCheck(cols, counts, spec.t, seed, result);
  const ht = headTailStats(counts, spec.t);
  const best = Math.min(...runS);
  const summary: BalanceSide = {
    impl: `node ${process.version} curation/sampling.ts`,
    load_s: loadS,
    run_s: runS,
    count_s: countS,
    sample_s: sampleS,
    seconds: best,
    matches: cols.entryIds.length,
    candidates: cols.n,
    entries: spec.entries,
    considered: result.considered,
    selected: result.selected.length,
    expected: result.expected,
    counts_sha256: hashOf(counts),
    selected_sha256: hashOf(result.selected),
    probability_sha256: hashOf(result.probability),
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
    head_entries: ht.headEntries,
    head_matches: ht.headMatches,
    tail_share: ht.tailShare,
    reference_check: refCheck,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}

/**
 * Re-derives a stride of candidates with the scalar definitions of curation/balance.ts (entryProbability,
 * the product in stored order, drawFromKeys), independently of sampling.ts's loops.
 */
function referenceCheck(cols: MatchColumns, counts: Float64Array, t: number, seed: { hi: number; lo: number }, r: ReturnType<typeof sampleColumns>) {
  const stride = Math.max(1, Math.floor(cols.n / 200_000));
  let checked = 0;
  let mismatches = 0;
  const examples: string[] = [];
  let k = 0; // cursor in r.selected
  for (let i = 0; i < cols.n; i += stride) {
    let keepNone = 1;
    for (let j = cols.offsets[i]; j < cols.offsets[i + 1]; j++) {
      const pe = entryProbability(counts[cols.entryIds[j]], t);
      if (pe >= 1) {
        keepNone = 0;
        break;
      }
      keepNone *= 1 - pe;
    }
    const prob = 1 - keepNone;
    const want = drawFromKeys(seed.hi, seed.lo, cols.keyHi[i], cols.keyLo[i]) < prob;
    while (k < r.selected.length && r.selected[k] < i) k++;
    const got = k < r.selected.length && r.selected[k] === i;
    const ok = got === want && (!got || r.probability[k] === prob);
    checked++;
    if (!ok) {
      mismatches++;
      if (examples.length < 5) examples.push(`candidate ${i}: reference ${want ? 'selected' : 'not selected'} P=${prob}, sampleColumns ${got ? `selected P=${r.probability[k]}` : 'not selected'}`);
    }
  }
  return { checked, mismatches, examples };
}

// ---------------------------------------------------------------------------------------------------------
// the bench

export async function benchBalance(flags: ParsedArgs['flags']): Promise<void> {
  const matches = Number(flags.matches);
  const entries = Number(flags.entries);
  const t = Number(flags.t);
  const seed = Number(flags.seed);
  const runs = Number(flags.runs);
  const drawSeed = String(flags['draw-seed'] ?? '0');
  const rebuild = flags.rebuild === true;
  if (!(Number.isSafeInteger(matches) && matches >= 1 && matches <= 2 ** 31 - 1)) throw new ConfigError('--matches must be an integer in [1, 2^31)');
  if (!(Number.isSafeInteger(entries) && entries >= SIZE_WEIGHTS.length)) throw new ConfigError(`--entries must be an integer ≥ ${SIZE_WEIGHTS.length}`);
  if (!(t > 0)) throw new ConfigError('--t must be > 0');
  if (!(Number.isInteger(runs) && runs >= 1)) throw new ConfigError('--runs must be ≥ 1');
  mkdirSync(DATA, { recursive: true });
  const py = ensureVenv();
  const pool = ensurePool(matches, entries, seed, rebuild);
  const sk = seedKey(drawSeed, DRAW_STREAM);
  const profile = flags.profile ? path.join(DATA, 'profiles', 'balance-ours.cpuprofile') : null;

  progress(`our side: count + sample ${int(matches)} matches / ${int(pool.info.candidates)} candidates, t=${t}, ${runs} run(s)…`);
  const ours = await runOurs<BalanceSide>({ kind: 'balance', dir: pool.dir, entries, t, seedHi: sk.hi, seedLo: sk.lo, runs }, { profile });
  progress(`our side: best ${secs(ours.seconds)}; now the numpy baseline…`);
  const base = await runJson<BalanceSide>(py, [
    path.join(PY_DIR, 'balance_baseline.py'), '--dir', pool.dir, '--entries', String(entries), '--t', String(t),
    '--seed-hi', String(sk.hi), '--seed-lo', String(sk.lo), '--runs', String(runs),
  ], 'balance baseline');

  // identity
  const expectedRelDiff = Math.abs(ours.expected - base.expected) / Math.max(1, Math.abs(base.expected));
  const checks: Array<[string, boolean, string]> = [
    ['counts vector (sha256 of float64 LE)', ours.counts_sha256 === base.counts_sha256, `${ours.counts_sha256.slice(0, 16)}… vs ${base.counts_sha256.slice(0, 16)}…`],
    ['candidates considered', ours.considered === base.considered, `${int(ours.considered)} vs ${int(base.considered)}`],
    ['selected count', ours.selected === base.selected, `${int(ours.selected)} vs ${int(base.selected)}`],
    ['selected indexes (sha256 of uint32 LE)', ours.selected_sha256 === base.selected_sha256, `${ours.selected_sha256.slice(0, 16)}… vs ${base.selected_sha256.slice(0, 16)}…`],
    ['selected P (sha256 of float64 LE)', ours.probability_sha256 === base.probability_sha256, `${ours.probability_sha256.slice(0, 16)}… vs ${base.probability_sha256.slice(0, 16)}…`],
    // Σ P is summed in another order by numpy (pairwise), so only agreement to rounding is expected.
    ['Σ P (expected size; rel. diff ≤ 1e-9)', expectedRelDiff <= 1e-9, `${ours.expected.toFixed(3)} vs ${base.expected.toFixed(3)} (rel. diff ${expectedRelDiff.toExponential(1)})`],
  ];
  const ref = ours.reference_check;
  if (ref) checks.push(['ours vs curation/balance.ts scalar definitions', ref.mismatches === 0, `${int(ref.checked)} strided candidates, ${int(ref.mismatches)} mismatches`]);
  const identical = checks.every(([, ok]) => ok);

  const ratio = ours.seconds / base.seconds; // time ours / time numpy
  const met = ratio <= BALANCE_TARGET;
  const rates = (s: BalanceSide) => ({ matchesPerS: matches / s.seconds, candidatesPerS: pool.info.candidates / s.seconds });
  const ro = rates(ours);
  const rb = rates(base);
  const best = (s: BalanceSide, phase: number[]): number => phase[s.run_s.indexOf(Math.min(...s.run_s))];
  const width = Math.max(34, ours.impl.length + 2);
  const row = (label: string, x: string, y: string): string => `  ${label.padEnd(30)} ${x.padEnd(width)} ${y}`;
  const lines = [
    '',
    `== bench balance: count + sample ${int(matches)} (entry, candidate) matches, single thread each ==`,
    `  pool: ${rel(pool.dir)}  (${int(pool.info.candidates)} candidates, ${int(entries)} entries, seed ${seed}; ${pool.info.generator})`,
    `  t = ${t}; draws: seedKey(${JSON.stringify(drawSeed)}, '${DRAW_STREAM}') = (0x${sk.hi.toString(16).padStart(8, '0')}, 0x${sk.lo.toString(16).padStart(8, '0')}); ` +
      (ours.head_entries !== undefined ? `head: ${int(ours.head_entries)} entries with count ≥ t hold ${int(ours.head_matches ?? 0)} matches (tail share ${((ours.tail_share ?? 0) * 100).toFixed(1)}%)` : ''),
    `  timed: dense counts, p[e], P = 1 − Π(1 − p[e]), u = drawFromKeys(seed, pair key), u < P; loading the columns is not timed`,
    row('', 'ours', 'numpy'),
    row('implementation', ours.impl, base.impl),
    row('load columns (not timed)', secs(ours.load_s), secs(base.load_s)),
    row(`time (best of ${runs})`, secs(ours.seconds), secs(base.seconds)),
    row('  count', secs(best(ours, ours.count_s)), secs(best(base, base.count_s))),
    row('  p, P, draw, select', secs(best(ours, ours.sample_s)), secs(best(base, base.sample_s))),
    row('all runs', ours.run_s.map(secs).join(', '), base.run_s.map(secs).join(', ')),
    row('matches/s', int(ro.matchesPerS), int(rb.matchesPerS)),
    row('candidates/s', int(ro.candidatesPerS), int(rb.candidatesPerS)),
    row('selected / expected Σ P', `${int(ours.selected)} / ${ours.expected.toFixed(1)}`, `${int(base.selected)} / ${base.expected.toFixed(1)}`),
    row('peak RSS', mb(ours.max_rss_bytes), mb(base.max_rss_bytes)),
    `  ratio time ours/numpy: ${ratio.toFixed(2)}× (target ≤ ${BALANCE_TARGET}×: ${met ? 'met' : 'MISSED'}); speed-up ${(1 / ratio).toFixed(2)}×`,
    `  identity: ${identical ? 'identical' : 'MISMATCH'}`,
    ...checks.map(([label, ok, detail]) => `    ${ok ? 'ok  ' : 'FAIL'} ${label}: ${detail}`),
    ...(ref?.examples ?? []).map((e) => `      ${e}`),
  ];
  console.log(lines.join('\n'));
  const report = {
    name: 'balance',
    date: new Date().toISOString(),
    machine: machineInfo(),
    profiled: profile !== null,
    pool: { dir: rel(pool.dir), ...pool.info },
    t,
    drawSeed,
    drawStream: DRAW_STREAM,
    seedKey: sk,
    runs,
    ours: { ...ours, ...ro },
    baseline: { ...base, ...rb },
    ratio,
    target: BALANCE_TARGET,
    targetMet: met,
    identity: { identical, checks: checks.map(([label, ok, detail]) => ({ check: label, ok, detail })) },
  };
  const jsonFile = path.join(DATA, 'balance.json');
  writeFileAtomic(jsonFile, JSON.stringify(report, null, 2) + '\n');
  console.log(`  figures written to ${rel(jsonFile)}`);
  if (profile) console.log(profileSummary(profile).join('\n'));
  if (!identical) throw new Error(`balance identity check FAILED (see above and ${rel(jsonFile)})`);
}
