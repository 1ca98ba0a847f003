/**
 * Opening a shard for reading by URI: a local path or file://, http(s)://, s3://.
 * Returns a byte stream; decompression is the reader's business.
 *
 * Remote bodies are resumed with a Range request when the connection drops mid-body, so a reset
 * at byte 900M of a 1 GB WAT file costs one request, not the whole shard.
 */
import { createReadStream } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, S3Client, type GetObjectCommandOutput, type S3ClientConfig } from '@aws-sdk/client-s3';
import { ConfigError } from '../curation/errors';
import { shardReadSlots, type ReadSlots } from './read-slots';

// ---------------------------------------------------------------------------------------------
// URIs

export function localPath(uri: string): string | null {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) return null;
  return uri;
}

/** Splits `s3://bucket/key` (key may be empty or a prefix). */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new ConfigError(`invalid S3 URI ${uri}: expected s3://bucket/key`);
  return { bucket: m[1], key: m[2] };
}

// ---------------------------------------------------------------------------------------------
// S3 settings and clients

export interface S3Settings {
  /** Custom endpoint (SeaweedFS, MinIO, ...); unset means AWS. */
  endpoint?: string;
  region?: string;
  /** Defaults to true when an endpoint is set: S3-compatible servers rarely have wildcard DNS. */
  forcePathStyle?: boolean;
  /** Unsigned requests, for public buckets such as `commoncrawl`. */
  anonymous?: boolean;
  /** Explicit keys; otherwise the SDK's default chain (AWS_ACCESS_KEY_ID, profiles, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * Settings from the environment: CURATE_S3_ENDPOINT (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL),
 * AWS_REGION (or AWS_DEFAULT_REGION, default us-east-1), CURATE_S3_ANONYMOUS=1.
 */
export function s3SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const endpoint = env.CURATE_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const settings: S3Settings = {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    anonymous: env.CURATE_S3_ANONYMOUS === '1' || env.CURATE_S3_ANONYMOUS === 'true',
  };
  if (endpoint) {
    settings.endpoint = endpoint;
    settings.forcePathStyle = true;
  }
  return settings;
}

const clients = new Map<string, S3Client>();

/** One client per distinct settings: clients hold connection pools, so they are shared. */
export function s3Client(settings: S3Settings = s3SettingsFromEnv()): S3Client {
  const cacheKey = JSON.stringify([settings.endpoint, settings.region, settings.forcePathStyle, settings.anonymous, settings.credentials]);
  let client = clients.get(cacheKey);
  if (client) return client;
  // The SDK warns on every process that Node 20 support ends in 2027; the project pins Node 20 knowingly.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const config: S3ClientConfig = {
    region: settings.region || 'us-east-1',
    forcePathStyle: settings.forcePathStyle ?? Boolean(settings.endpoint),
  };
  if (settings.endpoint) {
    config.endpoint = settings.endpoint;
    // Default CRC checksums on every request are not implemented by all S3-compatible servers.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  if (settings.anonymous) {
    // No signature at all; the credentials are never used but stop the SDK from looking for any.
    config.signer = { sign: async (request) => request };
    config.credentials = { accessKeyId: '', secretAccessKey: '' };
  } else if (settings.credentials) {
    config.credentials = settings.credentials;
  }
  client = new S3Client(config);
  clients.set(cacheKey, client);
  return client;
}

/** HTTP status of an AWS SDK error, if it has one. */
export function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

// ---------------------------------------------------------------------------------------------
// Opening inputs

export interface OpenInputOptions {
  /** S3 settings for s3:// URIs; default from the environment. */
  s3?: S3Settings;
  /**
   * Retries for transient HTTP failures (network errors, 408, 429, 5xx; for s3:// throttling left over after the
   * AWS SDK's own retries) and mid-body resumes. Default 4.
   */
  retries?: number;
  /** First backoff delay; doubles per attempt, jittered. Default 500 ms. */
  backoffMs?: number;
  /**
   * Longest wait a throttling reply (429, 503, S3 SlowDown) can ask for with Retry-After; a longer one is cut
   * to this. Default 120 s.
   */
  maxRetryAfterMs?: number;
  /**
   * Cap on concurrent remote reads (https://, s3://): a read holds a slot from its first request until its body
   * is consumed or closed. Default: the worker process's shared slots (CURATE_MAX_SHARD_READS, see
   * read-slots.ts); `false` for none. Local files take no slot.
   */
  slots?: ReadSlots | false;
  /** Socket inactivity timeout for HTTP. Default 60 s. */
  timeoutMs?: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

const MAX_REDIRECTS = 5;

export async function openInput(uri: string, opts: OpenInputOptions = {}): Promise<AsyncIterable<Buffer>> {
  const p = localPath(uri);
  if (p !== null) {
    const stream = createReadStream(p, { highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (err) => reject(new ConfigError(`cannot open ${uri}: ${err.message}`)));
    });
    return stream;
  }
  if (/^https?:\/\//i.test(uri)) return openHttp(uri, opts);
  if (/^s3:\/\//i.test(uri)) return openS3(uri, opts);
  throw new ConfigError(`unsupported input URI ${uri}: use a path, file://, https:// or s3://`);
}

/** The whole input in memory: for small things like metadata files. */
export async function readLocation(uri: string, opts: OpenInputOptions = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await openInput(uri, opts)) parts.push(chunk);
  return Buffer.concat(parts);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function backoff(opts: OpenInputOptions, attempt: number): number {
  const base = (opts.backoffMs ?? 500) * 2 ** attempt;
  return base / 2 + Math.random() * base / 2; // jitter so retries from many activities spread out
}

/**
 * How long to wait after a throttling reply: never less than its Retry-After (cut to `maxRetryAfterMs`), plus a
 * jitter of up to half the exponential backoff, so the readers a server slowed down together do not all come
 * back in the same instant; without Retry-After, the jittered exponential backoff.
 */
export function throttleWaitMs(opts: Pick<OpenInputOptions, 'backoffMs' | 'maxRetryAfterMs'>, attempt: number, retryAfterMs: number | undefined, random = Math.random): number {
  const base = (opts.backoffMs ?? 500) * 2 ** attempt;
  const jitter = random() * base / 2;
  if (retryAfterMs === undefined || !Number.isFinite(retryAfterMs)) return base / 2 + jitter;
  return Math.min(Math.max(0, retryAfterMs), opts.maxRetryAfterMs ?? 120_000) + jitter;
}

/** Thrown for a transient failure so the retry loop can tell it from a final answer. */
class TransientError extends Error {
  constructor(message: string, readonly retryAfterMs?: number, readonly throttled = false) {
    super(message);
  }
}

/** HTTP statuses that mean "slow down" (Common Crawl answers 503 Slow Down; others 429). */
const isThrottleStatus = (status: number | undefined) => status === 429 || status === 503;

/** Resolves with the response of a single GET (no redirects followed); transient failures reject with TransientError. */
function getOnce(url: URL, opts: OpenInputOptions, headers: Record<string, string>): Promise<http.IncomingMessage> {
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, {
      headers: { 'user-agent': 'metaclip-curate', 'accept-encoding': 'identity', ...opts.headers, ...headers },
      timeout: opts.timeoutMs ?? 60_000,
      signal: opts.signal,
    });
    req.once('response', resolve);
    req.once('timeout', () => req.destroy(new TransientError(`no data for ${opts.timeoutMs ?? 60_000} ms`)));
    req.on('error', (err) => {
      if (opts.signal?.aborted) reject(err);
      else reject(err instanceof TransientError ? err : new TransientError(err.message));
    });
  });
}

/** A Retry-After header (seconds or an HTTP date) in milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  if (Array.isArray(value)) value = value[0];
  if (!value || !value.trim()) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

function retryAfterMs(res: http.IncomingMessage): number | undefined {
  return parseRetryAfter(res.headers['retry-after']);
}

/**
 * GET with redirects and retries; resolves with a 2xx response. `range` asks for the body from that
 * byte on and then insists on 206, so a resume never silently restarts from byte 0.
 */
async function fetchResponse(uri: string, opts: OpenInputOptions, range?: number): Promise<http.IncomingMessage> {
  const retries = opts.retries ?? 4;
  let last = '';
  let wait = 0;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(wait, opts.signal);
    let url = new URL(uri);
    try {
      for (let hop = 0; ; hop++) {
        const res = await getOnce(url, opts, range ? { range: `bytes=${range}-` } : {});
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && status !== 304 && res.headers.location) {
          res.resume();
          if (hop >= MAX_REDIRECTS) throw new ConfigError(`GET ${uri}: more than ${MAX_REDIRECTS} redirects (last to ${res.headers.location})`);
          url = new URL(res.headers.location, url);
          if (url.protocol !== 'http:' && url.protocol !== 'https:') {
            throw new ConfigError(`GET ${uri}: redirect to unsupported URL ${url.href}`);
          }
          continue;
        }
        if (status >= 200 && status < 300) {
          if (range && status !== 206) {
            res.destroy();
            throw new Error(`GET ${uri}: server ignored the Range request (HTTP ${status}), cannot resume at byte ${range}`);
          }
          return res;
        }
        res.resume();
        const where = url.href === uri ? uri : `${uri} (redirected to ${url.href})`;
        const message = `GET ${where}: HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd();
        if (status === 408 || status === 429 || status >= 500) throw new TransientError(message, retryAfterMs(res), isThrottleStatus(status));
        throw new ConfigError(message); // 4xx: wrong URI or no access, retrying cannot help
      }
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      last = err.message.startsWith('GET ') ? err.message : `GET ${uri}: ${err.message}`;
      // A throttling reply is waited out (its Retry-After, plus jitter); other failures back off, honouring a
      // Retry-After within reason.
      wait = err.throttled ? throttleWaitMs(opts, attempt, err.retryAfterMs) : Math.max(backoff(opts, attempt), Math.min(err.retryAfterMs ?? 0, 30_000));
    }
  }
  throw new Error(`${last} (gave up after ${retries + 1} attempts)`);
}

interface Body {
  stream: Readable;
  /** Total length of the object when known (from the first response). */
  total?: number;
}

/**
 * Yields a remote body; when it breaks off, reopens from the byte reached (up to `retries` times).
 * `open(offset)` returns the body from that offset.
 */
async function* resumableBody(uri: string, first: Body, open: (offset: number) => Promise<Body>, opts: OpenInputOptions, release: () => void): AsyncGenerator<Buffer> {
  const retries = opts.retries ?? 4;
  let body = first;
  let received = 0;
  let resumes = 0;
  try {
    for (;;) {
      try {
        for await (const chunk of body.stream) {
          received += chunk.length;
          yield chunk as Buffer;
        }
        if (first.total === undefined || received >= first.total) return;
        throw new Error(`body ended at byte ${received} of ${first.total}`);
      } catch (err) {
        if (opts.signal?.aborted || first.total === undefined || resumes >= retries) {
          throw new Error(`reading ${uri} failed at byte ${received}: ${(err as Error).message}`);
        }
        body.stream.destroy();
        await sleep(backoff(opts, resumes++), opts.signal);
        body = await open(received);
      }
    }
  } finally {
    body.stream.destroy(); // the consumer may stop early: release the connection
    release();
  }
}

/**
 * Takes a read slot (see `OpenInputOptions.slots`) for `open`; the slot is handed to the body, which gives it
 * back when it ends or is closed, or given back at once when opening fails. A body must be consumed or closed
 * (`for await` does both, also on a throw): an opened body never iterated keeps its slot.
 */
async function withReadSlot(opts: OpenInputOptions, open: (release: () => void) => Promise<AsyncIterable<Buffer>>): Promise<AsyncIterable<Buffer>> {
  const slots = opts.slots === undefined ? shardReadSlots() : opts.slots;
  const release = slots ? await slots.acquire(opts.signal) : () => {};
  try {
    return await open(release);
  } catch (err) {
    release();
    throw err;
  }
}

async function openHttp(uri: string, opts: OpenInputOptions): Promise<AsyncIterable<Buffer>> {
  return withReadSlot(opts, async (release) => {
    const res = await fetchResponse(uri, opts);
    const length = Number(res.headers['content-length']);
    // Resuming needs a known length and byte ranges; otherwise a break surfaces as an error.
    const resumable = res.headers['accept-ranges'] === 'bytes' && Number.isFinite(length) && !res.headers['content-encoding'];
    const first: Body = { stream: res, total: resumable ? length : undefined };
    return resumableBody(uri, first, async (offset) => ({ stream: await fetchResponse(uri, opts, offset) }), opts, release);
  });
}

/** S3 error codes that mean "slow down". */
const S3_THROTTLE_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'TooManyRequestsException', 'RequestLimitExceeded']);

/** Whether an AWS SDK error is throttling (S3's 503 SlowDown, a 429, ...). */
export function isS3Throttle(err: unknown): boolean {
  const e = err as { name?: string; Code?: string } | null;
  return isThrottleStatus(s3Status(err)) || S3_THROTTLE_CODES.has(e?.name ?? '') || S3_THROTTLE_CODES.has(e?.Code ?? '');
}

async function getS3(uri: string, opts: OpenInputOptions, offset: number): Promise<GetObjectCommandOutput> {
  const { bucket, key } = parseS3Uri(uri);
  if (!key) throw new ConfigError(`invalid S3 URI ${uri}: no object key`);
  const retries = opts.retries ?? 4;
  for (let attempt = 0; ; attempt++) {
    try {
      return await s3Client(opts.s3 ?? s3SettingsFromEnv()).send(
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: offset > 0 ? `bytes=${offset}-` : undefined }),
        { abortSignal: opts.signal },
      );
    } catch (err) {
      const e = err as Error;
      const status = s3Status(err);
      const message = `GET ${uri}: ${e.name}${status ? ` (HTTP ${status})` : ''}: ${e.message}`;
      // Missing objects, buckets and access are configuration.
      if (status === 403 || status === 404 || e.name === 'NoSuchKey' || e.name === 'NoSuchBucket') throw new ConfigError(message);
      // The SDK retried throttling and 5xx already (briefly); throttling that outlasts it is waited out here, its
      // Retry-After honoured, before the activity's own retries take over.
      if (isS3Throttle(err) && attempt < retries && !opts.signal?.aborted) {
        const headers = (err as { $response?: { headers?: Record<string, string> } }).$response?.headers ?? {};
        await sleep(throttleWaitMs(opts, attempt, parseRetryAfter(headers['retry-after'] ?? headers['Retry-After'])), opts.signal);
        continue;
      }
      throw new Error(attempt > 0 && isS3Throttle(err) ? `${message} (gave up after ${attempt + 1} throttled attempts)` : message, { cause: err });
    }
  }
}

async function openS3(uri: string, opts: OpenInputOptions): Promise<AsyncIterable<Buffer>> {
  return withReadSlot(opts, async (release) => {
    const out = await getS3(uri, opts, 0);
    const first: Body = { stream: out.Body as Readable, total: out.ContentLength };
    return resumableBody(uri, first, async (offset) => ({ stream: (await getS3(uri, opts, offset)).Body as Readable }), opts, release);
  });
}
