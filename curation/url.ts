/**
 * URL resolution and image ids exactly as MetaCLIP's reference computes them with CPython 3.11's
 * `urllib.parse.urljoin` (RFC 3986 resolution with Python's quirks: no percent-encoding, no host
 * lower-casing, query kept, references with another scheme returned verbatim) and
 * `hashlib.sha224(url.encode()).hexdigest()[:24]`.
 */
import * as crypto from 'node:crypto';
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
  return urlunparse({ scheme: r.scheme, netloc, path: resolvePath(baseParts, r.path), params: r.params, query: r.query, fragment: r.fragment });
}

/**
 * The parts of a base URL the fast path needs, computed once per distinct base by the general `urlparse`
 * (so they are exactly what `urljoinStrict` would compute). `fast` is false when the base is not a plain
 * http(s) URL with a host, or when Python would raise on it: such bases always take the general path.
 */
interface FastBase {
  base: string;
  fast: boolean;
  scheme: string;
  netloc: string;
  /** `b.path.split('/')` with its last segment removed when non-empty (the base "directory"). */
  dir: string[];
  /**
   * When `dir` starts with '' and holds no '.' or '..' segment: '/' + its non-empty segments joined by '/' (+ '/'
   * when there are any). A relative path without '.', '..' or empty segments (but the last) resolves to this
   * prefix + the path: the empty segments of `dir` are dropped as inner segments, and nothing is resolved.
   */
  dirPrefix: string | null;
  /** The non-empty segments of `dir` when dirPrefix is set (for references that start with "../"). */
  dirKept: string[];
  /** scheme + '://' + netloc, and that + dirPrefix (or null): the prefixes of a simple reference's result (simpleJoin). */
  origin: string;
  dirOrigin: string | null;
}

let lastBase: FastBase = { base: '', fast: false, scheme: '', netloc: '', dir: [], dirPrefix: null, dirKept: [], origin: '', dirOrigin: null };

function fastBase(base: string): FastBase {
  if (lastBase.base === base) return lastBase;
  let fb: FastBase = { base, fast: false, scheme: '', netloc: '', dir: [], dirPrefix: null, dirKept: [], origin: '', dirOrigin: null };
  try {
    const b = urlparse(base, '');
    if ((b.scheme === 'http' || b.scheme === 'https') && b.netloc !== '') {
      const dir = b.path.split('/');
      if (dir[dir.length - 1] !== '') dir.pop();
      let dirPrefix: string | null = null;
      let dirKept: string[] = [];
      if (dir[0] === '' && !dir.includes('.') && !dir.includes('..')) {
        dirKept = dir.filter((seg) => seg !== '');
        dirPrefix = dirKept.length > 0 ? '/' + dirKept.join('/') + '/' : '/';
      }
      const origin = b.scheme + '://' + b.netloc;
      fb = { base, fast: true, scheme: b.scheme, netloc: b.netloc, dir, dirPrefix, dirKept, origin, dirOrigin: dirPrefix === null ? null : origin + dirPrefix };
    }
  } catch (err) {
    if (!(err instanceof UrlError)) throw err;
  }
  lastBase = fb;
  return fb;
}

/** True when `s` holds a character that urlsplit removes (tab, CR, LF). */
function hasUnsafe(s: string): boolean {
  return s.indexOf('\t') >= 0 || s.indexOf('\n') >= 0 || s.indexOf('\r') >= 0;
}

/** A network location the fast path may copy as is: no bracket (IPv6 checks) and ASCII (no NFKC check). */
function plainNetloc(netloc: string): boolean {
  if (netloc.indexOf('[') >= 0 || netloc.indexOf(']') >= 0) return false;
  for (let i = 0; i < netloc.length; i++) if (netloc.charCodeAt(i) > 127) return false;
  return true;
}

/** End of the network location that starts at `from` (urlsplit: the first of '/', '?', '#', else the end). */
function netlocEnd(s: string, from: number): number {
  let end = s.length;
  for (let i = from; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) end = i;
  }
  return end;
}

/**
 * `urljoinStrict` for the inputs that dominate real pages, computed without building parse records:
 * `url` is an absolute http(s) URL, a network-path reference (//host/...), or a path (absolute or relative,
 * with an optional query/fragment), `base` is a plain http(s) URL with a host, and nothing in `url` is
 * touched by urlsplit's cleaning (no leading C0/space, no tab/CR/LF), by the params split (no ';' in the
 * path), or by the netloc checks (ASCII netloc without brackets). Returns null for anything else; the
 * property test in test/extract-fastpaths.test.ts checks it against `urljoinStrict` on random inputs.
 */
function urljoinFast(base: string, url: string): string | null {
  if (url.length === 0 || url.charCodeAt(0) <= 0x20) return null;
  const b = fastBase(base);
  if (!b.fast) return null;
  const simple = simpleJoin(b, url);
  if (simple !== null) return simple;
  if (hasUnsafe(url)) return null;
  // Scheme, exactly as urlsplit finds one: letters/digits/+-. before the first ':', starting with a letter.
  const colon = url.indexOf(':');
  let scheme = b.scheme;
  let rest = url; // the reference without its scheme
  let hasScheme = false;
  if (colon > 0) {
    let isScheme = isAsciiLetter(url.charCodeAt(0));
    for (let i = 1; isScheme && i < colon; i++) isScheme = isSchemeChar(url.charCodeAt(i));
    if (isScheme) {
      hasScheme = true;
      scheme = url.slice(0, colon).toLowerCase();
      rest = url.slice(colon + 1);
      if (scheme !== b.scheme || !USES_RELATIVE.has(scheme)) {
        // Another scheme: Python returns the reference verbatim once urlsplit accepted it.
        if (rest.charCodeAt(0) === 47 && rest.charCodeAt(1) === 47 && !plainNetloc(rest.slice(2, netlocEnd(rest, 2)))) return null;
        return url;
      }
    }
  }
  let netloc = b.netloc;
  let pos = 0; // start of path/query/fragment in `rest`
  if (rest.charCodeAt(0) === 47 && rest.charCodeAt(1) === 47) {
    const end = netlocEnd(rest, 2);
    netloc = rest.slice(2, end);
    if (netloc === '' || !plainNetloc(netloc)) return null;
    pos = end;
  } else if (hasScheme) {
    return null; // "http:path" (same scheme, no netloc)
  }
  const hash = rest.indexOf('#', pos);
  const pathQueryEnd = hash < 0 ? rest.length : hash;
  let q = rest.indexOf('?', pos);
  if (q >= pathQueryEnd) q = -1;
  const pathEnd = q < 0 ? pathQueryEnd : q;
  let path = rest.slice(pos, pathEnd);
  if (path.indexOf(';') >= 0) return null; // params: urlparse splits them off the path's last segment
  const query = q < 0 ? '' : rest.slice(q + 1, pathQueryEnd);
  const fragment = hash < 0 ? '' : rest.slice(hash + 1);
  if (pos === 0) {
    // No netloc in the reference: resolve its path against the base's (RFC 3986 5.2.2 as Python does it).
    if (path === '') return null; // "?x", "#x": the base path and query are involved
    const plain = b.dirPrefix !== null ? plainRelative(b, path) : null;
    path = plain !== null ? plain : resolvePath(b.dir, path);
  }
  // urlunparse with empty params and a non-empty netloc.
  let out = scheme + '://' + netloc;
  if (path !== '' && path.charCodeAt(0) !== 47) out += '/';
  out += path;
  if (query !== '') out += '?' + query;
  if (fragment !== '') out += '#' + fragment;
  return out.length === url.length && out === url ? url : out;
}

/**
 * What the rest of urljoinFast computes, in one pass over `url` and one concatenation, for the two most common
 * references: an absolute path ("/a/b.png?x") that has nothing to resolve (no "/." in it), and a plain relative
 * path ("a/b.png?x": no ':' anywhere, so no scheme; no '.' or '..' or empty segment but the last) against a base
 * with dirPrefix. Either has no tab/CR/LF, no ';' in its path, and no '?' or '#' that urlunparse would drop (one
 * followed by nothing); its result is then the base's origin (+ dirPrefix) followed by `url` itself. null for
 * anything else, which the rest of urljoinFast then reads (the property test covers both).
 */
function simpleJoin(b: FastBase, url: string): string | null {
  const n = url.length;
  const c0 = url.charCodeAt(0);
  let absolute: boolean;
  if (c0 === 47 /* / */) {
    if (n > 1 && url.charCodeAt(1) === 47) return null; // a network-path reference
    absolute = true;
  } else {
    if (c0 === 46 /* . */ || c0 === 63 /* ? */ || c0 === 35 /* # */ || b.dirOrigin === null) return null;
    absolute = false;
  }
  let pathEnd = -1; // index of the first '?' or '#' (the end of the path), -1 while in the path
  let segStart = 0;
  let q = -1;
  let hash = -1;
  for (let i = 0; i < n; i++) {
    const c = url.charCodeAt(i);
    if (c === 9 || c === 10 || c === 13) return null;
    if (pathEnd < 0) {
      if (c === 47 /* / */) {
        if (absolute) {
          if (i + 1 < n && url.charCodeAt(i + 1) === 46) return null; // "/.": resolvePath has work to do
        } else if (isDotOrEmptySegment(url, segStart, i)) {
          return null;
        }
        segStart = i + 1;
      } else if (c === 59 /* ; */ || (c === 58 /* : */ && !absolute)) {
        return null;
      } else if (c === 63 /* ? */ || c === 35 /* # */) {
        pathEnd = i;
        if (c === 63) q = i;
        else hash = i;
      }
    } else if (c === 35 && hash < 0) {
      hash = i;
    } else if (c === 58 && !absolute) {
      return null;
    }
  }
  if (!absolute) {
    const end = pathEnd < 0 ? n : pathEnd; // the last segment may be empty ("a/"), not '.' or '..'
    if (end !== segStart && isDotOrEmptySegment(url, segStart, end)) return null;
  }
  if (q >= 0 && q + 1 === (hash < 0 ? n : hash)) return null; // "?" with an empty query: dropped
  if (hash === n - 1) return null; // "#" with an empty fragment: dropped
  return (absolute ? b.origin : (b.dirOrigin as string)) + url;
}

/** url[from, to) is '', '.' or '..'. */
function isDotOrEmptySegment(url: string, from: number, to: number): boolean {
  const len = to - from;
  if (len === 0) return true;
  if (url.charCodeAt(from) !== 46) return false;
  return len === 1 || (len === 2 && url.charCodeAt(from + 1) === 46);
}

function isAsciiLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isSchemeChar(c: number): boolean {
  return isAsciiLetter(c) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46;
}

/**
 * resolvePath for a relative path against a base with dirPrefix, when the path is some "./" and "../" segments
 * followed by a plain relative path (or nothing); null otherwise. The leading "." segments are dropped, each
 * ".." removes the last directory segment (or the leading '' once there is none left, which urlunparse then
 * puts back as the leading '/'), and a path that ends with "." or ".." ends with '/' like "./" and "../" do.
 */
function plainRelative(b: FastBase, path: string): string | null {
  let start = 0;
  let up = 0;
  while (path.charCodeAt(start) === 46 /* . */) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    if (end - start === 2 && path.charCodeAt(start + 1) === 46) up++;
    else if (end - start !== 1) break; // ".x", "...": a plain segment
    start = end + 1;
    if (start >= path.length) break;
  }
  const rest = start >= path.length ? '' : path.slice(start);
  if (rest !== '' && !plainRelativePath(rest)) return null;
  if (up === 0) return b.dirPrefix + rest;
  const levels = b.dirKept.length - up;
  return (levels > 0 ? '/' + b.dirKept.slice(0, levels).join('/') + '/' : '/') + rest;
}

/** A relative path (not starting with '/') without '.' or '..' segments and without empty ones but the last. */
function plainRelativePath(path: string): boolean {
  if (path.charCodeAt(0) === 47 || path.indexOf('//') >= 0) return false;
  let start = 0;
  for (;;) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    if (path.charCodeAt(start) === 46 /* . */ && (end - start === 1 || (end - start === 2 && path.charCodeAt(start + 1) === 46))) return false;
    if (end === path.length) return true;
    start = end + 1;
  }
}

/** The path resolution of urljoinStrict for a non-empty reference path, given the base directory segments. */
function resolvePath(dir: string[], rpath: string): string {
  let segments: string[];
  if (rpath.charCodeAt(0) === 47) {
    if (rpath.indexOf('/.') < 0) return rpath; // no '.' or '..' segment: nothing to resolve
    segments = rpath.split('/');
  } else {
    segments = dir.concat(rpath.split('/'));
    if (segments.length > 2) {
      const kept = [segments[0]];
      for (let i = 1; i < segments.length - 1; i++) if (segments[i] !== '') kept.push(segments[i]);
      kept.push(segments[segments.length - 1]);
      segments = kept;
    }
  }
  const resolved: string[] = [];
  for (const seg of segments) {
    if (seg === '..') resolved.pop();
    else if (seg !== '.') resolved.push(seg);
  }
  const last = segments[segments.length - 1];
  if (last === '.' || last === '..') resolved.push('');
  return resolved.join('/') || '/';
}

/** `urljoin` or null where the reference drops the link (Python raised). */
export function urljoin(base: string, url: string): string | null {
  if (base !== '') {
    const fast = urljoinFast(base, url);
    if (fast !== null) return fast;
  }
  try {
    return urljoinStrict(base, url);
  } catch (err) {
    if (err instanceof UrlError) return null;
    throw err;
  }
}

/** The fast path alone (null where it defers to the general algorithm), for the property test. */
export function urljoinFastOnly(base: string, url: string): string | null {
  return base === '' ? null : urljoinFast(base, url);
}

/** `crypto.hash` (Node ≥ 20.12): one call per digest instead of a Hash object; strings are hashed as UTF-8. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

/** MetaCLIP's image id: first 24 hex chars of SHA-224 of the URL's UTF-8 bytes; null if not encodable. */
export function imageUuid(url: string): string | null {
  if (!isWellFormedUnicode(url)) return null;
  if (oneShotHash !== undefined) return oneShotHash('sha224', url, 'hex').slice(0, 24);
  return crypto.createHash('sha224').update(url, 'utf8').digest('hex').slice(0, 24);
}
