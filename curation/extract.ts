/**
 * Candidate extraction (spec §1): Common Crawl WAT/WARC records → image URL + alt/title/data-image-title
 * texts, with per-file (uuid, text) dedup and an optional language filter. Pure: no I/O beyond the
 * byte stream it is handed.
 */
import { isUtf8 } from 'node:buffer';
import { decodeHtmlAs, type ImgTag, scanImgTags, scanImgTagsUtf8, sniffCharset } from './html';
import { parseHttpResponse } from './http';
import type { LanguageIdentifier } from './lid';
import { isWellFormedUnicode, pyStrip } from './pytext';
import { imageUuid, urljoin } from './url';
import { readWarcRecordBatches, recordHeader, type WarcRecord } from './warc';

export const TEXT_KEYS = ['alt', 'title', 'data-image-title'] as const;
export type TextKey = (typeof TEXT_KEYS)[number];

export interface Candidate {
  uuid: string;
  url: string;
  /** [attribute, text] in the reference's order: WAT in key priority, WARC in document order. */
  texts: Array<[TextKey, string]>;
  /** Detected language per text (parallel to texts); null when no identifier was given. */
  langs: Array<string | null>;
}

export interface ExtractStats {
  records: number;
  watRecords: number;
  responseRecords: number;
  pagesSkipped: number;
  badRecords: number;
  imgLinks: number;
  unresolvableUrls: number;
  textsSeen: number;
  textsFilteredByLanguage: number;
  textsDuplicate: number;
  candidates: number;
  texts: number;
}

export function emptyExtractStats(): ExtractStats {
  return {
    records: 0, watRecords: 0, responseRecords: 0, pagesSkipped: 0, badRecords: 0, imgLinks: 0,
    unresolvableUrls: 0, textsSeen: 0, textsFilteredByLanguage: 0, textsDuplicate: 0, candidates: 0, texts: 0,
  };
}

export interface ExtractOptions {
  /** Detects the language of every text; null skips detection (`--lid off`). */
  lid?: LanguageIdentifier | null;
  /** Keep only texts in these languages; null keeps all (languages are still recorded). */
  keepLanguages?: ReadonlySet<string> | null;
  /** HTML pages larger than this are skipped and counted (bounds parser work per page). */
  maxPageBytes?: number;
  maxRecordBytes?: number;
}

const DEFAULT_MAX_PAGE = 8 * 1024 * 1024;
const IMG_LINK = Buffer.from('IMG@');

/** Text cleaning of the WAT path: \n and \r become spaces, then Python strip. */
export function cleanWatText(text: string): string {
  return pyStrip(hasCrLf(text) ? text.replace(/[\n\r]/g, ' ') : text);
}

/** Text cleaning of the WARC path: Python strip, then \n and \r removed (the reference's asymmetry). */
export function cleanWarcText(text: string): string {
  const stripped = pyStrip(text);
  return hasCrLf(stripped) ? stripped.replace(/[\n\r]/g, '') : stripped;
}

function hasCrLf(text: string): boolean {
  return text.indexOf('\n') >= 0 || text.indexOf('\r') >= 0;
}

/** Per-file extraction state: the (uuid → texts already emitted) dedup map lives for one input file. */
export class ShardExtractor {
  readonly stats = emptyExtractStats();
  private readonly emitted = new Map<string, Set<string>>();
  private readonly maxPage: number;
  /** Records with a larger block are skipped (counted), bounding memory per record. */
  readonly maxRecordBytes: number | undefined;

  constructor(private readonly opts: ExtractOptions = {}) {
    this.maxPage = opts.maxPageBytes ?? DEFAULT_MAX_PAGE;
    this.maxRecordBytes = opts.maxRecordBytes;
  }

  /** Builds a candidate from a resolved URL and its cleaned texts, applying LID and per-file dedup. */
  private emit(url: string, texts: Array<[TextKey, string]>, out: Candidate[]): void {
    const uuid = imageUuid(url);
    if (uuid === null) {
      this.stats.unresolvableUrls++;
      return;
    }
    const lid = this.opts.lid ?? null;
    const keep = this.opts.keepLanguages ?? null;
    let seen = this.emitted.get(uuid);
    const cand: Candidate = { uuid, url, texts: [], langs: [] };
    for (const [key, text] of texts) {
      this.stats.textsSeen++;
      const lang = lid ? lid.lang(text) : null;
      if (keep && lang !== null && !keep.has(lang)) {
        this.stats.textsFilteredByLanguage++;
        continue;
      }
      if (seen === undefined) {
        seen = new Set();
        this.emitted.set(uuid, seen);
      }
      if (seen.has(text)) {
        this.stats.textsDuplicate++;
        continue;
      }
      seen.add(text);
      cand.texts.push([key, text]);
      cand.langs.push(lang);
    }
    if (cand.texts.length > 0) {
      this.stats.candidates++;
      this.stats.texts += cand.texts.length;
      out.push(cand);
    }
  }

  /** WAT metadata record (spec §1a). */
  fromWatPayload(targetUri: string, payload: Buffer, out: Candidate[] = []): Candidate[] {
    this.stats.watRecords++;
    // Only records with an IMG@ link can yield anything, unless the JSON escapes characters of it.
    if (payload.indexOf(IMG_LINK) < 0 && payload.indexOf(0x5c /* \ */) < 0) {
      if (isUtf8(payload)) return out; // valid UTF-8 and no image link: nothing to parse
    }
    if (!isUtf8(payload)) {
      this.stats.badRecords++;
      return out;
    }
    // The scanner reads almost every payload; a payload it rejects or leaves undecided goes through JSON.parse,
    // which then has the last word on validity.
    const links = scanWatImageLinks(payload);
    if (links === undefined || links === null) return this.fromWatJson(targetUri, payload, out);
    for (let i = 0; i < links.length; i += 4) {
      this.watImage(targetUri, links[i] as string, links[i + 1], links[i + 2], links[i + 3], out);
    }
    return out;
  }

  /** The general WAT path: JSON.parse of the whole payload (already known to be valid UTF-8). */
  private fromWatJson(targetUri: string, payload: Buffer, out: Candidate[]): Candidate[] {
    let doc: unknown;
    try {
      doc = JSON.parse(payload.toString('utf8'));
    } catch {
      this.stats.badRecords++;
      return out;
    }
    const links = (doc as any)?.Envelope?.['Payload-Metadata']?.['HTTP-Response-Metadata']?.['HTML-Metadata']?.Links;
    if (!Array.isArray(links)) return out;
    for (const link of links) {
      if (link === null || typeof link !== 'object') continue;
      const path = link.path;
      if (typeof path !== 'string' || !path.startsWith('IMG@/src') || typeof link.url !== 'string') continue;
      this.watImage(targetUri, link.url, link.alt, link.title, link['data-image-title'], out);
    }
    return out;
  }

  /** One `IMG@/src` link with a url: resolve, clean the texts (spec §1a), emit. */
  private watImage(targetUri: string, src: string, alt: unknown, title: unknown, dataImageTitle: unknown, out: Candidate[]): void {
    this.stats.imgLinks++;
    const url = urljoin(targetUri, src);
    if (url === null) {
      this.stats.unresolvableUrls++;
      return;
    }
    const texts: Array<[TextKey, string]> = [];
    if (typeof alt === 'string') {
      const text = cleanWatText(alt);
      if (text.length > 0) texts.push(['alt', text]);
    }
    if (typeof title === 'string') {
      const text = cleanWatText(title);
      if (text.length > 0) texts.push(['title', text]);
    }
    if (typeof dataImageTitle === 'string') {
      const text = cleanWatText(dataImageTitle);
      if (text.length > 0) texts.push(['data-image-title', text]);
    }
    this.emit(url, texts, out);
  }

  /** HTML page of a WARC response record (spec §1b). */
  fromHtml(targetUri: string, body: Buffer, out: Candidate[] = []): Candidate[] {
    if (body.length > this.maxPage) {
      this.stats.pagesSkipped++;
      return out;
    }
    // The scanner reads UTF-8 bytes (see scanImgTagsUtf8): a valid UTF-8 page (nearly all) as it is, any other
    // page decoded and re-encoded. Decoding yields well-formed text (undecodable bytes become U+FFFD, which is
    // dropped), so its UTF-8 encoding is valid and decodes back to exactly that text.
    let utf8: Buffer;
    let html: string | null = null;
    try {
      const charset = sniffCharset(body);
      if (charset === 'utf-8' && isUtf8(body)) {
        utf8 = body;
      } else {
        html = decodeHtmlAs(body, charset);
        utf8 = Buffer.from(html, 'utf8');
      }
    } catch {
      this.stats.pagesSkipped++;
      return out;
    }
    const onImg = (img: ImgTag): void => {
      this.stats.imgLinks++;
      let url: string | null = null;
      let sawSrc = false;
      const texts: Array<[TextKey, string]> = [];
      for (const [key, raw] of img.attrs) {
        const value = cleanWarcText(raw);
        if (value.length === 0) continue;
        if (key === 'src') {
          sawSrc = true;
          url = urljoin(targetUri, value);
        } else {
          texts.push([key as TextKey, value]);
        }
      }
      if (url === null) {
        if (sawSrc) this.stats.unresolvableUrls++;
        return;
      }
      this.emit(url, texts, out);
    };
    if (html === null || isWellFormedUnicode(html)) scanImgTagsUtf8(utf8, onImg);
    else scanImgTags(html, onImg); // (not reached: decoding never leaves a lone surrogate)
    return out;
  }

  /** Dispatches one WARC record to the WAT or WARC path; other records yield nothing. */
  fromRecord(rec: WarcRecord, out: Candidate[] = []): Candidate[] {
    this.stats.records++;
    if (rec.block === null || rec.targetUri === undefined) {
      if (rec.block === null && (rec.type === 'response' || rec.type === 'metadata')) this.stats.pagesSkipped++;
      return out;
    }
    if (rec.type === 'metadata' && (recordHeader(rec, 'content-type') ?? '').includes('json')) {
      if (!isWellFormedUnicode(rec.targetUri)) return out;
      return this.fromWatPayload(rec.targetUri, rec.block, out);
    }
    if (rec.type === 'response') {
      this.stats.responseRecords++;
      const http = parseHttpResponse(rec.block, this.maxPage);
      if (http === null) return out; // not an HTTP response (dns:, resource-like payloads)
      return this.fromHtml(rec.targetUri, http.body, out);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// WAT payload scanner: the image links of Envelope > Payload-Metadata > HTTP-Response-Metadata > HTML-Metadata >
// Links without building the document. It checks the whole payload against the JSON grammar (RFC 8259, what
// JSON.parse accepts) and reads the objects on that path with JSON.parse's rules: the last of duplicate keys
// wins, and anything but an object on the path (or an array as Links) means no links. A payload it rejects or
// is not sure of (an escaped key where keys matter, very deep nesting) goes to JSON.parse, which has the last
// word. test/extract-fastpaths.test.ts checks it against JSON.parse.

/** Keys of the path to the links, as bytes. */
const WAT_PATH = ['Envelope', 'Payload-Metadata', 'HTTP-Response-Metadata', 'HTML-Metadata', 'Links'].map((k) => Buffer.from(k));
const IMG_SRC = Buffer.from('IMG@/src');
const MAX_DEPTH = 1000;

// Roles of the open containers: 0-4 an object on the path (looking for WAT_PATH[role]), then:
const R_LINKS = 5; // the Links array
const R_LINK = 6; // an object in Links
const R_OBJECT = 7; // any other object
const R_ARRAY = 8; // any other array

// Scanner states.
const S_VALUE = 0;
const S_VALUE_OR_CLOSE = 1; // after '['
const S_KEY = 2;
const S_KEY_OR_CLOSE = 3; // after '{'
const S_AFTER = 4; // after a value

/** 1 for the characters that may follow '\' (besides 'u'). */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

const roles = new Uint8Array(MAX_DEPTH + 1);
/** found.length when the path object at that depth was opened (a later duplicate key drops what came before). */
const marks = new Int32Array(MAX_DEPTH + 1);

// The members of the current link object that matter: kind (0 absent or not a string, 1 string, 2 string with
// escapes) and the bytes between the quotes.
const K_PATH = 0;
const K_URL = 1;
const K_ALT = 2;
const K_TITLE = 3;
const K_DIT = 4;
const LINK_KEYS = [Buffer.from('path'), Buffer.from('url'), Buffer.from('alt'), Buffer.from('title'), Buffer.from('data-image-title')];
const NOT_STRING = 0;
const PLAIN_STRING = 1;
const ESCAPED_STRING = 2;
const linkKind = new Uint8Array(5);
const linkFrom = new Int32Array(5);
const linkTo = new Int32Array(5);

/** Index of the quote closing the string opened at `p`: ≥ 0 without escapes, -2 - index with escapes, -1 if invalid. */
function stringEnd(b: Buffer, p: number, end: number): number {
  let escapes = false;
  p++;
  for (;;) {
    // Up to the next byte that is '"', '\\' or a control character (four at a time while possible).
    let c = 0;
    for (;;) {
      if (p + 4 <= end) {
        c = b[p];
        if (c < 0x20 || c === 0x22 || c === 0x5c) break;
        c = b[p + 1];
        if (c < 0x20 || c === 0x22 || c === 0x5c) {
          p += 1;
          break;
        }
        c = b[p + 2];
        if (c < 0x20 || c === 0x22 || c === 0x5c) {
          p += 2;
          break;
        }
        c = b[p + 3];
        if (c < 0x20 || c === 0x22 || c === 0x5c) {
          p += 3;
          break;
        }
        p += 4;
      } else {
        while (p < end && (c = b[p]) >= 0x20 && c !== 0x22 && c !== 0x5c) p++;
        break;
      }
    }
    if (p >= end) return -1;
    if (c === 0x22) return escapes ? -2 - p : p;
    if (c !== 0x5c) return -1; // a control character
    escapes = true;
    if (p + 1 >= end) return -1;
    const e = b[p + 1];
    if (e === 0x75 /* u */) {
      if (p + 5 >= end || HEX[b[p + 2]] === 0 || HEX[b[p + 3]] === 0 || HEX[b[p + 4]] === 0 || HEX[b[p + 5]] === 0) return -1;
      p += 6;
    } else if (SIMPLE_ESCAPE[e] === 1) {
      p += 2;
    } else {
      return -1;
    }
  }
}

function digitsEnd(b: Buffer, p: number, end: number): number {
  while (p < end && b[p] >= 0x30 && b[p] <= 0x39) p++;
  return p;
}

/** Index after the number starting at `p`, or -1. */
function numberEnd(b: Buffer, p: number, end: number): number {
  if (b[p] === 0x2d /* - */) p++;
  if (p >= end) return -1;
  if (b[p] === 0x30) p++;
  else {
    const q = digitsEnd(b, p, end);
    if (q === p) return -1;
    p = q;
  }
  if (p < end && b[p] === 0x2e /* . */) {
    const q = digitsEnd(b, p + 1, end);
    if (q === p + 1) return -1;
    p = q;
  }
  if (p < end && (b[p] === 0x65 || b[p] === 0x45) /* e E */) {
    p++;
    if (p < end && (b[p] === 0x2b || b[p] === 0x2d)) p++;
    const q = digitsEnd(b, p, end);
    if (q === p) return -1;
    p = q;
  }
  return p;
}

/** Index after the literal `word` at `p`, or -1. */
function literalEnd(b: Buffer, p: number, end: number, word: string): number {
  if (p + word.length > end) return -1;
  for (let k = 0; k < word.length; k++) if (b[p + k] !== word.charCodeAt(k)) return -1;
  return p + word.length;
}

/** Bytes [from, to) of `b` equal `key`. */
function bytesEqual(b: Buffer, from: number, to: number, key: Buffer): boolean {
  if (to - from !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[from + k] !== key[k]) return false;
  return true;
}

/** Which link member the key [from, to) names, or -1. */
function linkKeyOf(b: Buffer, from: number, to: number): number {
  switch (to - from) {
    case 3: {
      const c0 = b[from];
      if (c0 === 0x75 /* u */) return b[from + 1] === 0x72 && b[from + 2] === 0x6c ? K_URL : -1;
      if (c0 === 0x61 /* a */) return b[from + 1] === 0x6c && b[from + 2] === 0x74 ? K_ALT : -1;
      return -1;
    }
    case 4:
      return b[from] === 0x70 && b[from + 1] === 0x61 && b[from + 2] === 0x74 && b[from + 3] === 0x68 ? K_PATH : -1;
    case 5:
      return b[from] === 0x74 && b[from + 1] === 0x69 && b[from + 2] === 0x74 && b[from + 3] === 0x6c && b[from + 4] === 0x65 ? K_TITLE : -1;
    case 16:
      return bytesEqual(b, from, to, LINK_KEYS[K_DIT]) ? K_DIT : -1;
    default:
      return -1;
  }
}

/** The JS string of the JSON string literal with content [from, to). */
function stringValue(b: Buffer, k: number): string {
  const from = linkFrom[k];
  const to = linkTo[k];
  return linkKind[k] === ESCAPED_STRING ? (JSON.parse(b.toString('utf8', from - 1, to + 1)) as string) : b.toString('utf8', from, to);
}

/** A link object just closed: append it to `found` when it is an image link with a url. */
function finishLink(b: Buffer, found: unknown[]): void {
  if (linkKind[K_PATH] === NOT_STRING || linkKind[K_URL] === NOT_STRING) return;
  if (linkKind[K_PATH] === PLAIN_STRING) {
    const from = linkFrom[K_PATH];
    if (linkTo[K_PATH] - from < IMG_SRC.length) return;
    for (let k = 0; k < IMG_SRC.length; k++) if (b[from + k] !== IMG_SRC[k]) return;
  } else if (!stringValue(b, K_PATH).startsWith('IMG@/src')) {
    return;
  }
  found.push(
    stringValue(b, K_URL),
    linkKind[K_ALT] === NOT_STRING ? undefined : stringValue(b, K_ALT),
    linkKind[K_TITLE] === NOT_STRING ? undefined : stringValue(b, K_TITLE),
    linkKind[K_DIT] === NOT_STRING ? undefined : stringValue(b, K_DIT),
  );
}

function clearLink(): void {
  linkKind[0] = NOT_STRING;
  linkKind[1] = NOT_STRING;
  linkKind[2] = NOT_STRING;
  linkKind[3] = NOT_STRING;
  linkKind[4] = NOT_STRING;
}

function spaceEnd(b: Buffer, p: number, end: number): number {
  while (p < end) {
    const w = b[p];
    if (w !== 0x20 && w !== 0x0a && w !== 0x0d && w !== 0x09) break;
    p++;
  }
  return p;
}

/**
 * The object at `p` (a '{') when its members are all strings, numbers, true, false or null and its keys have
 * no escapes: the index after its '}', having recorded the link members when `isLink` (as the general loop
 * would). -1 for anything else (nested values, escaped keys, invalid JSON), which the general loop then reads.
 */
function flatObjectEnd(b: Buffer, p: number, end: number, isLink: boolean): number {
  if (isLink) clearLink();
  p = spaceEnd(b, p + 1, end);
  if (p < end && b[p] === 0x7d) return p + 1;
  for (;;) {
    if (p >= end || b[p] !== 0x22) return -1;
    const keyEnd = stringEnd(b, p, end);
    if (keyEnd < 0) return -1; // invalid, or an escaped key
    const k = isLink ? linkKeyOf(b, p + 1, keyEnd) : -1;
    // Whitespace is rare between tokens: look for the expected byte first.
    p = keyEnd + 1;
    if (p < end && b[p] !== 0x3a) p = spaceEnd(b, p, end);
    if (p >= end || b[p] !== 0x3a) return -1;
    p++;
    if (p < end && b[p] !== 0x22) p = spaceEnd(b, p, end);
    if (p >= end) return -1;
    const c = b[p];
    if (c === 0x22) {
      const q = stringEnd(b, p, end);
      if (q === -1) return -1;
      const close = q >= 0 ? q : -2 - q;
      if (k >= 0) {
        linkKind[k] = q >= 0 ? PLAIN_STRING : ESCAPED_STRING;
        linkFrom[k] = p + 1;
        linkTo[k] = close;
      }
      p = close + 1;
    } else {
      let next: number;
      if (c === 0x74) next = literalEnd(b, p, end, 'true');
      else if (c === 0x66) next = literalEnd(b, p, end, 'false');
      else if (c === 0x6e) next = literalEnd(b, p, end, 'null');
      else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) next = numberEnd(b, p, end);
      else return -1; // a nested object or array (or invalid)
      if (next < 0) return -1;
      if (k >= 0) linkKind[k] = NOT_STRING;
      p = next;
    }
    if (p >= end) return -1;
    let d = b[p];
    if (d !== 0x2c && d !== 0x7d) {
      p = spaceEnd(b, p, end);
      if (p >= end) return -1;
      d = b[p];
    }
    p++;
    if (d === 0x7d) return p;
    if (d !== 0x2c) return -1;
    if (p < end && b[p] !== 0x22) p = spaceEnd(b, p, end);
  }
}

/**
 * The image links of a WAT payload (valid UTF-8), flat as [url, alt, title, data-image-title, ...] with
 * undefined for a text that is not a string; null when the payload is not valid JSON (for this scanner);
 * undefined when it leaves the payload to JSON.parse.
 */
export function scanWatImageLinks(b: Buffer): unknown[] | null | undefined {
  if (!watPrimed) primeWatScanner();
  const end = b.length;
  const found: unknown[] = [];
  let p = 0;
  let depth = 0;
  let state = S_VALUE;
  // What the next value is, when it is a container, and which link member it is.
  let objectRole = 0;
  let arrayRole = R_ARRAY;
  let linkKey = -1;
  for (;;) {
    while (p < end) {
      const w = b[p];
      if (w !== 0x20 && w !== 0x0a && w !== 0x0d && w !== 0x09) break;
      p++;
    }
    if (p >= end) return state === S_AFTER && depth === 0 ? found : null;
    const c = b[p];
    if (state === S_AFTER) {
      if (depth === 0) return null; // more than one value
      const role = roles[depth];
      const inObject = role !== R_LINKS && role !== R_ARRAY;
      p++;
      if (c === 0x2c /* , */) {
        if (inObject) {
          state = S_KEY;
        } else {
          state = S_VALUE;
          objectRole = role === R_LINKS ? R_LINK : R_OBJECT;
          arrayRole = R_ARRAY;
          linkKey = -1;
        }
        continue;
      }
      if (c !== (inObject ? 0x7d : 0x5d)) return null;
      if (role === R_LINK) finishLink(b, found);
      depth--;
      continue;
    }
    if (state === S_KEY || state === S_KEY_OR_CLOSE) {
      const role = roles[depth];
      if (c === 0x7d && state === S_KEY_OR_CLOSE) {
        p++;
        if (role === R_LINK) finishLink(b, found);
        depth--;
        state = S_AFTER;
        continue;
      }
      if (c !== 0x22) return null;
      const q = stringEnd(b, p, end);
      if (q === -1) return null;
      const keyFrom = p + 1;
      const keyTo = q >= 0 ? q : -2 - q;
      if (q < 0 && role <= R_LINK && role !== R_LINKS) return undefined; // an escaped key where keys matter
      p = keyTo + 1;
      while (p < end) {
        const w = b[p];
        if (w !== 0x20 && w !== 0x0a && w !== 0x0d && w !== 0x09) break;
        p++;
      }
      if (p >= end || b[p] !== 0x3a /* : */) return null;
      p++;
      objectRole = R_OBJECT;
      arrayRole = R_ARRAY;
      linkKey = -1;
      if (role < R_LINKS) {
        if (bytesEqual(b, keyFrom, keyTo, WAT_PATH[role])) {
          found.length = marks[depth]; // the last of duplicate keys wins
          if (role < WAT_PATH.length - 1) objectRole = role + 1;
          else arrayRole = R_LINKS;
        }
      } else if (role === R_LINK) {
        linkKey = linkKeyOf(b, keyFrom, keyTo);
      }
      state = S_VALUE;
      continue;
    }
    // A value (S_VALUE, S_VALUE_OR_CLOSE).
    if (c === 0x5d && state === S_VALUE_OR_CLOSE) {
      p++;
      depth--;
      state = S_AFTER;
      continue;
    }
    if (c === 0x22) {
      const q = stringEnd(b, p, end);
      if (q === -1) return null;
      const close = q >= 0 ? q : -2 - q;
      if (linkKey >= 0) {
        linkKind[linkKey] = q >= 0 ? PLAIN_STRING : ESCAPED_STRING;
        linkFrom[linkKey] = p + 1;
        linkTo[linkKey] = close;
      }
      p = close + 1;
      state = S_AFTER;
      continue;
    }
    if (linkKey >= 0) linkKind[linkKey] = NOT_STRING; // the last of duplicate keys wins
    if (c === 0x7b /* { */ && (objectRole === R_LINK || objectRole === R_OBJECT)) {
      // Nearly every object off the path is flat (scalar members only): read it in one go.
      const after = flatObjectEnd(b, p, end, objectRole === R_LINK);
      if (after >= 0) {
        if (objectRole === R_LINK) finishLink(b, found);
        p = after;
        state = S_AFTER;
        continue;
      }
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth >= MAX_DEPTH) return undefined;
      const role = c === 0x7b ? objectRole : arrayRole;
      depth++;
      roles[depth] = role;
      marks[depth] = found.length;
      p++;
      if (c === 0x7b) {
        if (role === R_LINK) clearLink();
        state = S_KEY_OR_CLOSE;
      } else {
        state = S_VALUE_OR_CLOSE;
        objectRole = role === R_LINKS ? R_LINK : R_OBJECT;
        arrayRole = R_ARRAY;
        linkKey = -1;
      }
      continue;
    }
    let next: number;
    if (c === 0x74) next = literalEnd(b, p, end, 'true');
    else if (c === 0x66) next = literalEnd(b, p, end, 'false');
    else if (c === 0x6e) next = literalEnd(b, p, end, 'null');
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) next = numberEnd(b, p, end);
    else return null;
    if (next < 0) return null;
    p = next;
    state = S_AFTER;
  }
}

/**
 * Type-feedback priming on first use (see the same in html.ts): a few passes over a small payload that takes
 * every branch of the scanner, so that the optimized code V8 builds after a few records is not thrown away by
 * the first record that needs a branch it had never seen. About a millisecond, once per process.
 */
const WAT_PRIMER = Buffer.from(
  '{"Container":{"Offset":"0","Compressed":true,"n":-1.5e+3,"z":0,"f":false,"x":null},"Envelope":{"Format":"WARC",' +
    '"Payload-Metadata":{"HTTP-Response-Metadata":{"Headers":{"A":"b"},"HTML-Metadata":{"Head":{"Title":"t \\"q\\" \\u00e9",' +
    '"Link":[{"path":"LINK@/href","url":"x"}],"Metas":[]},"Links":[{"path":"A@/href","url":"/a","text":"a"},' +
    '{"path":"IMG@/src","url":"i.png","alt":"A\\nB","title":"T","data-image-title":"D"},{"path":"IMG@/src","url":7,"alt":null},' +
    '{"path":"IMG\\u0040/src","url":"\\/j.png","alt":"x","n":{"a":[1,true]}},{"path":"IMG@/srcset","url":"k"},{},null,[1],' +
    ' { "path" : "IMG@/src" , "url" : "l" , "title" : false } ]}}}},"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":' +
    '{"HTML-Metadata":{"Links":[{"path":"IMG@/src","url":"m","alt":"n"}]}}}}}\r\n',
  'utf8',
);
let watPrimed = false;

function primeWatScanner(): void {
  watPrimed = true;
  for (let k = 0; k < 4; k++) scanWatImageLinks(WAT_PRIMER);
  scanWatImageLinks(Buffer.from('{"a":[1,}'));
  scanWatImageLinks(Buffer.from('{"\\u0061":1}'));
}

/** Streams the candidates of one input file in file order. Throws CorruptInputError after yielding what was recoverable. */
export async function* extractCandidates(
  input: AsyncIterable<Buffer>,
  extractor: ShardExtractor,
): AsyncGenerator<Candidate> {
  const batch: Candidate[] = [];
  for await (const records of readWarcRecordBatches(input, { maxRecordBytes: extractor.maxRecordBytes })) {
    for (const rec of records) {
      extractor.fromRecord(rec, batch);
      if (batch.length > 0) {
        for (const c of batch) yield c;
        batch.length = 0;
      }
    }
  }
}
