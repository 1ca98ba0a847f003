/**
 * `<img>` extraction from raw HTML, following the HTML5 tokenizer where it matters for `<img>` attributes
 * (what a browser-grade parser such as lexbor, used by the reference through selectolax, sees):
 * case-insensitive tag and attribute names, quoted/unquoted/valueless attributes, the first of duplicate
 * attributes wins, character references decoded with the attribute rules, nothing inside comments, bogus
 * comments, doctype/CDATA, or the raw-text elements script/style/textarea/title/xmp/iframe/noembed/noframes/
 * plaintext, and `<image>` read as `<img>` outside SVG/MathML.
 *
 * It is a scanner, not a tree builder: it jumps from '<' to '<' and only tokenises tags. That makes it
 * several times faster than a general parser (see README, bench:extract); the tests check it against
 * htmlparser2 on real archives.
 */
import { isUtf8 } from 'node:buffer';
import { decodeHTMLAttribute } from 'entities';
import { chooseWasmScanner, HTMLSCAN_WASM_FILE, type ScannerMode, WASM_MAX_PAGE, type WasmImgTags, wasmHtmlScanner } from './wasm-scanners';

export interface ImgTag {
  /** src/alt/title/data-image-title attributes in document order (names lower-cased). */
  attrs: Array<[string, string]>;
}

const WANTED = new Set(['src', 'alt', 'title', 'data-image-title']);
const RAW_TEXT = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'iframe', 'noembed', 'noframes']);
const rawTextEnd = new Map<string, RegExp>();
const COMMENT_END = /--!?>/g;

function isAsciiAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 12 || c === 13;
}

/** Tag names the scanner acts on; any other tag is skipped without building its name. */
const KNOWN_TAGS = ['img', 'image', 'svg', 'math', 'plaintext', ...RAW_TEXT];
const KNOWN_BY_LENGTH = new Map<number, string[]>();
for (const t of KNOWN_TAGS) KNOWN_BY_LENGTH.set(t.length, [...(KNOWN_BY_LENGTH.get(t.length) ?? []), t]);

let tagEnd = 0;
/** The known tag name starting at `i` (ASCII case-insensitive), or '' for any other; sets `tagEnd`. */
function readTagName(html: string, i: number): string {
  const start = i;
  const n = html.length;
  while (i < n) {
    const c = html.charCodeAt(i);
    if (isSpace(c) || c === 47 /* / */ || c === 62 /* > */) break;
    i++;
  }
  tagEnd = i;
  const candidates = KNOWN_BY_LENGTH.get(i - start);
  if (candidates === undefined) return '';
  outer: for (const name of candidates) {
    for (let k = 0; k < name.length; k++) {
      const c = html.charCodeAt(start + k);
      if ((c >= 65 && c <= 90 ? c + 32 : c) !== name.charCodeAt(k)) continue outer;
    }
    return name;
  }
  return '';
}

/**
 * Tokenises attributes from `i` up to the tag's closing '>' (HTML5 "before attribute name" and following
 * states). Calls `onAttr` for each attribute when given. Returns the index after '>', or -1 when the input ends
 * first: HTML5's eof-in-tag, where the tag is dropped (an attribute value left open runs to the end of input).
 */
function readAttributes(html: string, i: number, onAttr: ((name: string, value: string) => void) | null): number {
  const n = html.length;
  for (;;) {
    while (i < n && (isSpace(html.charCodeAt(i)) || html.charCodeAt(i) === 47)) i++;
    if (i >= n) return -1;
    if (html.charCodeAt(i) === 62) return i + 1;
    // Attribute name: up to space, '/', '>' or '=' (a leading '=' belongs to the name).
    const nameStart = i;
    i++;
    while (i < n) {
      const c = html.charCodeAt(i);
      if (isSpace(c) || c === 47 || c === 62 || c === 61) break;
      i++;
    }
    const nameEnd = i;
    while (i < n && isSpace(html.charCodeAt(i))) i++;
    let value = '';
    if (i < n && html.charCodeAt(i) === 61 /* = */) {
      i++;
      while (i < n && isSpace(html.charCodeAt(i))) i++;
      const q = html.charCodeAt(i);
      if (q === 34 || q === 39) {
        const close = html.indexOf(q === 34 ? '"' : "'", i + 1);
        const end = close < 0 ? n : close;
        value = html.slice(i + 1, end);
        i = close < 0 ? n : close + 1;
      } else {
        const vs = i;
        while (i < n) {
          const c = html.charCodeAt(i);
          if (isSpace(c) || c === 62) break;
          i++;
        }
        value = html.slice(vs, i);
      }
    }
    if (onAttr) onAttr(html.slice(nameStart, nameEnd).toLowerCase(), value);
  }
}

/** Index after the tag starting at `i` (just after its name), skipping quoted values correctly. */
function skipTag(html: string, i: number): number {
  const gt = html.indexOf('>', i);
  if (gt < 0) return html.length;
  // Fast path: no quote before the first '>' means that '>' closes the tag.
  for (let k = i; k < gt; k++) {
    const c = html.charCodeAt(k);
    if (c === 34 || c === 39) {
      const after = readAttributes(html, i, null);
      return after < 0 ? html.length : after;
    }
  }
  return gt + 1;
}

function skipRawText(html: string, name: string, from: number): number {
  let re = rawTextEnd.get(name);
  if (!re) {
    re = new RegExp(`</${name}[\\t\\n\\f\\r />]`, 'ig');
    rawTextEnd.set(name, re);
  }
  re.lastIndex = from;
  const m = re.exec(html);
  return m ? m.index : html.length;
}

/** Calls `onImg` for every img element in document order. */
export function scanImgTags(html: string, onImg: (img: ImgTag) => void): void {
  const n = html.length;
  let foreignDepth = 0; // inside <svg> or <math>
  let i = 0;
  for (;;) {
    const lt = html.indexOf('<', i);
    if (lt < 0 || lt + 1 >= n) return;
    const c = html.charCodeAt(lt + 1);
    if (isAsciiAlpha(c)) {
      const name = readTagName(html, lt + 1);
      const afterName = tagEnd;
      if (name === 'img' || (name === 'image' && foreignDepth === 0)) {
        const attrs: Array<[string, string]> = [];
        const seen = new Set<string>();
        i = readAttributes(html, afterName, (attr, value) => {
          if (seen.has(attr)) return;
          seen.add(attr);
          if (WANTED.has(attr)) attrs.push([attr, value.includes('&') ? decodeHTMLAttribute(value) : value]);
        });
        if (i < 0) return; // the input ends inside the tag: HTML5 drops it, and nothing follows
        onImg({ attrs });
        continue;
      }
      i = skipTag(html, afterName);
      const selfClosing = html.charCodeAt(i - 2) === 47;
      if (name === 'svg' || name === 'math') {
        if (!selfClosing) foreignDepth++;
      } else if (foreignDepth === 0 && RAW_TEXT.has(name)) {
        i = skipRawText(html, name, i);
      } else if (foreignDepth === 0 && name === 'plaintext') {
        return;
      }
    } else if (c === 47 /* / */) {
      const c2 = html.charCodeAt(lt + 2);
      if (isAsciiAlpha(c2)) {
        const name = readTagName(html, lt + 2);
        const afterName = tagEnd;
        if ((name === 'svg' || name === 'math') && foreignDepth > 0) foreignDepth--;
        i = skipTag(html, afterName);
      } else if (c2 === 62) {
        i = lt + 3; // "</>" is ignored
      } else {
        const gt = html.indexOf('>', lt + 2); // bogus comment
        i = gt < 0 ? n : gt + 1;
      }
    } else if (c === 33 /* ! */) {
      if (html.startsWith('<!--', lt)) {
        if (html.startsWith('<!-->', lt)) i = lt + 5;
        else if (html.startsWith('<!--->', lt)) i = lt + 6;
        else {
          COMMENT_END.lastIndex = lt + 4;
          const m = COMMENT_END.exec(html);
          if (m === null) return; // an unterminated comment runs to the end
          i = m.index + m[0].length;
        }
      } else {
        const gt = html.indexOf('>', lt + 2); // doctype, CDATA (bogus comment in HTML)
        i = gt < 0 ? n : gt + 1;
      }
    } else if (c === 63 /* ? */) {
      const gt = html.indexOf('>', lt + 2);
      i = gt < 0 ? n : gt + 1;
    } else {
      i = lt + 1; // a '<' that starts no tag is text
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The same scanner over the bytes of a page that is valid UTF-8, without decoding it. Every character the
// tokenizer acts on is ASCII, and in valid UTF-8 a byte below 0x80 is always that ASCII character and never
// part of another one; so tags, names and values start and end at the same places as in the decoded text,
// and a non-ASCII character (several bytes here, one or two UTF-16 units there) only ever sits inside text,
// names or values, where it never matches the ASCII names looked for. Values are decoded from their bytes.
// test/extract-fastpaths.test.ts checks scanImgTagsUtf8(bytes) = scanImgTags(bytes as UTF-8) on random
// markup and on real pages.

const B_IMG = 1;
const B_IMAGE = 2;
const B_SVG = 3;
const B_MATH = 4;
const B_PLAINTEXT = 5;
/** Raw-text elements: B_RAW and up, in the order of RAW_TEXT_NAMES. */
const B_RAW = 8;
const B_SCRIPT = 8;
const B_STYLE = 9;
const B_TEXTAREA = 10;
const B_TITLE = 11;
const B_XMP = 12;
const B_IFRAME = 13;
const B_NOEMBED = 14;
const B_NOFRAMES = 15;
const RAW_TEXT_NAMES = ['script', 'style', 'textarea', 'title', 'xmp', 'iframe', 'noembed', 'noframes'].map((t) => Buffer.from(t));
const WANTED_NAMES = ['src', 'alt', 'title', 'data-image-title'];

/** b[at..] starts with `word` (ASCII lower case), ignoring ASCII case. */
export function bytesStartIgnoreCase(b: Buffer, at: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) {
    const w = word.charCodeAt(k);
    const c = b[at + k];
    if (c !== w && !(w >= 97 && w <= 122 && c === w - 32)) return false;
  }
  return true;
}

/** Index of the first `byte` at or after `i`, or b.length (runs here are short: four bytes at a time in JS). */
function byteIndexOf(b: Buffer, byte: number, i: number): number {
  const n = b.length;
  while (i + 4 <= n) {
    if (b[i] === byte) return i;
    if (b[i + 1] === byte) return i + 1;
    if (b[i + 2] === byte) return i + 2;
    if (b[i + 3] === byte) return i + 3;
    i += 4;
  }
  while (i < n && b[i] !== byte) i++;
  return i;
}

/** The code of the tag name b[start, end) (ASCII case-insensitive), 0 for a tag the scanner does not act on. */
function byteTagCode(b: Buffer, start: number, end: number): number {
  switch (end - start) {
    case 3:
      if (bytesStartIgnoreCase(b, start, 'img')) return B_IMG;
      if (bytesStartIgnoreCase(b, start, 'svg')) return B_SVG;
      if (bytesStartIgnoreCase(b, start, 'xmp')) return B_XMP;
      return 0;
    case 4:
      return bytesStartIgnoreCase(b, start, 'math') ? B_MATH : 0;
    case 5:
      if (bytesStartIgnoreCase(b, start, 'image')) return B_IMAGE;
      if (bytesStartIgnoreCase(b, start, 'style')) return B_STYLE;
      if (bytesStartIgnoreCase(b, start, 'title')) return B_TITLE;
      return 0;
    case 6:
      if (bytesStartIgnoreCase(b, start, 'script')) return B_SCRIPT;
      if (bytesStartIgnoreCase(b, start, 'iframe')) return B_IFRAME;
      return 0;
    case 7:
      return bytesStartIgnoreCase(b, start, 'noembed') ? B_NOEMBED : 0;
    case 8:
      if (bytesStartIgnoreCase(b, start, 'textarea')) return B_TEXTAREA;
      if (bytesStartIgnoreCase(b, start, 'noframes')) return B_NOFRAMES;
      return 0;
    case 9:
      return bytesStartIgnoreCase(b, start, 'plaintext') ? B_PLAINTEXT : 0;
    default:
      return 0;
  }
}

/** Index in WANTED_NAMES of the attribute name b[start, end) (ASCII case-insensitive), or -1. */
function byteWantedIndex(b: Buffer, start: number, end: number): number {
  switch (end - start) {
    case 3:
      if (bytesStartIgnoreCase(b, start, 'src')) return 0;
      if (bytesStartIgnoreCase(b, start, 'alt')) return 1;
      return -1;
    case 5:
      return bytesStartIgnoreCase(b, start, 'title') ? 2 : -1;
    case 16:
      return bytesStartIgnoreCase(b, start, 'data-image-title') ? 3 : -1;
    default:
      return -1;
  }
}

/** End of the tag name whose first byte is at `i - 1` (up to whitespace, '/' or '>'). */
function byteTagNameEnd(b: Buffer, i: number): number {
  const n = b.length;
  while (i < n) {
    const c = b[i];
    if (c === 62 || c === 47 || c === 32 || c === 9 || c === 10 || c === 12 || c === 13) break;
    i++;
  }
  return i;
}

/**
 * readAttributes over bytes, for a tag that is only skipped: from `i` (just after the name) up to the tag's
 * closing '>'. Returns the index after '>' (or b.length).
 */
function byteSkipTag(b: Buffer, i: number): number {
  const n = b.length;
  let c = 0;
  for (;;) {
    while (i < n && ((c = b[i]) === 32 || c === 9 || c === 10 || c === 12 || c === 13 || c === 47)) i++;
    if (i >= n) return n;
    if (c === 62) return i + 1;
    // Attribute name: up to space, '/', '>' or '=' (a leading '=' belongs to the name).
    i++;
    while (i < n && (c = b[i]) !== 61 && c !== 62 && c !== 47 && c !== 32 && c !== 9 && c !== 10 && c !== 12 && c !== 13) i++;
    while (i < n && ((c = b[i]) === 32 || c === 9 || c === 10 || c === 12 || c === 13)) i++;
    if (i >= n || c !== 61 /* = */) continue;
    i++;
    while (i < n && ((c = b[i]) === 32 || c === 9 || c === 10 || c === 12 || c === 13)) i++;
    if (i >= n) return n;
    if (c === 34 || c === 39) {
      i = byteIndexOf(b, c, i + 1);
      if (i >= n) return n;
      i++;
    } else {
      while (i < n && (c = b[i]) !== 62 && c !== 32 && c !== 9 && c !== 10 && c !== 12 && c !== 13) i++;
    }
  }
}

/**
 * byteSkipTag for an <img>: also appends the first occurrence of each wanted attribute to `attrs`, with its
 * value decoded from UTF-8 and its character references decoded. -1 when the input ends inside the tag (HTML5's
 * eof-in-tag: the tag is dropped).
 */
function byteImgAttributes(b: Buffer, i: number, attrs: Array<[string, string]>): number {
  const n = b.length;
  let seen = 0;
  let c = 0;
  for (;;) {
    while (i < n && ((c = b[i]) === 32 || c === 9 || c === 10 || c === 12 || c === 13 || c === 47)) i++;
    if (i >= n) return -1;
    if (c === 62) return i + 1;
    const nameStart = i;
    i++;
    while (i < n && (c = b[i]) !== 61 && c !== 62 && c !== 47 && c !== 32 && c !== 9 && c !== 10 && c !== 12 && c !== 13) i++;
    const nameEnd = i;
    while (i < n && ((c = b[i]) === 32 || c === 9 || c === 10 || c === 12 || c === 13)) i++;
    let valueStart = i;
    let valueEnd = i;
    if (i < n && c === 61 /* = */) {
      i++;
      while (i < n && ((c = b[i]) === 32 || c === 9 || c === 10 || c === 12 || c === 13)) i++;
      if (i < n && (c === 34 || c === 39)) {
        valueStart = i + 1;
        i = byteIndexOf(b, c, valueStart);
        valueEnd = i;
        if (i < n) i++;
      } else {
        valueStart = i;
        while (i < n && (c = b[i]) !== 62 && c !== 32 && c !== 9 && c !== 10 && c !== 12 && c !== 13) i++;
        valueEnd = i;
      }
    }
    // Only the wanted names matter, and a non-ASCII name is never one of them (in either reading), so the
    // first-occurrence rule only needs to track those.
    const k = byteWantedIndex(b, nameStart, nameEnd);
    if (k < 0 || (seen & (1 << k)) !== 0) continue;
    seen |= 1 << k;
    attrs.push(wantedAttribute(b, k, valueStart, valueEnd));
  }
}

/** The wanted attribute `k` with the value bytes [from, to) of a UTF-8 page, its character references decoded. */
function wantedAttribute(b: Buffer, k: number, from: number, to: number): [string, string] {
  const value = to > from ? b.toString('utf8', from, to) : '';
  return [WANTED_NAMES[k], value.includes('&') ? decodeHTMLAttribute(value) : value];
}

/** Index after the first '>' at or after `from`, or b.length. */
function byteAfterGt(b: Buffer, from: number): number {
  const gt = b.indexOf(62, from);
  return gt < 0 ? b.length : gt + 1;
}

/** Start of the first `</name` followed by whitespace, '/' or '>' (ASCII case-insensitive) at or after `from`. */
function byteRawTextEnd(b: Buffer, code: number, from: number): number {
  const name = RAW_TEXT_NAMES[code - B_RAW];
  const n = b.length;
  for (let p = from; ; p++) {
    p = b.indexOf(60, p);
    if (p < 0) return n;
    if (p + 2 + name.length >= n || b[p + 1] !== 47) continue;
    let k = 0;
    while (k < name.length && (b[p + 2 + k] | 0x20) === name[k]) k++;
    if (k < name.length) continue;
    const c = b[p + 2 + k];
    if (c === 9 || c === 10 || c === 12 || c === 13 || c === 32 || c === 47 || c === 62) return p;
  }
}

/** Index after the end of the comment whose "<!--" is at `lt` ('-->' or '--!>'), or -1 when unterminated. */
function byteCommentEnd(b: Buffer, lt: number): number {
  const n = b.length;
  let p = lt + 4;
  for (;;) {
    p = b.indexOf('--', p, 'latin1');
    if (p < 0) return -1;
    if (p + 2 < n && b[p + 2] === 62) return p + 3;
    if (p + 3 < n && b[p + 2] === 33 && b[p + 3] === 62) return p + 4;
    p++;
  }
}

const IMG_START = [Buffer.from('<i'), Buffer.from('<I')];

/**
 * The last index of a '<' followed by [iI][mM], or -1. An <img> or <image> start tag begins with those three
 * bytes (its name is matched ASCII case-insensitively), so none begins after this index. "<i" is looked for
 * first, then "<I" only after the last "<im"/"<iM" found (a page rarely has "<I": searching for it in the whole
 * page read every byte of it, backwards, a second time).
 */
function lastImgStart(b: Buffer): number {
  const best = lastImgStartOf(b, IMG_START[0], -1);
  return lastImgStartOf(best < 0 ? b : b.subarray(best + 1), IMG_START[1], best);
}

/** The last index > `after` of `pattern` followed by [mM] in `b` (a view of the page at `after + 1`, or the page). */
function lastImgStartOf(view: Buffer, pattern: Buffer, after: number): number {
  const shift = after < 0 ? 0 : after + 1;
  let from = view.length - 1;
  while (from >= 0) {
    const at = view.lastIndexOf(pattern, from);
    if (at < 0) break;
    if (at + 2 < view.length && (view[at + 2] | 0x20) === 0x6d /* m */) return at + shift;
    from = at - 1;
  }
  return after;
}

/**
 * scanImgTags over the bytes of a page that is valid UTF-8 (see above). Tags are read in document order and
 * only <img>/<image> ones produce output, so the scan stops at the first tag after the last place one could
 * begin (lastImgStart): on real pages that skips about half of the bytes.
 */
export function scanImgTagsUtf8(b: Buffer, onImg: (img: ImgTag) => void): void {
  const wasm = chooseWasmScanner(htmlScannerMode, b.length, WASM_MAX_PAGE, wasmHtmlScanner, HTMLSCAN_WASM_FILE);
  const found = wasm === null ? null : wasm.scan(b);
  if (found !== null) {
    htmlScanCounts.wasm++;
    for (const img of imgTagsOf(b, found)) onImg(img);
    return;
  }
  htmlScanCounts.js++;
  scanImgTagsUtf8Js(b, onImg);
}

/** Which scanner reads UTF-8 pages (see ScannerMode). */
let htmlScannerMode: ScannerMode = 'auto';

/** Pages each scanner has read in this process. */
export const htmlScanCounts = { wasm: 0, js: 0 };

/** Picks the HTML scanner; 'wasm' throws on a scan when the module cannot load (instead of falling back). */
export function setHtmlScanner(mode: ScannerMode): void {
  htmlScannerMode = mode;
}

/** The tags of a WebAssembly scan, with their values decoded as byteImgAttributes does (read out before any onImg). */
function imgTagsOf(b: Buffer, found: WasmImgTags): ImgTag[] {
  const tags: ImgTag[] = [];
  const v = found.out;
  let o = 0;
  for (let t = 0; t < found.count; t++) {
    const m = v[o++];
    const attrs: Array<[string, string]> = [];
    for (let j = 0; j < m; j++, o += 3) attrs.push(wantedAttribute(b, v[o], v[o + 1], v[o + 2]));
    tags.push({ attrs });
  }
  return tags;
}

/** The JS scanner (the reference for the WebAssembly one, and its fallback). */
function scanImgTagsUtf8Js(b: Buffer, onImg: (img: ImgTag) => void): void {
  if (!primed) prime();
  const n = b.length;
  const last = lastImgStart(b);
  let foreignDepth = 0; // inside <svg> or <math>
  let i = 0;
  for (;;) {
    const lt = byteIndexOf(b, 60, i);
    if (lt + 1 >= n || lt > last) return;
    const c = b[lt + 1];
    const lower = c | 0x20;
    if (lower >= 97 && lower <= 122) {
      const afterName = byteTagNameEnd(b, lt + 2);
      const code = byteTagCode(b, lt + 1, afterName);
      if (code === B_IMG || (code === B_IMAGE && foreignDepth === 0)) {
        const attrs: Array<[string, string]> = [];
        i = byteImgAttributes(b, afterName, attrs);
        if (i < 0) return; // the input ends inside the tag: HTML5 drops it, and nothing follows
        onImg({ attrs });
        continue;
      }
      i = byteSkipTag(b, afterName);
      if (code === 0 || code === B_IMAGE) continue;
      if (code === B_SVG || code === B_MATH) {
        if (b[i - 2] !== 47) foreignDepth++; // not self-closing
      } else if (foreignDepth === 0) {
        if (code === B_PLAINTEXT) return;
        i = byteRawTextEnd(b, code, i);
      }
    } else if (c === 47 /* / */) {
      const c2 = lt + 2 < n ? b[lt + 2] : 0;
      const lower2 = c2 | 0x20;
      if (lower2 >= 97 && lower2 <= 122) {
        const afterName = byteTagNameEnd(b, lt + 3);
        if (foreignDepth > 0) {
          const code = byteTagCode(b, lt + 2, afterName);
          if (code === B_SVG || code === B_MATH) foreignDepth--;
        }
        i = byteSkipTag(b, afterName);
      } else if (c2 === 62) {
        i = lt + 3; // "</>" is ignored
      } else {
        i = byteAfterGt(b, lt + 2); // bogus comment
      }
    } else if (c === 33 /* ! */) {
      if (lt + 3 < n && b[lt + 2] === 45 && b[lt + 3] === 45) {
        if (lt + 4 < n && b[lt + 4] === 62) i = lt + 5; // <!-->
        else if (lt + 5 < n && b[lt + 4] === 45 && b[lt + 5] === 62) i = lt + 6; // <!--->
        else {
          const e = byteCommentEnd(b, lt);
          if (e < 0) return; // an unterminated comment runs to the end
          i = e;
        }
      } else {
        i = byteAfterGt(b, lt + 2); // doctype, CDATA (bogus comment in HTML)
      }
    } else if (c === 63 /* ? */) {
      i = byteAfterGt(b, lt + 2);
    } else {
      i = lt + 1; // a '<' that starts no tag is text
    }
  }
}

/**
 * Type-feedback priming, on first use: a few passes over a small page that takes every branch of the scanner.
 * V8 optimizes the scanner after a few pages, for the branches it has seen run; the first page that needs
 * another one (a comment form, an unterminated value, ...) throws the optimized code away, and this happened
 * several times over the first megabytes of a file. Priming costs about a millisecond, once per process.
 */
const PRIMER = Buffer.from(
  '<!DOCTYPE html><?x?><html><head><title>t</title><style>a{}</STYLE ><script>if(a<b)x("<img src=n>")</script>' +
    '<!--c--><!----><!--><!---><!-- x --!><textarea>x</textarea><xmp>x</xmp><iframe src=\'x\'>y</iframe><noembed></noembed>' +
    '<noframes></noframes></head><body class="a b" data-x=\'y\' =z w = \'v\' u= t/ ><a href=x title="y > z">k</a></>< x</ 9><br/>' +
    '<p>\u00e9</p><img src="a.png" alt=\'A &amp; B\' title=T data-image-title="D" SRC=dup><img data-image-title=d src=e><IMG ALT=x><image src=i.png>' +
    '<img src=a/><svg><image src=n/><title>x</title><math/></svg><svg/><math></math><img src="x',
  'utf8',
);
let primed = false;

function prime(): void {
  primed = true;
  for (let k = 0; k < 4; k++) scanImgTagsUtf8Js(PRIMER, () => undefined);
  scanImgTagsUtf8Js(Buffer.from('<plaintext><img src=x>'), () => undefined);
}

const BOM_UTF8 = [0xef, 0xbb, 0xbf];
const META_CHARSET = /<meta[^>]*?charset\s*=\s*["']?\s*([^\s"'\/>;]+)/i;

/** The page's character encoding: BOM, else a <meta> charset in the first 1024 bytes, else UTF-8. */
export function sniffCharset(body: Buffer): string {
  if (body[0] === BOM_UTF8[0] && body[1] === BOM_UTF8[1] && body[2] === BOM_UTF8[2]) return 'utf-8';
  if ((body[0] === 0xfe && body[1] === 0xff) || (body[0] === 0xff && body[1] === 0xfe)) return body[0] === 0xfe ? 'utf-16be' : 'utf-16le';
  const m = META_CHARSET.exec(body.subarray(0, 1024).toString('latin1'));
  if (!m) return 'utf-8';
  const label = m[1].toLowerCase();
  if (label.startsWith('utf-16')) return 'utf-8'; // HTML: a meta utf-16 declaration means utf-8
  if (label === 'utf-8' || label === 'utf8') return 'utf-8';
  try {
    new TextDecoder(label);
    return label;
  } catch {
    return 'utf-8';
  }
}

/** Decodes a page, dropping undecodable bytes (as the reference's `errors="ignore"` does). */
export function decodeHtml(body: Buffer): string {
  return decodeHtmlAs(body, sniffCharset(body));
}

/**
 * The UTF-8 of what decodeHtmlAs(body, 'utf-8') gives: a valid UTF-8 page as it is; otherwise every byte outside
 * a well-formed sequence dropped, and U+FFFD too. The WebAssembly module keeps the bytes directly; the JS way
 * decodes and encodes again (several times slower on real pages, where a few stray bytes are typical).
 */
export function wellFormedUtf8Of(body: Buffer): Buffer {
  if (isUtf8(body)) return body;
  const wasm = chooseWasmScanner(htmlScannerMode, body.length, WASM_MAX_PAGE, wasmHtmlScanner, HTMLSCAN_WASM_FILE);
  const kept = wasm === null ? null : wasm.keepWellFormedUtf8(body);
  return kept ?? Buffer.from(decodeHtmlAs(body, 'utf-8'), 'utf8');
}

/** `decodeHtml` with the charset already sniffed. */
export function decodeHtmlAs(body: Buffer, charset: string): string {
  if (charset === 'utf-8') {
    const text = body.toString('utf8'); // fast path; invalid sequences become U+FFFD, which we drop
    return isUtf8(body) ? text : text.replace(/\uFFFD/g, '');
  }
  return new TextDecoder(charset, { fatal: false }).decode(body).replace(/\uFFFD/g, '');
}

