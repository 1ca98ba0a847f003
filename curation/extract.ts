/**
 * Candidate extraction (spec §1): Common Crawl WAT/WARC records → image URL + alt/title/data-image-title
 * texts, with per-file (uuid, text) dedup and an optional language filter. Pure: no I/O beyond the
 * byte stream it is handed.
 */
import { isUtf8 } from 'node:buffer';
import { decodeHtml, scanImgTags } from './html';
import { parseHttpResponse } from './http';
import type { LanguageIdentifier } from './lid';
import { isWellFormedUnicode, pyStrip } from './pytext';
import { imageUuid, urljoin } from './url';
import { readWarcRecords, type WarcRecord } from './warc';

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
  return pyStrip(text.replace(/[\n\r]/g, ' '));
}

/** Text cleaning of the WARC path: Python strip, then \n and \r removed (the reference's asymmetry). */
export function cleanWarcText(text: string): string {
  return pyStrip(text).replace(/[\n\r]/g, '');
}

/** Per-file extraction state: the (uuid → texts already emitted) dedup map lives for one input file. */
export class ShardExtractor {
  readonly stats = emptyExtractStats();
  private readonly emitted = new Map<string, Set<string>>();
  private readonly maxPage: number;

  constructor(private readonly opts: ExtractOptions = {}) {
    this.maxPage = opts.maxPageBytes ?? DEFAULT_MAX_PAGE;
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
    let doc: unknown;
    try {
      if (!isUtf8(payload)) throw new Error('not UTF-8');
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
      this.stats.imgLinks++;
      const url = urljoin(targetUri, link.url);
      if (url === null) {
        this.stats.unresolvableUrls++;
        continue;
      }
      const texts: Array<[TextKey, string]> = [];
      for (const key of TEXT_KEYS) {
        const raw = link[key];
        if (typeof raw !== 'string') continue;
        const text = cleanWatText(raw);
        if (text.length > 0) texts.push([key, text]);
      }
      this.emit(url, texts, out);
    }
    return out;
  }

  /** HTML page of a WARC response record (spec §1b). */
  fromHtml(targetUri: string, body: Buffer, out: Candidate[] = []): Candidate[] {
    if (body.length > this.maxPage) {
      this.stats.pagesSkipped++;
      return out;
    }
    let html: string;
    try {
      html = decodeHtml(body);
    } catch {
      this.stats.pagesSkipped++;
      return out;
    }
    scanImgTags(html, (img) => {
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
    });
    return out;
  }

  /** Dispatches one WARC record to the WAT or WARC path; other records yield nothing. */
  fromRecord(rec: WarcRecord, out: Candidate[] = []): Candidate[] {
    this.stats.records++;
    if (rec.block === null || rec.targetUri === undefined) {
      if (rec.block === null && (rec.type === 'response' || rec.type === 'metadata')) this.stats.pagesSkipped++;
      return out;
    }
    if (rec.type === 'metadata' && (rec.headers.get('content-type') ?? '').includes('json')) {
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

/** Streams the candidates of one input file in file order. Throws CorruptInputError after yielding what was recoverable. */
export async function* extractCandidates(
  input: AsyncIterable<Buffer>,
  extractor: ShardExtractor,
): AsyncGenerator<Candidate> {
  const batch: Candidate[] = [];
  for await (const rec of readWarcRecords(input, { maxRecordBytes: extractor['opts'].maxRecordBytes })) {
    extractor.fromRecord(rec, batch);
    if (batch.length > 0) {
      yield* batch;
      batch.length = 0;
    }
  }
}
