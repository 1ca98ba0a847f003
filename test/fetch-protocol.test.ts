/**
 * Protocol violations from a raw TCP server on loopback (issue 11): each gets the class the README's table
 * promises — a reply that is not HTTP/1.1 is a non-retryable protocol_error, asked once — while a body cut short
 * by the network stays a retryable `truncated`.
 */
import net from 'node:net';
import { ImageFetcher, type FetchResult } from '../curation/fetch';

const REPLIES: Record<string, string> = {
  'content-length-minus-1': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: -1\r\n\r\nabc',
  'http-9.9': 'HTTP/9.9 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc',
  'not-http': 'SSH-2.0-OpenSSH_9.6\r\n\r\n',
  'two-content-lengths': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde',
  'two-equal-content-lengths': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
  'content-length-and-chunked': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'content-length-junk': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3x\r\n\r\nabc',
  'bad-chunk-size': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
  'status-999': 'HTTP/1.1 999 Request denied\r\nContent-Length: 0\r\n\r\n',
  'status-600': 'HTTP/1.1 600 Nope\r\nContent-Length: 0\r\n\r\n',
  // Not protocol violations: what the network does.
  'cut-body-close': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\nContent-Length: 10\r\n\r\nabc',
  'cut-body': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 10\r\n\r\nabc',
  'status-503': 'HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n',
  'ok': 'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc',
};

const requests = new Map<string, number>();
let server: net.Server;
let base: string;

beforeAll(async () => {
  server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', (d) => {
      const name = /^GET \/([\w.-]+)/.exec(d.toString('latin1'))?.[1] ?? '';
      requests.set(name, (requests.get(name) ?? 0) + 1);
      sock.end(REPLIES[name] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

async function probe(name: string): Promise<FetchResult> {
  const f = new ImageFetcher({ allowCidrs: ['127.0.0.1/32'], retries: 2, backoffBaseMs: 1, backoffMaxMs: 5 });
  try {
    return await f.fetch(`${base}/${name}`);
  } finally {
    await f.close();
  }
}

describe('protocol violations are non-retryable protocol_error, asked once', () => {
  test.each([
    ['content-length-minus-1', /Invalid character in Content-Length/],
    ['http-9.9', /Invalid HTTP version/],
    ['not-http', /Expected HTTP\//],
    ['two-content-lengths', /invalid message framing/],
    ['two-equal-content-lengths', /invalid message framing/],
    ['content-length-and-chunked', /invalid message framing/],
    ['content-length-junk', /invalid message framing/],
    ['bad-chunk-size', /Invalid character in chunk size/],
    ['status-999', /HTTP status 999 is not a status code \(100-599\)/],
    ['status-600', /HTTP status 600 is not a status code/],
  ])('%s', async (name, detail) => {
    const r = await probe(name);
    expect(r).toMatchObject({ ok: false, reason: 'protocol_error', retryable: false, attempts: 1 });
    expect(r.ok === false && r.detail).toMatch(detail);
    expect(requests.get(name)).toBe(1);
  });
});

describe('what the network does stays retryable', () => {
  test.each([
    ['cut-body-close', 'truncated'],
    ['cut-body', 'truncated'],
    ['status-503', 'http_error'],
  ])('%s → %s, retried', async (name, reason) => {
    const r = await probe(name);
    expect(r).toMatchObject({ ok: false, reason, retryable: true, attempts: 3 });
    expect(requests.get(name)).toBe(3);
  });

  test('a well-formed reply from the same server is fetched', async () => {
    const r = await probe('ok');
    expect(r.ok && r.bytes.toString()).toBe('abc');
  });
});
