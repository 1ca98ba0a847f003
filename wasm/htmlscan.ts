// AssemblyScript (compiled by bin/build-wasm.js to dist/wasm/htmlscan.wasm; loaded by curation/wasm-scanners.ts).
//
// curation/html.ts's scanImgTagsUtf8 in WebAssembly: the same tag reading over the bytes of a valid UTF-8 page
// (the searches for '<', '>' and quotes 16 bytes at a time by SIMD compares), giving the byte ranges of the
// wanted attributes of each <img>/<image> tag instead of calling back. The JS scanner stays the reference and
// the fallback (test/extract-fastpaths.test.ts runs both against the decoded-text scanner).
//
// Memory: [tables][input + 16 zero bytes][output]. JS calls prepare(len), copies the page to the pointer it
// returns, calls scan(len) (the number of tags) and reads the output at outPtr(): per tag, the number of
// attributes m, then m x (wanted index, value start, value end) as i32, in document order of first occurrence.

import { ensureMemory, storeLengthPrefixed } from './common';

const B_IMG: i32 = 1;
const B_IMAGE: i32 = 2;
const B_SVG: i32 = 3;
const B_MATH: i32 = 4;
const B_PLAINTEXT: i32 = 5;
const B_RAW: i32 = 8; // raw-text elements: B_RAW + index in the names below
const B_SCRIPT: i32 = 8;
const B_STYLE: i32 = 9;
const B_TEXTAREA: i32 = 10;
const B_TITLE: i32 = 11;
const B_XMP: i32 = 12;
const B_IFRAME: i32 = 13;
const B_NOEMBED: i32 = 14;
const B_NOFRAMES: i32 = 15;

const TABLES: usize = (__heap_base + 15) & ~15;
const NAMES: usize = TABLES; // the raw-text names, 16 bytes each (length, then bytes)
const CLASSES: usize = NAMES + 16 * 8; // a class bit set per byte value (one load instead of up to 8 compares)
const INPUT: usize = CLASSES + 256;

const C_SPACE: u32 = 1; // ' ', \t, \n, \f, \r
const C_SLASH: u32 = 2;
const C_GT: u32 = 4;
const C_EQ: u32 = 8;
store<u8>(CLASSES + 32, <u8>C_SPACE);
store<u8>(CLASSES + 9, <u8>C_SPACE);
store<u8>(CLASSES + 10, <u8>C_SPACE);
store<u8>(CLASSES + 12, <u8>C_SPACE);
store<u8>(CLASSES + 13, <u8>C_SPACE);
store<u8>(CLASSES + 47, <u8>C_SLASH);
store<u8>(CLASSES + 62, <u8>C_GT);
store<u8>(CLASSES + 61, <u8>C_EQ);

@inline function cls(c: u32): u32 {
  return <u32>load<u8>(CLASSES + <usize>c);
}

let inputCap: i32 = -1;
let out: usize = 0;

function putName(i: i32, name: string): void {
  storeLengthPrefixed(NAMES + <usize>(i * 16), name);
}
putName(0, 'script');
putName(1, 'style');
putName(2, 'textarea');
putName(3, 'title');
putName(4, 'xmp');
putName(5, 'iframe');
putName(6, 'noembed');
putName(7, 'noframes');

/** Makes room for a page of `len` bytes (and its tags); returns where to copy it, 0 if memory cannot grow. */
export function prepare(len: i32): usize {
  if (len > inputCap) {
    // At most one tag per 5 bytes (4 bytes of count each) and one wanted attribute per 4 bytes (12 bytes each).
    const outBytes = <usize>len + (<usize>len * 3) + 64;
    const need = INPUT + <usize>len + 32 + outBytes;
    if (!ensureMemory(need)) return 0;
    inputCap = len;
    out = (INPUT + <usize>len + 16 + 15) & ~15;
  }
  return INPUT;
}

export function outPtr(): usize {
  return out;
}

@inline function isSpace(c: u32): bool {
  return (cls(c) & C_SPACE) != 0;
}

/** Index of the first `byte` (never 0) at or after `i`, or n. The 16 bytes after the page are zero. */
@inline function indexOfByte(byte: u8, i: usize, n: usize): usize {
  const needle = i8x16.splat(byte);
  while (i < n) {
    const bits = i8x16.bitmask(i8x16.eq(v128.load(i), needle));
    if (bits != 0) {
      const at = i + <usize>ctz(bits);
      return at < n ? at : n;
    }
    i += 16;
  }
  return n;
}

/** Lower-cases ASCII upper-case letters only (c | 0x20 would also map '@' to '`', etc.). */
@inline function lower(c: u32): u32 {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

@inline function eqIgnoreCase(at: usize, s: string): bool {
  for (let k = 0; k < s.length; k++) if (lower(<u32>load<u8>(at + <usize>k)) != <u32>s.charCodeAt(k)) return false;
  return true;
}

/** The code of the tag name [start, end) (ASCII case-insensitive), 0 for a tag the scanner does not act on. */
function tagCode(start: usize, end: usize): i32 {
  switch (<i32>(end - start)) {
    case 3:
      if (eqIgnoreCase(start, 'img')) return B_IMG;
      if (eqIgnoreCase(start, 'svg')) return B_SVG;
      if (eqIgnoreCase(start, 'xmp')) return B_XMP;
      return 0;
    case 4:
      return eqIgnoreCase(start, 'math') ? B_MATH : 0;
    case 5:
      if (eqIgnoreCase(start, 'image')) return B_IMAGE;
      if (eqIgnoreCase(start, 'style')) return B_STYLE;
      if (eqIgnoreCase(start, 'title')) return B_TITLE;
      return 0;
    case 6:
      if (eqIgnoreCase(start, 'script')) return B_SCRIPT;
      if (eqIgnoreCase(start, 'iframe')) return B_IFRAME;
      return 0;
    case 7:
      return eqIgnoreCase(start, 'noembed') ? B_NOEMBED : 0;
    case 8:
      if (eqIgnoreCase(start, 'textarea')) return B_TEXTAREA;
      if (eqIgnoreCase(start, 'noframes')) return B_NOFRAMES;
      return 0;
    case 9:
      return eqIgnoreCase(start, 'plaintext') ? B_PLAINTEXT : 0;
    default:
      return 0;
  }
}

/** Index of the wanted attribute name [start, end) (src, alt, title, data-image-title), or -1. */
function wantedIndex(start: usize, end: usize): i32 {
  switch (<i32>(end - start)) {
    case 3:
      if (eqIgnoreCase(start, 'src')) return 0;
      if (eqIgnoreCase(start, 'alt')) return 1;
      return -1;
    case 5:
      return eqIgnoreCase(start, 'title') ? 2 : -1;
    case 16:
      return eqIgnoreCase(start, 'data-image-title') ? 3 : -1;
    default:
      return -1;
  }
}

/** End of the tag name from `i` (up to whitespace, '/' or '>'). */
function tagNameEnd(i: usize, n: usize): usize {
  while (i < n) {
    const c = <u32>load<u8>(i);
    if ((cls(c) & (C_GT | C_SLASH | C_SPACE)) != 0) break;
    i++;
  }
  return i;
}

/** From `i` (just after the name) up to the tag's closing '>': the index after it, or n. */
function skipTag(i: usize, n: usize): usize {
  let c: u32 = 0;
  for (;;) {
    while (i < n && (cls((c = <u32>load<u8>(i))) & (C_SPACE | C_SLASH)) != 0) i++;
    if (i >= n) return n;
    if (c == 62) return i + 1;
    i++;
    while (i < n && (cls((c = <u32>load<u8>(i))) & (C_EQ | C_GT | C_SLASH | C_SPACE)) == 0) i++;
    while (i < n && isSpace((c = <u32>load<u8>(i)))) i++;
    if (i >= n || c != 61) continue;
    i++;
    while (i < n && isSpace((c = <u32>load<u8>(i)))) i++;
    if (i >= n) return n;
    if (c == 34 || c == 39) {
      i = indexOfByte(<u8>c, i + 1, n);
      if (i >= n) return n;
      i++;
    } else {
      while (i < n && (cls((c = <u32>load<u8>(i))) & (C_GT | C_SPACE)) == 0) i++;
    }
  }
  return n; // (not reached)
}

/**
 * skipTag for an <img>: writes the first occurrence of each wanted attribute at `o` (count, then index, start,
 * end each); the index after '>', or 0 when the page ends inside the tag (HTML5 drops it).
 */
function imgAttributes(i: usize, n: usize, o: usize): usize {
  let seen: i32 = 0;
  let m: i32 = 0;
  let c: u32 = 0;
  for (;;) {
    while (i < n && (cls((c = <u32>load<u8>(i))) & (C_SPACE | C_SLASH)) != 0) i++;
    if (i >= n) return 0;
    if (c == 62) {
      store<i32>(o, m);
      return i + 1;
    }
    const nameStart = i;
    i++;
    while (i < n && (cls((c = <u32>load<u8>(i))) & (C_EQ | C_GT | C_SLASH | C_SPACE)) == 0) i++;
    const nameEnd = i;
    while (i < n && isSpace((c = <u32>load<u8>(i)))) i++;
    let valueStart = i;
    let valueEnd = i;
    if (i < n && c == 61) {
      i++;
      while (i < n && isSpace((c = <u32>load<u8>(i)))) i++;
      if (i < n && (c == 34 || c == 39)) {
        valueStart = i + 1;
        i = indexOfByte(<u8>c, valueStart, n);
        valueEnd = i;
        if (i < n) i++;
      } else {
        valueStart = i;
        while (i < n && (cls((c = <u32>load<u8>(i))) & (C_GT | C_SPACE)) == 0) i++;
        valueEnd = i;
      }
    }
    const k = wantedIndex(nameStart, nameEnd);
    if (k < 0 || (seen & (1 << k)) != 0) continue;
    seen |= 1 << k;
    const at = o + 4 + 12 * <usize>m;
    store<i32>(at, k);
    store<i32>(at + 4, <i32>(valueStart - INPUT));
    store<i32>(at + 8, <i32>(valueEnd - INPUT));
    m++;
  }
  return 0; // (not reached)
}

/** Index after the first '>' at or after `from`, or n. */
@inline function afterGt(from: usize, n: usize): usize {
  const gt = indexOfByte(62, from, n);
  return gt < n ? gt + 1 : n;
}

/** Start of the first `</name` followed by whitespace, '/' or '>' (ASCII case-insensitive) at or after `from`. */
function rawTextEnd(code: i32, from: usize, n: usize): usize {
  const name = NAMES + <usize>((code - B_RAW) * 16);
  const len = <usize>load<u8>(name);
  for (let p = from; ; p++) {
    p = indexOfByte(60, p, n);
    if (p >= n) return n;
    if (p + 2 + len >= n || load<u8>(p + 1) != 47) continue;
    let k: usize = 0;
    while (k < len && (<u32>load<u8>(p + 2 + k) | 0x20) == <u32>load<u8>(name + 1 + k)) k++;
    if (k < len) continue;
    const c = <u32>load<u8>(p + 2 + k);
    if ((cls(c) & (C_SPACE | C_SLASH | C_GT)) != 0) return p;
  }
  return n; // (not reached)
}

/** Index after the end of the comment whose "<!--" is at `lt` ('-->' or '--!>'), or 0 when unterminated. */
function commentEnd(lt: usize, n: usize): usize {
  let p = lt + 4;
  for (;;) {
    p = indexOfByte(45, p, n);
    if (p + 1 >= n) return 0;
    if (load<u8>(p + 1) != 45) {
      p++;
      continue;
    }
    if (p + 2 < n && load<u8>(p + 2) == 62) return p + 3;
    if (p + 3 < n && load<u8>(p + 2) == 33 && load<u8>(p + 3) == 62) return p + 4;
    p++;
  }
  return 0; // (not reached)
}

/** The last index of a '<' followed by [iI][mM] (and one more byte), or -1 as a pointer below the input. */
function lastImgStart(n: usize): usize {
  const lt = i8x16.splat(60);
  // Candidates at p need p + 2 < n; the blocks are read backwards from the last one holding such a p.
  if (n < INPUT + 3) return 0;
  let block = n - 3 - ((n - 3 - INPUT) & 15);
  for (;;) {
    let bits = i8x16.bitmask(i8x16.eq(v128.load(block), lt));
    while (bits != 0) {
      const top = 31 - clz(bits);
      const p = block + <usize>top;
      if (p + 2 < n && (<u32>load<u8>(p + 1) | 0x20) == 0x69 && (<u32>load<u8>(p + 2) | 0x20) == 0x6d) return p;
      bits &= ~(1 << top);
    }
    if (block == INPUT) return 0;
    block -= 16;
  }
  return 0; // (not reached)
}

/** Scans the page of `len` bytes at the input: the number of <img>/<image> tags written at outPtr(). */
export function scan(len: i32): i32 {
  const n = INPUT + <usize>len;
  v128.store(n, i8x16.splat(0));
  const last = lastImgStart(n);
  if (last == 0) return 0;
  let foreignDepth: i32 = 0; // inside <svg> or <math>
  let tags: i32 = 0;
  let o = out;
  let i = INPUT;
  for (;;) {
    const lt = indexOfByte(60, i, n);
    if (lt + 1 >= n || lt > last) return tags;
    const c = <u32>load<u8>(lt + 1);
    const lowerC = c | 0x20;
    if (lowerC >= 97 && lowerC <= 122) {
      const afterName = tagNameEnd(lt + 2, n);
      const code = tagCode(lt + 1, afterName);
      if (code == B_IMG || (code == B_IMAGE && foreignDepth == 0)) {
        const next = imgAttributes(afterName, n, o);
        if (next == 0) return tags; // the page ends inside the tag: HTML5 drops it, and nothing follows
        o += 4 + 12 * <usize>load<i32>(o);
        tags++;
        i = next;
        continue;
      }
      i = skipTag(afterName, n);
      if (code == 0 || code == B_IMAGE) continue;
      if (code == B_SVG || code == B_MATH) {
        if (load<u8>(i - 2) != 47) foreignDepth++; // not self-closing
      } else if (foreignDepth == 0) {
        if (code == B_PLAINTEXT) return tags;
        i = rawTextEnd(code, i, n);
      }
    } else if (c == 47 /* / */) {
      const c2 = lt + 2 < n ? <u32>load<u8>(lt + 2) : 0;
      const lower2 = c2 | 0x20;
      if (lower2 >= 97 && lower2 <= 122) {
        const afterName = tagNameEnd(lt + 3, n);
        if (foreignDepth > 0) {
          const code = tagCode(lt + 2, afterName);
          if (code == B_SVG || code == B_MATH) foreignDepth--;
        }
        i = skipTag(afterName, n);
      } else if (c2 == 62) {
        i = lt + 3; // "</>" is ignored
      } else {
        i = afterGt(lt + 2, n); // bogus comment
      }
    } else if (c == 33 /* ! */) {
      if (lt + 3 < n && load<u8>(lt + 2) == 45 && load<u8>(lt + 3) == 45) {
        if (lt + 4 < n && load<u8>(lt + 4) == 62) i = lt + 5; // <!-->
        else if (lt + 5 < n && load<u8>(lt + 4) == 45 && load<u8>(lt + 5) == 62) i = lt + 6; // <!--->
        else {
          const e = commentEnd(lt, n);
          if (e == 0) return tags; // an unterminated comment runs to the end
          i = e;
        }
      } else {
        i = afterGt(lt + 2, n); // doctype, CDATA (bogus comment in HTML)
      }
    } else if (c == 63 /* ? */) {
      i = afterGt(lt + 2, n);
    } else {
      i = lt + 1; // a '<' that starts no tag is text
    }
  }
  return tags; // (not reached)
}

@inline function isContinuation(at: usize): bool {
  return (<u32>load<u8>(at) & 0xc0) == 0x80;
}

/**
 * Keeps the well-formed UTF-8 of the `len` bytes at the input, in place, and returns the new length: every byte
 * not in a well-formed sequence (Unicode's table 3-7: no overlongs, surrogates or code points above U+10FFFF) is
 * dropped, and so is U+FFFD itself. That is what decoding with replacement characters and dropping them all gives
 * (the WHATWG decoder turns the same bytes into replacements; how many does not matter once all are dropped).
 */
export function keepWellFormedUtf8(len: i32): i32 {
  const end = INPUT + <usize>len;
  let r = INPUT;
  let w = INPUT;
  while (r < end) {
    if (r + 16 <= end) {
      const v = v128.load(r);
      if (i8x16.bitmask(v) == 0) {
        v128.store(w, v); // w ≤ r: the store never reaches bytes not read yet
        r += 16;
        w += 16;
        continue;
      }
    }
    const c = <u32>load<u8>(r);
    if (c < 0x80) {
      store<u8>(w++, <u8>c);
      r++;
      continue;
    }
    let n: usize = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      if (r + 1 < end && isContinuation(r + 1)) n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      if (r + 2 < end) {
        const c1 = <u32>load<u8>(r + 1);
        const lo: u32 = c == 0xe0 ? 0xa0 : 0x80;
        const hi: u32 = c == 0xed ? 0x9f : 0xbf;
        if (c1 >= lo && c1 <= hi && isContinuation(r + 2)) n = 3;
      }
    } else if (c >= 0xf0 && c <= 0xf4) {
      if (r + 3 < end) {
        const c1 = <u32>load<u8>(r + 1);
        const lo: u32 = c == 0xf0 ? 0x90 : 0x80;
        const hi: u32 = c == 0xf4 ? 0x8f : 0xbf;
        if (c1 >= lo && c1 <= hi && isContinuation(r + 2) && isContinuation(r + 3)) n = 4;
      }
    }
    if (n == 0 || (n == 3 && c == 0xef && load<u8>(r + 1) == 0xbf && load<u8>(r + 2) == 0xbd)) {
      r++; // not well-formed here (or U+FFFD): dropped; a multi-byte U+FFFD's other bytes are dropped as strays
      continue;
    }
    for (let k: usize = 0; k < n; k++) store<u8>(w + k, load<u8>(r + k));
    r += n;
    w += n;
  }
  return <i32>(w - INPUT);
}
