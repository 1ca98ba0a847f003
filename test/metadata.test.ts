import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../curation/errors';
import { Matcher } from '../curation/matcher';
import {
  buildWordnetMetadata,
  defaultMetadataPath,
  ensureDefaultMetadata,
  formatMetadataJson,
  loadMetadataFile,
  metadataHash,
  parseMetadata,
  wordnetEntryName,
  wordnetFirstLemmas,
} from '../curation/metadata';

describe('WordNet stand-in metadata', () => {
  let entries: string[];
  beforeAll(() => {
    entries = buildWordnetMetadata();
  });

  it('has one entry per distinct NLTK synset name plus 0..99', () => {
    // WordNet 3.1: 117,791 synsets, 86,631 distinct names after lower-casing / truncation / dedup.
    expect(entries.length).toBe(86_731);
    expect(new Set(entries).size).toBe(entries.length);
  });

  it('follows NLTK all_synsets() order: adjectives first, then adverbs, nouns, verbs', () => {
    expect(entries[0]).toBe('able'); // first synset of data.adj
    const iAdv = entries.indexOf('barely');
    const iNoun = entries.indexOf('entity'); // first synset of data.noun
    const iVerb = entries.indexOf('breathe'); // first synset of data.verb
    expect(entries.indexOf('unable')).toBe(1);
    expect(iAdv).toBeGreaterThan(0);
    expect(iNoun).toBeGreaterThan(iAdv);
    expect(iVerb).toBeGreaterThan(iNoun);
    expect(entries.slice(-100)).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
  });

  it('uses lower-cased synset names with spaces, like NLTK synset.name()', () => {
    const set = new Set(entries);
    for (const e of ['dog', 'cat', 'beach', 'new york', 'paris', 'ice cream', 'golden retriever', 'christmas tree', 'eiffel tower']) {
      expect(set.has(e)).toBe(true);
    }
    // NLTK lower-cases the first lemma, so proper nouns only exist in lower case.
    for (const e of ['New York', 'Paris', 'Dog', 'DOG']) expect(set.has(e)).toBe(false);
    for (let i = 0; i < 100; i++) expect(set.has(String(i))).toBe(true);
    expect(entries.some((e) => e.includes('_'))).toBe(false);
    expect(entries.some((e) => e !== e.toLowerCase())).toBe(false);
    expect(entries.some((e) => /\((a|p|ip)\)$/.test(e))).toBe(false);
    expect(entries.some((e) => e.includes('.'))).toBe(false);
    expect(entries.includes('')).toBe(false);
  });

  it('reproduces the reference quirk of cutting the name at its first dot', () => {
    expect(wordnetEntryName('St._Louis')).toBe('st');
    expect(wordnetEntryName('.22_caliber')).toBe('');
    expect(wordnetEntryName('New_York')).toBe('new york');
    expect(entries).toContain('st');
    expect(entries).toContain('wordnet3');
  });

  it('strips adjective markers from the first lemma', () => {
    const text = [
      '  1 license line  ',
      '00001740 00 a 01 able 0 005 = 05207437 n 0000 | gloss',
      '00003000 00 s 02 galore(ip) 0 many 0 000 | gloss',
      '00004000 00 a 01 Elect(p) 0 000 | gloss',
      '',
    ].join('\n');
    expect(wordnetFirstLemmas(text)).toEqual(['able', 'galore', 'Elect']);
  });

  it('is deterministic', () => {
    const again = buildWordnetMetadata();
    expect(metadataHash(again)).toBe(metadataHash(entries));
  });

  it('round-trips through the on-disk JSON form and ensureDefaultMetadata', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meta-'));
    try {
      const path = join(dir, 'sub', 'wordnet.json');
      expect(ensureDefaultMetadata(path)).toBe(path);
      expect(loadMetadataFile(path)).toEqual(entries);
      const before = readFileSync(path, 'utf8');
      expect(before).toBe(formatMetadataJson(entries));
      // An existing file is left alone.
      writeFileSync(path, '["only"]');
      ensureDefaultMetadata(path);
      expect(loadMetadataFile(path)).toEqual(['only']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(defaultMetadataPath()).toMatch(/[\\/]\.data[\\/]metadata[\\/]wordnet\.json$/);
  });

  it('matches common English alt texts (case-sensitively)', () => {
    const m = new Matcher(entries);
    const names = (text: string) => m.match(text).map((id: number) => entries[id]);
    expect(names('A dog on the beach')).toEqual(expect.arrayContaining(['dog', 'beach']));
    expect(names('Dog')).toEqual([]);
    expect(names('I love new york.')).toEqual(expect.arrayContaining(['new york', 'york']));
    expect(names('Top 10 beaches')).toContain('10');
  });
});

describe('parseMetadata errors', () => {
  const cases: Array<[string, RegExp]> = [
    ['{not json', /src\.json: not valid JSON .*expected a JSON array of strings/],
    ['{"a": 1}', /src\.json: expected a JSON array of strings, got object/],
    ['null', /src\.json: expected a JSON array of strings, got null/],
    ['"dog"', /src\.json: expected a JSON array of strings, got string/],
    ['["dog", 3]', /src\.json: entry 1 is 3, not a string/],
    ['["dog", null]', /src\.json: entry 1 is null, not a string/],
    ['[]', /src\.json: the metadata is empty/],
  ];
  it.each(cases)('%s', (json, message) => {
    expect(() => parseMetadata(json, 'src.json')).toThrow(ConfigError);
    expect(() => parseMetadata(json, 'src.json')).toThrow(message);
  });

  it('accepts a JSON array of strings', () => {
    expect(parseMetadata('["dog", "New York", "0"]')).toEqual(['dog', 'New York', '0']);
  });

  it('names the file that cannot be read', () => {
    expect(() => loadMetadataFile('/nonexistent/metadata.json')).toThrow(/cannot read metadata \/nonexistent\/metadata\.json/);
  });
});
