/**
 * The image fetcher: one URL in, one classified result out, safe by default. Temporal-free; the download
 * activity drives it per shard of pass-1 selections and hands the bytes to the image decoder.
 *
 * - Never throws for network or HTTP problems: every outcome is a `FetchResult`, failures carry a `reason`, a
 *   human `detail` and `retryable` (transient: timeouts, resets, 5xx, 429) so a later run can retry only those.
 * - SSRF guard: only http/https, no credentials in URLs; IP-literal hosts are checked before any connection; host
 *   names are resolved by our own `lookup` inside undici's connector, so the address that is connected to is the
 *   address that was checked (no DNS-rebinding window); every redirect hop is checked again. Loopback, private,
 *   link-local, unique-local, cloud-metadata and other special ranges are refused unless `allowCidrs` allows them.
 * - Redirects are followed by hand (301/302/303/307/308, always as GET), counted against `maxRedirects`.
 * - Bounded memory: the body is streamed and abandoned as soon as it passes `maxBodyBytes` (a larger
 *   Content-Length fails before reading); at most `maxConcurrency` bodies are held, so the worst case is
 *   maxConcurrency × maxBodyBytes.
 * - Deadlines per attempt: `connectTimeoutMs` (TCP + TLS), `totalTimeoutMs` (all hops of one attempt, headers and
 *   body; time spent queued for a concurrency slot does not count) and `idleTimeoutMs` (no body bytes for that long).
 * - Concurrency: a global limit and a per-host limit, both fair (FIFO) queues; a slot is held only while a hop's
 *   request is in flight, never across backoff sleeps.
 * - Retries: `retries` extra attempts for retryable failures, waiting `backoffDelay(attempt)` (deterministic
 *   exponential, no jitter) or the server's Retry-After when longer; a Retry-After beyond `maxRetryAfterMs` ends
 *   the retries at once (the result carries `retryAfterMs`).
 * - Opt-out: X-Robots-Tag `noai`, `noimageai`, `noindex`, `noimageindex` (configurable) refuse the image, as
 *   img2dataset does; `<agent>: <directives>` lines apply only when `<agent>` is our `userAgentToken`.
 */
import { promises as dnsPromises } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, inflateRaw } from 'node:zlib';
import { Agent } from 'undici';
import { ConfigError } from './errors';
import { AddressGuard, parseCidr } from './netguard';

export { classifyAddress, AddressGuard } from './netguard';
export type { AddressKind } from './netguard';

// ---------------------------------------------------------------------------------------------------------------
// Policy

/** Resolves a host name to its addresses (the default is the system resolver, `dns.lookup` with all: true). */
export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export interface FetchPolicy {
  /** The User-Agent header. Default: `userAgentFor(userAgentToken)`. */
  userAgent: string;
  /** Our robots token: `X-Robots-Tag: <token>: noai` applies to us. Default 'metaclip-curate'; null = none. */
  userAgentToken: string | null;
  /** TCP connect + TLS handshake, per connection. */
  connectTimeoutMs: number;
  /** One attempt: every redirect hop, headers and body. Queueing for a slot does not count. */
  totalTimeoutMs: number;
  /** The longest pause between body bytes (a stalled body fails sooner than totalTimeoutMs). */
  idleTimeoutMs: number;
  maxRedirects: number;
  /** Larger bodies fail as 'too_large' as soon as that is known (Content-Length, or while streaming). */
  maxBodyBytes: number;
  /** Extra attempts for retryable failures. */
  retries: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** A Retry-After longer than this is not waited for: the fetch fails (retryable) with `retryAfterMs`. */
  maxRetryAfterMs: number;
  /** Ranges that may be connected to although special (e.g. ['127.0.0.1/32'] for a test server). Default none. */
  allowCidrs: string[];
  /** Extra ranges to refuse (on top of the special-purpose ones). */
  denyCidrs: string[];
  /** Refuse images whose response carries an opt-out X-Robots-Tag directive. */
  respectOptOut: boolean;
  /** The X-Robots-Tag directives that mean "do not use" (lower case). */
  optOutDirectives: string[];
  /** Requests in flight at once, all hosts together. */
  maxConcurrency: number;
  /** Requests in flight at once to one host name. */
  maxPerHost: number;
  /** Refuse responses whose Content-Type is known and not an image (missing and octet-stream types pass). */
  requireImageContentType: boolean;
  /** Host name resolution (tests inject one); every address it returns is checked by the guard. */
  resolve?: Resolver;
}

export type FetchFailureReason =
  | 'invalid_url'        // not a URL, credentials in it, or an unusable redirect Location
  | 'bad_scheme'         // not http: or https: (also for a redirect)
  | 'blocked_address'    // the host is or resolves to a refused address (also for a redirect)
  | 'dns_error'          // the name does not resolve (retryable only for a temporary failure)
  | 'connect_timeout'
  | 'timeout'            // totalTimeoutMs or idleTimeoutMs passed
  | 'connection_error'   // refused, reset, unreachable
  | 'tls_error'          // certificate or handshake failure
  | 'protocol_error'     // not HTTP/1.1: unparsable reply, bad framing (duplicate/malformed Content-Length, CL + TE), status outside 100-599, undecodable Content-Encoding
  | 'http_error'         // a non-success status 100-599 (retryable: 5xx except 501/505, 408)
  | 'rate_limited'       // 429
  | 'too_many_redirects'
  | 'too_large'
  | 'opted_out'          // X-Robots-Tag
  | 'not_image'          // Content-Type is not an image type
  | 'truncated'          // the body ended before Content-Length, or the connection broke inside it
  | 'aborted';           // the caller's signal

export type FetchResult =
  | {
      ok: true;
      url: string;
      finalUrl: string;
      status: number;
      contentType: string | null;
      bytes: Buffer;
      attempts: number;
      redirects: number;
    }
  | {
      ok: false;
      url: string;
      reason: FetchFailureReason;
      retryable: boolean;
      detail: string;
      status?: number;
      attempts: number;
      retryAfterMs?: number;
      /** The hop at which it failed, when different from `url`. */
      finalUrl?: string;
    };

export type FetchFailure = Extract<FetchResult, { ok: false }>;

function packageVersion(): string {
  let dir = __dirname;
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'metaclip-temporal' && pkg.version) return pkg.version;
      } catch { /* keep looking */ }
    }
    const up = dirname(dir);
    if (up === dir) return '0.0.0';
    dir = up;
  }
}

export const FETCHER_VERSION = packageVersion();
export const DEFAULT_USER_AGENT_TOKEN = 'metaclip-curate';
export const DEFAULT_CONTACT_URL = 'https://github.com/facebookresearch/MetaCLIP';

/** `Mozilla/5.0 (compatible; <token>/<version>; +<contact>)`: the crawler convention, token first so sites can match it. */
export function userAgentFor(token: string, contact: string = DEFAULT_CONTACT_URL, version: string = FETCHER_VERSION): string {
  if (!/^[A-Za-z0-9._-]+$/.test(token)) throw new ConfigError(`user agent token must be letters, digits, '.', '_' or '-': ${JSON.stringify(token)}`);
  return `Mozilla/5.0 (compatible; ${token}/${version}; +${contact})`;
}

export const DEFAULT_USER_AGENT = userAgentFor(DEFAULT_USER_AGENT_TOKEN);
export const DEFAULT_OPT_OUT_DIRECTIVES: readonly string[] = ['noai', 'noimageai', 'noindex', 'noimageindex'];

export const DEFAULT_FETCH_POLICY: Readonly<FetchPolicy> = Object.freeze({
  userAgent: DEFAULT_USER_AGENT,
  userAgentToken: DEFAULT_USER_AGENT_TOKEN,
  connectTimeoutMs: 10_000,
  totalTimeoutMs: 30_000,
  idleTimeoutMs: 10_000,
  maxRedirects: 5,
  maxBodyBytes: 20 * 1024 * 1024,
  retries: 2,
  backoffBaseMs: 500,
  backoffMaxMs: 10_000,
  maxRetryAfterMs: 10_000,
  allowCidrs: [],
  denyCidrs: [],
  respectOptOut: true,
  optOutDirectives: [...DEFAULT_OPT_OUT_DIRECTIVES],
  maxConcurrency: 64,
  maxPerHost: 8,
  requireImageContentType: true,
});

/** Fills defaults and validates. A token given without a user agent makes the user agent `userAgentFor(token)`. */
export function resolvePolicy(policy: Partial<FetchPolicy> = {}): FetchPolicy {
  const given = Object.fromEntries(Object.entries(policy).filter(([, v]) => v !== undefined)) as Partial<FetchPolicy>;
  const p: FetchPolicy = { ...DEFAULT_FETCH_POLICY, allowCidrs: [], denyCidrs: [], optOutDirectives: [...DEFAULT_OPT_OUT_DIRECTIVES], ...given };
  if (given.userAgent === undefined && given.userAgentToken) p.userAgent = userAgentFor(given.userAgentToken);
  if (p.userAgentToken !== null) p.userAgentToken = p.userAgentToken.trim().toLowerCase() || null;
  p.optOutDirectives = p.optOutDirectives.map((d) => d.trim().toLowerCase()).filter(Boolean);
  const positive: Array<keyof FetchPolicy> = ['connectTimeoutMs', 'totalTimeoutMs', 'idleTimeoutMs', 'maxBodyBytes', 'maxConcurrency', 'maxPerHost'];
  for (const k of positive) {
    const v = p[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(`fetch policy: ${k} must be a positive number, got ${String(v)}`);
  }
  const nonNegative: Array<keyof FetchPolicy> = ['maxRedirects', 'retries', 'backoffBaseMs', 'backoffMaxMs', 'maxRetryAfterMs'];
  for (const k of nonNegative) {
    const v = p[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`fetch policy: ${k} must be a number ≥ 0, got ${String(v)}`);
  }
  if (!Number.isInteger(p.maxConcurrency) || !Number.isInteger(p.maxPerHost)) throw new ConfigError('fetch policy: maxConcurrency and maxPerHost must be integers');
  if (/[\r\n]/.test(p.userAgent)) throw new ConfigError('fetch policy: userAgent must be one line');
  for (const k of ['allowCidrs', 'denyCidrs'] as const) {
    const problems = cidrProblems(p[k]);
    if (problems.length > 0) throw new ConfigError(`fetch policy: ${k}: ${problems.join('; ')}`);
  }
  return p;
}

/** What is wrong with each malformed IP range of a list (`a.b.c.d/n`, `x::y/n` or a bare address); empty when all parse. */
export function cidrProblems(list: unknown): string[] {
  if (!Array.isArray(list)) return [`must be a list of IP ranges, got ${JSON.stringify(list)}`];
  const problems: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string') {
      problems.push(`not an IP range: ${JSON.stringify(item)}`);
      continue;
    }
    try {
      parseCidr(item);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Pure helpers

/** The wait before retry number `attempt` (1 = the first retry): base·2^(attempt−1), capped at max. No jitter. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  if (attempt < 1) return 0;
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 52));
}

/** Retry-After as milliseconds from `nowMs`: delta-seconds or an HTTP date (past dates → 0); null if unusable. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number = Date.now()): number | null {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return null;
  if (/^[0-9]+$/.test(v)) return Math.min(Number(v), 1e9) * 1000;
  if (!/[A-Za-z]/.test(v)) return null; // a negative or fractional number, not a date
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - nowMs);
}

// Directives that take a value after a colon (Google's robots meta syntax): such a line has no user-agent prefix.
const VALUED_DIRECTIVES = new Set(['unavailable_after', 'max-snippet', 'max-image-preview', 'max-video-preview']);

/**
 * The opt-out directive found in X-Robots-Tag values, or null. Each header line is `[<agent>:] d1, d2 …`
 * (directives separated by commas or spaces, case-insensitive). A line with an agent applies only when it equals
 * `token`; a line without one applies to everyone. Like img2dataset's `is_disallowed`, with two corrections:
 * a colon inside a directive list (`noindex, unavailable_after: …`) does not turn the list into an agent name,
 * and space-separated directives are recognised.
 */
export function optOutDirective(
  values: string | string[] | undefined,
  token: string | null,
  directives: readonly string[] = DEFAULT_OPT_OUT_DIRECTIVES,
): string | null {
  if (values === undefined) return null;
  const lines = Array.isArray(values) ? values : [values];
  const wanted = new Set(directives.map((d) => d.toLowerCase()));
  const me = token?.trim().toLowerCase() || null;
  for (const line of lines) {
    let agent: string | null = null;
    let list = line;
    const colon = line.indexOf(':');
    if (colon >= 0) {
      const prefix = line.slice(0, colon).trim().toLowerCase();
      if (/^[a-z0-9._\-* ]+$/.test(prefix) && !VALUED_DIRECTIVES.has(prefix)) {
        agent = prefix;
        list = line.slice(colon + 1);
      }
    }
    if (agent !== null && agent !== me) continue;
    for (const d of list.toLowerCase().split(/[\s,]+/)) if (d && wanted.has(d)) return d;
  }
  return null;
}

const IMAGE_LIKE_TYPES = new Set([
  'application/octet-stream', 'binary/octet-stream', 'application/x-octet-stream', 'application/binary',
  'application/unknown', 'application/force-download',
]);

/** True when a Content-Type may hold an image: image/*, the generic binary types, or none at all. */
export function isImageContentType(contentType: string | null | undefined): boolean {
  if (!contentType) return true;
  const mime = contentType.split(';')[0].trim().toLowerCase();
  return mime === '' || mime.startsWith('image/') || IMAGE_LIKE_TYPES.has(mime);
}

interface Classified {
  reason: FetchFailureReason;
  retryable: boolean;
  detail: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN',
  'EADDRNOTAVAIL', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED',
]);

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown } | null;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors) && e.errors.length > 0) return errorCode(e.errors[e.errors.length - 1]);
  if (e.cause) return errorCode(e.cause);
  return undefined;
}

/** An llhttp parse error as undici throws it (HTTPParserError; its `code` is often unset), here or in a cause. */
function isParserError(err: unknown, depth = 0): boolean {
  const e = err as { name?: unknown; code?: unknown; errors?: unknown[]; cause?: unknown } | null;
  if (!e || typeof e !== 'object' || depth > 4) return false;
  if (e.name === 'HTTPParserError' || (typeof e.code === 'string' && e.code.startsWith('HPE_'))) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isParserError(x, depth + 1))) return true;
  return e.cause !== undefined && isParserError(e.cause, depth + 1);
}

/**
 * Classifies a thrown network error. `inBody` is true once the response headers were received: a broken
 * connection then means a truncated body.
 */
export function classifyNetworkError(err: unknown, inBody = false): Classified {
  const code = errorCode(err) ?? '';
  const message = err instanceof Error ? err.message : String(err);
  const detail = code ? `${code}: ${message}` : message;
  if (code === BLOCKED_CODE) return { reason: 'blocked_address', retryable: false, detail: message };
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return { reason: 'connect_timeout', retryable: true, detail };
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { reason: 'timeout', retryable: true, detail };
  if (code === 'ENOTFOUND' || code === 'ENODATA' || code === 'ENONAME' || code === 'EBADNAME') return { reason: 'dns_error', retryable: false, detail };
  if (code === 'EAI_AGAIN' || code === 'ESERVFAIL' || code === 'ETIMEOUT' || code === 'ECONNREFUSED_DNS') return { reason: 'dns_error', retryable: true, detail };
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    // After the headers: the connection closed inside the body. Before them: undici reports llhttp's rejection
    // of the headers' framing (two Content-Length, a malformed one, Content-Length with Transfer-Encoding) so.
    if (inBody) return { reason: 'truncated', retryable: true, detail };
    return { reason: 'protocol_error', retryable: false, detail: `invalid message framing (duplicate or malformed Content-Length, or Content-Length with Transfer-Encoding): ${detail}` };
  }
  // The reply is not HTTP/1.1 (a bad status line or version, a bad header or chunk size, not HTTP at all): the
  // server is misbehaving, and asking again gets the same answer.
  if (isParserError(err)) return { reason: 'protocol_error', retryable: false, detail };
  if (inBody && (CONNECTION_CODES.has(code) || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR')) return { reason: 'truncated', retryable: true, detail };
  if (CONNECTION_CODES.has(code)) return { reason: 'connection_error', retryable: true, detail };
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.startsWith('CERT_') || code.startsWith('UNABLE_TO_')
    || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'HOSTNAME_MISMATCH'
    || code === 'UND_ERR_PRX_TLS') return { reason: 'tls_error', retryable: false, detail };
  if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_URL') return { reason: 'invalid_url', retryable: false, detail };
  if (code.startsWith('HPE_') || code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'UND_ERR_INFO' || code === 'UND_ERR_NOT_SUPPORTED') {
    return { reason: 'protocol_error', retryable: false, detail };
  }
  return { reason: 'connection_error', retryable: true, detail };
}

// ---------------------------------------------------------------------------------------------------------------
// Concurrency

interface Waiter {
  grant: () => void;
}

/** A counting semaphore with a FIFO queue; a slot is handed straight to the next waiter on release. */
class Semaphore {
  private active = 0;
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly limit: number) {}

  get idle(): boolean {
    return this.active === 0 && this.waiters.size === 0;
  }

  /** Resolves to a release function; rejects with the signal's reason if it aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new AbortedWhileQueued());
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
      };
      const onAbort = () => {
        if (this.waiters.delete(waiter)) reject(new AbortedWhileQueued());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.values().next();
      if (!next.done) {
        this.waiters.delete(next.value);
        next.value.grant(); // the slot passes on: `active` is unchanged
      } else {
        this.active--;
      }
    };
  }
}

class AbortedWhileQueued extends Error {
  constructor() {
    super('aborted while waiting for a connection slot');
  }
}

/** One semaphore per host name, dropped when idle so memory stays bounded by the hosts in flight. */
class HostLimiter {
  private readonly hosts = new Map<string, Semaphore>();

  constructor(private readonly perHost: number) {}

  async acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    let sem = this.hosts.get(host);
    if (!sem) {
      sem = new Semaphore(this.perHost);
      this.hosts.set(host, sem);
    }
    const s = sem;
    let release: () => void;
    try {
      release = await s.acquire(signal);
    } catch (err) {
      if (s.idle && this.hosts.get(host) === s) this.hosts.delete(host);
      throw err;
    }
    return () => {
      release();
      if (s.idle && this.hosts.get(host) === s) this.hosts.delete(host);
    };
  }

  get size(): number {
    return this.hosts.size;
  }
}

/** A timer that runs only while resumed: time spent queued for a slot is not charged to the attempt. */
class Deadline {
  private timer: NodeJS.Timeout | null = null;
  private since = 0;
  private remaining: number;
  expired = false;

  constructor(ms: number, private readonly onExpire: () => void) {
    this.remaining = ms;
  }

  resume(): void {
    if (this.timer || this.expired) return;
    if (this.remaining <= 0) return this.expire();
    this.since = performance.now();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.expire();
    }, Math.ceil(this.remaining));
  }

  pause(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.remaining -= performance.now() - this.since;
  }

  private expire(): void {
    this.expired = true;
    this.remaining = 0;
    this.onExpire();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The fetcher

const BLOCKED_CODE = 'ERR_BLOCKED_ADDRESS';

class BlockedAddressError extends Error {
  readonly code = BLOCKED_CODE;
  constructor(message: string) {
    super(message);
    this.name = 'BlockedAddressError';
  }
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const ACCEPT = 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8';
const DISCARD_LIMIT = 64 * 1024;

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** What one hop ended with. */
type HopOutcome =
  | { kind: 'redirect'; location: string; status: number }
  | { kind: 'done'; status: number; contentType: string | null; bytes: Buffer }
  | { kind: 'fail'; failure: Classified & { status?: number; retryAfterMs?: number } };

interface BodyLike extends AsyncIterable<Buffer> {
  destroy(err?: Error): unknown;
  dump(opts?: { limit?: number }): Promise<void>;
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const inflateRawAsync = promisify(inflateRaw);
const brotliAsync = promisify(brotliDecompress);

async function decodeContent(bytes: Buffer, encoding: string, maxOutputLength: number): Promise<Buffer> {
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return gunzipAsync(bytes, { maxOutputLength });
    case 'deflate':
      try {
        return await inflateAsync(bytes, { maxOutputLength });
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw err;
        return inflateRawAsync(bytes, { maxOutputLength });
      }
    case 'br':
      return brotliAsync(bytes, { maxOutputLength });
    default:
      throw Object.assign(new Error(`unsupported Content-Encoding ${JSON.stringify(encoding)}`), { code: 'UNSUPPORTED_ENCODING' });
  }
}

export class ImageFetcher {
  readonly policy: FetchPolicy;
  private readonly guard: AddressGuard;
  private readonly agent: Agent;
  private readonly global: Semaphore;
  private readonly hosts: HostLimiter;
  private readonly resolver: Resolver;
  private closed = false;

  constructor(policy: Partial<FetchPolicy> = {}) {
    this.policy = resolvePolicy(policy);
    try {
      this.guard = new AddressGuard(this.policy.allowCidrs, this.policy.denyCidrs);
    } catch (err) {
      throw new ConfigError(`fetch policy: ${(err as Error).message}`);
    }
    this.resolver = this.policy.resolve ?? (async (hostname) => dnsPromises.lookup(hostname, { all: true }));
    this.global = new Semaphore(this.policy.maxConcurrency);
    this.hosts = new HostLimiter(this.policy.maxPerHost);
    this.agent = new Agent({
      connect: { timeout: this.policy.connectTimeoutMs, lookup: this.lookup },
      connections: this.policy.maxPerHost,
      headersTimeout: this.policy.totalTimeoutMs,
      bodyTimeout: this.policy.idleTimeoutMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 15_000,
    });
  }

  /**
   * The connector's `lookup`: resolves, keeps only the permitted addresses, and hands those to the socket, so
   * the connection can only go to an address that passed the guard. None permitted → a blocked-address error.
   */
  private readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    this.resolver(hostname).then(
      (addrs) => {
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const candidates = addrs.filter((a) => family === 0 || a.family === family);
        if (candidates.length === 0) {
          const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname }) as NodeJS.ErrnoException;
          callback(err, '');
          return;
        }
        const permitted: LookupAddress[] = [];
        const refused: string[] = [];
        for (const a of candidates) {
          const why = this.guard.check(a.address);
          if (why === null) permitted.push({ address: a.address, family: a.family === 6 ? 6 : 4 });
          else refused.push(`${a.address} (${why})`);
        }
        if (permitted.length === 0) {
          callback(new BlockedAddressError(`${hostname} resolves to refused address ${refused.join(', ')}`), '');
        } else if (options.all) {
          callback(null, permitted);
        } else {
          callback(null, permitted[0].address, permitted[0].family);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };

  /** Fetches one image URL. Never rejects for network or HTTP problems (only for a programming error). */
  async fetch(url: string, signal?: AbortSignal): Promise<FetchResult> {
    const fail = (c: Classified & { status?: number; retryAfterMs?: number; finalUrl?: string }, attempts: number): FetchResult => {
      const r: FetchFailure = { ok: false, url, reason: c.reason, retryable: c.retryable, detail: c.detail, attempts };
      if (c.status !== undefined) r.status = c.status;
      if (c.retryAfterMs !== undefined) r.retryAfterMs = c.retryAfterMs;
      if (c.finalUrl !== undefined && c.finalUrl !== url) r.finalUrl = c.finalUrl;
      return r;
    };
    if (this.closed) return fail({ reason: 'aborted', retryable: true, detail: 'the fetcher is closed' }, 0);
    let start: URL;
    try {
      start = new URL(url);
    } catch {
      return fail({ reason: 'invalid_url', retryable: false, detail: `not a URL: ${JSON.stringify(String(url).slice(0, 200))}` }, 0);
    }
    const early = this.checkTarget(start);
    if (early) return fail(early, 0);

    const maxAttempts = this.policy.retries + 1;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) return fail({ reason: 'aborted', retryable: true, detail: 'aborted by the caller' }, attempt - 1);
      const r = await this.attempt(start, signal);
      if (r.ok) return { ok: true, url, finalUrl: r.finalUrl, status: r.status, contentType: r.contentType, bytes: r.bytes, attempts: attempt, redirects: r.redirects };
      const f = r.failure;
      if (!f.retryable || attempt >= maxAttempts || f.reason === 'aborted') return fail(f, attempt);
      let wait = backoffDelay(attempt, this.policy.backoffBaseMs, this.policy.backoffMaxMs);
      if (f.retryAfterMs !== undefined) {
        if (f.retryAfterMs > this.policy.maxRetryAfterMs) {
          return fail({ ...f, detail: `${f.detail}; Retry-After ${Math.round(f.retryAfterMs / 1000)} s exceeds maxRetryAfterMs` }, attempt);
        }
        wait = Math.max(wait, f.retryAfterMs);
      }
      if (!(await sleep(wait, signal))) return fail({ reason: 'aborted', retryable: true, detail: 'aborted by the caller' }, attempt);
    }
  }

  /** Closes idle connections and refuses new fetches; in-flight fetches finish. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.agent.close();
  }

  /** Scheme, credentials and literal-IP checks for a (start or redirect) target; null = go ahead. */
  private checkTarget(u: URL): Classified | null {
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      return { reason: 'bad_scheme', retryable: false, detail: `scheme ${JSON.stringify(u.protocol.replace(/:$/, ''))} is not http or https` };
    }
    if (u.username || u.password) return { reason: 'invalid_url', retryable: false, detail: 'credentials in the URL are refused' };
    if (!u.hostname) return { reason: 'invalid_url', retryable: false, detail: 'no host' };
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    if (isIP(host)) {
      const why = this.guard.check(host);
      if (why !== null) return { reason: 'blocked_address', retryable: false, detail: `${host} is a refused address (${why})` };
    }
    return null;
  }

  /** One attempt: the redirect chain under one deadline. */
  private async attempt(
    start: URL,
    signal: AbortSignal | undefined,
  ): Promise<{ ok: true; finalUrl: string; status: number; contentType: string | null; bytes: Buffer; redirects: number }
    | { ok: false; failure: Classified & { status?: number; retryAfterMs?: number; finalUrl?: string } }> {
    const ctl = new AbortController();
    let cause: 'timeout' | 'caller' | null = null;
    const deadline = new Deadline(this.policy.totalTimeoutMs, () => {
      cause ??= 'timeout';
      ctl.abort();
    });
    const onAbort = () => {
      cause ??= 'caller';
      ctl.abort();
    };
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    let current = start;
    let redirects = 0;
    try {
      for (;;) {
        const outcome = await this.hop(current, ctl.signal, deadline, () => cause);
        if (outcome.kind === 'fail') return { ok: false, failure: { ...outcome.failure, finalUrl: current.href } };
        if (outcome.kind === 'done') {
          return { ok: true, finalUrl: current.href, status: outcome.status, contentType: outcome.contentType, bytes: outcome.bytes, redirects };
        }
        redirects++;
        if (redirects > this.policy.maxRedirects) {
          return { ok: false, failure: { reason: 'too_many_redirects', retryable: false, detail: `more than ${this.policy.maxRedirects} redirects`, finalUrl: current.href } };
        }
        let next: URL;
        try {
          next = new URL(outcome.location, current);
        } catch {
          return { ok: false, failure: { reason: 'invalid_url', retryable: false, status: outcome.status, detail: `redirect to an invalid Location ${JSON.stringify(outcome.location.slice(0, 200))}`, finalUrl: current.href } };
        }
        const refused = this.checkTarget(next);
        if (refused) return { ok: false, failure: { ...refused, detail: `redirect to ${next.href.slice(0, 300)}: ${refused.detail}`, finalUrl: next.href } };
        current = next;
      }
    } finally {
      deadline.pause();
      if (signal) signal.removeEventListener('abort', onAbort);
    }
  }

  /** One request: queue for the host's and the global slot, send, read (or discard) the body. */
  private async hop(u: URL, signal: AbortSignal, deadline: Deadline, cause: () => 'timeout' | 'caller' | null): Promise<HopOutcome> {
    const aborted = (inBody: boolean): HopOutcome => cause() === 'caller'
      ? { kind: 'fail', failure: { reason: 'aborted', retryable: true, detail: 'aborted by the caller' } }
      : { kind: 'fail', failure: { reason: 'timeout', retryable: true, detail: `no complete response within ${this.policy.totalTimeoutMs} ms${inBody ? ' (body)' : ''}` } };
    let releaseHost: (() => void) | null = null;
    let releaseGlobal: (() => void) | null = null;
    let inBody = false;
    try {
      // Host first, then global: a request waiting for a busy host never holds a global slot.
      releaseHost = await this.hosts.acquire(u.hostname.toLowerCase(), signal);
      releaseGlobal = await this.global.acquire(signal);
      deadline.resume();
      if (signal.aborted) return aborted(false);
      const res = await this.agent.request({
        origin: u.origin,
        path: `${u.pathname}${u.search}`,
        method: 'GET',
        headers: { 'user-agent': this.policy.userAgent, accept: ACCEPT, 'accept-encoding': 'identity' },
        signal,
      });
      inBody = true;
      const body = res.body as unknown as BodyLike;
      const headers = res.headers as Headers;
      const status = res.statusCode;
      const discard = async () => {
        try {
          await body.dump({ limit: DISCARD_LIMIT });
        } catch { /* the connection is dropped instead */ }
      };

      if (!(status >= 100 && status <= 599)) {
        // Not an HTTP status code (RFC 9110 §15: 100-599); 999 is a known bot-wall answer. Not retried.
        await discard();
        return { kind: 'fail', failure: { reason: 'protocol_error', retryable: false, status, detail: `HTTP status ${status} is not a status code (100-599)` } };
      }
      if (REDIRECT_STATUSES.has(status)) {
        const location = header(headers, 'location');
        await discard();
        if (!location) return { kind: 'fail', failure: { reason: 'http_error', retryable: false, status, detail: `HTTP ${status} without Location` } };
        return { kind: 'redirect', location, status };
      }
      if (status !== 200 && status !== 203) {
        const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(headers['retry-after']) ?? undefined : undefined;
        await discard();
        if (status === 429) return { kind: 'fail', failure: { reason: 'rate_limited', retryable: true, status, retryAfterMs, detail: 'HTTP 429 Too Many Requests' } };
        const retryable = (status >= 500 && status !== 501 && status !== 505) || status === 408;
        return { kind: 'fail', failure: { reason: 'http_error', retryable, status, retryAfterMs, detail: `HTTP ${status}` } };
      }

      if (this.policy.respectOptOut) {
        const directive = optOutDirective(headers['x-robots-tag'], this.policy.userAgentToken, this.policy.optOutDirectives);
        if (directive) {
          await discard();
          return { kind: 'fail', failure: { reason: 'opted_out', retryable: false, status, detail: `X-Robots-Tag: ${directive}` } };
        }
      }
      const contentType = header(headers, 'content-type') ?? null;
      if (this.policy.requireImageContentType && !isImageContentType(contentType)) {
        await discard();
        return { kind: 'fail', failure: { reason: 'not_image', retryable: false, status, detail: `Content-Type ${contentType}` } };
      }
      const max = this.policy.maxBodyBytes;
      const lengthHeader = header(headers, 'content-length');
      const declared = lengthHeader !== undefined && /^\s*[0-9]+\s*$/.test(lengthHeader) ? Number(lengthHeader) : null;
      if (declared !== null && declared > max) {
        body.destroy();
        return { kind: 'fail', failure: { reason: 'too_large', retryable: false, status, detail: `Content-Length ${declared} > maxBodyBytes ${max}` } };
      }

      const chunks: Buffer[] = [];
      let received = 0;
      for await (const chunk of body) {
        received += chunk.length;
        if (received > max) {
          body.destroy();
          return { kind: 'fail', failure: { reason: 'too_large', retryable: false, status, detail: `body exceeds maxBodyBytes ${max}` } };
        }
        chunks.push(chunk);
      }
      if (signal.aborted) return aborted(true);
      if (declared !== null && received < declared) {
        return { kind: 'fail', failure: { reason: 'truncated', retryable: true, status, detail: `body ended after ${received} of ${declared} bytes` } };
      }
      let bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received);
      const encoding = (header(headers, 'content-encoding') ?? '').trim().toLowerCase();
      if (encoding && encoding !== 'identity') {
        try {
          bytes = await decodeContent(bytes, encoding, max);
        } catch (err) {
          if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
            return { kind: 'fail', failure: { reason: 'too_large', retryable: false, status, detail: `decoded body exceeds maxBodyBytes ${max}` } };
          }
          return { kind: 'fail', failure: { reason: 'protocol_error', retryable: false, status, detail: `Content-Encoding ${encoding}: ${(err as Error).message}` } };
        }
      }
      return { kind: 'done', status, contentType, bytes };
    } catch (err) {
      if (err instanceof AbortedWhileQueued || signal.aborted) return aborted(inBody);
      const c = classifyNetworkError(err, inBody);
      if (c.reason === 'timeout' && !inBody) c.detail = `no response headers within ${this.policy.totalTimeoutMs} ms (${c.detail})`;
      return { kind: 'fail', failure: c };
    } finally {
      deadline.pause();
      releaseGlobal?.();
      releaseHost?.();
    }
  }
}

/** Waits `ms`; false if the signal aborted first. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
