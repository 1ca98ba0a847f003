/**
 * Candidate extraction (spec §1): Common Crawl WAT/WARC records → image URL + alt/title/data-image-title
 * texts, with per-file (uuid, text) dedup and an optional language filter. Pure: no I/O beyond the
 * byte stream it is handed.
 */
import { isUtf8 } from 'node:buffer';
import { decodeHtmlAs, type ImgTag, scanImgTags, scanImgTagsUtf8, sniffCharset, wellFormedUtf8Of } from './html';
import { httpResponseBody } from './http';
import type { LanguageIdentifier } from './lid';
import { PairSet } from './pair-set';
import { isWellFormedUnicode, pyStrip } from './pytext';
import { imageUuid, urljoin } from './url';
import { readWarcRecordBatches, recordHeader, type WarcRecord } from './warc';
import { chooseWasmScanner, type ScannerMode, WASM_MAX_PAYLOAD, WASM_NEEDS_JS, WASM_TOO_DEEP, WATSCAN_WASM_FILE, type WasmLinks, wasmWatScanner } from './wasm-scanners';

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
  /** Bad records by reason (see BadRecordReason); the values sum to badRecords. */
  badRecordReasons: Partial<Record<BadRecordReason, number>>;
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
    records: 0, watRecords: 0, responseRecords: 0, pagesSkipped: 0, badRecords: 0, badRecordReasons: {}, imgLinks: 0,
    unresolvableUrls: 0, textsSeen: 0, textsFilteredByLanguage: 0, textsDuplicate: 0, candidates: 0, texts: 0,
  };
}

/**
 * Why a record was skipped as bad (counted, never fatal): `not-utf8` a WAT payload that is not UTF-8, `invalid-json`
 * one that is not JSON, `too-deep` one nested deeper than WAT_MAX_DEPTH (parsing it would cost memory and stack
 * out of proportion to its size).
 */
export type BadRecordReason = 'not-utf8' | 'invalid-json' | 'too-deep';

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
/** Image links of one WAT record emitted per slice by extractCandidates (bounds the candidates held at once). */
const LINK_SLICE = 4096;

/** Lone surrogates (a JSON `\ud800` escape in a WAT text): removed, as a text is later encoded as UTF-8. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The text without its lone surrogates (unpaired UTF-16 halves, which no UTF-8 encoder accepts). */
export function dropLoneSurrogates(text: string): string {
  return isWellFormedUnicode(text) ? text : text.replace(LONE_SURROGATE, '');
}

/** Text cleaning of the WAT path: \n and \r become spaces, then Python strip. */
export function cleanWatText(text: string): string {
  text = dropLoneSurrogates(text);
  return pyStrip(hasCrLf(text) ? text.replace(/[\n\r]/g, ' ') : text);
}

/** Text cleaning of the WARC path: Python strip, then \n and \r removed (the reference's asymmetry). */
export function cleanWarcText(text: string): string {
  const stripped = pyStrip(dropLoneSurrogates(text));
  return hasCrLf(stripped) ? stripped.replace(/[\n\r]/g, '') : stripped;
}

function hasCrLf(text: string): boolean {
  return text.indexOf('\n') >= 0 || text.indexOf('\r') >= 0;
}

/** An image link's src resolved against its page: the URL (null: unresolvable) and its uuid once computed. */
interface ResolvedSrc {
  url: string | null;
  /** imageUuid(url); undefined until a link with texts needs it. */
  uuid: string | null | undefined;
}

/** Resolved srcs remembered per page at most (bounds the memory a page of a million distinct links takes). */
const RESOLVED_PER_PAGE = 4096;

/** Per-file extraction state: the (uuid → texts already emitted) dedup map lives for one input file. */
export class ShardExtractor {
  readonly stats = emptyExtractStats();
  /** The (uuid, text) pairs already emitted in this file (compact and exact: see PairSet). */
  private readonly emitted = new PairSet();
  /** Image links of the current WAT record (byte ranges into its payload) not emitted yet. */
  private readonly links = new WatLinkList();
  private pending: { targetUri: string; payload: Buffer; next: number } | null = null;
  /** The image URLs of the current page by src: a third of a real page's image links repeat one before them. */
  private readonly resolved = new Map<string, ResolvedSrc>();
  private resolvedPage: string | null = null;
  private readonly maxPage: number;
  /** Records with a larger block are skipped (counted), bounding memory per record. */
  readonly maxRecordBytes: number | undefined;

  constructor(private readonly opts: ExtractOptions = {}) {
    this.maxPage = opts.maxPageBytes ?? DEFAULT_MAX_PAGE;
    this.maxRecordBytes = opts.maxRecordBytes;
  }

  /**
   * urljoin(targetUri, src) and its uuid, remembered for the page: both are functions of (page URL, src) only, so a
   * repeated src (icons, spacers, the same product image twice) costs a lookup instead of a join and a SHA-224.
   */
  private resolve(targetUri: string, src: string): ResolvedSrc {
    if (this.resolvedPage !== targetUri || this.resolved.size >= RESOLVED_PER_PAGE) {
      this.resolved.clear();
      this.resolvedPage = targetUri;
    }
    let r = this.resolved.get(src);
    if (r === undefined) {
      r = { url: urljoin(targetUri, src), uuid: undefined };
      this.resolved.set(src, r);
    }
    return r;
  }

  /** Builds a candidate from a resolved URL and its cleaned texts, applying LID and per-file dedup. */
  private emit(image: ResolvedSrc, texts: Array<[TextKey, string]>, out: Candidate[]): void {
    const url = image.url;
    if (url === null) {
      this.stats.unresolvableUrls++;
      return;
    }
    if (texts.length === 0) {
      // No candidate either way (about a fifth of image links): only whether the URL has a uuid is counted.
      if (!isWellFormedUnicode(url)) this.stats.unresolvableUrls++;
      return;
    }
    if (image.uuid === undefined) image.uuid = imageUuid(url);
    const uuid = image.uuid;
    if (uuid === null) {
      this.stats.unresolvableUrls++;
      return;
    }
    const lid = this.opts.lid ?? null;
    const keep = this.opts.keepLanguages ?? null;
    // The candidate is built on its first new text: on real shards about half of the texts are duplicates.
    let cand: Candidate | null = null;
    for (const pair of texts) {
      const text = pair[1];
      this.stats.textsSeen++;
      const lang = lid ? lid.lang(text) : null;
      if (keep && lang !== null && !keep.has(lang)) {
        this.stats.textsFilteredByLanguage++;
        continue;
      }
      if (!this.emitted.add(uuid, text)) {
        this.stats.textsDuplicate++;
        continue;
      }
      if (cand === null) cand = { uuid, url, texts: [], langs: [] };
      cand.texts.push(pair); // (each link's pairs are its own)
      cand.langs.push(lang);
    }
    if (cand !== null) {
      this.stats.candidates++;
      this.stats.texts += cand.texts.length;
      out.push(cand);
    }
  }

  private badRecord(reason: BadRecordReason): void {
    this.stats.badRecords++;
    this.stats.badRecordReasons[reason] = (this.stats.badRecordReasons[reason] ?? 0) + 1;
  }

  /**
   * WAT metadata record (spec §1a). The payload is read by scanWatImageLinks without building the document, so
   * memory stays a fraction of the payload's size whatever its shape. With a `linkBudget`, at most that many
   * image links are emitted now; `hasPendingLinks` then tells whether `continueRecord` has more.
   */
  fromWatPayload(targetUri: string, payload: Buffer, out: Candidate[] = [], linkBudget = Infinity): Candidate[] {
    this.stats.watRecords++;
    this.pending = null;
    // Only records with an IMG@ link can yield anything, unless the JSON escapes characters of it.
    if (payload.indexOf(IMG_LINK) < 0 && payload.indexOf(0x5c /* \ */) < 0) {
      if (isUtf8(payload)) return out; // valid UTF-8 and no image link: nothing to parse
    }
    if (!isUtf8(payload)) {
      this.badRecord('not-utf8');
      return out;
    }
    const n = scanWatLinks(payload, this.links);
    if (n === WAT_INVALID) {
      this.badRecord('invalid-json');
      return out;
    }
    if (n === WAT_TOO_DEEP) {
      this.badRecord('too-deep');
      return out;
    }
    this.pending = { targetUri, payload, next: 0 };
    this.continueRecord(out, linkBudget);
    return out;
  }

  /** True while image links of the last WAT record remain to be emitted (see fromWatPayload's linkBudget). */
  get hasPendingLinks(): boolean {
    return this.pending !== null;
  }

  /** Emits up to `linkBudget` more image links of the last WAT record. */
  continueRecord(out: Candidate[], linkBudget = Infinity): Candidate[] {
    const p = this.pending;
    if (p === null) return out;
    const list = this.links;
    const end = Math.min(list.count, p.next + linkBudget);
    const b = p.payload;
    for (let i = p.next; i < end; i++) {
      const o = i * 8;
      const k = i * 4;
      const r = list.ranges;
      const kinds = list.kinds;
      this.watImage(p.targetUri, rangeString(b, kinds[k], r[o], r[o + 1]) as string, rangeString(b, kinds[k + 1], r[o + 2], r[o + 3]),
        rangeString(b, kinds[k + 2], r[o + 4], r[o + 5]), rangeString(b, kinds[k + 3], r[o + 6], r[o + 7]), out);
    }
    p.next = end;
    if (end >= list.count) {
      this.pending = null;
      list.release();
    }
    return out;
  }

  /**
   * The reference path: JSON.parse of the whole payload (already known to be valid UTF-8). Not used by
   * fromWatPayload, which scans instead (its memory does not depend on the payload's shape); kept as the oracle
   * the tests compare the scanner with.
   */
  private fromWatJson(targetUri: string, payload: Buffer, out: Candidate[]): Candidate[] {
    let doc: unknown;
    try {
      doc = JSON.parse(payload.toString('utf8'));
    } catch {
      this.badRecord('invalid-json');
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
    const image = this.resolve(targetUri, src);
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
    this.emit(image, texts, out);
  }

  /** HTML page of a WARC response record (spec §1b). */
  fromHtml(targetUri: string, body: Buffer, out: Candidate[] = []): Candidate[] {
    if (body.length > this.maxPage) {
      this.stats.pagesSkipped++;
      return out;
    }
    // The scanner reads UTF-8 bytes (see scanImgTagsUtf8): a valid UTF-8 page (nearly all) as it is, a page
    // declared UTF-8 with stray bytes as its well-formed bytes (what decoding it gives), any other page decoded and
    // re-encoded. Decoding yields well-formed text (undecodable bytes become U+FFFD, which is dropped), so its
    // UTF-8 encoding is valid and decodes back to exactly that text.
    let utf8: Buffer;
    let html: string | null = null;
    try {
      const charset = sniffCharset(body);
      if (charset === 'utf-8') {
        utf8 = wellFormedUtf8Of(body);
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
      let image: ResolvedSrc | null = null;
      const texts: Array<[TextKey, string]> = [];
      for (const [key, raw] of img.attrs) {
        const value = cleanWarcText(raw);
        if (value.length === 0) continue;
        if (key === 'src') image = this.resolve(targetUri, value);
        else texts.push([key as TextKey, value]);
      }
      if (image !== null) this.emit(image, texts, out); // (no src, or an empty one: nothing)
    };
    if (html === null || isWellFormedUnicode(html)) scanImgTagsUtf8(utf8, onImg);
    else scanImgTags(html, onImg); // (not reached: decoding never leaves a lone surrogate)
    return out;
  }

  /** Dispatches one WARC record to the WAT or WARC path; other records yield nothing. `linkBudget`: see fromWatPayload. */
  fromRecord(rec: WarcRecord, out: Candidate[] = [], linkBudget = Infinity): Candidate[] {
    this.stats.records++;
    this.pending = null;
    if (rec.block === null || rec.targetUri === undefined) {
      if (rec.block === null && (rec.type === 'response' || rec.type === 'metadata')) this.stats.pagesSkipped++;
      return out;
    }
    if (rec.type === 'metadata' && (recordHeader(rec, 'content-type') ?? '').includes('json')) {
      if (!isWellFormedUnicode(rec.targetUri)) return out;
      return this.fromWatPayload(rec.targetUri, rec.block, out, linkBudget);
    }
    if (rec.type === 'response') {
      this.stats.responseRecords++;
      const body = httpResponseBody(rec.block, this.maxPage);
      if (body === null) return out; // not an HTTP response (dns:, resource-like payloads)
      return this.fromHtml(rec.targetUri, body, out);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// WAT payload scanner: the image links of Envelope > Payload-Metadata > HTTP-Response-Metadata > HTML-Metadata >
// Links without building the document. It checks the whole payload against the JSON grammar (RFC 8259, what
// JSON.parse accepts) and reads the objects on that path with JSON.parse's rules: the last of duplicate keys
// wins (escaped keys are decoded), and anything but an object on the path (or an array as Links) means no links.
// It keeps only the byte ranges of the image links' members (32 bytes per link, against the ~60 bytes of JSON a
// link takes), and containers nested deeper than WAT_MAX_DEPTH make the record bad ('too-deep'): JSON.parse
// would accept a 60 MB record of 30 million '[' (V8 parses arrays iteratively) and build 3 GB of arrays.
// test/extract-fastpaths.test.ts checks it against JSON.parse.

/** Keys of the path to the links, as bytes. */
const WAT_PATH = ['Envelope', 'Payload-Metadata', 'HTTP-Response-Metadata', 'HTML-Metadata', 'Links'].map((k) => Buffer.from(k));
const IMG_SRC = Buffer.from('IMG@/src');
/** Deepest container nesting a WAT record may have (real records nest about 8 deep). */
export const WAT_MAX_DEPTH = 512;
const MAX_DEPTH = WAT_MAX_DEPTH;
/** scanWatLinks: the payload is not valid JSON. */
const WAT_INVALID = -1;
/** scanWatLinks: the payload nests deeper than WAT_MAX_DEPTH. */
const WAT_TOO_DEEP = -2;

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
/** 1 for the bytes that end a run of plain string content: '"', '\\' and the control characters. */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[0x22] = 1;
STRING_STOP[0x5c] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

const roles = new Uint8Array(MAX_DEPTH + 1);
/** sink.count when the path object at that depth was opened (a later duplicate key drops what came before). */
const marks = new Int32Array(MAX_DEPTH + 1);

// The members of the current link object that matter: kind (0 absent or not a string, 1 string, 2 string with
// escapes) and the bytes between the quotes.
const K_PATH = 0;
const K_URL = 1;
const K_ALT = 2;
const K_TITLE = 3;
const K_DIT = 4;
const LINK_KEY_NAMES = ['path', 'url', 'alt', 'title', 'data-image-title'];
const LINK_KEYS = LINK_KEY_NAMES.map((k) => Buffer.from(k));
const WAT_PATH_NAMES = WAT_PATH.map((k) => k.toString());
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
    // Up to the next byte that is '"', '\\' or a control character (STRING_STOP; four at a time while possible).
    let c = 0;
    for (;;) {
      if (p + 4 <= end) {
        if (STRING_STOP[b[p]] !== 0) break;
        if (STRING_STOP[b[p + 1]] !== 0) {
          p += 1;
          break;
        }
        if (STRING_STOP[b[p + 2]] !== 0) {
          p += 2;
          break;
        }
        if (STRING_STOP[b[p + 3]] !== 0) {
          p += 3;
          break;
        }
        p += 4;
      } else {
        while (p < end && STRING_STOP[b[p]] === 0) p++;
        break;
      }
    }
    if (p >= end) return -1;
    c = b[p];
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

/**
 * The image links found by a scan: per link the [from, to) byte range of url, alt, title and data-image-title
 * (8 ints) and their kinds (NOT_STRING, PLAIN_STRING, ESCAPED_STRING). Owned by one ShardExtractor, so two
 * extractors can interleave their records.
 */
export class WatLinkList {
  ranges = new Int32Array(8 * 256);
  kinds = new Uint8Array(4 * 256);
  count = 0;

  push(): void {
    if ((this.count + 1) * 4 > this.kinds.length) {
      const ranges = new Int32Array(this.ranges.length * 2);
      ranges.set(this.ranges);
      this.ranges = ranges;
      const kinds = new Uint8Array(this.kinds.length * 2);
      kinds.set(this.kinds);
      this.kinds = kinds;
    }
    const o = this.count * 8;
    const k = this.count * 4;
    const r = this.ranges;
    for (let m = 0; m < 4; m++) {
      this.kinds[k + m] = linkKind[K_URL + m];
      r[o + 2 * m] = linkFrom[K_URL + m];
      r[o + 2 * m + 1] = linkTo[K_URL + m];
    }
    this.count++;
  }

  /** The links of a WebAssembly scan (copied out of the module's memory). */
  setFrom(found: WasmLinks): void {
    if (found.count * 4 > this.kinds.length) {
      let n = this.kinds.length;
      while (n < found.count * 4) n *= 2;
      this.ranges = new Int32Array(2 * n);
      this.kinds = new Uint8Array(n);
    }
    this.ranges.set(found.ranges);
    this.kinds.set(found.kinds);
    this.count = found.count;
  }

  /** Forgets the links, and gives back the memory of a large list. */
  release(): void {
    this.count = 0;
    if (this.kinds.length > 4 * 65536) {
      this.ranges = new Int32Array(8 * 256);
      this.kinds = new Uint8Array(4 * 256);
    }
  }
}

/** The JS string of a JSON string literal with content [from, to) of the given kind; undefined when NOT_STRING. */
function rangeString(b: Buffer, kind: number, from: number, to: number): string | undefined {
  if (kind === NOT_STRING) return undefined;
  return kind === ESCAPED_STRING ? (JSON.parse(b.toString('utf8', from - 1, to + 1)) as string) : b.toString('utf8', from, to);
}

/** The JS string of the link member k. */
function stringValue(b: Buffer, k: number): string {
  return rangeString(b, linkKind[k], linkFrom[k], linkTo[k]) as string;
}

/** The sink of the scan under way (scans are synchronous). */
let sink: WatLinkList = new WatLinkList();

/** A link object just closed: append it to `sink` when it is an image link with a url. */
function finishLink(b: Buffer): void {
  if (linkKind[K_PATH] === NOT_STRING || linkKind[K_URL] === NOT_STRING) return;
  if (linkKind[K_PATH] === PLAIN_STRING) {
    const from = linkFrom[K_PATH];
    if (linkTo[K_PATH] - from < IMG_SRC.length) return;
    for (let k = 0; k < IMG_SRC.length; k++) if (b[from + k] !== IMG_SRC[k]) return;
  } else if (!stringValue(b, K_PATH).startsWith('IMG@/src')) {
    return;
  }
  sink.push();
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
 * undefined for a text that is not a string; null when the payload is not valid JSON; 'too-deep' when it nests
 * deeper than WAT_MAX_DEPTH. (ShardExtractor reads the ranges of scanWatLinks instead, a slice at a time.)
 */
export function scanWatImageLinks(b: Buffer): unknown[] | null | 'too-deep' {
  const list = new WatLinkList();
  const n = scanWatLinks(b, list);
  if (n === WAT_INVALID) return null;
  if (n === WAT_TOO_DEEP) return 'too-deep';
  const found: unknown[] = [];
  for (let i = 0; i < n; i++) {
    for (let m = 0; m < 4; m++) found.push(rangeString(b, list.kinds[i * 4 + m], list.ranges[i * 8 + 2 * m], list.ranges[i * 8 + 2 * m + 1]));
  }
  return found;
}

/** Which scanner reads WAT payloads (see ScannerMode). */
let watScannerMode: ScannerMode = 'auto';

/** Payloads each scanner has read in this process (the WebAssembly one hands a few to the JS one: NEEDS_JS). */
export const watScanCounts = { wasm: 0, js: 0 };

/** Picks the WAT scanner; 'wasm' throws on a scan when the module cannot load (instead of falling back). */
export function setWatScanner(mode: ScannerMode): void {
  watScannerMode = mode;
}

/**
 * Scans a WAT payload (valid UTF-8) into `list`: the number of image links, WAT_INVALID when the payload is not
 * valid JSON, WAT_TOO_DEEP when it nests deeper than WAT_MAX_DEPTH. The WebAssembly scanner (curation/
 * wasm-scanners.ts) reads it when it can; the JS scanner below decides the rest, with the same results.
 */
function scanWatLinks(b: Buffer, list: WatLinkList): number {
  const wasm = chooseWasmScanner(watScannerMode, b.length, WASM_MAX_PAYLOAD, wasmWatScanner, WATSCAN_WASM_FILE);
  const found = wasm === null ? WASM_NEEDS_JS : wasm.scan(b);
  if (typeof found !== 'number') {
    watScanCounts.wasm++;
    list.setFrom(found);
    return found.count;
  }
  if (found !== WASM_NEEDS_JS) {
    watScanCounts.wasm++;
    list.count = 0;
    return found === WASM_TOO_DEEP ? WAT_TOO_DEEP : WAT_INVALID;
  }
  watScanCounts.js++;
  return scanWatLinksJs(b, list);
}

/** The JS scanner (the reference for the WebAssembly one, and its fallback). */
function scanWatLinksJs(b: Buffer, list: WatLinkList): number {
  if (!watPrimed) primeWatScanner();
  list.count = 0;
  sink = list;
  const end = b.length;
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
    if (p >= end) return state === S_AFTER && depth === 0 ? list.count : WAT_INVALID;
    const c = b[p];
    if (state === S_AFTER) {
      if (depth === 0) return WAT_INVALID; // more than one value
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
      if (c !== (inObject ? 0x7d : 0x5d)) return WAT_INVALID;
      if (role === R_LINK) finishLink(b);
      depth--;
      continue;
    }
    if (state === S_KEY || state === S_KEY_OR_CLOSE) {
      const role = roles[depth];
      if (c === 0x7d && state === S_KEY_OR_CLOSE) {
        p++;
        if (role === R_LINK) finishLink(b);
        depth--;
        state = S_AFTER;
        continue;
      }
      if (c !== 0x22) return WAT_INVALID;
      const q = stringEnd(b, p, end);
      if (q === -1) return WAT_INVALID;
      const keyFrom = p + 1;
      const keyTo = q >= 0 ? q : -2 - q;
      // An escaped key where keys matter is decoded (JSON.parse of the key alone: the grammar is already checked).
      const keyName = q < 0 && (role < R_LINKS || role === R_LINK) ? (JSON.parse(b.toString('utf8', p, keyTo + 1)) as string) : null;
      p = keyTo + 1;
      while (p < end) {
        const w = b[p];
        if (w !== 0x20 && w !== 0x0a && w !== 0x0d && w !== 0x09) break;
        p++;
      }
      if (p >= end || b[p] !== 0x3a /* : */) return WAT_INVALID;
      p++;
      objectRole = R_OBJECT;
      arrayRole = R_ARRAY;
      linkKey = -1;
      if (role < R_LINKS) {
        if (keyName === null ? bytesEqual(b, keyFrom, keyTo, WAT_PATH[role]) : keyName === WAT_PATH_NAMES[role]) {
          list.count = marks[depth]; // the last of duplicate keys wins
          if (role < WAT_PATH.length - 1) objectRole = role + 1;
          else arrayRole = R_LINKS;
        }
      } else if (role === R_LINK) {
        linkKey = keyName === null ? linkKeyOf(b, keyFrom, keyTo) : LINK_KEY_NAMES.indexOf(keyName);
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
      if (q === -1) return WAT_INVALID;
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
        if (objectRole === R_LINK) finishLink(b);
        p = after;
        state = S_AFTER;
        continue;
      }
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth >= MAX_DEPTH) return WAT_TOO_DEEP;
      const role = c === 0x7b ? objectRole : arrayRole;
      depth++;
      roles[depth] = role;
      marks[depth] = list.count;
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
    else return WAT_INVALID;
    if (next < 0) return WAT_INVALID;
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
  const list = new WatLinkList();
  for (let k = 0; k < 4; k++) scanWatLinksJs(WAT_PRIMER, list);
  scanWatLinksJs(Buffer.from('{"a":[1,}'), list);
  scanWatLinksJs(Buffer.from('{"\\u0061":1}'), list);
  scanWatLinksJs(Buffer.from('{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Li\\u006eks":[{"\\u0070ath":"IMG@/src","url":"u"}]}}}}}'), list);
  scanWatLinksJs(Buffer.from(`[${'['.repeat(MAX_DEPTH)}`), list);
}

/**
 * The candidates of one input file in file order, a batch at a time: those of the records read in one go, cut so
 * that a batch holds at most 2 x LINK_SLICE candidates (a WAT record with a million links is emitted a slice at a
 * time, each taken by the consumer before the next is built). Throws CorruptInputError after yielding what was
 * recoverable. One yield per batch instead of per candidate: an async generator's yield costs a promise and a
 * result object, about 300 bytes per candidate.
 */
export async function* extractCandidateBatches(
  input: AsyncIterable<Buffer>,
  extractor: ShardExtractor,
): AsyncGenerator<Candidate[]> {
  let batch: Candidate[] = [];
  // Every record of a batch is done with (its links emitted, its payload released) before the next batch is asked
  // for, and candidates hold strings only: the inflater's buffers can be reused.
  for await (const records of readWarcRecordBatches(input, { maxRecordBytes: extractor.maxRecordBytes, recycleBlocks: true })) {
    for (const rec of records) {
      extractor.fromRecord(rec, batch, LINK_SLICE);
      for (;;) {
        if (batch.length >= LINK_SLICE) {
          yield batch;
          batch = [];
        }
        if (!extractor.hasPendingLinks) break;
        extractor.continueRecord(batch, LINK_SLICE);
      }
    }
    if (batch.length > 0) {
      yield batch;
      batch = [];
    }
  }
}

/** extractCandidateBatches, a candidate at a time. */
export async function* extractCandidates(input: AsyncIterable<Buffer>, extractor: ShardExtractor): AsyncGenerator<Candidate> {
  for await (const batch of extractCandidateBatches(input, extractor)) yield* batch;
}
