/**
 * A streaming WARC record reader over Common Crawl shards: per-record gzip members (as CC ships),
 * whole-file gzip, or plain. Records are yielded in file order with their decompressed offset.
 * Malformed input yields what is recoverable, then throws a classified CorruptInputError.
 * (warcio is used by the tests as an independent reader to cross-check this one; this one is
 * several times faster because it only parses what curation needs.)
 */
import { CorruptInputError } from './errors';
import { GUNZIP_TURN_BYTES, yieldToInflate } from './gunzip';
import { OutputRecycler, gunzipMembers } from './gzip-members';

export interface WarcRecord {
  /** Offset of the record's first byte in the decompressed stream. */
  offset: number;
  version: string;
  /** WARC header fields, names lower-cased; the first occurrence wins. */
  headers: Map<string, string>;
  type: string;
  targetUri: string | undefined;
  /** The record block (Content-Length bytes), or null when it was larger than maxRecordBytes and skipped. */
  block: Buffer | null;
  contentLength: number;
}

export interface ReadOptions {
  /** Records with a larger block are skipped (their block is null); bounds memory per record. */
  maxRecordBytes?: number;
  /**
   * readWarcRecordBatches only: the caller is done with every record of a batch, its block included (and any view
   * of it), when it asks for the next batch. The inflater's output buffers are then reused (see OutputRecycler).
   */
  recycleBlocks?: boolean;
}

const DEFAULT_MAX_RECORD = 64 * 1024 * 1024;
/** A block at least this large that is not yet all read is assembled in place as it arrives (see ByteQueue.moveTo). */
const ASSEMBLE_BYTES = 4 * 1024 * 1024;
const MAX_HEADER_BYTES = 1024 * 1024;

/** The bytes of decompressIfGzip, and whether they are being inflated (known once the first chunk is read). */
export interface DecompressedInput extends AsyncIterable<Buffer> {
  readonly inflating: boolean;
}

/**
 * Undo gzip when the stream starts with the gzip magic (one or more members, as Common Crawl ships them); the
 * inflation runs ahead of the reader in libuv's thread pool (libdeflate whole members where it is built, zlib
 * otherwise: see gzip-members.ts and gunzip.ts).
 */
export function decompressIfGzip(input: AsyncIterable<Buffer>, opts: { recycler?: OutputRecycler } = {}): DecompressedInput {
  let inflating = false;
  return {
    get inflating() {
      return inflating;
    },
    async *[Symbol.asyncIterator]() {
      const it = input[Symbol.asyncIterator]();
      let first = await it.next();
      while (!first.done && first.value.length === 0) first = await it.next();
      if (first.done) return;
      const head: Buffer = first.value;
      const rest = (async function* () {
        let done = false;
        try {
          yield head;
          for (;;) {
            const n = await it.next();
            if (n.done) {
              done = true;
              return;
            }
            yield n.value;
          }
        } finally {
          if (!done) await it.return?.(); // the reader stopped early: release the input (a file stream closes)
        }
      })();
      if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
        inflating = true;
        yield* gunzipMembers(rest, { recycler: opts.recycler });
      } else {
        yield* rest;
      }
    },
  };
}

/** A growable byte queue that avoids quadratic concatenation for large blocks. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // read position in chunks[0]
  length = 0;
  /** Absolute offset of the next unread byte. */
  consumed = 0;

  /** With a list: every chunk that leaves the queue is added to it (see ReadOptions.recycleBlocks). */
  constructor(private readonly dropped: Buffer[] | null = null) {}

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /**
   * Flatten the first `n` unread bytes into one buffer (n <= length), without consuming. Only those bytes are
   * copied, and only when they span chunks: the merged copy replaces them at the front of the queue.
   */
  peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const merged = Buffer.allocUnsafe(n);
    let filled = 0;
    let k = 0;
    let from = this.head;
    while (filled < n) {
      const chunk = this.chunks[k];
      const take = Math.min(chunk.length - from, n - filled);
      chunk.copy(merged, filled, from, from + take);
      filled += take;
      if (from + take < chunk.length) {
        this.chunks[k] = chunk.subarray(from + take); // the rest of a partly merged chunk stays queued
        break;
      }
      k++;
      from = 0;
    }
    const gone = this.chunks.splice(0, k, merged);
    if (this.dropped !== null) for (const c of gone) this.dropped.push(c);
    this.head = 0;
    return merged;
  }

  /**
   * Index of the first of `needles` found in the unread bytes (scanning at most `limit` bytes), as
   * [index, which needle]; [-1, -1] when none. Grows its window from 4 KiB so that finding a record header
   * never flattens a large block.
   */
  indexOfAny(needles: Buffer[], limit: number): [number, number] {
    let w = Math.min(this.length, limit, 4096);
    for (;;) {
      const view = this.peek(w);
      let best = -1;
      let which = -1;
      for (let k = 0; k < needles.length; k++) {
        const at = view.indexOf(needles[k]);
        if (at >= 0 && (best < 0 || at < best)) {
          best = at;
          which = k;
        }
      }
      if (best >= 0 || w >= Math.min(this.length, limit)) return [best, which];
      w = Math.min(this.length, limit, w * 4);
    }
  }

  take(n: number): Buffer {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /** Moves the first min(length, dst.length - at) unread bytes into dst at `at` (consuming them); their count. */
  moveTo(dst: Buffer, at: number): number {
    const n = Math.min(this.length, dst.length - at);
    let done = 0;
    while (done < n) {
      const chunk = this.chunks[0];
      const take = Math.min(chunk.length - this.head, n - done);
      chunk.copy(dst, at + done, this.head, this.head + take);
      done += take;
      this.skip(take);
    }
    return n;
  }

  skip(n: number): void {
    this.length -= n;
    this.consumed += n;
    while (n > 0) {
      const first = this.chunks[0];
      const avail = first.length - this.head;
      if (avail > n) {
        this.head += n;
        return;
      }
      n -= avail;
      const gone = this.chunks.shift() as Buffer;
      if (this.dropped !== null) this.dropped.push(gone);
      this.head = 0;
    }
  }

  firstByte(): number {
    return this.chunks[0][this.head];
  }

  /** The first queued chunk (its unread bytes start at firstOffset()); length > 0. */
  firstChunk(): Buffer {
    return this.chunks[0];
  }

  firstOffset(): number {
    return this.head;
  }
}

const HEADER_ENDS = [Buffer.from('\r\n\r\n'), Buffer.from('\n\n')];

export function parseHeaderBlock(text: string): { version: string; headers: Map<string, string> } {
  const lines = text.split(/\r?\n/);
  const version = lines[0].trim();
  const headers = new Map<string, string>();
  let last: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`); // continuation line
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
    last = name;
  }
  return { version, headers };
}

/** Characters String.prototype.trim removes. */
function isJsSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 ||
    c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * Whether text[from, to), trimmed and lower-cased, is `name` (lower-case ASCII letters and '-'). Comparing
 * ASCII case-insensitively is exact here: no other character lower-cases to one of these letters alone.
 */
function nameIs(text: string, from: number, to: number, name: string): boolean {
  while (from < to && isJsSpace(text.charCodeAt(from))) from++;
  while (to > from && isJsSpace(text.charCodeAt(to - 1))) to--;
  if (to - from !== name.length) return false;
  for (let k = 0; k < name.length; k++) {
    const c = text.charCodeAt(from + k);
    const w = name.charCodeAt(k);
    if (c !== w && !(w >= 97 && w <= 122 && c === w - 32)) return false;
  }
  return true;
}

/**
 * parseHeaderBlock(text).headers.get(name) for a header block without continuation lines: the trimmed value
 * of the first line whose trimmed, lower-cased name (before its first ':', not at the start) is `name`.
 */
function fieldOf(text: string, name: string): string | undefined {
  const n = text.length;
  let start = text.indexOf('\n') + 1; // after the version line
  if (start === 0) return undefined;
  while (start < n) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    const colon = text.indexOf(':', start);
    if (colon > start && colon < end && nameIs(text, start, colon, name)) return text.slice(colon + 1, end).trim();
    start = end + 1;
  }
  return undefined;
}

/** The fields the reader needs, as fieldOf reads them; filled by readFields. */
const fields = { contentLength: undefined as string | undefined, type: undefined as string | undefined,
  targetUri: undefined as string | undefined, contentType: undefined as string | undefined };

/** The names readFields looks for, by the length of the name (their lengths differ). */
const FIELD_NAMES = ['content-length', 'warc-type', 'warc-target-uri', 'content-type'];
const FIELD_BY_LENGTH = new Int8Array(16).fill(-1);
FIELD_NAMES.forEach((name, k) => (FIELD_BY_LENGTH[name.length] = k));
const fieldValues: Array<string | undefined> = [undefined, undefined, undefined, undefined];

/**
 * fieldOf for content-length, warc-type, warc-target-uri and content-type, in one pass over the lines. Each line's
 * name is trimmed once and compared with the one field name of its length (one copy of the comparison in the
 * optimized code instead of four: this function runs per record, and its compile time counts in a short run).
 */
function readFields(text: string): void {
  fieldValues[0] = fieldValues[1] = fieldValues[2] = fieldValues[3] = undefined;
  const n = text.length;
  let start = text.indexOf('\n') + 1;
  if (start > 0) {
    while (start < n) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = n;
      const colon = text.indexOf(':', start);
      if (colon > start && colon < end) {
        let from = start;
        let to = colon;
        while (from < to && isJsSpace(text.charCodeAt(from))) from++;
        while (to > from && isJsSpace(text.charCodeAt(to - 1))) to--;
        const k = to - from < 16 ? FIELD_BY_LENGTH[to - from] : -1;
        if (k >= 0 && fieldValues[k] === undefined && asciiNameIs(text, from, FIELD_NAMES[k])) fieldValues[k] = text.slice(colon + 1, end).trim();
      }
      start = end + 1;
    }
  }
  fields.contentLength = fieldValues[0];
  fields.type = fieldValues[1];
  fields.targetUri = fieldValues[2];
  fields.contentType = fieldValues[3];
}

/** Whether text[from, from + name.length) is `name` (lower-case ASCII letters and '-') compared as nameIs does. */
function asciiNameIs(text: string, from: number, name: string): boolean {
  for (let k = 0; k < name.length; k++) {
    const c = text.charCodeAt(from + k);
    const w = name.charCodeAt(k);
    if (c !== w && !(w >= 97 && w <= 122 && c === w - 32)) return false;
  }
  return true;
}

/** A record whose header map is built only when asked for (the reader needs four fields of it). */
class ParsedRecord implements WarcRecord {
  constructor(
    readonly offset: number,
    readonly version: string,
    private readonly headerText: string,
    private map: Map<string, string> | null,
    /** The content-type field when `map` is null. */
    private readonly contentType: string | undefined,
    readonly type: string,
    readonly targetUri: string | undefined,
    readonly block: Buffer | null,
    readonly contentLength: number,
  ) {}

  get headers(): Map<string, string> {
    if (this.map === null) this.map = parseHeaderBlock(this.headerText).headers;
    return this.map;
  }

  /** A header by its lower-case name, without building the map when it is not built yet. */
  header(name: string): string | undefined {
    if (this.map !== null) return this.map.get(name);
    return name === 'content-type' ? this.contentType : fieldOf(this.headerText, name);
  }
}

/** A header by lower-case name (ParsedRecord reads it without building the whole map). */
export function recordHeader(rec: WarcRecord, name: string): string | undefined {
  return rec instanceof ParsedRecord ? rec.header(name) : rec.headers.get(name);
}

const CRLFCRLF = HEADER_ENDS[0];
const LFLF = HEADER_ENDS[1];

/** Reads WARC records from a decompressed byte stream. */
export async function* readWarcRecords(input: AsyncIterable<Buffer>, opts: ReadOptions = {}): AsyncGenerator<WarcRecord> {
  for await (const batch of readWarcRecordBatches(input, opts)) for (const rec of batch) yield rec;
}

/**
 * readWarcRecords in batches: the records complete in the bytes read so far, in file order, before the next read
 * (one await per input chunk rather than per record). While the input is being inflated, a batch ends after
 * GUNZIP_TURN_BYTES of records and the reader gives the event loop a turn before going on (yieldToInflate), so
 * that the inflation in the thread pool keeps running ahead of the parsing. Throws after yielding what was
 * recoverable.
 */
export async function* readWarcRecordBatches(input: AsyncIterable<Buffer>, opts: ReadOptions = {}): AsyncGenerator<WarcRecord[]> {
  // With recycleBlocks, the chunks the queue is done with go back to the inflater once the batches that may
  // hold views of them are done: at the top of the loop, after the last batch was yielded and the caller came back.
  const recycler = opts.recycleBlocks ? new OutputRecycler() : null;
  const dropped: Buffer[] | null = recycler ? [] : null;
  const q = new ByteQueue(dropped);
  const reader = new RecordReader(q, opts.maxRecordBytes ?? DEFAULT_MAX_RECORD);
  const source = decompressIfGzip(input, { recycler: recycler ?? undefined });
  const it = source[Symbol.asyncIterator]();
  let batch: WarcRecord[] = [];
  let turnAt = 0; // q.consumed at the last turn given to the inflation
  try {
    for (;;) {
      if (dropped !== null && dropped.length > 0) {
        for (const c of dropped) (recycler as OutputRecycler).release(c);
        dropped.length = 0;
      }
      const needsInput = reader.parse(batch, source.inflating ? turnAt + GUNZIP_TURN_BYTES : Infinity);
      if (batch.length > 0) {
        yield batch;
        batch = [];
      }
      if (!needsInput) {
        turnAt = q.consumed;
        await yieldToInflate();
        continue;
      }
      const n = await it.next();
      if (n.done) {
        reader.finish();
        return;
      }
      q.push(n.value);
    }
  } catch (err) {
    if (batch.length > 0) yield batch;
    throw err;
  }
}

/** A record whose header is read and whose block is still arriving (see RecordReader). */
interface PendingBlock {
  offset: number;
  version: string;
  headerText: string;
  map: Map<string, string> | null;
  contentType: string | undefined;
  type: string | undefined;
  targetUri: string | undefined;
  contentLength: number;
  /** 'take': wait until the queue holds the block; 'assemble': copy it into `block` as it comes; 'skip': drop it. */
  mode: 'take' | 'assemble' | 'skip';
  block: Buffer | null;
  /** Bytes copied into `block` ('assemble') or still to drop ('skip'). */
  done: number;
}

/**
 * The record parser of readWarcRecordBatches, synchronous: it reads every record complete in the queue and keeps
 * what it needs between reads (a record whose block is still arriving). Kept out of the async generator so that
 * the hot code is a plain function: V8 optimizes it sooner and compiles it in a fraction of the time a generator
 * body takes, which counts in a short run.
 */
class RecordReader {
  private sawRecord = false;
  private pending: PendingBlock | null = null;

  constructor(private readonly q: ByteQueue, private readonly maxRecord: number) {}

  /**
   * Appends to `out` the records complete in the queue, in file order; stops after a record that ends at or past
   * the decompressed offset `stopAt` (returns false: the caller gives the event loop a turn) or when it needs more
   * input (returns true). Throws CorruptInputError on bad input (the records before it are in `out`).
   */
  parse(out: WarcRecord[], stopAt: number): boolean {
    const q = this.q;
    for (;;) {
      let p = this.pending;
      if (p === null) {
        // Skip the blank lines that separate records.
        while (q.length > 0) {
          const c = q.firstByte();
          if (c === 0x0d || c === 0x0a) q.skip(1);
          else break;
        }
        if (q.length === 0) return true;
        p = this.readHeader();
        if (p === null) return true;
      }
      if (!this.readBlock(p)) {
        this.pending = p;
        return true;
      }
      this.pending = null;
      this.sawRecord = true;
      let targetUri = p.targetUri;
      // wget writes WARC-Target-URI as <uri>; warcio unwraps it.
      if (targetUri && targetUri.startsWith('<') && targetUri.endsWith('>')) targetUri = targetUri.slice(1, -1);
      out.push(new ParsedRecord(p.offset, p.version, p.headerText, p.map, p.contentType, (p.type ?? '').toLowerCase(), targetUri, p.block, p.contentLength));
      if (q.consumed >= stopAt) return false;
    }
  }

  /** The input ended: throws if it ended inside a record. */
  finish(): void {
    const q = this.q;
    const p = this.pending;
    if (p !== null) {
      if (p.mode === 'take') throw new CorruptInputError('truncated', `record block needs ${p.contentLength} bytes, input has ${q.length}`, p.offset);
      if (p.mode === 'assemble') throw new CorruptInputError('truncated', `record block needs ${p.contentLength} bytes, input has ${p.done}`, p.offset);
      throw new CorruptInputError('truncated', 'input ends inside an oversized record', p.offset);
    }
    while (q.length > 0) {
      const c = q.firstByte();
      if (c === 0x0d || c === 0x0a) q.skip(1);
      else break;
    }
    if (q.length === 0) return;
    // parse() left bytes without a complete header block.
    const start = q.peek(Math.min(q.length, 16)).toString('latin1');
    if (!start.startsWith('WARC/')) {
      throw new CorruptInputError(this.sawRecord ? 'garbage' : 'not-warc', `trailing bytes are not a WARC record: ${JSON.stringify(start)}`, q.consumed);
    }
    throw new CorruptInputError('truncated', 'input ends inside a record header', q.consumed);
  }

  /** The header block at the front of the queue (consumed), or null when it is not all there yet. */
  private readHeader(): PendingBlock | null {
    const q = this.q;
    const offset = q.consumed;
    // Header block ends at the first blank line (CRLF CRLF, tolerating bare LF), looked for within
    // MAX_HEADER_BYTES. Usually it is in the first queued chunk: found there without copying anything.
    let end = -1;
    let sepLen = 4;
    let headerText: string;
    const first = q.firstChunk();
    const head = q.firstOffset();
    const crlf = first.indexOf(CRLFCRLF, head);
    if (crlf >= 0 && crlf - head + 4 <= MAX_HEADER_BYTES) {
      const lf = first.subarray(head, crlf).indexOf(LFLF); // a "\n\n" before it ends the header first
      end = lf >= 0 ? lf : crlf - head;
      sepLen = lf >= 0 ? 2 : 4;
      headerText = first.toString('utf8', head, head + end);
    } else {
      const [at, which] = q.indexOfAny(HEADER_ENDS, MAX_HEADER_BYTES);
      if (at < 0) {
        if (q.length > MAX_HEADER_BYTES) throw new CorruptInputError('bad-header', 'record header longer than 1 MiB', offset);
        return null;
      }
      end = at;
      sepLen = HEADER_ENDS[which].length;
      headerText = q.peek(end).toString('utf8');
    }
    if (!headerText.startsWith('WARC/')) {
      throw new CorruptInputError(this.sawRecord ? 'garbage' : 'not-warc',
        `expected a WARC/ version line, got ${JSON.stringify(headerText.slice(0, 40))}`, offset);
    }
    // Without continuation lines the four fields needed here are read directly; otherwise the whole map.
    let map: Map<string, string> | null = null;
    let version: string;
    let lengthField: string | undefined;
    let typeField: string | undefined;
    let targetUri: string | undefined;
    let contentType: string | undefined;
    if (headerText.indexOf('\n ') < 0 && headerText.indexOf('\n\t') < 0) {
      const nl = headerText.indexOf('\n');
      version = (nl < 0 ? headerText : headerText.slice(0, nl)).trim();
      readFields(headerText);
      lengthField = fields.contentLength;
      typeField = fields.type;
      targetUri = fields.targetUri;
      contentType = fields.contentType;
    } else {
      const parsed = parseHeaderBlock(headerText);
      version = parsed.version;
      map = parsed.headers;
      lengthField = map.get('content-length');
      typeField = map.get('warc-type');
      targetUri = map.get('warc-target-uri');
    }
    q.skip(end + sepLen);
    const contentLength = lengthField !== undefined && /^\d+$/.test(lengthField) ? Number(lengthField) : NaN;
    if (!Number.isFinite(contentLength)) {
      throw new CorruptInputError('bad-header', `record without a valid Content-Length (${JSON.stringify(lengthField?.slice(0, 100))}${(lengthField?.length ?? 0) > 100 ? ` …, ${lengthField!.length} characters` : ''})`, offset);
    }
    // A large block still to be read is copied into place as its bytes arrive, each chunk released once copied,
    // rather than queued whole and then flattened (which held the block twice).
    const mode = contentLength > this.maxRecord ? 'skip' : q.length >= contentLength || contentLength < ASSEMBLE_BYTES ? 'take' : 'assemble';
    return {
      offset, version, headerText, map, contentType, type: typeField, targetUri, contentLength, mode,
      block: mode === 'assemble' ? Buffer.allocUnsafe(contentLength) : null, done: mode === 'skip' ? contentLength : 0,
    };
  }

  /** Reads what the queue has of the block of `p`; true when the block is complete. */
  private readBlock(p: PendingBlock): boolean {
    const q = this.q;
    if (p.mode === 'take') {
      if (q.length < p.contentLength) return false;
      p.block = q.take(p.contentLength);
      return true;
    }
    if (p.mode === 'assemble') {
      p.done += q.moveTo(p.block as Buffer, p.done);
      return p.done === p.contentLength;
    }
    const n = Math.min(p.done, q.length);
    q.skip(n);
    p.done -= n;
    return p.done === 0;
  }
}
