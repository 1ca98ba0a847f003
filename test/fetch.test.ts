/**
 * The image fetcher against real HTTP servers on loopback started here (127.0.0.1, plus 127.0.0.2 as a "refused"
 * loopback target that must never be contacted). A tripwire on net.Socket#connect makes every test fail, and no
 * packet leave the machine, if any connection (or guarded DNS answer) would go to a non-loopback address.
 */
import http from 'node:http';
import net from 'node:net';
import { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import {
  AddressGuard,
  backoffDelay,
  classifyAddress,
  classifyNetworkError,
  DEFAULT_FETCH_POLICY,
  DEFAULT_USER_AGENT,
  FetchPolicy,
  FetchResult,
  ImageFetcher,
  isImageContentType,
  optOutDirective,
  parseRetryAfter,
  resolvePolicy,
  userAgentFor,
} from '../curation/fetch';
import { parseCidr } from '../curation/netguard';
import { ConfigError } from '../curation/errors';

// ---------------------------------------------------------------------------------------------------------------
// Tripwire: only loopback, ever.

const connectTargets: string[] = [];
const tripped: string[] = [];
const isLoopback = (ip: string) => /^127\./.test(ip) || ip === '::1' || /^::ffff:127\./i.test(ip);
const origConnect = net.Socket.prototype.connect;
beforeAll(() => {
  (net.Socket.prototype as unknown as { connect: unknown }).connect = function (this: net.Socket, ...args: unknown[]) {
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
    const opts = (typeof first === 'object' && first !== null ? first : { port: first, host: args[1] }) as {
      host?: string; path?: string; lookup?: (...a: any[]) => void;
    };
    if (!opts.path) {
      const host = opts.host ?? 'localhost';
      connectTargets.push(host);
      if (net.isIP(host) && !isLoopback(host)) {
        tripped.push(host);
        throw new Error(`tripwire: connection to non-loopback ${host}`);
      }
      if (!net.isIP(host) && typeof opts.lookup === 'function') {
        const inner = opts.lookup;
        opts.lookup = (hostname: unknown, o: unknown, cb: (err: unknown, a?: unknown, f?: unknown) => void) => {
          inner(hostname, o, (err: unknown, a?: unknown, f?: unknown) => {
            const list = Array.isArray(a) ? (a as Array<{ address: string }>).map((x) => x.address) : a ? [String(a)] : [];
            const bad = list.filter((x) => !isLoopback(x));
            if (!err && bad.length) {
              tripped.push(...bad);
              cb(new Error(`tripwire: ${String(hostname)} → non-loopback ${bad.join(',')}`));
              return;
            }
            cb(err, a, f);
          });
        };
      }
    }
    return (origConnect as (...a: unknown[]) => net.Socket).apply(this, args);
  };
});
afterAll(() => {
  net.Socket.prototype.connect = origConnect;
});
afterEach(() => {
  expect(tripped).toEqual([]);
});

// ---------------------------------------------------------------------------------------------------------------
// The fixture servers

const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(200, 7)]);

interface Stats {
  requests: Map<string, number>;
  active: Map<string, number>;
  maxActive: Map<string, number>;
  userAgents: Map<string, string>;
  bytesWritten: Map<string, number>;
  connections: number;
}

function newStats(): Stats {
  return { requests: new Map(), active: new Map(), maxActive: new Map(), userAgents: new Map(), bytesWritten: new Map(), connections: 0 };
}

const stats = newStats();
const stats2 = newStats(); // the 127.0.0.2 server: must stay untouched
let server: http.Server;
let server2: http.Server;
let port: number;
let port2: number;
let base: string;

// Server-side timers, cleared when the servers stop.
const timers = new Set<NodeJS.Timeout>();
function later(fn: () => void, ms: number): void {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

const bump = (m: Map<string, number>, k: string, d = 1) => m.set(k, (m.get(k) ?? 0) + d);

function handler(st: Stats): http.RequestListener {
  return (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const q = (k: string) => u.searchParams.get(k);
    const tag = q('tag') ?? u.pathname;
    bump(st.requests, tag);
    const n = st.requests.get(tag)!;
    st.userAgents.set(tag, String(req.headers['user-agent']));
    bump(st.active, tag);
    st.maxActive.set(tag, Math.max(st.maxActive.get(tag) ?? 0, st.active.get(tag)!));
    res.on('close', () => bump(st.active, tag, -1));
    const image = (extra: http.OutgoingHttpHeaders = {}) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length, ...extra });
      res.end(PNG);
    };
    switch (u.pathname) {
      case '/img': {
        const headers: http.OutgoingHttpHeaders = {};
        const robots = u.searchParams.getAll('robots');
        if (robots.length) headers['x-robots-tag'] = robots.length === 1 ? robots[0] : robots;
        if (q('type') !== null) headers['content-type'] = q('type')!;
        if (q('type') === '') {
          res.writeHead(200, { 'content-length': PNG.length, ...(robots.length ? { 'x-robots-tag': robots } : {}) });
          res.end(PNG);
          return;
        }
        return image(headers);
      }
      case '/delay': // a normal image after `ms`
        later(() => { if (!res.destroyed) image(); }, Number(q('ms') ?? 100));
        return;
      case '/redirect': {
        const left = Number(q('n'));
        const loc = left > 0 ? `/redirect?n=${left - 1}&tag=${tag}` : '/img';
        res.writeHead(q('code') ? Number(q('code')) : 302, { location: q('relative') ? loc.slice(1) : `http://127.0.0.1:${port}${loc}` });
        res.end('moved');
        return;
      }
      case '/to': // redirect to the given Location
        res.writeHead(302, { location: q('location')! });
        res.end();
        return;
      case '/status': {
        const code = Number(q('code'));
        const okAfter = q('okAfter') ? Number(q('okAfter')) : Infinity; // succeed from request number okAfter+1
        if (n > okAfter) return image();
        const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/plain' };
        if (q('retryAfter')) headers['retry-after'] = q('retryAfter')!;
        res.writeHead(code, headers);
        res.end(`status ${code}`);
        return;
      }
      case '/slow-headers':
        later(() => { if (!res.destroyed) image(); }, Number(q('ms')));
        return;
      case '/stall': // headers and a few bytes, then nothing
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': 1000 });
        res.write(PNG.subarray(0, 10));
        return;
      case '/drip': { // one byte every 50 ms, never done (stops by itself after 10 s)
        res.writeHead(200, { 'content-type': 'image/png' });
        const started = Date.now();
        const t = setInterval(() => {
          if (res.destroyed || Date.now() - started > 10_000) { clearInterval(t); res.destroy(); return; }
          res.write('x');
        }, 50);
        res.on('close', () => clearInterval(t));
        return;
      }
      case '/truncated':
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': 1000 });
        res.write(PNG.subarray(0, 100));
        later(() => res.socket?.destroy(), 20);
        return;
      case '/huge-length': // claims 1 GB
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(1_000_000_000) });
        res.write(Buffer.alloc(64 * 1024));
        bump(st.bytesWritten, tag, 64 * 1024);
        return; // and waits: the client must not wait for the rest
      case '/huge-chunked': { // streams until the client goes away (at most 256 MiB)
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        const chunk = Buffer.alloc(64 * 1024, 1);
        const pump = () => {
          while (!res.destroyed && (st.bytesWritten.get(tag) ?? 0) < 256 * 1024 * 1024) {
            bump(st.bytesWritten, tag, chunk.length);
            if (!res.write(chunk)) { res.once('drain', pump); return; }
          }
          if (!res.destroyed) res.end();
        };
        pump();
        return;
      }
      case '/gzip': {
        const body = gzipSync(PNG);
        res.writeHead(200, { 'content-type': 'image/png', 'content-encoding': 'gzip', 'content-length': body.length });
        res.end(body);
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
    }
  };
}

function listen(s: http.Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, host, () => resolve((s.address() as AddressInfo).port));
  });
}

beforeAll(async () => {
  server = http.createServer(handler(stats));
  server.on('connection', () => stats.connections++);
  server2 = http.createServer(handler(stats2));
  server2.on('connection', () => stats2.connections++);
  port = await listen(server, '127.0.0.1');
  port2 = await listen(server2, '127.0.0.2');
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const t of timers) clearTimeout(t);
  for (const s of [server, server2]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

// Fetchers made by a test are closed after it.
const open: ImageFetcher[] = [];
const LOOPBACK_ONLY = ['127.0.0.1/32'];
/** `*.test` names resolve to what the map says (no real DNS); others through the system resolver. */
const fakeDns: Record<string, string[]> = {
  'img.test': ['127.0.0.1'],
  'a.test': ['127.0.0.1'],
  'b.test': ['127.0.0.1'],
  'sneaky.test': ['127.0.0.2'],
  'mixed.test': ['127.0.0.2', '127.0.0.1'],
};
function fetcher(policy: Partial<FetchPolicy> = {}): ImageFetcher {
  const f = new ImageFetcher({
    allowCidrs: LOOPBACK_ONLY,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    resolve: async (h) => {
      if (h in fakeDns) return fakeDns[h].map((address) => ({ address, family: net.isIP(address) }));
      const { promises } = await import('node:dns');
      return promises.lookup(h, { all: true });
    },
    ...policy,
  });
  open.push(f);
  return f;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});

async function timed(p: Promise<FetchResult>): Promise<[FetchResult, number]> {
  const t0 = Date.now();
  const r = await p;
  return [r, Date.now() - t0];
}

function failure(r: FetchResult) {
  if (r.ok) throw new Error(`expected a failure, got ok (${r.finalUrl})`);
  return r;
}

// ---------------------------------------------------------------------------------------------------------------

describe('classifyAddress', () => {
  const table: Array<[string, string | null]> = [
    ['8.8.8.8', null],
    ['1.1.1.1', null],
    ['93.184.216.34', null],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', null],
    ['192.168.1.1', 'private'],
    ['169.254.1.1', 'link_local'],
    ['169.254.169.254', 'cloud_metadata'],
    ['169.254.170.2', 'cloud_metadata'],
    ['100.100.100.200', 'cloud_metadata'],
    ['100.64.0.1', 'carrier_nat'],
    ['100.127.255.255', 'carrier_nat'],
    ['100.128.0.1', null],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'cloud_metadata'],
    ['::ffff:8.8.8.8', null],
    ['::127.0.0.1', 'loopback'],
    ['::ffff:0:127.0.0.1', 'loopback'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'cloud_metadata'],
    ['64:ff9b::8.8.8.8', null],
    ['2002:7f00:1::', 'loopback'],
    ['2002:a00:1::1', 'private'],
    ['2002:808:808::1', null],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['fec0::1', 'private'],
    ['fc00::1', 'unique_local'],
    ['fd12:3456::1', 'unique_local'],
    ['fd00:ec2::254', 'cloud_metadata'],
    ['fd20:ce::254', 'cloud_metadata'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['2001::1', 'reserved'],
    ['100::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['2001:4860:4860::8888', null],
    ['2606:4700:4700::1111', null],
    ['localhost', 'invalid'],
    ['127.1', 'invalid'],
    ['', 'invalid'],
    ['1.2.3.4.5', 'invalid'],
    ['::ffff:1.2.3.256', 'invalid'],
  ];
  test.each(table)('%s → %s', (ip, kind) => {
    expect(classifyAddress(ip)).toBe(kind);
  });

  test('AddressGuard: allowances (also for IPv4-mapped forms) and extra denials', () => {
    const g = new AddressGuard(['127.0.0.1/32', 'fd00::/8'], ['8.8.4.0/24']);
    expect(g.check('127.0.0.1')).toBeNull();
    expect(g.check('::ffff:127.0.0.1')).toBeNull();
    expect(g.check('127.0.0.2')).toBe('loopback');
    expect(g.check('::1')).toBe('loopback');
    expect(g.check('fd00::5')).toBeNull();
    expect(g.check('fd00:ec2::254')).toBeNull(); // explicitly allowed by the broad range
    expect(g.check('8.8.4.4')).toBe('denied');
    expect(g.check('8.8.8.8')).toBeNull();
    expect(g.check('nonsense')).toBe('invalid');
    expect(new AddressGuard().check('169.254.169.254')).toBe('cloud_metadata');
    expect(() => parseCidr('10.0.0.0/33')).toThrow();
    expect(() => parseCidr('example.com/8')).toThrow();
    expect(parseCidr('::1').bits).toBe(128);
  });
});

describe('pure helpers', () => {
  test('backoffDelay is deterministic exponential, capped', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, 100, 1000))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffDelay(0, 100, 1000)).toBe(0);
    expect(backoffDelay(100, 100, 1000)).toBe(1000);
  });

  test('parseRetryAfter: seconds, HTTP dates, junk', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-5', now)).toBeNull();
    expect(parseRetryAfter('1.5', now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });

  test('optOutDirective follows img2dataset, agent-prefixed lines only for our token', () => {
    const me = 'metaclip-curate';
    expect(optOutDirective('noai', me)).toBe('noai');
    expect(optOutDirective('NoImageIndex', me)).toBe('noimageindex');
    expect(optOutDirective('noarchive, noimageai', me)).toBe('noimageai');
    expect(optOutDirective('noarchive nosnippet noindex', me)).toBe('noindex');
    expect(optOutDirective('nofollow, noarchive', me)).toBeNull();
    expect(optOutDirective('otherbot: noai', me)).toBeNull();
    expect(optOutDirective('otherbot: noai', null)).toBeNull();
    expect(optOutDirective('Metaclip-Curate: noai', me)).toBe('noai');
    expect(optOutDirective(['otherbot: noindex', 'noimageai'], me)).toBe('noimageai');
    expect(optOutDirective(['otherbot: noindex', 'nofollow'], me)).toBeNull();
    expect(optOutDirective('noindex, unavailable_after: 25 Jun 2010 15:00:00 PST', me)).toBe('noindex');
    expect(optOutDirective('unavailable_after: 25 Jun 2010 15:00:00 PST', me)).toBeNull();
    expect(optOutDirective('noai', me, ['noimageai'])).toBeNull();
    expect(optOutDirective(undefined, me)).toBeNull();
  });

  test('isImageContentType', () => {
    for (const t of ['image/png', 'image/jpeg; charset=binary', 'IMAGE/WEBP', 'application/octet-stream', 'binary/octet-stream', null, '']) {
      expect(isImageContentType(t)).toBe(true);
    }
    for (const t of ['text/html', 'text/html; charset=utf-8', 'application/json', 'video/mp4', 'text/plain']) {
      expect(isImageContentType(t)).toBe(false);
    }
  });

  test('classifyNetworkError', () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    expect(classifyNetworkError(e('UND_ERR_CONNECT_TIMEOUT'))).toMatchObject({ reason: 'connect_timeout', retryable: true });
    expect(classifyNetworkError(e('ECONNRESET'))).toMatchObject({ reason: 'connection_error', retryable: true });
    expect(classifyNetworkError(e('ECONNRESET'), true)).toMatchObject({ reason: 'truncated', retryable: true });
    expect(classifyNetworkError(e('ENOTFOUND'))).toMatchObject({ reason: 'dns_error', retryable: false });
    expect(classifyNetworkError(e('EAI_AGAIN'))).toMatchObject({ reason: 'dns_error', retryable: true });
    expect(classifyNetworkError(e('CERT_HAS_EXPIRED'))).toMatchObject({ reason: 'tls_error', retryable: false });
    expect(classifyNetworkError(e('HPE_INVALID_CONSTANT'))).toMatchObject({ reason: 'protocol_error', retryable: false });
    expect(classifyNetworkError(new AggregateError([e('ECONNREFUSED')]))).toMatchObject({ reason: 'connection_error' });
  });

  test('policy defaults, user agent and validation', () => {
    const p = resolvePolicy();
    expect(p).toMatchObject({ connectTimeoutMs: 10_000, totalTimeoutMs: 30_000, maxRedirects: 5, maxBodyBytes: 20 * 1024 * 1024, retries: 2, maxConcurrency: 64, maxPerHost: 8, respectOptOut: true, requireImageContentType: true, allowCidrs: [] });
    expect(p.userAgent).toBe(DEFAULT_USER_AGENT);
    expect(DEFAULT_USER_AGENT).toMatch(/^Mozilla\/5\.0 \(compatible; metaclip-curate\/\d+\.\d+\.\d+; \+https:\/\/\S+\)$/);
    expect(resolvePolicy({ userAgentToken: 'MyBot' })).toMatchObject({ userAgentToken: 'mybot', userAgent: expect.stringContaining('MyBot/') });
    expect(resolvePolicy({ userAgentToken: 'x', userAgent: 'custom' }).userAgent).toBe('custom');
    expect(userAgentFor('bot', 'mailto:ops@example.org', '1.2.3')).toBe('Mozilla/5.0 (compatible; bot/1.2.3; +mailto:ops@example.org)');
    expect(() => userAgentFor('bad token')).toThrow(ConfigError);
    expect(() => resolvePolicy({ maxPerHost: 0 })).toThrow(ConfigError);
    expect(() => resolvePolicy({ retries: -1 })).toThrow(ConfigError);
    expect(() => new ImageFetcher({ allowCidrs: ['nope'] })).toThrow(ConfigError);
    expect(DEFAULT_FETCH_POLICY.allowCidrs).toEqual([]);
  });
});

describe('ImageFetcher: success paths', () => {
  test('fetches an image and sends the user agent', async () => {
    const r = await fetcher().fetch(`${base}/img?tag=ua`);
    expect(r).toMatchObject({ ok: true, status: 200, contentType: 'image/png', attempts: 1, redirects: 0 });
    if (r.ok) expect(r.bytes.equals(PNG)).toBe(true);
    expect(stats.userAgents.get('ua')).toBe(DEFAULT_USER_AGENT);
    expect(connectTargets).toContain('127.0.0.1'); // the tripwire sees undici's connections
    await fetcher({ userAgentToken: 'mybot' }).fetch(`${base}/img?tag=ua2`);
    expect(stats.userAgents.get('ua2')).toMatch(/\(compatible; mybot\/[^;]+; \+/);
  });

  test('follows a redirect chain within the limit (absolute and relative Locations, 301/307/308)', async () => {
    const f = fetcher();
    const r = await f.fetch(`${base}/redirect?n=3&tag=chain`);
    expect(r).toMatchObject({ ok: true, redirects: 4, finalUrl: `${base}/img` });
    for (const code of [301, 307, 308]) {
      expect(await f.fetch(`${base}/redirect?n=1&relative=1&code=${code}&tag=rel${code}`)).toMatchObject({ ok: true, redirects: 2, finalUrl: `${base}/img` });
    }
  });

  test('too many redirects', async () => {
    const r = failure(await fetcher({ maxRedirects: 3 }).fetch(`${base}/redirect?n=5&tag=many`));
    expect(r).toMatchObject({ reason: 'too_many_redirects', retryable: false, attempts: 1 });
    expect(stats.requests.get('many')).toBe(4); // the 4th redirect is not followed
  });

  test('numeric IPv4 forms are normalised (2130706433 and 0x7f.1 are 127.0.0.1)', async () => {
    const f = fetcher();
    expect(await f.fetch(`http://2130706433:${port}/img`)).toMatchObject({ ok: true });
    expect(await f.fetch(`http://0x7f.1:${port}/img`)).toMatchObject({ ok: true });
  });

  test('a host name resolving to refused and allowed addresses connects to the allowed one only', async () => {
    const before = stats2.connections;
    expect(await fetcher().fetch(`http://mixed.test:${port}/img`)).toMatchObject({ ok: true });
    expect(stats2.connections).toBe(before);
  });

  test('an IPv6 literal host, allowed by an IPv6 range', async () => {
    const s6 = http.createServer(handler(newStats()));
    const p6 = await listen(s6, '::1').catch(() => null);
    if (p6 === null) return; // no IPv6 loopback on this machine
    try {
      expect(await fetcher({ allowCidrs: ['::1/128'] }).fetch(`http://[::1]:${p6}/img`)).toMatchObject({ ok: true });
      expect(await fetcher().fetch(`http://[::1]:${p6}/img`)).toMatchObject({ ok: false, reason: 'blocked_address' });
    } finally {
      s6.closeAllConnections();
      await new Promise((r) => s6.close(r));
    }
  });

  test('gzip Content-Encoding is undone', async () => {
    const r = await fetcher().fetch(`${base}/gzip`);
    expect(r.ok && r.bytes.equals(PNG)).toBe(true);
  });

  test('missing and octet-stream content types pass; text/html passes when the check is off', async () => {
    const f = fetcher();
    expect(await f.fetch(`${base}/img?type=`)).toMatchObject({ ok: true, contentType: null });
    expect(await f.fetch(`${base}/img?type=application/octet-stream`)).toMatchObject({ ok: true });
    expect(await fetcher({ requireImageContentType: false }).fetch(`${base}/img?type=text/html`)).toMatchObject({ ok: true });
  });
});

describe('ImageFetcher: refused targets (no connection made)', () => {
  test.each([
    ['ftp://127.0.0.1/x.png'],
    ['file:///etc/passwd'],
    ['data:image/png;base64,iVBORw0KGgo='],
    ['javascript:alert(1)'],
    ['gopher://127.0.0.1:70/'],
  ])('bad scheme %s', async (url) => {
    expect(await fetcher().fetch(url)).toMatchObject({ ok: false, reason: 'bad_scheme', retryable: false, attempts: 0 });
  });

  test.each([['not a url'], [''], ['http://'], ['//127.0.0.1/img'], ['http://user:pw@127.0.0.1/img']])('invalid URL %j', async (url) => {
    expect(await fetcher().fetch(url)).toMatchObject({ ok: false, reason: 'invalid_url', retryable: false, attempts: 0 });
  });

  test.each([
    ['http://169.254.169.254/latest/meta-data/', 'cloud_metadata'],
    ['http://10.0.0.1/x.jpg', 'private'],
    ['http://[fd00:ec2::254]/latest/meta-data/', 'cloud_metadata'],
    ['http://[::ffff:169.254.169.254]/', 'cloud_metadata'],
    ['http://0x7f.2/img', 'loopback'],
    ['http://[::1]/img', 'loopback'],
    ['http://0.0.0.0/img', 'unspecified'],
  ])('redirect to %s is refused even with the loopback allowance', async (target, kind) => {
    const before = connectTargets.length;
    const [r, ms] = await timed(fetcher().fetch(`${base}/to?location=${encodeURIComponent(target)}`));
    const f = failure(r);
    expect(f).toMatchObject({ reason: 'blocked_address', retryable: false, attempts: 1 });
    expect(f.detail).toContain(kind);
    expect(ms).toBeLessThan(2000);
    // The only connection made was to the fixture server (maybe none: a kept-alive one was reused).
    expect(connectTargets.slice(before).every((h) => h === '127.0.0.1')).toBe(true);
  });

  test('a refused loopback server (127.0.0.2) is never contacted: literal, decimal and via DNS', async () => {
    const before = stats2.connections;
    const f = fetcher();
    for (const target of [`http://127.0.0.2:${port2}/img`, `http://2130706434:${port2}/img`, `http://sneaky.test:${port2}/img`]) {
      const r = failure(await f.fetch(`${base}/to?location=${encodeURIComponent(target)}`));
      expect(r.reason).toBe('blocked_address');
      expect(r.finalUrl).toContain(`:${port2}/img`);
      expect(failure(await f.fetch(target)).reason).toBe('blocked_address');
    }
    expect(stats2.connections).toBe(before);
    expect(stats2.requests.size).toBe(0);
  });

  test('redirect to a bad scheme', async () => {
    const r = failure(await fetcher().fetch(`${base}/to?location=${encodeURIComponent('file:///etc/passwd')}`));
    expect(r).toMatchObject({ reason: 'bad_scheme', retryable: false });
  });

  test('loopback is refused without the allowance: literal and localhost', async () => {
    const before = stats.connections;
    const f = fetcher({ allowCidrs: [], resolve: undefined }); // the system resolver for localhost
    const lit = failure(await f.fetch(`${base}/img`));
    expect(lit).toMatchObject({ reason: 'blocked_address', retryable: false, attempts: 0 }); // refused before any request
    const named = failure(await f.fetch(`http://localhost:${port}/img`));
    expect(named).toMatchObject({ reason: 'blocked_address', retryable: false, attempts: 1 });
    expect(named.detail).toMatch(/localhost resolves to refused address/);
    expect(stats.connections).toBe(before);
    // and the default policy refuses it too
    const d = new ImageFetcher();
    open.push(d);
    expect(await d.fetch(`${base}/img`)).toMatchObject({ ok: false, reason: 'blocked_address' });
  });
});

describe('ImageFetcher: HTTP failures and retries', () => {
  test('429 with Retry-After: 1, then success: waits about a second', async () => {
    const [r, ms] = await timed(fetcher().fetch(`${base}/status?code=429&retryAfter=1&okAfter=1&tag=r429`));
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(5000);
  });

  test('429 with a Retry-After beyond maxRetryAfterMs fails at once as rate_limited (retryable)', async () => {
    const [r, ms] = await timed(fetcher({ maxRetryAfterMs: 5000 }).fetch(`${base}/status?code=429&retryAfter=120&tag=r429long`));
    expect(failure(r)).toMatchObject({ reason: 'rate_limited', retryable: true, status: 429, attempts: 1, retryAfterMs: 120_000 });
    expect(ms).toBeLessThan(2000);
  });

  test('429 without Retry-After: backoff retries, then rate_limited', async () => {
    expect(failure(await fetcher({ retries: 1 }).fetch(`${base}/status?code=429&tag=r429none`))).toMatchObject({ reason: 'rate_limited', retryable: true, attempts: 2 });
  });

  test('5xx then success', async () => {
    expect(await fetcher().fetch(`${base}/status?code=503&okAfter=1&tag=r503`)).toMatchObject({ ok: true, attempts: 2 });
    expect(await fetcher().fetch(`${base}/status?code=502&okAfter=2&tag=r502`)).toMatchObject({ ok: true, attempts: 3 });
  });

  test('5xx forever: http_error, retryable, after retries+1 attempts', async () => {
    const r = failure(await fetcher({ retries: 2 }).fetch(`${base}/status?code=500&tag=r500`));
    expect(r).toMatchObject({ reason: 'http_error', retryable: true, status: 500, attempts: 3 });
    expect(stats.requests.get('r500')).toBe(3);
  });

  test('404 and 403: http_error, not retried', async () => {
    for (const code of [404, 403]) {
      const r = failure(await fetcher().fetch(`${base}/status?code=${code}&tag=r${code}`));
      expect(r).toMatchObject({ reason: 'http_error', retryable: false, status: code, attempts: 1 });
      expect(stats.requests.get(`r${code}`)).toBe(1);
    }
  });

  test('truncated body (Content-Length larger than sent, connection closed)', async () => {
    const r = failure(await fetcher({ retries: 0 }).fetch(`${base}/truncated`));
    expect(r).toMatchObject({ reason: 'truncated', retryable: true, attempts: 1 });
  });

  test('text/html is not an image', async () => {
    expect(await fetcher().fetch(`${base}/img?type=${encodeURIComponent('text/html; charset=utf-8')}`)).toMatchObject({ ok: false, reason: 'not_image', retryable: false });
  });
});

describe('ImageFetcher: timeouts and size limits', () => {
  test('headers later than the total timeout → timeout', async () => {
    const [r, ms] = await timed(fetcher({ totalTimeoutMs: 300, retries: 0 }).fetch(`${base}/slow-headers?ms=3000`));
    expect(failure(r)).toMatchObject({ reason: 'timeout', retryable: true, attempts: 1 });
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(2000);
  });

  test('stalled body → timeout (idle timeout)', async () => {
    const [r, ms] = await timed(fetcher({ idleTimeoutMs: 300, totalTimeoutMs: 10_000, retries: 0 }).fetch(`${base}/stall`));
    expect(failure(r)).toMatchObject({ reason: 'timeout', retryable: true });
    expect(ms).toBeLessThan(2500);
  });

  test('a body that trickles forever → timeout (total timeout)', async () => {
    const [r, ms] = await timed(fetcher({ idleTimeoutMs: 5000, totalTimeoutMs: 400, retries: 0 }).fetch(`${base}/drip`));
    expect(failure(r)).toMatchObject({ reason: 'timeout', retryable: true });
    expect(ms).toBeLessThan(2500);
  });

  test('retries apply to timeouts', async () => {
    const r = failure(await fetcher({ totalTimeoutMs: 150, retries: 1 }).fetch(`${base}/slow-headers?ms=3000&tag=slow2`));
    expect(r).toMatchObject({ reason: 'timeout', attempts: 2 });
  });

  test('Content-Length of 1 GB → too_large without reading the body', async () => {
    const [r, ms] = await timed(fetcher({ maxBodyBytes: 1024 * 1024 }).fetch(`${base}/huge-length`));
    expect(failure(r)).toMatchObject({ reason: 'too_large', retryable: false, attempts: 1 });
    expect(ms).toBeLessThan(2000);
  });

  test('chunked body without length → too_large once past the limit, the server stops soon after', async () => {
    const [r, ms] = await timed(fetcher({ maxBodyBytes: 1024 * 1024 }).fetch(`${base}/huge-chunked?tag=chunked`));
    expect(failure(r)).toMatchObject({ reason: 'too_large', retryable: false });
    expect(ms).toBeLessThan(5000);
    await new Promise((res) => setTimeout(res, 100));
    expect(stats.bytesWritten.get('chunked')!).toBeLessThan(64 * 1024 * 1024); // far below the 256 MiB it would send
    expect(stats.active.get('chunked')).toBe(0);
  });

  test('the caller can abort, during a request and during a Retry-After wait', async () => {
    const f = fetcher();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const [r, ms] = await timed(f.fetch(`${base}/slow-headers?ms=3000&tag=abort1`, ac.signal));
    expect(failure(r)).toMatchObject({ reason: 'aborted', retryable: true });
    expect(ms).toBeLessThan(1500);
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(), 200);
    const [r2, ms2] = await timed(f.fetch(`${base}/status?code=429&retryAfter=5&tag=abort2`, ac2.signal));
    expect(failure(r2)).toMatchObject({ reason: 'aborted', attempts: 1 });
    expect(ms2).toBeLessThan(1500);
  });
});

describe('ImageFetcher: opt-out headers', () => {
  const cases: Array<[string[], string | null]> = [
    [['noai'], 'noai'],
    [['noimageindex'], 'noimageindex'],
    [['NoImageAI'], 'noimageai'],
    [['noarchive, noindex'], 'noindex'],
    [['otherbot: noai'], null],
    [['metaclip-curate: noai'], 'noai'],
    [['otherbot: noindex', 'noimageai'], 'noimageai'],
    [['nofollow'], null],
  ];
  test.each(cases)('X-Robots-Tag %j → %s', async (values, directive) => {
    const qs = values.map((v) => `robots=${encodeURIComponent(v)}`).join('&');
    const r = await fetcher().fetch(`${base}/img?${qs}`);
    if (directive === null) {
      expect(r.ok).toBe(true);
    } else {
      expect(failure(r)).toMatchObject({ reason: 'opted_out', retryable: false, status: 200, detail: `X-Robots-Tag: ${directive}` });
    }
  });

  test('respectOptOut: false ignores them', async () => {
    expect(await fetcher({ respectOptOut: false }).fetch(`${base}/img?robots=noai`)).toMatchObject({ ok: true });
  });
});

describe('ImageFetcher: concurrency', () => {
  test('per-host limit', async () => {
    const f = fetcher({ maxPerHost: 2, maxConcurrency: 16 });
    const rs = await Promise.all(Array.from({ length: 6 }, () => f.fetch(`${base}/delay?ms=150&tag=perhost`)));
    expect(rs.every((r) => r.ok)).toBe(true);
    expect(stats.maxActive.get('perhost')).toBe(2);
  });

  test('global limit across hosts; hosts are limited separately', async () => {
    const f = fetcher({ maxPerHost: 8, maxConcurrency: 3 });
    const urls = Array.from({ length: 8 }, (_, i) => `http://${i % 2 ? 'a' : 'b'}.test:${port}/delay?ms=150&tag=global`);
    const rs = await Promise.all(urls.map((u) => f.fetch(u)));
    expect(rs.every((r) => r.ok)).toBe(true);
    expect(stats.maxActive.get('global')).toBe(3);

    const g = fetcher({ maxPerHost: 1, maxConcurrency: 8 });
    const rs2 = await Promise.all(Array.from({ length: 4 }, (_, i) => g.fetch(`http://${i % 2 ? 'a' : 'b'}.test:${port}/delay?ms=150&tag=twohosts`)));
    expect(rs2.every((r) => r.ok)).toBe(true);
    expect(stats.maxActive.get('twohosts')).toBe(2);
  });

  test('queueing for a slot does not count against the total timeout', async () => {
    const f = fetcher({ maxPerHost: 1, totalTimeoutMs: 400, retries: 0 });
    const rs = await Promise.all(Array.from({ length: 4 }, () => f.fetch(`${base}/delay?ms=200&tag=queued`)));
    expect(rs.map((r) => r.ok)).toEqual([true, true, true, true]);
  });
});
