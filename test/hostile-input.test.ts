/**
 * Hostile input (issue 11), generated here: WAT records shaped to exhaust a parser's memory, lone surrogates,
 * tags left open at the end of a page, and the CLI's edges. The CLI runs from the TypeScript sources in a child
 * process (test/support/ts-cli.js), so its exit code, stderr and peak RSS (`maxRSS`) are those of a real run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ShardExtractor, cleanWatText, dropLoneSurrogates, type Candidate } from '../curation/extract';
import { PairSet } from '../curation/pair-set';
import { parseArgs, type Command } from '../scripts/args';
import { commandModule } from '../scripts/cli';
import { imagesFromFlags } from '../scripts/runconfig';
import { writeDeeplyNestedWat, writeManyLinksWat } from './support/hostile';
import { warcFile, warcRecord } from './support/warcbuild';

const ROOT = path.resolve(__dirname, '..');
const TS_CLI = path.join(__dirname, 'support', 'ts-cli.js');

interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
  maxRssMb: number;
  seconds: number;
}

function curate(args: string[]): CliRun {
  const started = Date.now();
  const r = spawnSync(process.execPath, [TS_CLI, ...args], {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, CURATE_REPORT_RSS: '1' },
  });
  const m = /maxRSS (\d+)\n?$/.exec(r.stderr);
  return {
    status: r.status, stdout: r.stdout, stderr: m ? r.stderr.slice(0, m.index) : r.stderr,
    maxRssMb: m ? Number(m[1]) / 1024 : NaN, seconds: (Date.now() - started) / 1000,
  };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('WAT records: memory bounded by a small multiple of the record, whatever its shape', () => {
  test('a 60 MB record nested 30 million deep: a bad record (too-deep), seconds, peak RSS < 500 MB', async () => {
    const file = path.join(dir, 'deep.wat.gz');
    const bytes = await writeDeeplyNestedWat(file, 60e6);
    expect(bytes).toBeGreaterThan(59e6);
    const r = curate(['extract', file, '--lid', 'off', '--stats']);
    console.log(`deep WAT record (${(bytes / 1e6).toFixed(1)} MB): ${r.seconds.toFixed(2)} s, peak RSS ${r.maxRssMb.toFixed(0)} MB`);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    const stats = JSON.parse(r.stderr.trim().split('\n')[0]);
    expect(stats).toMatchObject({ watRecords: 1, badRecords: 1, badRecordReasons: { 'too-deep': 1 }, candidates: 0 });
    expect(r.stderr).toMatch(/1 bad record skipped \(too-deep: 1\)/);
    expect(r.maxRssMb).toBeLessThan(500);
    expect(r.seconds).toBeLessThan(30);
  });

  // Peak RSS here is 410–515 MB run to run on Node 24 (GC timing: the record, its million candidates and the
  // output stream); the bound is about 10× the record, far below what a quadratic or unbounded reader would take.
  test('a 60 MB record with a million image links: every candidate, seconds, peak RSS < 640 MB', async () => {
    const file = path.join(dir, 'many.wat.gz');
    const bytes = await writeManyLinksWat(file, 1_000_000);
    expect(bytes).toBeGreaterThan(55e6);
    const r = curate(['extract', file, '--lid', 'off', '--stats']);
    console.log(`WAT record with 1M links (${(bytes / 1e6).toFixed(1)} MB): ${r.seconds.toFixed(2)} s, peak RSS ${r.maxRssMb.toFixed(0)} MB`);
    expect(r.status).toBe(0);
    const stats = JSON.parse(r.stderr.trim().split('\n')[0]);
    expect(stats).toMatchObject({ badRecords: 0, imgLinks: 1_000_000, candidates: 1_000_000 });
    let lines = 0;
    let last = -1;
    for (let at = r.stdout.indexOf('\n'); at >= 0; at = r.stdout.indexOf('\n', at + 1)) lines++;
    expect(lines).toBe(1_000_000);
    last = r.stdout.lastIndexOf('\n', r.stdout.length - 2);
    expect(JSON.parse(r.stdout.slice(last + 1))).toMatchObject({ url: 'http://many.example/i/999999.jpg', texts: [['alt', `photo ${999_999 % 997}`]] });
    expect(r.maxRssMb).toBeLessThan(640);
    expect(r.seconds).toBeLessThan(60);
  });

  test('a record with many links is emitted in slices (the same candidates as all at once)', () => {
    const links = Array.from({ length: 10_000 }, (_, i) => ({ path: 'IMG@/src', url: `/i/${i % 7000}.jpg`, alt: `a${i % 7}` }));
    const payload = Buffer.from(JSON.stringify({ Envelope: { 'Payload-Metadata': { 'HTTP-Response-Metadata': { 'HTML-Metadata': { Links: links } } } } }));
    const whole = new ShardExtractor().fromWatPayload('http://e.com/', payload);
    const sliced = new ShardExtractor();
    const got: Candidate[] = [];
    sliced.fromWatPayload('http://e.com/', payload, got, 1000);
    let slices = 1;
    while (sliced.hasPendingLinks) {
      sliced.continueRecord(got, 1000);
      slices++;
    }
    expect(slices).toBe(10);
    expect(got).toEqual(whole);
    expect(got.length).toBe(7000); // the last 3000 links repeat (url, alt) pairs of the first 7000: duplicates
  });
});

describe('per-file dedup set', () => {
  test('PairSet is exact: same answers as a Set of (uuid, text) over colliding, long and non-ASCII texts', () => {
    const set = new PairSet();
    const ref = new Set<string>();
    const uuids = Array.from({ length: 50 }, (_, i) => i.toString(16).padStart(24, '0'));
    const texts = ['', 'a', 'A', 'é', '\u4e2d', '\ud83d\ude00', 'x'.repeat(1500), 'x'.repeat(1501), 'a b', 'a  b'];
    for (let k = 0; k < 20_000; k++) {
      const uuid = uuids[(k * 7919) % uuids.length];
      const text = texts[(k * 104729) % texts.length] + (k % 13 === 0 ? '' : String(k % 97));
      if (set.add(uuid, text) !== !ref.has(uuid + text)) throw new Error(`PairSet disagrees at ${k}: ${uuid} ${JSON.stringify(text.slice(0, 20))}`);
      ref.add(uuid + text);
    }
    expect(set.size).toBe(ref.size);
  });
});

describe('lone surrogates', () => {
  test('are removed from WAT texts (a URL with one is dropped as before)', () => {
    expect(dropLoneSurrogates('a\ud800b\udc00c\ud83d\ude00')).toBe('abc\ud83d\ude00');
    expect(cleanWatText(' \ud800 ')).toBe('');
    const payload = Buffer.from('{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[' +
      '{"path":"IMG@/src","url":"a.png","alt":"caf\\u00e9 \\ud800au lait","title":"\\udc00"},' +
      '{"path":"IMG@/src","url":"b\\ud800.png","alt":"dropped"}]}}}}}');
    const ex = new ShardExtractor();
    const got = ex.fromWatPayload('http://e.com/', payload);
    expect(got.map((c) => [c.url, c.texts])).toEqual([['http://e.com/a.png', [['alt', 'café au lait']]]]);
    expect(ex.stats.unresolvableUrls).toBe(1);
    // Without any text (no candidate, no uuid computed), such a URL is counted all the same; a good one is not.
    const textless = Buffer.from('{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[' +
      '{"path":"IMG@/src","url":"c\\ud800.png"},{"path":"IMG@/src","url":"d.png","alt":" "}]}}}}}');
    expect(ex.fromWatPayload('http://e.com/', textless)).toEqual([]);
    expect(ex.stats).toMatchObject({ imgLinks: 4, unresolvableUrls: 2, candidates: 1 });
  });
});

describe('HTML: a tag left open at the end of the input is dropped (HTML5 eof-in-tag)', () => {
  test('a 7 MB alt text left open yields no candidate; the earlier <img> is kept', () => {
    const page = `<html><img src=ok.png alt="fine"><p>text</p><img src=b.png alt="${'x'.repeat(7 << 20)}`;
    const http = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n${page}`);
    const file = warcFile([warcRecord({ type: 'response', targetUri: 'http://e.com/', contentType: 'application/http; msgtype=response', block: http })]);
    const ex = new ShardExtractor();
    const got: Candidate[] = [];
    for (const c of ex.fromHtml('http://e.com/', Buffer.from(page))) got.push(c);
    expect(got.map((c) => [c.url, c.texts])).toEqual([['http://e.com/ok.png', [['alt', 'fine']]]]);
    writeFileSync(path.join(dir, 'open.warc.gz'), file);
    const r = curate(['extract', path.join(dir, 'open.warc.gz'), '--lid', 'off']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l).url)).toEqual(['http://e.com/ok.png']);
  });
});

describe('CLI edges: one clear line, the right exit code', () => {
  test('prototype keys are unknown commands', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(commandModule(name)).toBeUndefined();
      const r = curate([name]);
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`curate: unknown command '${name}'. Run 'npx curate --help' for the list.\n`);
    }
    expect(commandModule('extract')).toBe('./commands/extract');
  });

  test('extract DIR and extract MISSING say what is wrong (exit 2)', () => {
    const d = curate(['extract', dir, '--lid', 'off']);
    expect(d.status).toBe(2);
    expect(d.stderr).toBe(`curate: ${dir} is a directory: extract reads one WAT/WARC file (run it once per file)\n`);
    const m = curate(['extract', path.join(dir, 'nope.warc.gz'), '--lid', 'off']);
    expect(m.status).toBe(2);
    expect(m.stderr).toBe(`curate: cannot open ${path.join(dir, 'nope.warc.gz')}: no such file\n`);
  });

  test("number flags: '' and other non-numbers are refused with the flag's meaning", () => {
    const cmd: Command = { name: 'x', summary: '', usage: 'x', flags: { t: { type: 'number', help: 'balancing threshold t' } }, run: async () => undefined };
    expect(() => parseArgs(cmd, ['--t', ''])).toThrow("option --t needs a number (balancing threshold t), got an empty value");
    expect(() => parseArgs(cmd, ['--t=  '])).toThrow(/got an empty value/);
    expect(() => parseArgs(cmd, ['--t', '0x10'])).toThrow('option --t must be a number (balancing threshold t), got "0x10"');
    expect(() => parseArgs(cmd, ['--t', 'abc'])).toThrow(/must be a number/);
    expect(parseArgs(cmd, ['--t', '2e4'])).toEqual({ positional: [], flags: { t: 20000 } });
    expect(parseArgs(cmd, ['--t=-0.5'])).toEqual({ positional: [], flags: { t: -0.5 } });
    const r = curate(['balance', '--counts', 'counts.json', '--t', '']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^curate: option --t needs a number \(.*\), got an empty value\n$/);
  });

  test('--allow-cidrs is validated on the client, every bad range named', () => {
    expect(() => imagesFromFlags({ images: 'on', 'allow-cidrs': ['bogus', '10.0.0.0/33'] })).toThrow(
      '--allow-cidrs: not an IP range: "bogus"; bad prefix length in "10.0.0.0/33" (expected a.b.c.d/n, x::y/n or an address)');
    expect(() => imagesFromFlags({ images: 'on', 'allow-cidrs': ['127.0.0.1/32', '::1', '10.0.0.0/8'] })).not.toThrow();
  });
});
