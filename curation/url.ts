/**
 * URL resolution and image ids exactly as MetaCLIP's reference computes them with CPython 3.11's
 * `urllib.parse.urljoin` (RFC 3986 resolution with Python's quirks: no percent-encoding, no host
 * lower-casing, query kept, references with another scheme returned verbatim) and
 * `hashlib.sha224(url.encode()).hexdigest()[:24]`.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { isWellFormedUnicode, pyStripChars } from './pytext';

const USES_RELATIVE = new Set(['', 'ftp', 'http', 'gopher', 'nntp', 'imap', 'wais', 'file', 'https', 'shttp', 'mms',
  'prospero', 'rtsp', 'rtspu', 'sftp', 'svn', 'svn+ssh', 'ws', 'wss']);
const USES_NETLOC = new Set(['', 'ftp', 'http', 'gopher', 'nntp', 'telnet', 'imap', 'wais', 'file', 'mms', 'https',
  'shttp', 'snews', 'prospero', 'rtsp', 'rtspu', 'rsync', 'svn', 'svn+ssh', 'sftp', 'nfs', 'git', 'git+ssh', 'ws', 'wss']);
const USES_PARAMS = new Set(['', 'ftp', 'hdl', 'prospero', 'http', 'imap', 'https', 'shttp', 'rtsp', 'rtspu', 'sip',
  'sips', 'mms', 'sftp', 'tel']);
const SCHEME_CHARS = /^[A-Za-z0-9+\-.]+$/;
let C0_CONTROL_OR_SPACE = '';
for (let c = 0; c <= 0x20; c++) C0_CONTROL_OR_SPACE += String.fromCharCode(c);

/** Raised where Python raises ValueError; callers treat the reference as unresolvable. */
export class UrlError extends Error {}

interface Split { scheme: string; netloc: string; path: string; query: string; fragment: string }
interface Parsed extends Split { params: string }

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

function checkNetloc(netloc: string): void {
  if (!netloc || isAscii(netloc)) return;
  const n = netloc.replace(/[@:#?]/g, '');
  const normalized = n.normalize('NFKC');
  if (n === normalized) return;
  for (const c of '/?#@:') {
    if (normalized.includes(c)) throw new UrlError(`netloc '${netloc}' contains invalid characters under NFKC normalization`);
  }
}

function isStrictIPv4(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  return parts.every((p) => /^[0-9]{1,3}$/.test(p) && Number(p) <= 255 && !(p.length > 1 && p[0] === '0'));
}

function checkBracketedHost(hostname: string): void {
  if (hostname.startsWith('v')) {
    if (!/^v[a-fA-F0-9]+\..+$/s.test(hostname)) throw new UrlError('IPvFuture address is invalid');
    return;
  }
  if (isStrictIPv4(hostname)) throw new UrlError('An IPv4 address cannot be in brackets');
  // Python's ipaddress accepts a scope id after '%'; net.isIPv6 does too.
  if (!isIPv6(hostname)) throw new UrlError(`'${hostname}' does not appear to be an IPv4 or IPv6 address`);
}

function partition(s: string, sep: string, fromRight = false): [string, string, string] {
  const i = fromRight ? s.lastIndexOf(sep) : s.indexOf(sep);
  if (i < 0) return fromRight ? ['', '', s] : [s, '', ''];
  return [s.slice(0, i), sep, s.slice(i + sep.length)];
}

function checkBracketedNetloc(netloc: string): void {
  const hostAndPort = partition(netloc, '@', true)[2];
  const [before, openBracket, bracketed] = partition(hostAndPort, '[');
  let hostname: string;
  if (openBracket) {
    if (before) throw new UrlError('Invalid IPv6 URL');
    const [host, , port] = partition(bracketed, ']');
    if (port && !port.startsWith(':')) throw new UrlError('Invalid IPv6 URL');
    hostname = host;
  } else {
    hostname = partition(hostAndPort, ':')[0];
  }
  checkBracketedHost(hostname);
}

function urlsplit(input: string, defaultScheme: string): Split {
  let url = pyStripChars(input, C0_CONTROL_OR_SPACE, 'left').replace(/[\t\r\n]/g, '');
  let scheme = pyStripChars(defaultScheme, C0_CONTROL_OR_SPACE).replace(/[\t\r\n]/g, '');
  let netloc = '';
  let query = '';
  let fragment = '';
  const i = url.indexOf(':');
  if (i > 0 && /^[A-Za-z]$/.test(url[0]) && SCHEME_CHARS.test(url.slice(0, i))) {
    scheme = url.slice(0, i).toLowerCase();
    url = url.slice(i + 1);
  }
  if (url.startsWith('//')) {
    let delim = url.length;
    for (const c of '/?#') {
      const w = url.indexOf(c, 2);
      if (w >= 0) delim = Math.min(delim, w);
    }
    netloc = url.slice(2, delim);
    url = url.slice(delim);
    const open = netloc.includes('[');
    const close = netloc.includes(']');
    if (open !== close) throw new UrlError('Invalid IPv6 URL');
    if (open && close) checkBracketedNetloc(netloc);
  }
  const hash = url.indexOf('#');
  if (hash >= 0) {
    fragment = url.slice(hash + 1);
    url = url.slice(0, hash);
  }
  const q = url.indexOf('?');
  if (q >= 0) {
    query = url.slice(q + 1);
    url = url.slice(0, q);
  }
  checkNetloc(netloc);
  return { scheme, netloc, path: url, query, fragment };
}

function urlparse(url: string, defaultScheme: string): Parsed {
  const s = urlsplit(url, defaultScheme);
  let path = s.path;
  let params = '';
  if (USES_PARAMS.has(s.scheme) && path.includes(';')) {
    let i: number;
    if (path.includes('/')) {
      i = path.indexOf(';', path.lastIndexOf('/'));
    } else {
      i = path.indexOf(';');
    }
    if (i >= 0) {
      params = path.slice(i + 1);
      path = path.slice(0, i);
    }
  }
  return { ...s, path, params };
}

function urlunparse(p: Parsed): string {
  let url = p.params ? `${p.path};${p.params}` : p.path;
  if (p.netloc || (p.scheme && USES_NETLOC.has(p.scheme) && url.slice(0, 2) !== '//')) {
    if (url && url[0] !== '/') url = '/' + url;
    url = '//' + p.netloc + url;
  }
  if (p.scheme) url = p.scheme + ':' + url;
  if (p.query) url += '?' + p.query;
  if (p.fragment) url += '#' + p.fragment;
  return url;
}

/** CPython 3.11 `urllib.parse.urljoin(base, url)`; throws UrlError where Python raises ValueError. */
export function urljoinStrict(base: string, url: string): string {
  if (!base) return url;
  if (!url) return base;
  const b = urlparse(base, '');
  const r = urlparse(url, b.scheme);
  if (r.scheme !== b.scheme || !USES_RELATIVE.has(r.scheme)) return url;
  let netloc = r.netloc;
  if (USES_NETLOC.has(r.scheme)) {
    if (netloc) return urlunparse({ ...r });
    netloc = b.netloc;
  }
  if (!r.path && !r.params) {
    return urlunparse({ scheme: r.scheme, netloc, path: b.path, params: b.params, query: r.query || b.query, fragment: r.fragment });
  }
  const baseParts = b.path.split('/');
  if (baseParts[baseParts.length - 1] !== '') baseParts.pop();
  let segments: string[];
  if (r.path.startsWith('/')) {
    segments = r.path.split('/');
  } else {
    segments = baseParts.concat(r.path.split('/'));
    // Python drops empty inner segments (would make redundant slashes).
    if (segments.length > 2) segments = [segments[0], ...segments.slice(1, -1).filter((s) => s !== ''), segments[segments.length - 1]];
  }
  const resolved: string[] = [];
  for (const seg of segments) {
    if (seg === '..') resolved.pop();
    else if (seg !== '.') resolved.push(seg);
  }
  const last = segments[segments.length - 1];
  if (last === '.' || last === '..') resolved.push('');
  return urlunparse({ scheme: r.scheme, netloc, path: resolved.join('/') || '/', params: r.params, query: r.query, fragment: r.fragment });
}

/** `urljoin` or null where the reference drops the link (Python raised). */
export function urljoin(base: string, url: string): string | null {
  try {
    return urljoinStrict(base, url);
  } catch (err) {
    if (err instanceof UrlError) return null;
    throw err;
  }
}

/** MetaCLIP's image id: first 24 hex chars of SHA-224 of the URL's UTF-8 bytes; null if not encodable. */
export function imageUuid(url: string): string | null {
  if (!isWellFormedUnicode(url)) return null;
  return createHash('sha224').update(url, 'utf8').digest('hex').slice(0, 24);
}
