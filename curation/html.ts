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
 * states). Calls `onAttr` for each attribute when given. Returns the index after '>' (or html.length).
 */
function readAttributes(html: string, i: number, onAttr: ((name: string, value: string) => void) | null): number {
  const n = html.length;
  for (;;) {
    while (i < n && (isSpace(html.charCodeAt(i)) || html.charCodeAt(i) === 47)) i++;
    if (i >= n) return n;
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
    if (c === 34 || c === 39) return readAttributes(html, i, null);
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
  const charset = sniffCharset(body);
  if (charset === 'utf-8') {
    const text = body.toString('utf8'); // fast path; invalid sequences become U+FFFD, which we drop
    return isUtf8(body) ? text : text.replace(/\uFFFD/g, '');
  }
  return new TextDecoder(charset, { fatal: false }).decode(body).replace(/\uFFFD/g, '');
}

