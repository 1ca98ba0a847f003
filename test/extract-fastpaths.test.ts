/**
 * The extraction fast paths against the general implementations they shortcut, on many random inputs:
 * every fast answer must equal the general one (and the fast paths must actually be taken).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { isUtf8 as isUtf8Buffer } from 'node:buffer';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ShardExtractor, WAT_MAX_DEPTH, scanWatImageLinks, setWatScanner, watScanCounts, type Candidate } from '../curation/extract';
import { HTMLSCAN_WASM_FILE, WASM_MAX_PAGE, WASM_MAX_PAYLOAD, WATSCAN_WASM_FILE, wasmHtmlScanner, wasmWatScanner } from '../curation/wasm-scanners';
import { decodeHtml, decodeHtmlAs, htmlScanCounts, scanImgTags, scanImgTagsUtf8, setHtmlScanner, wellFormedUtf8Of, type ImgTag } from '../curation/html';
import { httpResponseBody, parseHttpResponse } from '../curation/http';
import { gzipSync } from 'node:zlib';
import { imageUuid, UrlError, urljoin, urljoinFastOnly, urljoinStrict } from '../curation/url';
import { parseHeaderBlock, readWarcRecords } from '../curation/warc';
import { generateSamples } from '../scripts/samples';

function strictOrNull(base: string, ref: string): string | null {
  try {
    return urljoinStrict(base, ref);
  } catch (err) {
    if (err instanceof UrlError) return null;
    throw err;
  }
}

describe('urljoin fast path = urljoinStrict', () => {
  const basePiece = fc.constantFrom(
    'http://', 'https://', 'HTTP://', 'Https://', 'ftp://', 'mailto:', '//', ' ', '\t', 'h', 'e.com', 'Ex.COM', 'a.b',
    ':8080', '@', 'u:p@', '[::1]', '[', '/', '//', '.', '..', './', '../', 'dir', 'p.html', ';p', '?', '?q=1', '#', '#f',
    '\u00e9', '\uff03', '%2F', 'x', '=', '&',
  );
  const refPiece = fc.constantFrom(
    'http://', 'https://', 'HTTP:', 'http:', 'https:', 'data:', 'javascript:', 'ftp://', 'ed2k://', 'g:', '//', '/', '.',
    '..', './', '../', '/./', '/../', 'a', 'B', 'img', '.jpg', 'x.png', '?', '?x=1', '#', '#s', ';', ';x', ':', '::1',
    '[', ']', '[::1]', '@', ' ', '\t', '\n', '\r', '\x00', '\x1f', '%20', '\u00e9', '\uff03', '\ud800', 'e.com', 'cdn.e.com',
    ':80', '=', '&', '1', '+', '-',
  );
  const word = fc.array(fc.constantFrom('a', 'Z', '0', '.', '-', '/', ':', '?', '#', ';', '%', '\u00e9'), { maxLength: 6 }).map((a) => a.join(''));
  const base = fc.oneof(
    { weight: 3, arbitrary: fc.array(basePiece, { maxLength: 8 }).map((a) => a.join('')) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom('http://', 'https://'), fc.constantFrom('e.com', 'a.b.c', 'H.X:81', 'u@h'), fc.array(fc.oneof(basePiece, word), { maxLength: 6 })).map(([s, h, p]) => s + h + p.join('')) },
    { weight: 1, arbitrary: fc.constantFrom('http://a/b/c/d;p?q', 'https://Ex.com/dir/page.html?x=1#f', 'https://e.com', 'http://e.com/a/b/', 'file:///tmp/x/', 'ftp://h/p/', 'http://a//b/./c/../d', 'http://a/b/c/.', '') },
  );
  const ref = fc.oneof(
    { weight: 4, arbitrary: fc.array(refPiece, { maxLength: 10 }).map((a) => a.join('')) },
    { weight: 2, arbitrary: fc.array(fc.oneof(refPiece, word), { maxLength: 8 }).map((a) => a.join('')) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  );

  /** How many pairs the fast path answers, and every answer (fast, and with `full` the whole join) that differs from the strict one. */
  function againstStrict(pairs: Array<[string, string]>, full: boolean): { fast: number; mismatches: Array<[string, string, string | null, string | null]> } {
    let fast = 0;
    const mismatches: Array<[string, string, string | null, string | null]> = [];
    for (const [b, r] of pairs) {
      const got = urljoinFastOnly(b, r);
      const want = strictOrNull(b, r);
      if (got !== null) {
        fast++;
        if (got !== want) mismatches.push([b, r, got, want]);
      }
      if (full) {
        const whole = urljoin(b, r);
        if (whole !== want) mismatches.push([b, r, whole, want]);
      }
    }
    return { fast, mismatches };
  }

  test('every fast answer equals the general algorithm (200,000 random pairs)', () => {
    const pairs = fc.sample(fc.tuple(base, ref), { numRuns: 200_000, seed: 20240518 });
    const { fast, mismatches } = againstStrict(pairs, true);
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(fast).toBeGreaterThan(pairs.length / 5); // the fast path is exercised, not just bypassed
  });

  test('path references (absolute and relative, the one-pass case of the fast path) equal the general algorithm', () => {
    const seg = fc.constantFrom('a', 'img', 'x.png', '.', '..', '', '.x', '..y', '...', ';p', 'a:b', '%2e', '\u00e9', 'b\tc', 'd\ne', 'f\rg', '=');
    const tail = fc.constantFrom('', '?', '?x=1', '#', '#f', '?#', '?x#', '?#f', '?a?b#c#d', '#f?x', '?;x', '#:', '?a:b');
    const path = fc.tuple(fc.constantFrom('', '/', './', '../'), fc.array(seg, { maxLength: 6 }), tail).map(([lead, segs, t]) => lead + segs.join('/') + t);
    const fastBase = fc.tuple(fc.constantFrom('http://', 'https://', 'HTTP://'), fc.constantFrom('e.com', 'H.X:81', 'u@h'),
      fc.constantFrom('', '/', '/a', '/a/', '/a/b.html', '/a//b/', '/a/./b/', '/a/../b/', '/a;p/b', '/a/b?q', '/a/b#f', '/a/b/')).map(([s, h, p]) => s + h + p);
    const pairs = fc.sample(fc.tuple(fastBase, path), { numRuns: 100_000, seed: 20261207 });
    const { fast, mismatches } = againstStrict(pairs, false);
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(fast).toBeGreaterThan(pairs.length / 4);
  });

  test('typical page references take the fast path', () => {
    const cases: Array<[string, string]> = [
      ['http://0pointer.de/photos/?gallery=Australia&photo=496', './galleries/Australia/lq/img-496.jpg'],
      ['http://www.archive.org/details/texts', '/images/rss.png'],
      ['http://en.wikipedia.org/wiki/Mona_Lisa', '//bits.wikimedia.org/static-1.21wmf6/skins/common/images/magnify-clip.png'],
      ['https://amyxzhang.wordpress.com/', 'https://amyxzhang.wordpress.com/wp-content/uploads/2019/01/a.png?w=2758&h=1437'],
      ['https://e.com/a/b/', '../../../x.gif'],
      ['https://e.com/a/b/', 'data:image/gif;base64,R0lGODlhAQABAAAAACw='],
      ['https://e.com/a/b/', 'http://other.org/x.png'],
    ];
    for (const [b, r] of cases) {
      expect(urljoinFastOnly(b, r)).not.toBeNull();
      expect(urljoinFastOnly(b, r)).toBe(urljoinStrict(b, r));
    }
  });
});

describe('imageUuid', () => {
  test('equals SHA-224 hex[:24] through a Hash object on random URLs', () => {
    for (const url of fc.sample(fc.string({ unit: 'grapheme', maxLength: 40 }), { numRuns: 5000, seed: 7 })) {
      expect(imageUuid(url)).toBe(createHash('sha224').update(url, 'utf8').digest('hex').slice(0, 24));
    }
  });
});

/** A small seeded PRNG (mulberry32) for the generators below. */
function rng(seed: number): { int(n: number): number; pick<T>(a: readonly T[]): T; chance(p: number): boolean } {
  let s = seed >>> 0;
  const next = (): number => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n) => Math.floor(next() * n),
    pick: (a) => a[Math.floor(next() * a.length)],
    chance: (p) => next() < p,
  };
}

function tagsOf(scan: (onImg: (img: ImgTag) => void) => void): Array<Array<[string, string]>> {
  const out: Array<Array<[string, string]>> = [];
  scan((img) => out.push(img.attrs));
  return out;
}

describe('the WebAssembly HTML scanner', () => {
  test('is built and loads (dist/wasm/htmlscan.wasm), reads pages up to WASM_MAX_PAGE; larger ones go to the JS scanner', () => {
    if (wasmHtmlScanner() === null) throw new Error(`${HTMLSCAN_WASM_FILE} did not load: run node bin/build-wasm.js`);
    setHtmlScanner('wasm');
    try {
      const before = { ...htmlScanCounts };
      const page = '<p>x</p><IMG src="a.png" ALT=\'A &amp; B\' title=T alt=dup data-image-title="é"><img src=b>';
      const want = [[['src', 'a.png'], ['alt', 'A & B'], ['title', 'T'], ['data-image-title', 'é']], [['src', 'b']]];
      expect(tagsOf((f) => scanImgTagsUtf8(Buffer.from(page), f))).toEqual(want);
      expect(htmlScanCounts.wasm - before.wasm).toBe(1);
      const big = Buffer.from(`${'<p>filler</p>'.repeat(Math.ceil(WASM_MAX_PAGE / 13))}${page}`);
      expect(big.length).toBeGreaterThan(WASM_MAX_PAGE);
      expect(tagsOf((f) => scanImgTagsUtf8(big, f))).toEqual(want);
      expect(htmlScanCounts.js - before.js).toBe(1);
      expect(htmlScanCounts.wasm - before.wasm).toBe(1);
    } finally {
      setHtmlScanner('auto');
    }
  });
});

/** Byte pieces around every boundary of well-formed UTF-8 (Unicode's table 3-7), truncated sequences and U+FFFD. */
const UTF8_PIECES: number[][] = [
  [0x41], [0x7f], [0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xc2, 0x80], [0xdf, 0xbf], [0xc3], [0xe0, 0xa0, 0x80],
  [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xed, 0x9f, 0xbf], [0xed, 0xa0, 0x80], [0xef, 0xbf, 0xbd], [0xef, 0xbf, 0xbf],
  [0xe2, 0x82], [0xe2, 0x82, 0xac], [0xf0, 0x90, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xf0, 0x90, 0x80], [0xff], [0xfe], [0x0a], [0x3c],
];

describe.each(['js', 'wasm'] as const)('wellFormedUtf8Of (%s) = the UTF-8 of decodeHtmlAs(body, "utf-8")', (mode) => {
  beforeAll(() => setHtmlScanner(mode));
  afterAll(() => setHtmlScanner('auto'));
  const reference = (b: Buffer): Buffer => Buffer.from(decodeHtmlAs(b, 'utf-8'), 'utf8');

  test('on 30,000 random byte strings (ASCII runs, stray bytes, boundary sequences, U+FFFD)', () => {
    const r = rng(31337);
    let invalid = 0;
    for (let t = 0; t < 30_000; t++) {
      const bytes: number[] = [];
      for (let i = 1 + r.int(40); i > 0; i--) {
        const k = r.int(10);
        if (k < 2) for (let j = r.int(40); j > 0; j--) bytes.push(0x20 + r.int(90));
        else if (k < 3) bytes.push(r.int(256));
        else bytes.push(...r.pick(UTF8_PIECES));
      }
      const b = Buffer.from(bytes);
      const got = wellFormedUtf8Of(b);
      if (!got.equals(reference(b))) throw new Error(`differs on ${b.toString('hex')}: ${got.toString('hex')} vs ${reference(b).toString('hex')}`);
      if (!isUtf8Buffer(b)) invalid++;
    }
    expect(invalid).toBeGreaterThan(20_000); // the stray-byte path was exercised, not only valid input
  });

  test('a valid page comes back as it is (U+FFFD kept); an invalid one loses its stray bytes and every U+FFFD', () => {
    const valid = Buffer.from('<img alt="a\uFFFDb">', 'utf8');
    expect(wellFormedUtf8Of(valid)).toBe(valid);
    const invalid = Buffer.concat([Buffer.from('<img alt="a\uFFFDb'), Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('é">')]);
    expect(wellFormedUtf8Of(invalid).toString('utf8')).toBe('<img alt="ab(é">');
  });
});

describe.each(['js', 'wasm'] as const)('scanImgTagsUtf8 (%s, bytes) = scanImgTags (decoded text)', (mode) => {
  beforeAll(() => setHtmlScanner(mode));
  afterAll(() => setHtmlScanner('auto'));

  const PIECES = [
    '<', '<', '<', '>', '>', '/', '/>', '=', '=', '"', '"', "'", ' ', ' ', '\n', '\t', '\f', '\r', 'x', 'a.png', '-', '?', '!',
    'img', 'IMG', 'iMg', 'image', 'IMAGE', 'src', 'SRC', 'Src', 'alt', 'ALT', 'title', 'TITLE', 'data-image-title', 'DATA-IMAGE-TITLE',
    'svg', 'SVG', 'math', 'script', 'SCRIPT', 'style', 'textarea', 'xmp', 'iframe', 'noembed', 'noframes', 'plaintext', 'p', 'a', 'div',
    '<img ', '<IMG ', '<image ', '</', '</svg>', '</math>', '</script>', '</script ', '</SCRIPT/', '</style>', '</title>', '</textarea>',
    '<!--', '-->', '--!>', '--', '<!-->', '<!--->', '<!', '<!DOCTYPE html>', '<?', '<![CDATA[', ']]>', '</>', '< ',
    '<script>', '<style>', '<title>', '<textarea>', '<xmp>', '<iframe>', '<noembed>', '<noframes>', '<plaintext>', '<svg>', '<math>',
    '<svg/>', '<MATH />', '</script\f', '</STYLE\t', '</title\n', '</textarea/', '</xmp ', '</iframe\r', '</noembed>', '</noframes>',
    '</scripts>', '</titl', '</svg ', '</MATH\n>',
    ' src="', ' alt=\'', ' title=', 'src=x', '&amp;', '&lt;', '&#x41;', '&#66;', '&eacute;', '&copy', '&notit;', '&',
    '\u00e9', '\u4e2d', '\ud83d\ude00', '\u00a0', '\ufeff', '\u2028', '\u0130', '\u212a', '\u00c0',
  ];

  test('on 40,000 random markups', () => {
    const { js: jsBefore, wasm: wasmBefore } = htmlScanCounts;
    const r = rng(12345);
    let imgs = 0;
    for (let k = 0; k < 40_000; k++) {
      const parts: string[] = [];
      const len = 1 + r.int(60);
      for (let j = 0; j < len; j++) parts.push(r.pick(PIECES));
      const html = parts.join('');
      const want = tagsOf((f) => scanImgTags(html, f));
      const got = tagsOf((f) => scanImgTagsUtf8(Buffer.from(html, 'utf8'), f));
      if (JSON.stringify(got) !== JSON.stringify(want)) expect({ html, got }).toEqual({ html, got: want });
      imgs += want.length;
    }
    expect(imgs).toBeGreaterThan(8_000);
    expect(mode === 'wasm' ? htmlScanCounts.js : htmlScanCounts.wasm).toBe(mode === 'wasm' ? jsBefore : wasmBefore);
  });

  test('on every page of the real archives and of generated samples (valid UTF-8 as is, others re-encoded)', async () => {
    const archives = path.resolve(__dirname, '..', '..', 'shared', 'data', 'web-archives');
    const realFiles = existsSync(archives)
      ? ['cc', 'web'].flatMap((d) => readdirSync(path.join(archives, d)).filter((f) => /\.warc(\.gz)?$/.test(f)).map((f) => path.join(archives, d, f)))
      : [];
    const samples = await generateSamples({ outDir: mkdtempSync(path.join(tmpdir(), 'fastpaths-')), shards: 2, seed: 5, formats: ['warc'] });
    let pages = 0;
    for (const file of [...realFiles, ...samples.files]) {
      for await (const rec of readWarcRecords(createReadStream(file))) {
        if (rec.type !== 'response' || !rec.block) continue;
        const http = parseHttpResponse(rec.block, 1 << 26);
        if (!http) continue;
        const text = decodeHtml(http.body);
        const bytes = Buffer.from(text, 'utf8').equals(http.body) ? http.body : Buffer.from(text, 'utf8');
        expect(tagsOf((f) => scanImgTagsUtf8(bytes, f))).toEqual(tagsOf((f) => scanImgTags(text, f)));
        pages++;
      }
    }
    expect(pages).toBeGreaterThan(50);
  });
});

/** The WAT links as JSON.parse sees them (the general path of ShardExtractor.fromWatPayload). */
function linksByJsonParse(payload: Buffer): unknown[] | null {
  let doc: any;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  const links = doc?.Envelope?.['Payload-Metadata']?.['HTTP-Response-Metadata']?.['HTML-Metadata']?.Links;
  const out: unknown[] = [];
  if (!Array.isArray(links)) return out;
  for (const link of links) {
    if (link === null || typeof link !== 'object') continue;
    if (typeof link.path !== 'string' || !link.path.startsWith('IMG@/src') || typeof link.url !== 'string') continue;
    const text = (v: unknown): unknown => (typeof v === 'string' ? v : undefined);
    out.push(link.url, text(link.alt), text(link.title), text(link['data-image-title']));
  }
  return out;
}

/** Random JSON text around the WAT path: duplicate keys, escapes, odd whitespace, wrong types, and broken JSON. */
function randomWatJson(r: ReturnType<typeof rng>): string {
  // Mostly valid JSON; each token is invalid with a small probability.
  const bad = (): boolean => r.chance(0.002);
  const ws = (): string => (r.chance(0.8) ? '' : bad() ? r.pick(['\f', '\u00a0', '\v']) : r.pick([' ', '\n', '\r\n', '\t', '  ']));
  const str = (): string => {
    const pieces = ['IMG@/src', 'IMG@/srcset', 'A@/href', 'img', 'x.png', 'http://e.com/a b', ' ', '\\n', '\\r', '\\"', '\\\\', '\\/',
      '\\u0041', '\\ud800', '\\uDC00', '\\u00e9', '\u00e9', '\u4e2d', '\ud83d\ude00', '\u2028', '\u007f', 'IMG@', '\\b\\f\\t'];
    let s = '';
    for (let k = r.int(4); k > 0; k--) s += bad() ? r.pick(['\\x', '\\u12', '\t', '\u0001', '\\']) : r.pick(pieces);
    return `"${s}"`;
  };
  const scalar = (): string =>
    bad() ? r.pick(['01', '1.', '.5', '-', 'nul', 'tru', '1e', '+1', 'NaN', '"', '', 'undefined']) : r.pick(['null', 'true', 'false', '0', '-1', '1.5e3', '-0.0', '12', '2E-7', str(), str(), '[]', '{}']);
  const value = (depth: number): string => {
    if (depth > 3 || r.chance(0.5)) return scalar();
    if (r.chance(0.5)) return `[${ws()}${Array.from({ length: r.int(3) }, () => value(depth + 1)).join(`${ws()},${ws()}`)}${ws()}]`;
    return object(['a', 'b', 'path', 'url'], () => value(depth + 1));
  };
  /** An object with the given keys (in this order), members rendered by `member`. */
  const objectOf = (keys: string[], member: (k: string) => string): string => {
    const members = keys.map((k) => {
      const escaped = r.chance(0.004) ? `"${k.replace(/[a-z]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`)}"` : JSON.stringify(k);
      return `${ws()}${escaped}${ws()}:${ws()}${member(k)}${ws()}`;
    });
    return `{${members.join(',')}${keys.length === 0 ? ws() : ''}}`;
  };
  const shuffled = <T>(a: T[]): T[] => {
    for (let i = a.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };
  const object = (keys: string[], member: (k: string) => string): string =>
    objectOf(Array.from({ length: r.int(4) }, () => r.pick(keys)), member);
  const link = (): string => {
    if (r.chance(0.1)) return value(2);
    const keys = ['path', 'url'].filter(() => r.chance(0.9));
    for (const k of ['alt', 'title', 'data-image-title', 'text', 'rel', 'path', 'url']) if (r.chance(0.3)) keys.push(k);
    return objectOf(shuffled(keys), (k) => {
      if (k === 'path') return r.chance(0.8) ? JSON.stringify(r.pick(['IMG@/src', 'IMG@/src', 'IMG@/srcset', 'A@/href', 'IMG@/sr', 'img@/src'])) : r.chance(0.5) ? '"IMG\\u0040/src"' : scalar();
      if (r.chance(0.8)) return str();
      return scalar();
    });
  };
  const links = (): string => (r.chance(0.9) ? `[${ws()}${Array.from({ length: r.int(6) }, link).join(`${ws()},${ws()}`)}${ws()}]` : value(2));
  const PATH = ['Envelope', 'Payload-Metadata', 'HTTP-Response-Metadata', 'HTML-Metadata', 'Links'];
  const level = (i: number): string => {
    if (i === PATH.length) return links();
    if (r.chance(0.01)) return value(3);
    const keys = [PATH[i]];
    if (r.chance(0.3)) keys.push('Other');
    if (r.chance(0.2)) keys.push('Head');
    if (r.chance(0.1)) keys.push(PATH[i]); // a duplicate: the last one wins
    return objectOf(shuffled(keys), (k) => (k === PATH[i] ? (r.chance(0.95) ? level(i + 1) : value(3)) : value(3)));
  };
  let text = `${ws()}${r.chance(0.95) ? level(0) : value(0)}${ws()}`;
  if (r.chance(0.1)) {
    // break it: drop, duplicate or insert a byte somewhere
    const at = r.int(text.length + 1);
    const op = r.int(3);
    text = op === 0 ? text.slice(0, at) + text.slice(at + 1) : op === 1 ? text.slice(0, at) + text[at] + text.slice(at) : text.slice(0, at) + r.pick(['{', '}', '[', ']', ',', ':', '"', '\\', 'x', '\u0000', '\n']) + text.slice(at);
  }
  return text;
}

describe('the WebAssembly WAT scanner', () => {
  test('is built and loads (dist/wasm/watscan.wasm, by bin/build-wasm.js), with the JS scanner\'s depth limit', () => {
    const wasm = wasmWatScanner();
    if (wasm === null) throw new Error(`${WATSCAN_WASM_FILE} did not load: run node bin/build-wasm.js`);
    expect(wasm.maxDepth).toBe(WAT_MAX_DEPTH);
  });

  test('reads the payloads of a real-looking shard itself; escapes that matter and very large payloads go to the JS scanner', () => {
    setWatScanner('wasm');
    try {
      const before = { ...watScanCounts };
      const link = '{"path":"IMG@/src","url":"a.png","alt":"A \\"quoted\\" \\u00e9"}';
      const plain = Buffer.from(`{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[${link}]}}}}}`);
      expect(scanWatImageLinks(plain)).toEqual(['a.png', 'A "quoted" é', undefined, undefined]);
      expect(watScanCounts.wasm - before.wasm).toBe(1);
      expect(watScanCounts.js - before.js).toBe(0);
      // An escaped key on the path: the JS scanner decodes it.
      const escapedKey = Buffer.from(plain.toString().replace('"Links"', '"Li\\u006eks"'));
      expect(scanWatImageLinks(escapedKey)).toEqual(['a.png', 'A "quoted" é', undefined, undefined]);
      expect(watScanCounts.js - before.js).toBe(1);
      // Above WASM_MAX_PAYLOAD (module memory never shrinks): the JS scanner, same answer.
      const big = Buffer.from(`{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[${`${link},`.repeat(Math.ceil(WASM_MAX_PAYLOAD / link.length))}${link}]}}}}}`);
      expect(big.length).toBeGreaterThan(WASM_MAX_PAYLOAD);
      const bigLinks = scanWatImageLinks(big) as unknown[];
      expect(bigLinks.length).toBe(4 * (Math.ceil(WASM_MAX_PAYLOAD / link.length) + 1));
      expect(watScanCounts.js - before.js).toBe(2);
    } finally {
      setWatScanner('auto');
    }
  });
});

describe.each(['js', 'wasm'] as const)('WAT links scanner (%s) = JSON.parse', (mode) => {
  beforeAll(() => setWatScanner(mode));
  afterAll(() => setWatScanner('auto'));

  test('on 50,000 random payloads: every answer equals JSON.parse (and rejected payloads do not parse)', () => {
    const counts = { ...watScanCounts };
    const r = rng(777);
    let decided = 0;
    let withLinks = 0;
    let invalid = 0;
    for (let k = 0; k < 50_000; k++) {
      const payload = Buffer.from(randomWatJson(r), 'utf8');
      const got = scanWatImageLinks(payload);
      const want = linksByJsonParse(payload);
      if (got === 'too-deep') throw new Error('random payloads nest a few levels only');
      decided++;
      if (got === null) invalid++;
      else if (got.length > 0) withLinks++;
      if (JSON.stringify(got) !== JSON.stringify(want) || (got !== null && got.some((v, i) => v !== (want as unknown[])[i]))) {
        expect({ payload: payload.toString('utf8'), got }).toEqual({ payload: payload.toString('utf8'), got: want });
      }
    }
    expect(decided).toBe(50_000); // nothing is left to JSON.parse any more (escaped keys are decoded)
    expect(withLinks).toBeGreaterThan(5_000);
    expect(invalid).toBeGreaterThan(3_000);
    const byWasm = watScanCounts.wasm - counts.wasm;
    const byJs = watScanCounts.js - counts.js;
    if (mode === 'js') expect(byWasm).toBe(0);
    // The WebAssembly scanner decides all but the payloads with an escape that matters: an escaped link path
    // ("IMG\\u0040/src", one link in ten here, none in real WATs) or key on the path (≈ 18% of these payloads).
    else expect(byWasm).toBeGreaterThan(38_000);
    expect(byWasm + byJs).toBe(50_000);
  });

  test('nesting deeper than WAT_MAX_DEPTH is a bad record (too-deep); up to it, the links are read', () => {
    const nested = (depth: number) => Buffer.from(
      `{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[{"path":"IMG@/src","url":"a.png"}]}}},` +
      `"x":${'['.repeat(depth - 2)}${']'.repeat(depth - 2)}}}`);
    expect(scanWatImageLinks(nested(WAT_MAX_DEPTH))).toEqual(['a.png', undefined, undefined, undefined]);
    expect(scanWatImageLinks(nested(WAT_MAX_DEPTH + 1))).toBe('too-deep');
    expect(scanWatImageLinks(Buffer.from(`{"Envelope":${'['.repeat(5000)}${']'.repeat(5000)}}`))).toBe('too-deep');
    const ex = new ShardExtractor();
    expect(ex.fromWatPayload('http://e.com/', nested(WAT_MAX_DEPTH + 1))).toEqual([]);
    expect(ex.fromWatPayload('http://e.com/', nested(WAT_MAX_DEPTH)).map((c) => c.url)).toEqual([]); // no text: no candidate
    expect(ex.stats).toMatchObject({ watRecords: 2, badRecords: 1, badRecordReasons: { 'too-deep': 1 }, imgLinks: 1 });
  });

  test('escaped keys on the path and in links are decoded (no JSON.parse of the record)', () => {
    const payload = Buffer.from('{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Li\\u006eks":' +
      '[{"\\u0070ath":"IMG@/src","\\u0075rl":"a.png","\\u0061lt":"A"}],"L\\u0069nks":[{"path":"IMG@/src","url":"b.png","title":"B"}]}}}}}');
    expect(scanWatImageLinks(payload)).toEqual(linksByJsonParse(payload));
    expect(scanWatImageLinks(payload)).toEqual(['b.png', undefined, 'B', undefined]);
  });

  test('ShardExtractor.fromWatPayload gives the same candidates and stats as the JSON.parse path', () => {
    const r = rng(4242);
    const page = 'https://example.com/dir/page.html';
    const fast = new ShardExtractor();
    const general = new ShardExtractor();
    const a: Candidate[] = [];
    const b: Candidate[] = [];
    for (let k = 0; k < 20_000; k++) {
      const payload = Buffer.from(randomWatJson(r), 'utf8');
      fast.fromWatPayload(page, payload, a);
      (general as any).stats.watRecords++;
      if (payload.indexOf('IMG@') < 0 && payload.indexOf(0x5c) < 0) continue; // the same early exit on both sides
      (general as any).fromWatJson(page, payload, b);
    }
    expect(a).toEqual(b);
    expect(fast.stats).toEqual(general.stats);
    expect(a.length).toBeGreaterThan(1000);
  });
});


describe('WARC reader header fields = the full header parse', () => {
  test("on 8,000 random header blocks (case, spacing, duplicates, continuations, odd characters)", async () => {
    const r = rng(99);
    const names = ['WARC-Type', 'warc-type', 'WARC-TYPE', 'WARC-Target-URI', 'warc-target-uri', 'Content-Length', 'content-length',
      'Content-Type', 'CONTENT-TYPE', 'WARC-Date', 'WARC-Record-ID', 'X', 'Content-Length2', 'Warc-Target-Uri '];
    const spaces = ['', ' ', '  ', '\t', '\u00a0', '\ufeff', '\u2028', '\u3000', '\u0085', '\u180e', '\u000b'];
    const values = ['response', 'Metadata', 'RESPONSE', 'request', 'http://e.com/a b', '<http://e.com/w>', 'application/json', 'text/html',
      '\u00e9t\u00e9', '', ':', 'a:b'];
    const records: Buffer[] = [];
    const expected: Array<{ version: string; headers: Map<string, string>; block: string }> = [];
    for (let k = 0; k < 8000; k++) {
      const lines: string[] = [r.pick(['WARC/1.0', 'WARC/1.1', 'WARC/1.0 ', 'WARC/1.0\u00a0'])];
      const block = `b${k}`;
      let hasLength = false;
      for (let j = r.int(8); j >= 0; j--) {
        const roll = r.int(20);
        if (roll === 0) lines.push(`${r.pick([' ', '\t'])}continued ${r.pick(values)}`);
        else if (roll === 1) lines.push(r.pick(['no colon here', ':leading colon', '']));
        else {
          let name = r.pick(names);
          let value = r.pick(values);
          if (/^content-length$/i.test(name) && r.chance(0.5)) value = String(block.length);
          if (/^content-length$/i.test(name)) hasLength ||= value === String(block.length);
          name = r.pick(spaces) + name + r.pick(spaces);
          const inner = r.chance(0.1) ? '\r\r' : ''; // a lone CR inside a value stays in it
          lines.push(`${name}:${r.pick(spaces)}${value}${inner ? `${inner}${value}` : ''}${r.pick(spaces)}`);
        }
      }
      if (!hasLength || r.chance(0.3)) lines.splice(1 + r.int(lines.length), 0, `Content-Length: ${block.length}`);
      const text = lines.join(r.chance(0.9) ? '\r\n' : '\n');
      const ref = parseHeaderBlock(text);
      if (ref.headers.get('content-length') !== String(block.length)) continue; // the reader would stop at this record
      if (/\n\n|\r\n\r\n|[\r\n]$/.test(text)) continue; // the header would end early
      records.push(Buffer.from(`${text}\r\n\r\n${block}\r\n\r\n`, 'utf8'));
      expected.push({ ...ref, block });
    }
    const got: Array<{ version: string; type: string; targetUri: string | undefined; headers: Map<string, string>; block: string; ct: string | undefined }> = [];
    const { recordHeader } = await import('../curation/warc');
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.concat(records);
    }
    for await (const rec of readWarcRecords(source())) {
      got.push({ version: rec.version, type: rec.type, targetUri: rec.targetUri, ct: recordHeader(rec, 'content-type'), headers: rec.headers, block: rec.block!.toString('utf8') });
    }
    expect(got.length).toBe(expected.length);
    expect(got.length).toBeGreaterThan(4000);
    for (let k = 0; k < got.length; k++) {
      const want = expected[k];
      let targetUri = want.headers.get('warc-target-uri');
      if (targetUri && targetUri.startsWith('<') && targetUri.endsWith('>')) targetUri = targetUri.slice(1, -1);
      const w = { version: want.version, type: (want.headers.get('warc-type') ?? '').toLowerCase(), targetUri, ct: want.headers.get('content-type'), headers: want.headers, block: want.block };
      if (JSON.stringify({ ...got[k], headers: [...got[k].headers] }) !== JSON.stringify({ ...w, headers: [...w.headers] })) {
        expect({ ...got[k], headers: [...got[k].headers] }).toEqual({ ...w, headers: [...w.headers] });
      }
    }
  });
});

describe('httpResponseBody = parseHttpResponse(...).body', () => {
  test('on 20,000 random responses (status lines, header case and spacing, duplicates, chunked and gzip bodies, odd bytes)', () => {
    const r = rng(2024);
    const names = ['Transfer-Encoding', 'transfer-encoding', 'TRANSFER-ENCODING', 'Content-Encoding', 'content-encoding', 'CONTENT-encoding',
      'Content-Type', 'X-Crawler-Content-Encoding', 'Transfer-Encodings', 'Content-Encodin', 'Transfer\u00adEncoding', 'Trânsfer-Encoding'];
    const spaces = ['', ' ', '  ', '\t', '\u000b', '\u000c', '\r', '\u00a0', '\u0085', '\u001f'];
    const values = ['chunked', 'CHUNKED', 'gzip, chunked', 'gzip', 'x-gzip', 'deflate', 'br', 'identity', 'GZIP', '', 'chunk', 'text/html', 'Chunked\r'];
    const html = Buffer.from('<html><body><img src="a.png" alt="A"></body></html>');
    let decided = 0;
    let chunked = 0;
    let gzipped = 0;
    for (let k = 0; k < 20_000; k++) {
      const lines: string[] = [r.pick(['HTTP/1.1 200 OK', 'http/1.0 404', 'HTTP/2 200', 'HTTP/x 200', 'HTTPS/1.1 200', 'HTTP/1.1\t301 Moved', 'HTT'])];
      let isChunked = false;
      let isGzip = false;
      for (let j = r.int(7); j >= 0; j--) {
        const roll = r.int(12);
        if (roll === 0) lines.push(r.pick(['no colon here', ':leading colon', '', ' : x']));
        else {
          const name = r.pick(names);
          const value = r.pick(values);
          lines.push(`${r.pick(spaces)}${name}${r.pick(spaces)}:${r.pick(spaces)}${value}${r.pick(spaces)}`);
          isChunked ||= /chunked/i.test(value);
          isGzip ||= /gzip/i.test(value);
        }
      }
      let body: Buffer = html;
      if (isGzip && r.chance(0.7)) body = gzipSync(body);
      if (isChunked && r.chance(0.7)) body = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
      const sep = r.pick(['\r\n\r\n', '\n\n', '\r\n\n', '\r\n']);
      const block = Buffer.concat([Buffer.from(lines.join(r.chance(0.8) ? '\r\n' : '\n') + sep, 'latin1'), body]);
      const want = parseHttpResponse(block, 1 << 20);
      const got = httpResponseBody(block, 1 << 20);
      if (want === null ? got !== null : got === null || !got.equals(want.body)) {
        expect({ block: block.toString('latin1'), got: got?.toString('latin1') }).toEqual({ block: block.toString('latin1'), got: want?.body.toString('latin1') });
      }
      if (want !== null) decided++;
      if (want !== null && (want.headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) chunked++;
      if (want !== null && want.body.equals(html) && !body.equals(html)) gzipped++;
    }
    expect(decided).toBeGreaterThan(10_000);
    expect(chunked).toBeGreaterThan(1_000);
    expect(gzipped).toBeGreaterThan(500);
  });
});
