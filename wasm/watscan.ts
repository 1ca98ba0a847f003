// AssemblyScript (compiled by bin/build-wasm.js to dist/wasm/watscan.wasm; loaded by curation/wasm-scanners.ts).
//
// The WAT payload scanner of curation/extract.ts (scanWatLinks) in WebAssembly: the same JSON grammar check
// and the same image-link ranges, with the string contents (most of a WAT record's bytes) skipped 16 bytes at
// a time by SIMD compares instead of one byte at a time. The JS scanner stays the reference and the fallback:
// this one answers NEEDS_JS for the few payloads it does not decode itself (an escaped key where keys matter,
// an escaped link path), and test/extract-fastpaths.test.ts runs both against JSON.parse.
//
// Memory: [tables][input + 16 zero bytes][link ranges: 8 x i32 per link][link kinds: 4 x u8 per link].
// JS calls prepare(len), copies the payload to the pointer it returns, calls scan(len), and reads count links
// from rangesPtr() / kindsPtr(). Offsets in the ranges are relative to the payload's first byte.

import { ensureMemory, storeLengthPrefixed } from './common';

const R_LINKS: i32 = 5; // the Links array
const R_LINK: i32 = 6; // an object in Links
const R_OBJECT: i32 = 7; // any other object
const R_ARRAY: i32 = 8; // any other array

const S_VALUE: i32 = 0;
const S_VALUE_OR_CLOSE: i32 = 1; // after '['
const S_KEY: i32 = 2;
const S_KEY_OR_CLOSE: i32 = 3; // after '{'
const S_AFTER: i32 = 4; // after a value

export const MAX_DEPTH: i32 = 512;
export const INVALID: i32 = -1;
export const TOO_DEEP: i32 = -2;
export const NEEDS_JS: i32 = -3;

const K_PATH: i32 = 0;
const K_URL: i32 = 1;
const K_DIT: i32 = 4;
const NOT_STRING: u8 = 0;
const PLAIN_STRING: u8 = 1;
const ESCAPED_STRING: u8 = 2;

// Smallest bytes one recorded link takes in the payload ({"path":"IMG@/src","url":""}): bounds the output.
const MIN_LINK_BYTES: i32 = 28;

// Tables at the start of the heap.
const TABLES: usize = (__heap_base + 15) & ~15;
const ROLES: usize = TABLES; // u8 x (MAX_DEPTH + 1)
const MARKS: usize = ROLES + 1024; // i32 x (MAX_DEPTH + 1)
const LINK_KIND: usize = MARKS + 4 * 1024; // u8 x 5
const LINK_FROM: usize = LINK_KIND + 16; // i32 x 5
const LINK_TO: usize = LINK_FROM + 32; // i32 x 5
const KEYS: usize = LINK_TO + 32; // the WAT path keys, 32 bytes each
const INPUT: usize = KEYS + 32 * 5;

let inputCap: i32 = -1;
let ranges: usize = 0;
let kinds: usize = 0;

function putKey(i: i32, key: string): void {
  storeLengthPrefixed(KEYS + <usize>(i * 32), key);
}
putKey(0, 'Envelope');
putKey(1, 'Payload-Metadata');
putKey(2, 'HTTP-Response-Metadata');
putKey(3, 'HTML-Metadata');
putKey(4, 'Links');

/** Makes room for a payload of `len` bytes (and its links); returns where to copy it. */
export function prepare(len: i32): usize {
  if (len > inputCap) {
    const links = len / MIN_LINK_BYTES + 1;
    const need = INPUT + <usize>len + 16 + 16 + <usize>links * 32 + <usize>links * 4;
    if (!ensureMemory(need)) return 0;
    inputCap = len;
    ranges = (INPUT + <usize>len + 16 + 15) & ~15;
    kinds = ranges + <usize>links * 32;
  }
  return INPUT;
}

export function rangesPtr(): usize {
  return ranges;
}

export function kindsPtr(): usize {
  return kinds;
}

@inline function isSpace(w: u32): bool {
  return w == 0x20 || w == 0x0a || w == 0x0d || w == 0x09;
}

@inline function spaceEnd(p: usize, end: usize): usize {
  while (p < end && isSpace(load<u8>(p))) p++;
  return p;
}

@inline function isHex(c: u32): bool {
  return (c - 0x30 < 10) || ((c | 0x20) - 0x61 < 6);
}

/**
 * Index of the quote closing the string opened at `p`: ≥ 0 without escapes, -2 - index with escapes, -1 if
 * invalid (a control character, a bad escape, no closing quote). The 16 bytes after the input are zero, so a
 * vector read from before `end` stops there at the latest.
 */
@inline function stringEnd(p: usize, end: usize): i32 {
  const quote = i8x16.splat(0x22);
  const backslash = i8x16.splat(0x5c);
  const space = i8x16.splat(0x20);
  let escapes = false;
  p++;
  for (;;) {
    for (;;) {
      const v = v128.load(p);
      const stop = v128.or(v128.or(i8x16.eq(v, quote), i8x16.eq(v, backslash)), i8x16.lt_u(v, space));
      const bits = i8x16.bitmask(stop);
      if (bits != 0) {
        p += <usize>ctz(bits);
        break;
      }
      p += 16;
    }
    if (p >= end) return -1;
    const c = load<u8>(p);
    if (c == 0x22) return escapes ? -2 - <i32>p : <i32>p;
    if (c != 0x5c) return -1; // a control character
    escapes = true;
    if (p + 1 >= end) return -1;
    const e = load<u8>(p + 1);
    if (e == 0x75 /* u */) {
      if (p + 5 >= end || !isHex(load<u8>(p + 2)) || !isHex(load<u8>(p + 3)) || !isHex(load<u8>(p + 4)) || !isHex(load<u8>(p + 5))) return -1;
      p += 6;
    } else if (e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) {
      p += 2;
    } else {
      return -1;
    }
  }
  return -1; // (not reached)
}

@inline function isDigit(c: u32): bool {
  return c - 0x30 < 10;
}

/** Index after the number starting at `p`, or 0 (the input never starts at address 0). */
function numberEnd(p: usize, end: usize): usize {
  if (load<u8>(p) == 0x2d /* - */) p++;
  if (p >= end) return 0;
  if (load<u8>(p) == 0x30) p++;
  else {
    const q = p;
    while (p < end && isDigit(load<u8>(p))) p++;
    if (q == p) return 0;
  }
  if (p < end && load<u8>(p) == 0x2e /* . */) {
    p++;
    const q = p;
    while (p < end && isDigit(load<u8>(p))) p++;
    if (q == p) return 0;
  }
  if (p < end && (load<u8>(p) | 0x20) == 0x65 /* e E */) {
    p++;
    if (p < end && (load<u8>(p) == 0x2b || load<u8>(p) == 0x2d)) p++;
    const q = p;
    while (p < end && isDigit(load<u8>(p))) p++;
    if (q == p) return 0;
  }
  return p;
}

/** Index after the literal true/false/null at `p`, or 0. */
function literalEnd(p: usize, end: usize, c: u32): usize {
  if (c == 0x74) {
    return p + 4 <= end && load<u32>(p) == 0x65757274 ? p + 4 : 0; // "true"
  }
  if (c == 0x66) {
    return p + 5 <= end && load<u32>(p) == 0x736c6166 && load<u8>(p + 4) == 0x65 ? p + 5 : 0; // "false"
  }
  return p + 4 <= end && load<u32>(p) == 0x6c6c756e ? p + 4 : 0; // "null"
}

/** Bytes [from, to) equal the path key i. */
function isPathKey(from: usize, to: usize, i: i32): bool {
  const key = KEYS + <usize>(i * 32);
  const n = <usize>load<u8>(key);
  if (to - from != n) return false;
  for (let k: usize = 0; k < n; k++) if (load<u8>(from + k) != load<u8>(key + 1 + k)) return false;
  return true;
}

/** Which link member the key [from, to) names (path, url, alt, title, data-image-title), or -1. */
function linkKeyOf(from: usize, to: usize): i32 {
  const n = to - from;
  if (n == 3) {
    const w = <u32>load<u16>(from) | (<u32>load<u8>(from + 2) << 16);
    if (w == 0x6c7275) return 1; // url
    if (w == 0x746c61) return 2; // alt
    return -1;
  }
  if (n == 4) return load<u32>(from) == 0x68746170 ? 0 : -1; // path
  if (n == 5) return load<u32>(from) == 0x6c746974 && load<u8>(from + 4) == 0x65 ? 3 : -1; // title
  if (n == 16) {
    // "data-image-title" as two little-endian u64 words.
    return load<u64>(from) == 0x616d692d61746164 && load<u64>(from + 8) == 0x656c7469742d6567 ? K_DIT : -1;
  }
  return -1;
}

function clearLink(): void {
  store<u32>(LINK_KIND, 0);
  store<u8>(LINK_KIND + 4, 0);
}

/** A link object just closed: 1 when it is an image link with a url (recorded at index count), 0 if not, NEEDS_JS. */
function finishLink(base: usize, count: i32): i32 {
  const pathKind = load<u8>(LINK_KIND + K_PATH);
  if (pathKind == NOT_STRING || load<u8>(LINK_KIND + K_URL) == NOT_STRING) return 0;
  if (pathKind == ESCAPED_STRING) return NEEDS_JS;
  const from = <usize>load<i32>(LINK_FROM);
  if (<usize>load<i32>(LINK_TO) - from < 8) return 0;
  if (load<u64>(from) != 0x6372732f40474d49) return 0; // "IMG@/src"
  const o = ranges + <usize>count * 32;
  const k = kinds + <usize>count * 4;
  for (let m: usize = 0; m < 4; m++) {
    store<u8>(k + m, load<u8>(LINK_KIND + 1 + m));
    store<i32>(o + 8 * m, load<i32>(LINK_FROM + 4 + 4 * m) - <i32>base);
    store<i32>(o + 8 * m + 4, load<i32>(LINK_TO + 4 + 4 * m) - <i32>base);
  }
  return 1;
}

/**
 * The object at `p` (a '{') when its members are all strings, numbers, true, false or null and its keys have
 * no escapes: the index after its '}', having recorded the link members when `isLink` (as the general loop
 * would). 0 for anything else (nested values, escaped keys, invalid JSON), which the general loop then reads
 * from the '{'. Nearly every object off the path is flat; the bytes after the input are zero, so a read at
 * `end` sees no token.
 */
function flatObjectEnd(p: usize, end: usize, isLink: bool): usize {
  if (isLink) clearLink();
  p = spaceEnd(p + 1, end);
  if (p < end && load<u8>(p) == 0x7d) return p + 1;
  for (;;) {
    if (p >= end || load<u8>(p) != 0x22) return 0;
    const keyEnd = stringEnd(p, end);
    if (keyEnd < 0) return 0; // invalid, or an escaped key
    const k = isLink ? linkKeyOf(p + 1, <usize>keyEnd) : -1;
    p = <usize>keyEnd + 1;
    if (load<u8>(p) != 0x3a) p = spaceEnd(p, end);
    if (p >= end || load<u8>(p) != 0x3a) return 0;
    p++;
    let c = <u32>load<u8>(p);
    if (c != 0x22) {
      p = spaceEnd(p, end);
      if (p >= end) return 0;
      c = <u32>load<u8>(p);
    }
    if (c == 0x22) {
      const q = stringEnd(p, end);
      if (q == -1) return 0;
      const close = q >= 0 ? q : -2 - q;
      if (k >= 0) {
        store<u8>(LINK_KIND + <usize>k, q >= 0 ? PLAIN_STRING : ESCAPED_STRING);
        store<i32>(LINK_FROM + 4 * <usize>k, <i32>p + 1);
        store<i32>(LINK_TO + 4 * <usize>k, close);
      }
      p = <usize>close + 1;
    } else {
      let next: usize = 0;
      if (c == 0x74 || c == 0x66 || c == 0x6e) next = literalEnd(p, end, c);
      else if (c == 0x2d || isDigit(c)) next = numberEnd(p, end);
      if (next == 0) return 0; // a nested object or array (or invalid)
      if (k >= 0) store<u8>(LINK_KIND + <usize>k, NOT_STRING);
      p = next;
    }
    let d = <u32>load<u8>(p);
    if (d != 0x2c && d != 0x7d) {
      p = spaceEnd(p, end);
      if (p >= end) return 0;
      d = <u32>load<u8>(p);
    }
    p++;
    if (d == 0x7d) return p;
    if (d != 0x2c) return 0;
    if (load<u8>(p) != 0x22) p = spaceEnd(p, end);
  }
  return 0; // (not reached)
}

/**
 * Scans the payload of `len` bytes at the input: the number of image links (ranges at rangesPtr(), kinds at
 * kindsPtr()), INVALID when it is not valid JSON, TOO_DEEP when it nests deeper than MAX_DEPTH, NEEDS_JS when
 * the JS scanner must decide (an escaped key on the path or in a link, an escaped link path).
 */
export function scan(len: i32): i32 {
  const base = INPUT;
  const end = base + <usize>len;
  v128.store(end, i8x16.splat(0));
  let count: i32 = 0;
  let p = base;
  let depth: i32 = 0;
  let state = S_VALUE;
  let objectRole: i32 = 0;
  let arrayRole: i32 = R_ARRAY;
  let linkKey: i32 = -1;
  for (;;) {
    p = spaceEnd(p, end);
    if (p >= end) return state == S_AFTER && depth == 0 ? count : INVALID;
    const c = <u32>load<u8>(p);
    if (state == S_AFTER) {
      if (depth == 0) return INVALID; // more than one value
      const role = <i32>load<u8>(ROLES + <usize>depth);
      const inObject = role != R_LINKS && role != R_ARRAY;
      p++;
      if (c == 0x2c /* , */) {
        if (inObject) {
          state = S_KEY;
        } else {
          state = S_VALUE;
          objectRole = role == R_LINKS ? R_LINK : R_OBJECT;
          arrayRole = R_ARRAY;
          linkKey = -1;
        }
        continue;
      }
      if (c != (inObject ? 0x7d : 0x5d)) return INVALID;
      if (role == R_LINK) {
        const r = finishLink(base, count);
        if (r < 0) return r;
        count += r;
      }
      depth--;
      continue;
    }
    if (state == S_KEY || state == S_KEY_OR_CLOSE) {
      const role = <i32>load<u8>(ROLES + <usize>depth);
      if (c == 0x7d && state == S_KEY_OR_CLOSE) {
        p++;
        if (role == R_LINK) {
          const r = finishLink(base, count);
          if (r < 0) return r;
          count += r;
        }
        depth--;
        state = S_AFTER;
        continue;
      }
      if (c != 0x22) return INVALID;
      const q = stringEnd(p, end);
      if (q == -1) return INVALID;
      const keyFrom = p + 1;
      const keyTo = <usize>(q >= 0 ? q : -2 - q);
      if (q < 0 && (role < R_LINKS || role == R_LINK)) return NEEDS_JS; // an escaped key that matters
      p = spaceEnd(keyTo + 1, end);
      if (p >= end || load<u8>(p) != 0x3a /* : */) return INVALID;
      p++;
      objectRole = R_OBJECT;
      arrayRole = R_ARRAY;
      linkKey = -1;
      if (role < R_LINKS) {
        if (isPathKey(keyFrom, keyTo, role)) {
          count = load<i32>(MARKS + 4 * <usize>depth); // the last of duplicate keys wins
          if (role < 4) objectRole = role + 1;
          else arrayRole = R_LINKS;
        }
      } else if (role == R_LINK) {
        linkKey = linkKeyOf(keyFrom, keyTo);
      }
      state = S_VALUE;
      continue;
    }
    // A value (S_VALUE, S_VALUE_OR_CLOSE).
    if (c == 0x5d && state == S_VALUE_OR_CLOSE) {
      p++;
      depth--;
      state = S_AFTER;
      continue;
    }
    if (c == 0x22) {
      const q = stringEnd(p, end);
      if (q == -1) return INVALID;
      const close = q >= 0 ? q : -2 - q;
      if (linkKey >= 0) {
        store<u8>(LINK_KIND + <usize>linkKey, q >= 0 ? PLAIN_STRING : ESCAPED_STRING);
        store<i32>(LINK_FROM + 4 * <usize>linkKey, <i32>p + 1);
        store<i32>(LINK_TO + 4 * <usize>linkKey, close);
      }
      p = <usize>close + 1;
      state = S_AFTER;
      continue;
    }
    if (linkKey >= 0) store<u8>(LINK_KIND + <usize>linkKey, NOT_STRING); // the last of duplicate keys wins
    if (c == 0x7b /* { */ && (objectRole == R_LINK || objectRole == R_OBJECT)) {
      const after = flatObjectEnd(p, end, objectRole == R_LINK);
      if (after != 0) {
        if (objectRole == R_LINK) {
          const r = finishLink(base, count);
          if (r < 0) return r;
          count += r;
        }
        p = after;
        state = S_AFTER;
        continue;
      }
    }
    if (c == 0x7b /* { */ || c == 0x5b /* [ */) {
      if (depth >= MAX_DEPTH) return TOO_DEEP;
      const role = c == 0x7b ? objectRole : arrayRole;
      depth++;
      store<u8>(ROLES + <usize>depth, <u8>role);
      store<i32>(MARKS + 4 * <usize>depth, count);
      p++;
      if (c == 0x7b) {
        if (role == R_LINK) clearLink();
        state = S_KEY_OR_CLOSE;
      } else {
        state = S_VALUE_OR_CLOSE;
        objectRole = role == R_LINKS ? R_LINK : R_OBJECT;
        arrayRole = R_ARRAY;
        linkKey = -1;
      }
      continue;
    }
    let next: usize = 0;
    if (c == 0x74 || c == 0x66 || c == 0x6e) next = literalEnd(p, end, c);
    else if (c == 0x2d || isDigit(c)) next = numberEnd(p, end);
    if (next == 0) return INVALID;
    p = next;
    state = S_AFTER;
  }
  return INVALID; // (not reached)
}
