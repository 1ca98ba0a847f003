import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../curation/errors';
import { openInput, readLocation, s3Client, s3SettingsFromEnv, type S3Settings } from '../storage/sources';
import { isNotFound, NotFoundError, openStore, readJson, writeJson, type ObjectStore } from '../storage/store';
import { startS3Server, type S3TestServer } from './support/s3server';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

let tmp: string;
let s3: S3TestServer;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'curate-storage-'));
  s3 = await startS3Server({ anonymousRead: true });
});

afterAll(async () => {
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** The same behaviours for every backend. */
function storeBehaviours(name: string, make: (sub: string) => ObjectStore) {
  describe(name, () => {
    let store: ObjectStore;
    let n = 0;
    beforeEach(() => { store = make(`t${n++}`); });

    test('put/get round trip, strings and buffers, nested keys', async () => {
      await store.put('a/b/c.txt', 'héllo');
      await store.put('bin', Buffer.from([0, 1, 2, 255]));
      expect((await store.get('a/b/c.txt')).toString('utf8')).toBe('héllo');
      expect([...(await store.get('bin'))]).toEqual([0, 1, 2, 255]);
      await store.put('a/b/c.txt', 'replaced');
      expect((await store.get('a/b/c.txt')).toString()).toBe('replaced');
      expect((await collect(await store.getStream('a/b/c.txt'))).toString()).toBe('replaced');
    });

    test('missing objects: get and getStream throw a NotFound-classified error; exists is false', async () => {
      await expect(store.get('nope/x.json')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.getStream('nope.bin')).rejects.toThrow(/not found: .*nope\.bin/);
      const err = await store.get('missing').catch((e) => e);
      expect(isNotFound(err)).toBe(true);
      expect(err.message).toContain(store.uri('missing'));
      expect(await store.exists('missing')).toBe(false);
      await store.put('dir/file', 'x');
      expect(await store.exists('dir/file')).toBe(true);
      expect(await store.exists('dir')).toBe(false); // a "directory" is not an object
    });

    test('list: all keys under a string prefix, sorted', async () => {
      for (const k of ['runs/b/2', 'runs/a/1', 'runs/ab', 'runs/a/sub/3', 'other/x', 'top']) await store.put(k, k);
      expect(await store.list('runs/')).toEqual(['runs/a/1', 'runs/a/sub/3', 'runs/ab', 'runs/b/2']);
      expect(await store.list('runs/a')).toEqual(['runs/a/1', 'runs/a/sub/3', 'runs/ab']);
      expect(await store.list('runs/a/')).toEqual(['runs/a/1', 'runs/a/sub/3']);
      expect(await store.list()).toEqual(['other/x', 'runs/a/1', 'runs/a/sub/3', 'runs/ab', 'runs/b/2', 'top']);
      expect(await store.list('none/')).toEqual([]);
    });

    test('delete removes, and is idempotent', async () => {
      await store.put('d/x', '1');
      await store.delete('d/x');
      expect(await store.exists('d/x')).toBe(false);
      await store.delete('d/x');
      await store.delete('never/was');
    });

    test('concurrent readers only ever see whole objects while writers replace them', async () => {
      const size = 256 * 1024;
      await store.put('hot', Buffer.alloc(size, 1));
      let stop = false;
      const torn: number[] = [];
      const reader = (async () => {
        let reads = 0;
        while (!stop || reads < 3) {
          const b = await store.get('hot');
          reads++;
          if (b.length !== size || b.some((x) => x !== b[0])) torn.push(b.length);
        }
        return reads;
      })();
      await Promise.all(Array.from({ length: 12 }, (_, i) => store.put('hot', Buffer.alloc(size, i + 2))));
      stop = true;
      expect(await reader).toBeGreaterThan(0);
      expect(torn).toEqual([]);
      expect((await store.get('hot')).length).toBe(size);
      expect(await store.list('ho')).toEqual(['hot']); // no temp names visible
    });

    test('putFileFrom uploads a local file; readJson/writeJson', async () => {
      const f = path.join(tmp, `upload-${name}.bin`);
      writeFileSync(f, Buffer.alloc(300_000, 7));
      await store.putFileFrom('up/file.bin', f);
      const got = await store.get('up/file.bin');
      expect(got.length).toBe(300_000);
      expect(got.every((x) => x === 7)).toBe(true);
      await writeJson(store, 'j/run.json', { a: 1, b: [true, null] });
      expect(await readJson(store, 'j/run.json')).toEqual({ a: 1, b: [true, null] });
      await store.put('j/bad.json', '{nope');
      await expect(readJson(store, 'j/bad.json')).rejects.toThrow(/invalid JSON in .*bad\.json/);
    });

    test('keys that could escape the root are rejected', async () => {
      for (const bad of ['../x', '/abs', 'a//b', 'a/./b', 'a\\b', '']) {
        await expect(store.put(bad, 'x')).rejects.toBeInstanceOf(ConfigError);
      }
    });
  });
}

storeBehaviours('local store', (sub) => openStore(path.join(tmp, 'local', sub)));
storeBehaviours('S3 store (SeaweedFS)', (sub) => openStore(`s3://${s3.bucket}/stores/${sub}`, s3.settings));

describe('local store specifics', () => {
  test('file:// root, uri() gives a file URL, temp files are hidden and not left behind', async () => {
    const dir = path.join(tmp, 'local-uri');
    const store = openStore(pathToFileURL(dir).href);
    await store.put('x/y z.json', '{}');
    expect(store.uri('x/y z.json')).toBe(pathToFileURL(path.join(dir, 'x', 'y z.json')).href);
    expect(readdirSync(path.join(dir, 'x'))).toEqual(['y z.json']);
    writeFileSync(path.join(dir, 'x', '.y.tmp-123-abcd'), 'partial'); // a writer that crashed mid-put
    expect(await store.list('x/')).toEqual(['x/y z.json']);
    expect((await readLocation(store.uri('x/y z.json'))).toString()).toBe('{}');
  });
});

describe('S3 store specifics', () => {
  test('root prefix, uri(), and listing across pages (more than 1000 keys)', async () => {
    const store = openStore(`s3://${s3.bucket}/paged/root`, s3.settings);
    expect(store.root).toBe(`s3://${s3.bucket}/paged/root/`);
    expect(store.uri('a/b.json')).toBe(`s3://${s3.bucket}/paged/root/a/b.json`);
    const keys = Array.from({ length: 1005 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, '')));
    expect(await store.list('k/')).toEqual(keys);
    // A sibling prefix that merely starts with the same characters is a different root.
    expect(await openStore(`s3://${s3.bucket}/paged/ro`, s3.settings).list('k/')).toEqual([]);
  });

  test('a missing bucket: reads see NotFound (no such object either way), writes fail naming the URI', async () => {
    const store = openStore('s3://no-such-bucket-here/x', s3.settings);
    expect(isNotFound(await store.get('a').catch((e) => e))).toBe(true);
    expect(await store.exists('a')).toBe(false);
    await expect(store.put('a', 'x')).rejects.toThrow(/PUT s3:\/\/no-such-bucket-here\/x\/a/);
  });
});

describe('openInput', () => {
  test('local path and file:// URI; a missing file is a ConfigError naming it', async () => {
    const f = path.join(tmp, 'in.txt');
    writeFileSync(f, 'local bytes');
    expect((await collect(await openInput(f))).toString()).toBe('local bytes');
    expect((await collect(await openInput(pathToFileURL(f).href))).toString()).toBe('local bytes');
    await expect(openInput(path.join(tmp, 'missing.warc.gz'))).rejects.toThrow(ConfigError);
    await expect(openInput('ftp://example.com/x')).rejects.toThrow(/unsupported input URI ftp:/);
  });

  describe('http:// from a loopback server', () => {
    let server: http.Server;
    let base: string;
    const hits = new Map<string, number>();
    const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        const url = req.url ?? '/';
        const hit = (hits.get(url) ?? 0) + 1;
        hits.set(url, hit);
        if (url === '/data') return res.end(body);
        if (url === '/redirect') { res.writeHead(302, { location: '/data' }); return res.end(); }
        if (url === '/redirect-abs') { res.writeHead(301, { location: `${base}/redirect` }); return res.end(); }
        if (url.startsWith('/loop')) { res.writeHead(302, { location: `/loop${hit}` }); return res.end(); }
        if (url === '/flaky') {
          if (hit === 1) { res.writeHead(503); return res.end('busy'); }
          return res.end('ok after retry');
        }
        if (url === '/down') { res.writeHead(503); return res.end(); }
        if (url === '/gone') { res.writeHead(404); return res.end(); }
        if (url === '/reset') { req.socket.destroy(); return; }
        if (url === '/drop') {
          // The first response breaks off halfway; later ones honour Range.
          const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
          if (m) {
            const from = Number(m[1]);
            res.writeHead(206, { 'content-length': body.length - from, 'content-range': `bytes ${from}-${body.length - 1}/${body.length}`, 'accept-ranges': 'bytes' });
            return res.end(body.subarray(from));
          }
          res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
          res.write(body.subarray(0, 70_000), () => setTimeout(() => req.socket.destroy(), 20));
          return;
        }
        res.writeHead(500);
        res.end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    const fast = { backoffMs: 5, retries: 2 };

    test('plain GET and redirects (relative and absolute)', async () => {
      expect((await collect(await openInput(`${base}/data`))).equals(body)).toBe(true);
      expect((await collect(await openInput(`${base}/redirect`))).equals(body)).toBe(true);
      expect((await collect(await openInput(`${base}/redirect-abs`))).equals(body)).toBe(true);
    });

    test('more than 5 redirects is a ConfigError', async () => {
      await expect(openInput(`${base}/loop`, fast)).rejects.toThrow(/more than 5 redirects/);
    });

    test('503 then 200 is retried', async () => {
      expect((await collect(await openInput(`${base}/flaky`, fast))).toString()).toBe('ok after retry');
      expect(hits.get('/flaky')).toBe(2);
    });

    test('persistent 503 gives up with the URI and status; 404 fails at once as ConfigError', async () => {
      const err = await openInput(`${base}/down`, fast).catch((e) => e);
      expect(err).not.toBeInstanceOf(ConfigError);
      expect(err.message).toBe(`GET ${base}/down: HTTP 503 Service Unavailable (gave up after 3 attempts)`);
      expect(hits.get('/down')).toBe(3);
      const gone = await openInput(`${base}/gone`, fast).catch((e) => e);
      expect(gone).toBeInstanceOf(ConfigError);
      expect(gone.message).toBe(`GET ${base}/gone: HTTP 404 Not Found`);
      expect(hits.get('/gone')).toBe(1);
    });

    test('connection resets are retried, then reported', async () => {
      await expect(openInput(`${base}/reset`, fast)).rejects.toThrow(new RegExp(`GET ${base}/reset: socket hang up \\(gave up after 3 attempts\\)`));
    });

    test('a body that breaks off is resumed with a Range request', async () => {
      const got = await collect(await openInput(`${base}/drop`, fast));
      expect(got.length).toBe(body.length);
      expect(got.equals(body)).toBe(true);
      expect(hits.get('/drop')).toBe(2);
    });
  });

  describe('s3:// from SeaweedFS', () => {
    test('reads an object, readLocation, missing key is a ConfigError', async () => {
      const store = openStore(`s3://${s3.bucket}/inputs`, s3.settings);
      const data = Buffer.alloc(3_000_000, 9);
      await store.put('shard-0.warc.gz', data);
      const got = await collect(await openInput(store.uri('shard-0.warc.gz'), { s3: s3.settings }));
      expect(got.equals(data)).toBe(true);
      expect((await readLocation(store.uri('shard-0.warc.gz'), { s3: s3.settings })).length).toBe(data.length);
      const err = await openInput(store.uri('missing.warc.gz'), { s3: s3.settings }).catch((e) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toContain(`s3://${s3.bucket}/inputs/missing.warc.gz`);
      expect(err.message).toContain('404');
    });

    test('anonymous settings send unsigned requests (public buckets); writes are refused', async () => {
      const store = openStore(`s3://${s3.bucket}/public`, s3.settings);
      await store.put('open.txt', 'public bytes');
      const anon: S3Settings = { endpoint: s3.endpoint, region: s3.region, anonymous: true };
      expect((await readLocation(`s3://${s3.bucket}/public/open.txt`, { s3: anon })).toString()).toBe('public bytes');
      await expect(openStore(`s3://${s3.bucket}/public`, anon).put('w.txt', 'x')).rejects.toThrow(/PUT .*AccessDenied|PUT .*403/);
    });
  });

  test('anonymous requests carry no Authorization header', async () => {
    const seen: (string | undefined)[] = [];
    const server = http.createServer((req, res) => { seen.push(req.headers.authorization); res.end('x'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await collect(await openInput('s3://commoncrawl/crawl-data/x.wat.gz', { s3: { endpoint, anonymous: true } }));
      expect(seen).toEqual([undefined]);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('S3 settings', () => {
  test('from the environment', () => {
    expect(s3SettingsFromEnv({})).toEqual({ region: 'us-east-1', anonymous: false });
    expect(s3SettingsFromEnv({ CURATE_S3_ENDPOINT: 'http://127.0.0.1:9000', AWS_REGION: 'eu-west-1', CURATE_S3_ANONYMOUS: '1' }))
      .toEqual({ endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1', forcePathStyle: true, anonymous: true });
    expect(s3SettingsFromEnv({ AWS_ENDPOINT_URL: 'http://minio:9000' }).endpoint).toBe('http://minio:9000');
  });

  test('clients are cached per settings', () => {
    const a = s3Client({ endpoint: 'http://127.0.0.1:1', region: 'us-east-1' });
    expect(s3Client({ endpoint: 'http://127.0.0.1:1', region: 'us-east-1' })).toBe(a);
    expect(s3Client({ endpoint: 'http://127.0.0.1:2', region: 'us-east-1' })).not.toBe(a);
  });
});
