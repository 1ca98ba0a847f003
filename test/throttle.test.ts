/**
 * Shard reads under throttling, against a loopback server that throttles like Common Crawl (503 Slow Down or
 * 429 with Retry-After): the reader waits at least Retry-After (plus bounded jitter) and then gets the body;
 * and the cap on concurrent remote reads holds across the worker threads of a process (counted on the server).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ReadSlots, setShardReadCap, shardReadCapFromEnv, shardReadSlots } from '../storage/read-slots';
import { isS3Throttle, openInput, parseRetryAfter, throttleWaitMs } from '../storage/sources';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe('throttling arithmetic', () => {
  test('Retry-After is a floor; the jitter adds at most half the exponential backoff', () => {
    const opts = { backoffMs: 100 };
    expect(throttleWaitMs(opts, 0, 1000, () => 0)).toBe(1000);
    expect(throttleWaitMs(opts, 0, 1000, () => 1)).toBe(1050);
    expect(throttleWaitMs(opts, 3, 1000, () => 1)).toBe(1400);
    // No Retry-After: the jittered exponential backoff, base/2..base.
    expect(throttleWaitMs(opts, 2, undefined, () => 0)).toBe(200);
    expect(throttleWaitMs(opts, 2, undefined, () => 1)).toBe(400);
    // An absurd Retry-After is cut to maxRetryAfterMs.
    expect(throttleWaitMs({ ...opts, maxRetryAfterMs: 5000 }, 0, 86_400_000, () => 0)).toBe(5000);
  });

  test('Retry-After in seconds or as an HTTP date', () => {
    const now = Date.parse('Sat, 05 Dec 2026 03:00:00 GMT');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('Sat, 05 Dec 2026 03:00:07 GMT', now)).toBe(7000);
    expect(parseRetryAfter('Sat, 05 Dec 2026 02:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });

  test('S3 throttling errors are recognised by status and by code', () => {
    expect(isS3Throttle({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } })).toBe(true);
    expect(isS3Throttle({ name: 'TooManyRequestsException' })).toBe(true);
    expect(isS3Throttle({ name: 'Unknown', $metadata: { httpStatusCode: 429 } })).toBe(true);
    expect(isS3Throttle({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } })).toBe(false);
    expect(isS3Throttle({ name: 'InternalError', $metadata: { httpStatusCode: 500 } })).toBe(false);
  });

  test('CURATE_MAX_SHARD_READS: default 8, a positive integer or a clear error', () => {
    expect(shardReadCapFromEnv({})).toBe(8);
    expect(shardReadCapFromEnv({ CURATE_MAX_SHARD_READS: '3' })).toBe(3);
    expect(() => shardReadCapFromEnv({ CURATE_MAX_SHARD_READS: '0' })).toThrow("CURATE_MAX_SHARD_READS must be a positive integer, got '0'");
    expect(() => shardReadCapFromEnv({ CURATE_MAX_SHARD_READS: 'lots' })).toThrow(/positive integer, got 'lots'/);
  });
});

describe('a throttling loopback server', () => {
  let server: http.Server;
  let base: string;
  const arrivals = new Map<string, number[]>();
  let inFlight = 0;
  let maxInFlight = 0;
  const body = Buffer.from(Array.from({ length: 64_000 }, (_, i) => (i * 7) % 256));

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      const times = arrivals.get(url) ?? [];
      times.push(Date.now());
      arrivals.set(url, times);
      const hit = times.length;
      if (url === '/slow-down') {
        // Common Crawl's answer when it is busy: 503 Slow Down, twice, then the shard.
        if (hit <= 2) { res.writeHead(503, 'Slow Down', { 'retry-after': '1' }); return res.end(); }
        res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
        return res.end(body);
      }
      if (url === '/too-many') {
        if (hit === 1) { res.writeHead(429, { 'retry-after': '1' }); return res.end(); }
        return res.end('served');
      }
      if (url.startsWith('/commoncrawl/')) {
        // An S3 endpoint answering SlowDown (503, Retry-After: 1) four times: more than the AWS SDK's own 3 attempts.
        if (hit <= 4) {
          res.writeHead(503, 'Slow Down', { 'retry-after': '1', 'content-type': 'application/xml' });
          return res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
        }
        res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
        return res.end(body);
      }
      if (url === '/always-busy') { res.writeHead(503, 'Slow Down', { 'retry-after': '0' }); return res.end(); }
      if (url.startsWith('/slow/')) {
        // A body served over ~150 ms, so concurrent readers overlap; counted while the response is open.
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        let done = false;
        const finish = () => { if (!done) { done = true; inFlight--; } };
        res.once('close', finish);
        res.writeHead(200, { 'content-length': 3 * 1000 });
        let sent = 0;
        const tick = setInterval(() => {
          res.write(Buffer.alloc(1000, sent));
          if (++sent === 3) { clearInterval(tick); res.end(); }
        }, 50);
        return;
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('503 Slow Down with Retry-After: 1 is waited out twice (≥ 1 s each, jitter ≤ half the backoff), then the shard is read', async () => {
    const started = Date.now();
    const got = await collect(await openInput(`${base}/slow-down`, { backoffMs: 100, slots: false }));
    expect(got.equals(body)).toBe(true);
    const t = arrivals.get('/slow-down')!;
    expect(t.length).toBe(3);
    const gaps = [t[1] - t[0], t[2] - t[1]];
    // Attempt 0 waits 1000 + [0, 50) ms, attempt 1 waits 1000 + [0, 100) ms; allow scheduling slack above.
    expect(gaps[0]).toBeGreaterThanOrEqual(1000);
    expect(gaps[1]).toBeGreaterThanOrEqual(1000);
    expect(gaps[0]).toBeLessThan(1000 + 50 + 250);
    expect(gaps[1]).toBeLessThan(1000 + 100 + 250);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  });

  test('429 with Retry-After is honoured too', async () => {
    const got = await collect(await openInput(`${base}/too-many`, { backoffMs: 10, slots: false }));
    expect(got.toString()).toBe('served');
    const t = arrivals.get('/too-many')!;
    expect(t.length).toBe(2);
    expect(t[1] - t[0]).toBeGreaterThanOrEqual(1000);
  });

  test('s3:// SlowDown that outlasts the AWS SDK retries is waited out, then the object is read', async () => {
    const s3 = { endpoint: base, anonymous: true, forcePathStyle: true, region: 'us-east-1' };
    const got = await collect(await openInput('s3://commoncrawl/crawl-data/x.wat.gz', { s3, backoffMs: 100, slots: false }));
    expect(got.equals(body)).toBe(true);
    const t = arrivals.get('/commoncrawl/crawl-data/x.wat.gz')!;
    expect(t.length).toBe(5);
    // The fifth request comes after this module's wait: at least the 1 s Retry-After of the fourth reply.
    expect(t[4] - t[3]).toBeGreaterThanOrEqual(1000);
  }, 30_000);

  test('a shard throttled past its retries fails with the status and the attempts (then the activity retries)', async () => {
    const err = await openInput(`${base}/always-busy`, { slots: false, retries: 2, backoffMs: 10 }).catch((e) => e);
    expect(err.message).toBe(`GET ${base}/always-busy: HTTP 503 Slow Down (gave up after 3 attempts)`);
    expect(arrivals.get('/always-busy')!.length).toBe(3);
  });

  test('the cap on concurrent reads holds for readers in one thread (ReadSlots of 3, 10 readers)', async () => {
    maxInFlight = 0;
    const slots = ReadSlots.create(3);
    const got = await Promise.all(Array.from({ length: 10 }, (_, i) => openInput(`${base}/slow/a${i}`, { slots }).then(collect)));
    expect(got.every((b) => b.length === 3000)).toBe(true);
    expect(maxInFlight).toBe(3);
    expect(slots.inUse).toBe(0);
  });

  test('a failed open gives its slot back', async () => {
    const slots = ReadSlots.create(1);
    await expect(openInput(`${base}/missing`, { slots })).rejects.toThrow(/HTTP 404/);
    expect(slots.inUse).toBe(0);
    // A reader that stops early gives it back too.
    for await (const _ of await openInput(`${base}/slow/early`, { slots })) break;
    expect(slots.inUse).toBe(0);
  });

  test('the process-wide cap holds across worker threads (cap 4: this thread and two worker threads, 18 readers)', async () => {
    maxInFlight = 0;
    setShardReadCap(4);
    const hook = path.join(__dirname, 'support', 'ts-cli.js');
    const sources = path.join(__dirname, '..', 'storage', 'sources.ts');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      require(${JSON.stringify(hook)});
      const { openInput } = require(${JSON.stringify(sources)});
      const collect = async (it) => { let n = 0; for await (const c of it) n += c.length; return n; };
      Promise.all(workerData.urls.map((u) => openInput(u).then(collect))).then((sizes) => parentPort.postMessage(sizes));
    `;
    const inThread = (tag: string) => new Promise<number[]>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { urls: Array.from({ length: 6 }, (_, i) => `${base}/slow/${tag}${i}`) } });
      w.once('message', (m) => { resolve(m); void w.terminate(); });
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`worker thread ${tag} exited (${code}) before reading its shards`)));
    });
    try {
      const here = Promise.all(Array.from({ length: 6 }, (_, i) => openInput(`${base}/slow/main${i}`).then(collect)));
      const all = await Promise.all([here.then((b) => b.map((x) => x.length)), inThread('t1-'), inThread('t2-')]);
      expect(all.flat()).toEqual(Array(18).fill(3000));
      expect(maxInFlight).toBe(4);
      expect(shardReadSlots().inUse).toBe(0);
    } finally {
      setShardReadCap(8);
    }
  }, 60_000);
});
