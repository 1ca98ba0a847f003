import { CorruptInputError } from '../curation/errors';
import { cleanWarcText, cleanWatText, extractCandidateBatches, extractCandidates, ShardExtractor, type Candidate } from '../curation/extract';
import { pyStrip } from '../curation/pytext';
import { imageUuid } from '../curation/url';
import { chunks, httpResponse, warcFile, warcRecord, watRecord, type Packing } from './support/warcbuild';

async function extractAll(file: Buffer, ex = new ShardExtractor()): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for await (const c of extractCandidates(chunks(file), ex)) out.push(c);
  return out;
}

describe('text cleaning', () => {
  test('WAT replaces \\n and \\r by a space, then strips', () => {
    expect(cleanWatText('  a\nb\r\nc  ')).toBe('a b  c');
  });
  test('WARC strips, then removes \\n and \\r entirely', () => {
    expect(cleanWarcText('  a\nb\r\nc  ')).toBe('abc');
    expect(cleanWarcText('\n x \n')).toBe('x');
  });
  test('strip uses Python whitespace (\\x1c-\\x1f, \\x85 stripped; \\ufeff kept)', () => {
    expect(pyStrip('\x1c\x85 a \u3000')).toBe('a');
    expect(pyStrip('\ufeffa')).toBe('\ufeffa');
  });
});

describe('WAT extraction (spec §1a)', () => {
  const page = 'https://example.com/dir/page.html';
  const links = [
    { path: 'A@/href', url: '/x' },
    { path: 'IMG@/src', url: 'img/a.jpg', alt: ' A red\ndog ', title: 'Red dog', 'data-image-title': null },
    { path: 'IMG@/src', url: '/b.png', title: 'only title', alt: '   ' },
    { path: 'IMG@/src', url: 'img/a.jpg', alt: 'A red dog', title: 'another' }, // same uuid: only the new text
    { path: 'IMG@/src', url: 'img/a.jpg', alt: 'A red dog' }, // nothing new: dropped
    null,
    { path: null, url: 'x.png', alt: 'no path' },
    { path: 'IMG@/src', alt: 'no url' },
    { path: 'IMG@/src', url: 'c.gif', 'data-image-title': 'DIT', title: 'T', alt: 'A' },
  ];

  test.each<Packing>(['plain', 'gzip-per-record', 'gzip-whole'])('reads %s files and applies the spec', async (packing) => {
    const file = warcFile([watRecord(page, links)], packing);
    const got = await extractAll(file);
    const a = 'https://example.com/dir/img/a.jpg';
    expect(got).toEqual([
      { uuid: imageUuid(a), url: a, texts: [['alt', 'A red dog'], ['title', 'Red dog']], langs: [null, null] },
      { uuid: imageUuid('https://example.com/b.png'), url: 'https://example.com/b.png', texts: [['title', 'only title']], langs: [null] },
      { uuid: imageUuid(a), url: a, texts: [['title', 'another']], langs: [null] },
      { uuid: imageUuid('https://example.com/dir/c.gif'), url: 'https://example.com/dir/c.gif', texts: [['alt', 'A'], ['title', 'T'], ['data-image-title', 'DIT']], langs: [null, null, null] },
    ]);
  });

  test('batches: the same candidates in the same order, at most 2 x 4,096 per batch, a record with 10,000 links cut', async () => {
    const many = Array.from({ length: 10_000 }, (_, i) => ({ path: 'IMG@/src', url: `i${i}.png`, alt: `alt ${i}` }));
    const file = warcFile([watRecord(page, links), watRecord(page, many), watRecord('https://example.com/other', links)]);
    const batches: Candidate[][] = [];
    for await (const b of extractCandidateBatches(chunks(file), new ShardExtractor())) batches.push(b);
    expect(batches.flat()).toEqual(await extractAll(file));
    expect(batches.flat().length).toBe(10_007); // 4 + 10,000 + 3 (/b.png resolves to the same URL on the other page: a duplicate)
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(2 * 4096);
    expect(batches.length).toBeGreaterThanOrEqual(3);
  });

  test('a JSON payload that does not parse, or is not UTF-8, is a counted bad record; the file goes on', async () => {
    // Payloads without an IMG@ link cannot yield anything and are not parsed; these two could.
    const bad = warcRecord({ type: 'metadata', targetUri: page, contentType: 'application/json', block: '{"Envelope": {"path": "IMG@/src"' });
    const notUtf8 = warcRecord({ type: 'metadata', targetUri: page, contentType: 'application/json', block: Buffer.concat([Buffer.from('{"IMG@": "'), Buffer.from([0xff]), Buffer.from('"}')]) });
    const ex = new ShardExtractor();
    const got = await extractAll(warcFile([bad, notUtf8, watRecord(page, [{ path: 'IMG@/src', url: 'z.png', alt: 'z' }])]), ex);
    expect(got.map((c) => c.url)).toEqual(['https://example.com/dir/z.png']);
    expect(ex.stats.badRecords).toBe(2);
  });

  test('a record missing any level of the JSON path yields nothing', async () => {
    const rec = warcRecord({ type: 'metadata', targetUri: page, contentType: 'application/json', block: JSON.stringify({ Envelope: { 'Payload-Metadata': {} } }) });
    expect(await extractAll(warcFile([rec]))).toEqual([]);
  });
});

describe('WARC extraction (spec §1b)', () => {
  const page = 'http://Shop.Example.com/cat/index.html?p=1';
  const html = `<!doctype html><html><head><title>t</title>
<script>var s = '<img src="in-script.png" alt="no">';</script></head><body>
<!-- <img src="in-comment.png" alt="no"> -->
<IMG SRC=../Up.JPG ALT="Caf&eacute; &amp; Bar &#39;x&#39;">
<img alt="multi
line  alt" src="
  rel/pic.png " title="  T  " data-image-title="DIT">
<img src="" alt="empty src">
<img alt="no src">
<img src="//cdn.example.net/a.webp" alt="first" alt="second">
<img src="ed2k://|file|x|1|h|" alt="ed2k">
<img src="http://[::1/broken.png" alt="broken">
<img src="../Up.JPG" alt="Café &amp; Bar 'x'" title="new">
</body></html>`;

  test('extracts like a browser parser with the reference cleaning and per-file dedup', async () => {
    const file = warcFile([warcRecord({ type: 'response', targetUri: page, contentType: 'application/http; msgtype=response', block: httpResponse(html) })]);
    const ex = new ShardExtractor();
    const got = await extractAll(file, ex);
    const up = 'http://Shop.Example.com/Up.JPG';
    expect(got).toEqual([
      { uuid: imageUuid(up), url: up, texts: [['alt', "Café & Bar 'x'"]], langs: [null] },
      {
        uuid: imageUuid('http://Shop.Example.com/cat/rel/pic.png'), url: 'http://Shop.Example.com/cat/rel/pic.png',
        texts: [['alt', 'multiline  alt'], ['title', 'T'], ['data-image-title', 'DIT']], langs: [null, null, null],
      },
      { uuid: imageUuid('http://cdn.example.net/a.webp'), url: 'http://cdn.example.net/a.webp', texts: [['alt', 'first']], langs: [null] },
      { uuid: imageUuid('ed2k://|file|x|1|h|'), url: 'ed2k://|file|x|1|h|', texts: [['alt', 'ed2k']], langs: [null] },
      { uuid: imageUuid(up), url: up, texts: [['title', 'new']], langs: [null] },
    ]);
    expect(ex.stats.unresolvableUrls).toBe(1);
  });

  test('chunked transfer coding and gzip content coding are undone; a wrong Content-Encoding falls back to the raw body', async () => {
    const body = '<img src="a.png" alt="chunked">';
    const chunked = `${(body.length - 5).toString(16)}\r\n${body.slice(0, -5)}\r\n5\r\n${body.slice(-5)}\r\n0\r\n\r\n`;
    const r1 = warcRecord({ type: 'response', targetUri: 'http://e.com/', block: httpResponse(chunked, { 'Transfer-Encoding': 'chunked' }) });
    const r2 = warcRecord({ type: 'response', targetUri: 'http://f.com/', block: httpResponse(require('node:zlib').gzipSync('<img src="b.png" alt="gz">'), { 'Content-Encoding': 'gzip' }) });
    const r3 = warcRecord({ type: 'response', targetUri: 'http://g.com/', block: httpResponse('<img src="c.png" alt="lying header">', { 'Content-Encoding': 'gzip' }) });
    const got = await extractAll(warcFile([r1, r2, r3]));
    expect(got.map((c) => [c.url, c.texts[0][1]])).toEqual([
      ['http://e.com/a.png', 'chunked'], ['http://f.com/b.png', 'gz'], ['http://g.com/c.png', 'lying header'],
    ]);
  });

  test('a src repeated on a page, or on pages with other URLs, resolves against each page (the per-page memo)', async () => {
    const html = '<img src="a.png" alt="one"><img src="a.png" alt="two"><img src="a.png"><img src="http://[::1/x" alt="bad">' +
      '<img src="http://[::1/x" alt="bad again"><img src="a.png" alt="one">';
    const pages = ['http://e.com/p/', 'http://e.com/q/', 'http://e.com/p/'];
    const ex = new ShardExtractor();
    const got = await extractAll(warcFile(pages.map((targetUri) => warcRecord({ type: 'response', targetUri, block: httpResponse(html) }))), ex);
    const p = 'http://e.com/p/a.png';
    const q = 'http://e.com/q/a.png';
    expect(got.map((c) => [c.uuid, c.url, c.texts.map(([, t]) => t)])).toEqual([
      [imageUuid(p), p, ['one']], [imageUuid(p), p, ['two']], [imageUuid(q), q, ['one']], [imageUuid(q), q, ['two']],
    ]);
    expect(ex.stats.imgLinks).toBe(18);
    expect(ex.stats.unresolvableUrls).toBe(6); // every link to the bad URL, each time
    expect(ex.stats.textsDuplicate).toBe(5); // the second "one" of pages 1 and 2, and all three texts of page 3 (= page 1)
  });

  test('a page declaring a legacy charset is decoded with it', async () => {
    const latin1 = Buffer.concat([Buffer.from('<meta charset="iso-8859-1"><img src="x.png" alt="caf'), Buffer.from([0xe9]), Buffer.from('">')]);
    const got = await extractAll(warcFile([warcRecord({ type: 'response', targetUri: 'http://e.com/', block: httpResponse(latin1) })]));
    expect(got[0].texts).toEqual([['alt', 'café']]);
  });

  test('an oversized page is skipped and counted, the file goes on', async () => {
    const big = warcRecord({ type: 'response', targetUri: 'http://e.com/', block: httpResponse('<img src="a.png" alt="big">' + 'x'.repeat(5000)) });
    const small = warcRecord({ type: 'response', targetUri: 'http://e.com/', block: httpResponse('<img src="b.png" alt="small">') });
    const ex = new ShardExtractor({ maxPageBytes: 1000 });
    expect((await extractAll(warcFile([big, small]), ex)).map((c) => c.texts[0][1])).toEqual(['small']);
    expect(ex.stats.pagesSkipped).toBe(1);
  });
});

describe('corrupt input is classified, after yielding what is recoverable', () => {
  const good = warcRecord({ type: 'response', targetUri: 'http://e.com/', block: httpResponse('<img src="a.png" alt="ok">') });

  test('truncated gzip', async () => {
    const file = warcFile([good, good]);
    const cut = file.subarray(0, file.length - 20);
    const ex = new ShardExtractor();
    const seen: Candidate[] = [];
    await expect((async () => {
      for await (const c of extractCandidates(chunks(cut), ex)) seen.push(c);
    })()).rejects.toMatchObject({ name: 'CorruptInputError', kind: 'gzip' });
    expect(seen).toHaveLength(1);
  });

  test('not a WARC file', async () => {
    await expect(extractAll(Buffer.from('hello world, not a warc\n\nat all'))).rejects.toBeInstanceOf(CorruptInputError);
  });

  test('a record cut short', async () => {
    const plain = warcFile([good], 'plain');
    await expect(extractAll(plain.subarray(0, plain.length - 30))).rejects.toMatchObject({ kind: 'truncated' });
  });
});
