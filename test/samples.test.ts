import { createReadStream, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CorruptInputError } from '../curation/errors';
import { ShardExtractor, extractCandidates, type Candidate } from '../curation/extract';
import { parseHttpResponse } from '../curation/http';
import { Matcher } from '../curation/matcher';
import { buildWordnetMetadata } from '../curation/metadata';
import { readWarcRecords } from '../curation/warc';
import {
  DEFAULT_IMAGE_BASE,
  NEVER_EXTRACTED,
  Rng,
  generateSamples,
  writeCorruptShard,
  type ExpectedCandidate,
  type SamplesResult,
} from '../scripts/samples';

type Plain = { uuid: string; url: string; texts: Array<[string, string]> };

async function extract(path: string): Promise<{ cands: Plain[]; stats: ShardExtractor['stats'] }> {
  const ex = new ShardExtractor({}); // language filter off, like `expected`
  const cands: Plain[] = [];
  for await (const c of extractCandidates(createReadStream(path), ex)) cands.push(plain(c));
  return { cands, stats: ex.stats };
}

function plain(c: Candidate | ExpectedCandidate): Plain {
  return { uuid: c.uuid, url: c.url, texts: c.texts.map(([k, t]) => [k, t]) };
}

function byUrlSuffix(cands: Plain[], suffix: string): Plain[] {
  return cands.filter((c) => c.url.endsWith(suffix));
}

/** Number of gzip members in a buffer (each CC record is its own member). */
function gzipMembers(buf: Buffer): number {
  let n = 0;
  let pos = 0;
  while (pos < buf.length) {
    expect(buf[pos]).toBe(0x1f);
    expect(buf[pos + 1]).toBe(0x8b);
    // The shortest prefix from pos that gunzips is exactly one member (try each next gzip magic in turn).
    let next = buf.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), pos + 18);
    for (;;) {
      const end = next < 0 ? buf.length : next;
      try {
        gunzipSync(buf.subarray(pos, end));
        pos = end;
        break;
      } catch {
        if (next < 0) throw new Error(`bad gzip member at ${pos}`);
        next = buf.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), next + 1);
      }
    }
    n++;
  }
  return n;
}

describe('sample shards', () => {
  let dir: string;
  let res: SamplesResult;
  const extracted = new Map<string, { cands: Plain[]; stats: ShardExtractor['stats'] }>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'samples-'));
    res = await generateSamples({ outDir: join(dir, 'a') });
    for (const f of res.files) extracted.set(f, await extract(f));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const warcOf = () => res.details.filter((d) => d.format === 'warc');
  const watOf = () => res.details.filter((d) => d.format === 'wat');

  it('writes a .warc.gz and a .warc.wat.gz per shard', () => {
    expect(res.files).toHaveLength(4);
    expect(res.files.map((f) => f.replace(/^.*[\\/]/, ''))).toEqual([
      'CC-MAIN-20240517233122-20240518023122-00000.warc.gz',
      'CC-MAIN-20240517233122-20240518023122-00000.warc.wat.gz',
      'CC-MAIN-20240518023122-20240518053122-00001.warc.gz',
      'CC-MAIN-20240518023122-20240518053122-00001.warc.wat.gz',
    ]);
    expect(readdirSync(join(dir, 'a')).sort()).toEqual(res.files.map((f) => f.replace(/^.*[\\/]/, '')).sort());
    for (const d of res.details) {
      expect(d.expected.length).toBeGreaterThan(100);
      expect(res.expected[d.path]).toBe(d.expected);
    }
  });

  it('is deterministic: same seed, same bytes; another seed, other bytes; shard i independent of --shards', async () => {
    const again = await generateSamples({ outDir: join(dir, 'b') });
    for (let i = 0; i < res.files.length; i++) {
      expect(readFileSync(again.files[i]).equals(readFileSync(res.files[i]))).toBe(true);
    }
    const other = await generateSamples({ outDir: join(dir, 'c'), seed: 'another', shards: 1, formats: ['warc'] });
    expect(readFileSync(other.files[0]).equals(readFileSync(res.files[0]))).toBe(false);
    const one = await generateSamples({ outDir: join(dir, 'd'), shards: 1 });
    expect(readFileSync(one.files[0]).equals(readFileSync(res.files[0]))).toBe(true);
    expect(readFileSync(one.files[1]).equals(readFileSync(res.files[1]))).toBe(true);
  });

  it('Rng is a fixed function of its seed', () => {
    const a = new Rng('x');
    const b = new Rng('x');
    const xs = Array.from({ length: 5 }, () => a.u32());
    expect(Array.from({ length: 5 }, () => b.u32())).toEqual(xs);
    expect(new Rng('y').u32()).not.toBe(xs[0]);
    for (let i = 0; i < 1000; i++) {
      const f = a.float();
      expect(f >= 0 && f < 1).toBe(true);
    }
  });

  it('extracts exactly the expected candidates from every file (WARC and WAT paths)', () => {
    for (const d of res.details) {
      const got = extracted.get(d.path)!;
      expect(got.cands).toEqual(d.expected.map(plain));
      expect(got.stats.badRecords).toBe(0);
    }
  });

  it('stores one gzip member per record, CC style, with the expected record types', async () => {
    for (const d of res.details) {
      const buf = readFileSync(d.path);
      expect(gzipMembers(buf)).toBe(d.records);
      const types: string[] = [];
      for await (const rec of readWarcRecords(createReadStream(d.path))) types.push(rec.type);
      expect(types[0]).toBe('warcinfo');
      if (d.format === 'warc') {
        expect(types.slice(1)).toEqual(Array.from({ length: d.pages }, () => ['request', 'response', 'metadata']).flat());
      } else {
        expect(types.slice(1).every((t) => t === 'metadata')).toBe(true);
        expect(types).toHaveLength(1 + 1 + 3 * d.pages); // one per WARC record, plus the WAT's own warcinfo
      }
    }
  });

  it('holds HTTP payloads in the ways crawls store them', async () => {
    const seen = new Set<string>();
    for (const d of warcOf()) {
      for await (const rec of readWarcRecords(createReadStream(d.path))) {
        if (rec.type !== 'response' || !rec.block) continue;
        const http = parseHttpResponse(rec.block, 1 << 24)!;
        const h = http.headers;
        if ((h.get('transfer-encoding') ?? '').includes('chunked')) seen.add('chunked');
        if (h.get('content-encoding') === 'gzip') seen.add('gzip');
        if (h.has('x-crawler-content-encoding')) seen.add('x-crawler-content-encoding');
        if (h.has('x-crawler-transfer-encoding')) seen.add('x-crawler-transfer-encoding');
        if (http.status === 404) seen.add('404');
        if (http.status === 301) seen.add('301');
        if ((h.get('content-type') ?? '').toLowerCase().includes('iso-8859-1') && http.status === 200) seen.add('latin1');
        if (h.get('content-type') === 'application/pdf') seen.add('pdf');
        // Whatever the storage, the decoded payload is the page.
        if (http.status === 200 && (h.get('content-type') ?? '').startsWith('text/html')) {
          expect(http.body.subarray(0, 200).toString('latin1')).toMatch(/<(!DOCTYPE html|HTML)/);
        }
      }
    }
    expect([...seen].sort()).toEqual(['301', '404', 'chunked', 'gzip', 'latin1', 'pdf', 'x-crawler-content-encoding', 'x-crawler-transfer-encoding'].sort());
  });

  it('writes WAT JSON in the Envelope → … → HTML-Metadata → Links layout', async () => {
    const d = watOf()[0];
    let imgLinks = 0;
    let withTitle = 0;
    let withDit = 0;
    for await (const rec of readWarcRecords(createReadStream(d.path))) {
      if (rec.type !== 'metadata') continue;
      expect(rec.headers.get('content-type')).toBe('application/json');
      expect(rec.headers.get('warc-refers-to')).toMatch(/^<urn:uuid:[0-9a-f-]{36}>$/);
      const doc = JSON.parse(rec.block!.toString('utf8'));
      expect(Object.keys(doc)).toEqual(['Container', 'Envelope']);
      expect(doc.Container.Compressed).toBe(true);
      const links = doc.Envelope['Payload-Metadata']['HTTP-Response-Metadata']?.['HTML-Metadata']?.Links ?? [];
      for (const l of links) {
        expect(typeof l.path).toBe('string');
        expect(l.url).not.toContain(NEVER_EXTRACTED);
        if (l.path !== 'IMG@/src') continue;
        imgLinks++;
        if ('title' in l) withTitle++;
        if ('data-image-title' in l) withDit++;
      }
    }
    // Every visible <img> with a src attribute has an IMG@/src link (a few have no src at all).
    expect(imgLinks).toBeLessThan(d.imgTags);
    expect(imgLinks).toBeGreaterThan(d.imgTags * 0.9);
    expect(withTitle).toBeGreaterThan(10);
    expect(withDit).toBeGreaterThan(5);
  });

  it('has exactly the <img> elements an HTML parser sees in the WARC pages', () => {
    for (const d of warcOf()) expect(extracted.get(d.path)!.stats.imgLinks).toBe(d.imgTags);
  });

  describe('edge cases (one block per shard, whatever the seed)', () => {
    const shard0 = () => ({ warc: extracted.get(warcOf()[0].path)!.cands, wat: extracted.get(watOf()[0].path)!.cands });

    it('resolves relative, root, protocol-relative, query-only and fragment references', () => {
      for (const cands of Object.values(shard0())) {
        const upper = byUrlSuffix(cands, '/media/edge-upper.jpg');
        expect(upper).toHaveLength(1);
        expect(upper[0].url.startsWith(DEFAULT_IMAGE_BASE)).toBe(true);
        expect(upper[0].texts).toEqual([['alt', 'DOG']]);
        expect(byUrlSuffix(cands, '/uploads/edge-root.png')[0].texts).toEqual([['alt', 'Dog']]);
        expect(byUrlSuffix(cands, '/uploads/edge-root.png')[0].url).toMatch(/^http:\/\/127\.0\.0\.1:8777\/img\/[^/]+\/uploads\/edge-root\.png$/);
        expect(byUrlSuffix(cands, '/edge-protocol.webp')[0].url).toBe(`${DEFAULT_IMAGE_BASE}cdn/edge-protocol.webp`);
        expect(byUrlSuffix(cands, '/edge-protocol.webp')[0].texts).toEqual([['alt', 'dog']]);
        const query = byUrlSuffix(cands, '.html?edge=query&w=300');
        expect(query).toHaveLength(1);
        expect(query[0].texts).toEqual([['alt', 'Fish & Chips']]);
        expect(byUrlSuffix(cands, '/edge-fragment.jpg#frag')[0].texts).toEqual([['alt', 'Café au lait'], ['title', "Children's books"]]);
        expect(byUrlSuffix(cands, '.html#edge')[0].texts).toEqual([['alt', '"Sunset" by the lake — “quoted”']]);
        expect(byUrlSuffix(cands, '/edge-padded.jpg')[0].texts).toEqual([['alt', 'beach']]);
        expect(byUrlSuffix(cands, '/edge-mixed.gif')[0].texts).toEqual([['alt', 'mixed case']]);
        expect(byUrlSuffix(cands, '/edge-dupattr.jpg')[0].texts).toEqual([['alt', 'first alt']]);
        expect(cands.some((c) => c.url.startsWith('data:image/gif;base64,') && c.texts.some(([, t]) => t === 'lazy placeholder'))).toBe(true);
        // Everything else resolves under the image base.
        expect(cands.filter((c) => !c.url.startsWith('data:')).every((c) => c.url.startsWith(DEFAULT_IMAGE_BASE))).toBe(true);
      }
    });

    it('keeps the WARC/WAT differences of the reference (newlines, text order, empty src)', () => {
      const { warc, wat } = shard0();
      expect(byUrlSuffix(warc, '/edge-multiline.jpg')[0].texts).toEqual([
        ['alt', 'A golden retriever      playing in the snow'], // WARC removes \n
        ['data-image-title', 'golden-retriever-snow'],
      ]);
      expect(byUrlSuffix(wat, '/edge-multiline.jpg')[0].texts).toEqual([
        ['alt', 'A golden retriever       playing in the snow'], // WAT turns \n into a space
        ['data-image-title', 'golden-retriever-snow'],
      ]);
      // WARC: document order; WAT: alt, title, data-image-title.
      expect(byUrlSuffix(warc, '/edge-order.jpg')[0].texts).toEqual([['data-image-title', 'edge dit'], ['title', 'title first'], ['alt', 'alt second']]);
      expect(byUrlSuffix(wat, '/edge-order.jpg')[0].texts).toEqual([['alt', 'alt second'], ['title', 'title first'], ['data-image-title', 'edge dit']]);
      // src="": the WARC path skips it, the WAT path joins '' to the page URL.
      const hasText = (cands: Plain[], t: string) => cands.filter((c) => c.texts.some(([, x]) => x === t));
      expect(hasText(warc, 'empty source')).toHaveLength(0);
      expect(hasText(wat, 'empty source')).toHaveLength(1);
      expect(hasText(wat, 'empty source')[0].url).toMatch(/\.html$/);
    });

    it('drops empty texts, missing or unresolvable src, and applies per-file dedup', () => {
      for (const [kind, cands] of Object.entries(shard0())) {
        for (const s of ['/edge-empty-alt.jpg', '/edge-bare-alt.jpg', '/edge-blank-alt.jpg', 'edge-input.png']) {
          expect(byUrlSuffix(cands, s)).toEqual([]);
        }
        const texts = cands.flatMap((c) => c.texts.map(([, t]) => t));
        expect(texts).not.toContain('no source');
        expect(texts).not.toContain('broken reference');
        // Same URL three times (alt cat; alt+title cat; ./ form with kitten): 'cat' once, then 'kitten'.
        expect(byUrlSuffix(cands, '/edge-repeat.jpg').map((c) => c.texts)).toEqual([[['alt', 'cat']], [['alt', 'kitten']]]);
        expect(extracted.get((kind === 'warc' ? warcOf() : watOf())[0].path)!.stats.unresolvableUrls).toBeGreaterThanOrEqual(1);
      }
    });

    it('never extracts <img> inside scripts, comments or escaped text', () => {
      for (const { cands } of extracted.values()) {
        expect(cands.filter((c) => c.url.includes(NEVER_EXTRACTED))).toEqual([]);
      }
      // ...though the HTML does contain them.
      let raw = '';
      for (const d of warcOf()) raw += gunzipSync(readFileSync(d.path)).toString('latin1');
      expect(raw.split(NEVER_EXTRACTED).length - 1).toBeGreaterThan(6);
    });

    it('has non-English alt texts and mixed case', () => {
      const { warc } = shard0();
      const texts = new Set(warc.flatMap((c) => c.texts.map(([, t]) => t)));
      for (const t of ['Ein Hund im Schnee', 'Un chat noir sur le canapé', 'Perro en la playa', '雪の中の犬', '海滩上的狗', 'Собака на пляже', 'dog', 'Dog', 'DOG']) {
        expect(texts.has(t)).toBe(true);
      }
    });
  });

  it('repeats images across files and texts within files', () => {
    const [w0, w1] = warcOf().map((d) => extracted.get(d.path)!);
    const uuids0 = new Set(w0.cands.map((c) => c.uuid));
    const shared = w1.cands.filter((c) => uuids0.has(c.uuid));
    expect(shared.length).toBeGreaterThan(5); // logos, stock and social images
    expect(w0.stats.textsDuplicate).toBeGreaterThan(50);
    // The same text on different images within a file.
    const textCount = new Map<string, number>();
    for (const c of w0.cands) for (const [, t] of c.texts) textCount.set(t, (textCount.get(t) ?? 0) + 1);
    expect([...textCount.values()].filter((n) => n > 1).length).toBeGreaterThan(10);
  });

  it('has alt texts that match the WordNet stand-in metadata', () => {
    const entries = buildWordnetMetadata();
    const m = new Matcher(entries);
    const texts = extracted.get(warcOf()[0].path)!.cands.flatMap((c) => c.texts.map(([, t]) => t));
    const matched = texts.filter((t) => m.match(t).length > 0);
    expect(matched.length / texts.length).toBeGreaterThan(0.5);
    expect(m.match('DOG')).toEqual([]); // case matters: DOG/Dog are there but do not match
  });

  it('puts pages and images under a custom --image-base', async () => {
    const base = 'https://Images.Test:9443/static/imgs';
    const custom = await generateSamples({ outDir: join(dir, 'e'), imageBase: base, shards: 1, pages: 15 });
    for (const f of custom.files) {
      const { cands } = await extract(f);
      expect(cands).toEqual(custom.expected[f].map(plain));
      expect(cands.filter((c) => !c.url.startsWith('data:')).every((c) => c.url.startsWith(`${base}/`))).toBe(true);
    }
    await expect(generateSamples({ outDir: join(dir, 'f'), imageBase: 'ftp://x/' })).rejects.toThrow(/image-base/);
    await expect(generateSamples({ outDir: join(dir, 'f'), imageBase: 'http://x/a?q=1' })).rejects.toThrow(/image-base/);
  });

  it.each(['warc', 'wat'] as const)('writeCorruptShard (%s): recoverable records, then a classified gzip error', async (kind) => {
    const path = join(dir, kind === 'warc' ? 'corrupt.warc.gz' : 'corrupt.warc.wat.gz');
    const info = await writeCorruptShard(path);
    expect(info.bytes).toBeLessThan(info.originalBytes);
    expect(readFileSync(path).length).toBe(info.bytes);
    const ex = new ShardExtractor({});
    const got: Plain[] = [];
    let error: unknown = null;
    try {
      for await (const c of extractCandidates(createReadStream(path), ex)) got.push(plain(c));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CorruptInputError);
    expect((error as CorruptInputError).kind).toBe('gzip');
    expect(ex.stats.records).toBe(info.completeRecords);
    expect(got).toEqual(info.expectedBeforeFailure.map(plain));
    expect(got.length).toBeGreaterThan(0);
    // Deterministic too.
    const againPath = join(dir, 'again', kind === 'warc' ? 'corrupt.warc.gz' : 'corrupt.warc.wat.gz');
    const again = await writeCorruptShard(againPath);
    expect(again).toEqual({ ...info, path: againPath });
    expect(readFileSync(againPath).equals(readFileSync(path))).toBe(true);
  });
});
