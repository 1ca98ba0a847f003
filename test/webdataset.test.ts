import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetMetadata } from 'hyparquet';
import {
  addImageStats, emptyImageStats, failureReason, imageStatsJson, imageStatsOf, mergeImageStats, readImageIndexParquet,
  writeImageIndexParquet, IMAGE_INDEX_COLUMNS, type ImageIndexRow,
} from '../storage/image-index';
import { openStore } from '../storage/store';
import {
  publishTar, readTar, sampleMembers, splitSampleName, tarHeader, tarMemberBytes, TarBuilder, TarFileWriter, TarFormatError,
  TarNameError, type TarMember, type WebDatasetSample,
} from '../storage/webdataset';

const MiB = 1 << 20;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(path.join(os.tmpdir(), 'curate-webdataset-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const tmpFile = (name: string) => path.join(tmp, `${seq++}-${name}`);

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}`; // 121 bytes
const members: Array<[string, Buffer]> = [
  ['empty.txt', Buffer.alloc(0)],
  ['one.bin', Buffer.from([7])],
  ['block-1.bin', bytes(511, 1)],
  ['block.bin', bytes(512, 2)],
  ['block+1.bin', bytes(513, 3)],
  ['dir/sub/big.bin', bytes(3 * MiB + 17, 4)],
  ['ünïcödé/日本語.txt', Buffer.from('Ünïcödé — 日本語 🐱\n', 'utf8')],
  ['n'.repeat(100), Buffer.from('exactly 100 bytes of name')],
  [`${longDir}/${'f'.repeat(90)}.json`, Buffer.from('{"split":"prefix"}')],
];

function build(list: Array<[string, Buffer | string]>): Buffer {
  const tb = new TarBuilder();
  for (const [n, d] of list) tb.add(n, d);
  return tb.finish();
}

async function buildFile(list: Array<[string, Buffer | string]>, bufferBytes?: number) {
  const file = tmpFile('w.tar');
  const w = await TarFileWriter.open(file, { bufferBytes });
  for (const [n, d] of list) await w.add(n, d);
  return w.finish();
}

/** Members as [name, sha256 of data]: jest's deep equality is slow on megabyte Buffers. */
const plain = (ms: Array<TarMember | [string, Buffer]>) => ms.map((m) => Array.isArray(m) ? [m[0], sha256(m[1])] : [m.name, sha256(m.data)]);

describe('ustar writer and reader', () => {
  test('round trip: sizes around block boundaries, empty, unicode, 100-byte and prefix-split names', () => {
    const tar = build(members);
    expect(tar.length % 512).toBe(0);
    expect(tar.length).toBe(members.reduce((n, [, d]) => n + tarMemberBytes(d.length), 0) + 1024);
    expect(tar.subarray(-1024).equals(Buffer.alloc(1024))).toBe(true);
    expect(plain(readTar(tar))).toEqual(plain(members));
  });

  test('header fields: mode 0644, uid/gid 0, mtime 0, empty owner names, ustar magic, valid checksum', () => {
    const h = tarHeader('a/b.jpg', 1234);
    const field = (o: number, n: number) => h.subarray(o, o + n).toString('latin1');
    expect(field(0, 8)).toBe('a/b.jpg\0');
    expect(field(100, 8)).toBe('0000644\0');
    expect(field(108, 8)).toBe('0000000\0');
    expect(field(116, 8)).toBe('0000000\0');
    expect(field(124, 12)).toBe(`${(1234).toString(8).padStart(11, '0')}\0`);
    expect(field(136, 12)).toBe('00000000000\0');
    expect(field(156, 1)).toBe('0');
    expect(field(257, 8)).toBe('ustar\x0000');
    expect(h.subarray(265, 345).equals(Buffer.alloc(80))).toBe(true); // uname, gname, devmajor, devminor
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    expect(field(148, 8)).toBe(`${sum.toString(8).padStart(6, '0')}\0 `);
  });

  test('byte-deterministic: same members give the same bytes in memory, on file, whatever the buffer size', async () => {
    const a = build(members);
    const b = build(members.map(([n, d]) => [n, Buffer.from(d)]));
    expect(a.equals(b)).toBe(true);
    for (const bufferBytes of [512, 4096, undefined, 16 * MiB]) {
      const r = await buildFile(members, bufferBytes);
      const onDisk = readFileSync(r.path);
      expect(onDisk.equals(a)).toBe(true);
      expect(r).toEqual({ path: r.path, bytes: a.length, members: members.length, sha256: sha256(a) });
    }
    expect(build([['x.txt', 'héllo']]).equals(build([['x.txt', Buffer.from('héllo', 'utf8')]]))).toBe(true);
  });

  test('long names are split into prefix and name at a slash (shortest prefix, like Python)', () => {
    const name = `${longDir}/${'f'.repeat(90)}.json`;
    const h = tarHeader(name, 0);
    // the first slash would leave 156 bytes for the name: split at the second one
    expect(h.subarray(345, 345 + 155).toString('utf8').replace(/\0+$/, '')).toBe(longDir);
    expect(h.subarray(0, 100).toString('utf8').replace(/\0+$/, '')).toBe(`${'f'.repeat(90)}.json`);
    const short = tarHeader(`a/b/${'c'.repeat(99)}`, 0);
    expect(short.subarray(345, 350).toString('latin1')).toBe('a/b\0\0');
    // 155-byte prefix + 100-byte name: the longest a ustar name can be
    const longest = `${'p'.repeat(155)}/${'n'.repeat(100)}`;
    expect(plain(readTar(build([[longest, 'x']])))).toEqual(plain([[longest, Buffer.from('x')]]));
  });

  test('names ustar cannot hold, or that are not relative file paths, are rejected with a clear error', () => {
    const reject = (name: string, msg: RegExp) => {
      expect(() => tarHeader(name, 1)).toThrow(TarNameError);
      expect(() => tarHeader(name, 1)).toThrow(msg);
    };
    reject('x'.repeat(101), /too long for ustar \(101 bytes\)/);                 // no slash to split at
    reject(`${'p'.repeat(156)}/${'n'.repeat(10)}`, /too long for ustar/);       // prefix over 155
    reject(`${'p'.repeat(10)}/${'n'.repeat(101)}`, /too long for ustar/);       // last part over 100
    reject(`${'p'.repeat(155)}/${'n'.repeat(101)}`, /too long for ustar \(257 bytes\)/);
    reject('é'.repeat(51), /too long for ustar \(102 bytes\)/);                  // counted in UTF-8 bytes
    reject('', /non-empty/);
    reject('/abs.txt', /relative/);
    reject('a/../b.txt', /relative/);
    reject('a//b.txt', /relative/);
    reject('./a.txt', /relative/);
    reject('dir/', /relative/);
    reject('a\0b', /NUL/);
    expect(() => tarHeader('a.bin', 8 * 1024 ** 3)).toThrow(/size 8589934592 is not an integer in 0\.\.8589934591/);
    expect(() => tarHeader('a.bin', -1)).toThrow(TarNameError);
    const tb = new TarBuilder();
    expect(() => tb.add('y'.repeat(300), 'data')).toThrow(TarNameError);
    expect(tb.members).toBe(0);
    expect(tb.finish().equals(Buffer.alloc(1024))).toBe(true);
  });

  test('empty tar: two zero blocks, read back as no members', async () => {
    const tb = new TarBuilder();
    expect(tb.size).toBe(1024);
    const tar = tb.finish();
    expect(tar.equals(Buffer.alloc(1024))).toBe(true);
    expect(readTar(tar)).toEqual([]);
    const r = await buildFile([]);
    expect(readFileSync(r.path).equals(tar)).toBe(true);
    expect(r.members).toBe(0);
    expect(() => tb.finish()).toThrow(/twice/);
    expect(() => tb.add('a', 'b')).toThrow(/after finish/);
  });

  test('size tracks the finished length as members are added', () => {
    const tb = new TarBuilder();
    tb.add('a.txt', 'abc');
    expect(tb.size).toBe(512 + 512 + 1024);
    tb.add('b.bin', bytes(1025, 9));
    expect(tb.size).toBe(1024 + 512 + 1536 + 1024);
    expect(tb.members).toBe(2);
    expect(tb.finish().length).toBe(tb.size);
  });

  test('the reader rejects truncated archives, bad checksums and unsupported members', () => {
    const tar = build(members.slice(0, 5));
    const err = (b: Buffer) => { try { readTar(b); } catch (e) { return e as Error; } throw new Error('no error'); };
    // cut inside data, at a member boundary (no end blocks), and after one of the two end blocks
    expect(err(tar.subarray(0, 512 + 100))).toBeInstanceOf(TarFormatError);
    expect(err(tar.subarray(0, tar.length - 1024)).message).toMatch(/truncated tar: no end-of-archive blocks/);
    expect(err(tar.subarray(0, tar.length - 512)).message).toMatch(/one zero block/);
    expect(err(tar.subarray(0, 1536 + 512 + 100)).message).toMatch(/truncated tar: member "block-1.bin" needs 511 bytes/);
    expect(err(Buffer.alloc(0)).message).toMatch(/truncated/);
    const corrupt = Buffer.from(tar);
    corrupt[512 + 3] ^= 0x01; // a name byte of the second header
    expect(err(corrupt).message).toMatch(/bad tar header checksum .* \(at byte 512\)/);
    const garbage = Buffer.concat([Buffer.from('not a tar at all'.padEnd(512, '!')), Buffer.alloc(1024)]);
    expect(err(garbage)).toBeInstanceOf(TarFormatError);
    const link = Buffer.from(tarHeader('l.txt', 0));
    link.write('2', 156, 'latin1');
    link.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of link) sum += b;
    link.write(`${sum.toString(8).padStart(6, '0')}\0`, 148, 'latin1');
    expect(err(Buffer.concat([link, Buffer.alloc(1024)])).message).toMatch(/unsupported tar member type "2"/);
    // data after the end blocks (record padding) is ignored
    expect(plain(readTar(Buffer.concat([tar, Buffer.alloc(10240)])))).toEqual(plain(members.slice(0, 5)));
  });
});

describe('webdataset samples', () => {
  const samples: WebDatasetSample[] = [0, 1, 2, 3].map((i) => ({
    key: `shard-00007/${String(i).padStart(9, '0')}`,
    image: { ext: (['jpg', 'webp', 'png', 'jpg'] as const)[i], bytes: bytes(1000 + i * 700, 100 + i) },
    text: ['a photo of a cat', 'Ünïcödé — 日本語 🐱', '', 'dog'][i],
    json: { uuid: `${i}`.padStart(32, 'a'), url: `https://example.com/${i}.jpg`, texts: [['000', 'x'], ['001', 'y']], entry_ids: [i, i + 1], size: [640, 480] },
  }));

  test('members: <key>.<ext>, <key>.txt, <key>.json in that order', () => {
    const m = sampleMembers(samples[1]);
    expect(m.map(([n]) => n)).toEqual(['shard-00007/000000001.webp', 'shard-00007/000000001.txt', 'shard-00007/000000001.json']);
    expect(m[0][1].equals(samples[1].image.bytes)).toBe(true);
    expect(m[1][1].toString('utf8')).toBe(samples[1].text);
    expect(JSON.parse(m[2][1].toString('utf8'))).toEqual(samples[1].json);
  });

  test('grouped like webdataset: each sample is consecutive members with one key prefix', async () => {
    const tb = new TarBuilder();
    for (const s of samples) tb.addSample(s);
    const tar = tb.finish();
    const w = await TarFileWriter.open(tmpFile('samples.tar'));
    await Promise.all(samples.map((s) => w.addSample(s))); // not awaited one by one: still written in call order
    expect(readFileSync((await w.finish()).path).equals(tar)).toBe(true);

    // webdataset's grouping: split each name at the first '.' of its last path part, start a new sample when the key changes
    const groups: Array<{ key: string; parts: Record<string, Buffer> }> = [];
    for (const m of readTar(tar)) {
      const split = splitSampleName(m.name);
      expect(split).not.toBeNull();
      if (groups.length === 0 || groups[groups.length - 1].key !== split!.key) groups.push({ key: split!.key, parts: {} });
      const g = groups[groups.length - 1];
      expect(g.parts[split!.ext]).toBeUndefined();
      g.parts[split!.ext] = m.data;
    }
    expect(groups.map((g) => g.key)).toEqual(samples.map((s) => s.key));
    groups.forEach((g, i) => {
      expect(Object.keys(g.parts)).toEqual([samples[i].image.ext, 'txt', 'json']);
      expect(g.parts[samples[i].image.ext].equals(samples[i].image.bytes)).toBe(true);
      expect(g.parts.txt.toString('utf8')).toBe(samples[i].text);
      expect(JSON.parse(g.parts.json.toString('utf8'))).toEqual(samples[i].json);
    });
  });

  test('bad keys and extensions are rejected; a sample is written whole or not at all', () => {
    const s = samples[0];
    expect(() => sampleMembers({ ...s, key: 'a.b' })).toThrow(/no '\.' in its last path part/);
    expect(() => sampleMembers({ ...s, key: '' })).toThrow(TarNameError);
    expect(() => sampleMembers({ ...s, key: 'dir/' })).toThrow(TarNameError);
    expect(sampleMembers({ ...s, key: 'v1.0/000001' })[0][0]).toBe('v1.0/000001.jpg'); // dots in directories are fine
    expect(() => sampleMembers({ ...s, image: { ext: 'gif' as 'jpg', bytes: Buffer.alloc(1) } })).toThrow(/one of jpg, webp, png/);
    // `<key>.jpg` fits 100 bytes, `<key>.json` does not: nothing is added
    const tb = new TarBuilder();
    expect(() => tb.addSample({ ...s, key: 'k'.repeat(96) })).toThrow(/too long/);
    expect(tb.members).toBe(0);
    expect(splitSampleName('a/b.c/d')).toBeNull();
    expect(splitSampleName('a.b/c.tar.gz')).toEqual({ key: 'a.b/c', ext: 'tar.gz' });
  });
});

describe('TarFileWriter', () => {
  test('a 50 MB member is streamed to the file as it comes, not buffered', async () => {
    const file = tmpFile('big.tar');
    const bufferBytes = MiB;
    const w = await TarFileWriter.open(file, { bufferBytes });
    await w.add('000000000.txt', 'small member first');
    const total = 50 * MiB;
    const chunk = MiB + 7; // not block-aligned
    const expected = createHash('sha256');
    let given = 0;
    let maxBuffered = 0;
    const checks: number[] = [];
    async function* source() {
      while (given < total) {
        // everything given so far is on disk, except at most one buffer
        const onDisk = statSync(file).size;
        checks.push(onDisk);
        expect(onDisk).toBeGreaterThanOrEqual(1024 + given - bufferBytes);
        maxBuffered = Math.max(maxBuffered, w.bufferedBytes);
        const n = Math.min(chunk, total - given);
        const c = Buffer.alloc(n, given & 0xff);
        c.writeUInt32BE(given, 0);
        expected.update(c);
        given += n;
        yield c;
      }
    }
    await w.addStream('000000000.jpg', total, source());
    await w.add('000000000.json', '{}');
    expect(w.size).toBe(1024 + tarMemberBytes(total) + 1024 + 1024);
    const r = await w.finish();
    expect(checks.length).toBe(Math.ceil(total / chunk));
    expect(checks[checks.length - 1]).toBeGreaterThan(total - 2 * MiB);
    expect(maxBuffered).toBeLessThanOrEqual(bufferBytes);
    const tar = readFileSync(file);
    expect(r).toEqual({ path: file, bytes: tar.length, members: 3, sha256: sha256(tar) });
    const back = readTar(tar);
    expect(back.map((m) => [m.name, m.data.length])).toEqual([['000000000.txt', 18], ['000000000.jpg', total], ['000000000.json', 2]]);
    expect(sha256(back[1].data)).toBe(expected.digest('hex'));
  });

  test('addFile streams a local file, in call order; a missing file fails only that call', async () => {
    const src = tmpFile('src.bin');
    const data = bytes(2 * MiB + 3, 77);
    writeFileSync(src, data);
    const w = await TarFileWriter.open(tmpFile('file.tar'), { bufferBytes: 64 * 1024 });
    const calls = [w.add('first.txt', '1'), w.addFile('a/src.bin', src), w.add('last.txt', '3')]; // in call order
    await expect(w.addFile('missing.bin', path.join(tmp, 'no-such-file'))).rejects.toThrow(/ENOENT/); // not fatal
    await expect(w.addFile('x'.repeat(101), src)).rejects.toThrow(TarNameError);
    await Promise.all(calls);
    const r = await w.finish();
    expect(r.members).toBe(3);
    expect(plain(readTar(readFileSync(r.path)))).toEqual(plain([['first.txt', Buffer.from('1')], ['a/src.bin', data], ['last.txt', Buffer.from('3')]]));
  });

  test('a stream that does not give its declared size poisons the writer; abort removes the file', async () => {
    for (const given of [99, 101]) {
      const file = tmpFile('bad.tar');
      const w = await TarFileWriter.open(file);
      await w.add('ok.txt', 'fine');
      await expect(w.addStream('s.bin', 100, [Buffer.alloc(given)])).rejects.toThrow(given < 100 ? /ended after 99 of its declared 100 bytes/ : /more than its declared 100 bytes/);
      await expect(w.add('next.txt', 'x')).rejects.toThrow(/declared 100 bytes/);
      await expect(w.finish()).rejects.toThrow(/declared 100 bytes/);
      await w.abort();
      await w.abort();
      expect(existsSync(file)).toBe(false);
    }
  });

  test('a bad name rejects only that call; calls after finish or abort are refused', async () => {
    const w = await TarFileWriter.open(tmpFile('names.tar'));
    await expect(w.add('x'.repeat(101), 'a')).rejects.toThrow(TarNameError);
    await w.add('ok.txt', 'a');
    const r = await w.finish();
    expect(plain(readTar(readFileSync(r.path)))).toEqual(plain([['ok.txt', Buffer.from('a')]]));
    await expect(w.add('late.txt', 'b')).rejects.toThrow(/after finish\(\)/);
    await expect(w.finish()).rejects.toThrow(/after finish\(\)/);
    const w2 = await TarFileWriter.open(tmpFile('aborted.tar'));
    await w2.abort();
    await expect(w2.add('late.txt', 'b')).rejects.toThrow(/after abort\(\)/);
  });

  test('publishTar publishes atomically and removes the local file; an unfinished tar is never published', async () => {
    const store = openStore(path.join(tmp, 'store'));
    const file = tmpFile('pub.tar');
    const w = await TarFileWriter.open(file);
    for (const [n, d] of members) await w.add(n, d);
    const r = await publishTar(store, 'images/shard-1/00000.tar', w);
    expect(existsSync(file)).toBe(false);
    expect((await store.get('images/shard-1/00000.tar')).equals(build(members))).toBe(true);
    expect(r.sha256).toBe(sha256(build(members)));

    // A run killed while writing: its temp file lives outside the store, so no key ever shows part of a tar.
    const killed = await TarFileWriter.open(tmpFile('killed.tar'));
    await killed.add('a.jpg', bytes(5000, 1));
    expect(await store.list('images/')).toEqual(['images/shard-1/00000.tar']);
    await killed.abort();

    // A failing publish removes the local file and publishes nothing.
    const w3 = await TarFileWriter.open(tmpFile('fail.tar'));
    await expect(w3.addStream('s.bin', 10, [Buffer.alloc(3)])).rejects.toThrow();
    await expect(publishTar(store, 'images/shard-1/00001.tar', w3)).rejects.toThrow(/ended after 3/);
    expect(existsSync(w3.path)).toBe(false);
    expect(await store.exists('images/shard-1/00001.tar')).toBe(false);
  });
});

describe('image index and stats', () => {
  const rows: ImageIndexRow[] = [
    { key: '000000000', uuid: 'a'.repeat(32), url: 'https://example.com/a.jpg', status: 'success', error: null, sha256: 'f'.repeat(64), phash: 'c3a1b2d4e5f60718',
      width: 256, height: 192, original_width: 4000, original_height: 3000, bytes: 3 * 2 ** 31, tar: '00000.tar', attempts: 1, retryable: null },
    { key: '000000001', uuid: 'b'.repeat(32), url: 'https://example.com/ü/b.png?x=1', status: 'failed', error: 'http-404: Not Found', sha256: null, phash: null,
      width: null, height: null, original_width: null, original_height: null, bytes: null, tar: null, attempts: 3, retryable: false },
    { key: '000000002', uuid: 'c'.repeat(32), url: 'http://x.org/c', status: 'duplicate', error: null, sha256: 'e'.repeat(64), phash: null,
      width: null, height: null, original_width: 10, original_height: 20, bytes: null, tar: null, attempts: 1, retryable: null },
    { key: '000000003', uuid: 'd'.repeat(32), url: 'http://x.org/d', status: 'failed', error: 'timeout: no response in 30s', sha256: null, phash: null,
      width: null, height: null, original_width: null, original_height: null, bytes: null, tar: null, attempts: 2, retryable: true },
    { key: '000000004', uuid: 'e'.repeat(32), url: 'http://x.org/e', status: 'success', error: null, sha256: 'd'.repeat(64), phash: '0000000000000000',
      width: 1, height: 1, original_width: 1, original_height: 1, bytes: 0, tar: '00001.tar', attempts: 1, retryable: null },
    { key: '000000005', uuid: 'f'.repeat(32), url: 'http://x.org/f', status: 'failed', error: 'http-404: gone', sha256: null, phash: null,
      width: null, height: null, original_width: null, original_height: null, bytes: null, tar: null, attempts: 1, retryable: false },
  ];

  test('round trip with our reader; same rows give the same bytes; zero rows still typed', async () => {
    const buf = await writeImageIndexParquet(rows);
    expect(await readImageIndexParquet(buf)).toEqual(rows);
    expect((await writeImageIndexParquet(rows.map((r) => ({ ...r })))).equals(buf)).toBe(true);
    const empty = await writeImageIndexParquet([]);
    expect(await readImageIndexParquet(empty)).toEqual([]);
    const ab = empty.buffer.slice(empty.byteOffset, empty.byteOffset + empty.byteLength) as ArrayBuffer;
    expect(parquetMetadata(ab).schema.slice(1).map((e) => e.name)).toEqual(IMAGE_INDEX_COLUMNS.map((c) => c.name));
  });

  test('missing optional fields are nulls; bad values name the column and row', async () => {
    const sparse = { key: 'k', uuid: 'u', url: 'x', status: 'failed', attempts: 0 } as unknown as ImageIndexRow;
    const [back] = await readImageIndexParquet(await writeImageIndexParquet([sparse]));
    expect(back).toEqual({ ...sparse, error: null, sha256: null, phash: null, width: null, height: null, original_width: null, original_height: null, bytes: null, tar: null, retryable: null });
    await expect(writeImageIndexParquet([rows[0], { ...rows[0], width: 1.5 }])).rejects.toThrow('parquet column width, row 1: expected INT32 or null, got 1.5');
    await expect(writeImageIndexParquet([{ ...rows[0], attempts: null as unknown as number }])).rejects.toThrow(/attempts, row 0/);
  });

  test('stats: successes, failures by reason, statuses, bytes; merged and serialised deterministically', () => {
    const stats = imageStatsOf(rows);
    expect(stats).toEqual({
      total: 6, successes: 2, failed: 3, failures: { 'http-404': 2, timeout: 1 },
      statuses: { success: 2, failed: 3, duplicate: 1 }, bytes: 3 * 2 ** 31,
    });
    expect(failureReason({ error: null })).toBe('unknown');
    expect(failureReason({ error: 'no colon here' })).toBe('no colon here');
    expect(failureReason({ error: ' : detail' })).toBe('unknown');
    expect(addImageStats(emptyImageStats(), rows[1], 'custom').failures).toEqual({ custom: 1 });
    const half = [imageStatsOf(rows.slice(3)), imageStatsOf(rows.slice(0, 3))];
    expect(mergeImageStats(...half)).toEqual(stats);
    expect(imageStatsJson(mergeImageStats(...half))).toBe(imageStatsJson(stats));
    expect(JSON.parse(imageStatsJson(stats)).failures).toEqual({ 'http-404': 2, timeout: 1 });
    expect(Object.keys(JSON.parse(imageStatsJson(stats)).statuses)).toEqual(['duplicate', 'failed', 'success']);
    expect(imageStatsOf([])).toEqual(emptyImageStats());
    // a reason that is an Object.prototype name is an ordinary key
    expect(imageStatsOf([{ status: 'failed', error: 'constructor: x', bytes: null }]).failures).toEqual({ constructor: 1 });
  });
});

describe('readable by Python (tarfile, pyarrow) and GNU tar', () => {
  const python = path.resolve(__dirname, '..', '.tools', 'venv', 'bin', 'python');
  const havePython = () => {
    if (!existsSync(python)) {
      console.warn(`skipping the Python check: ${python} not found (run \`node bin/setup.js --s3\`)`);
      return false;
    }
    return true;
  };

  // Lists members with Python's tarfile and rewrites them with Python's own USTAR writer from default
  // TarInfo(name) objects: our bytes must be that output, minus Python's padding to a 10 KiB record.
  const tarScript = `
import hashlib, io, json, sys, tarfile
src = sys.argv[1]
orig = open(src, "rb").read()
out = io.BytesIO()
members = []
with tarfile.open(src, "r:", encoding="utf-8") as tf, tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT, encoding="utf-8") as w:
    for m in tf:
        data = tf.extractfile(m).read()
        members.append(dict(name=m.name, size=m.size, mode=m.mode, uid=m.uid, gid=m.gid, mtime=m.mtime, uname=m.uname,
                            gname=m.gname, type=m.type.decode(), sha256=hashlib.sha256(data).hexdigest()))
        ti = tarfile.TarInfo(m.name)
        ti.size = len(data)
        w.addfile(ti, io.BytesIO(data))
py = out.getvalue()
print(json.dumps(dict(members=members, same_bytes=py[:len(orig)] == orig and not any(py[len(orig):]), py_len=len(py))))
`;
  const pyTar = (file: string) => JSON.parse(execFileSync(python, ['-c', tarScript, file], { encoding: 'utf8', maxBuffer: 64 * MiB }));
  const expectMembers = (list: Array<[string, Buffer]>) => list.map(([name, data]) => ({
    name, size: data.length, mode: 0o644, uid: 0, gid: 0, mtime: 0, uname: '', gname: '', type: '0', sha256: sha256(data),
  }));

  test('tarfile lists the same members and data, and writes the same bytes (in-memory, file, empty, 50 MB)', async () => {
    if (!havePython()) return;
    const mem = tmpFile('mem.tar');
    writeFileSync(mem, build(members));
    const a = pyTar(mem);
    expect(a.members).toEqual(expectMembers(members));
    expect(a.same_bytes).toBe(true);

    const onFile = await buildFile(members, 4096);
    expect(pyTar(onFile.path)).toEqual(a);

    const empty = tmpFile('empty.tar');
    writeFileSync(empty, new TarBuilder().finish());
    expect(pyTar(empty)).toMatchObject({ members: [], same_bytes: true });

    const big = bytes(50 * MiB, 5);
    const w = await TarFileWriter.open(tmpFile('big-py.tar'));
    await w.add('000000001.txt', 'caption');
    await w.addStream('000000001.jpg', big.length, (function* () { for (let o = 0; o < big.length; o += 3 * MiB) yield big.subarray(o, o + 3 * MiB); })());
    const r = await w.finish();
    const b = pyTar(r.path);
    expect(b.members).toEqual(expectMembers([['000000001.txt', Buffer.from('caption')], ['000000001.jpg', big]]));
    expect(b.same_bytes).toBe(true);
  });

  test('GNU tar lists and extracts the archive unchanged, without warnings', () => {
    const probe = spawnSync('tar', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.warn('skipping the GNU tar check: no `tar` on PATH');
      return;
    }
    const file = tmpFile('gnu.tar');
    writeFileSync(file, build(members));
    const list = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
    expect(list.stderr).toBe('');
    expect(list.stdout.split('\n').filter(Boolean)).toEqual(members.map(([n]) => n));
    const dir = tmpFile('x');
    mkdirSync(dir);
    const x = spawnSync('tar', ['-xf', file, '-C', dir], { encoding: 'utf8' });
    expect(x.stderr).toBe('');
    expect(x.status).toBe(0);
    for (const [n, d] of members) expect(readFileSync(path.join(dir, n)).equals(d)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual([...new Set(members.map(([n]) => n.split('/')[0]))].sort());
    const empty = tmpFile('gnu-empty.tar');
    writeFileSync(empty, new TarBuilder().finish());
    const e = spawnSync('tar', ['-tf', empty], { encoding: 'utf8' });
    expect([e.status, e.stdout, e.stderr]).toEqual([0, '', '']);
  });

  test('pyarrow reads the image index with the declared types and the same values', async () => {
    if (!havePython()) return;
    const probe = spawnSync(python, ['-c', 'import pyarrow'], { encoding: 'utf8' });
    if (probe.status !== 0) throw new Error(`pyarrow not importable (run \`node bin/setup.js --s3\`): ${probe.stderr}`);
    const file = tmpFile('index.parquet');
    writeFileSync(file, await writeImageIndexParquet(rows()));
    const script = `
import json, sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({"schema": {f.name: [str(f.type), f.nullable] for f in t.schema}, "rows": t.to_pylist()}))
`;
    const out = JSON.parse(execFileSync(python, ['-c', script, file], { encoding: 'utf8' }));
    expect(out.rows).toEqual(rows());
    expect(out.schema).toEqual({
      key: ['string', false], uuid: ['string', false], url: ['string', false], status: ['string', false],
      error: ['string', true], sha256: ['string', true], phash: ['string', true],
      width: ['int32', true], height: ['int32', true], original_width: ['int32', true], original_height: ['int32', true],
      bytes: ['int64', true], tar: ['string', true], attempts: ['int32', false], retryable: ['bool', true],
    });
  });

  function rows(): ImageIndexRow[] {
    return [
      { key: '000000000', uuid: 'a'.repeat(32), url: 'https://example.com/ü.jpg', status: 'success', error: null, sha256: 'f'.repeat(64), phash: '8f3e',
        width: 256, height: 192, original_width: 4000, original_height: 3000, bytes: 2 ** 40, tar: '00000.tar', attempts: 1, retryable: null },
      { key: '000000001', uuid: 'b'.repeat(32), url: 'http://x.org/b', status: 'failed', error: 'http-404: Not Found', sha256: null, phash: null,
        width: null, height: null, original_width: null, original_height: null, bytes: null, tar: null, attempts: 3, retryable: false },
    ];
  }
});
