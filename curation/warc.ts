/**
 * A streaming WARC record reader over Common Crawl shards: per-record gzip members (as CC ships),
 * whole-file gzip, or plain. Records are yielded in file order with their decompressed offset.
 * Malformed input yields what is recoverable, then throws a classified CorruptInputError.
 * (warcio is used by the tests as an independent reader to cross-check this one; this one is
 * several times faster because it only parses what curation needs.)
 */
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { CorruptInputError } from './errors';

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
}

const DEFAULT_MAX_RECORD = 64 * 1024 * 1024;
const MAX_HEADER_BYTES = 1024 * 1024;

/** Undo gzip when the stream starts with the gzip magic; Node's gunzip reads concatenated members. */
export function decompressIfGzip(input: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  return {
    async *[Symbol.asyncIterator]() {
      const it = input[Symbol.asyncIterator]();
      let first = await it.next();
      while (!first.done && first.value.length === 0) first = await it.next();
      if (first.done) return;
      const head: Buffer = first.value;
      const rest = (async function* () {
        yield head;
        for (;;) {
          const n = await it.next();
          if (n.done) return;
          yield n.value;
        }
      })();
      if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
        const gunzip = createGunzip({ chunkSize: 256 * 1024 });
        const src = Readable.from(rest, { objectMode: false });
        src.on('error', (e) => gunzip.destroy(e));
        src.pipe(gunzip);
        try {
          for await (const chunk of gunzip) yield chunk as Buffer;
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          if (e.code && String(e.code).startsWith('Z_')) throw new CorruptInputError('gzip', e.message);
          throw err;
        }
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

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Flatten the first `n` unread bytes into one buffer (n <= length), without consuming. */
  peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const merged = Buffer.concat(this.chunks).subarray(this.head);
    this.chunks = [merged];
    this.head = 0;
    return merged.subarray(0, n);
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
      this.chunks.shift();
      this.head = 0;
    }
  }

  firstByte(): number {
    return this.chunks[0][this.head];
  }
}

const HEADER_ENDS = [Buffer.from('\r\n\r\n'), Buffer.from('\n\n')];

function parseHeaderBlock(text: string): { version: string; headers: Map<string, string> } {
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

/** Reads WARC records from a decompressed byte stream. */
export async function* readWarcRecords(input: AsyncIterable<Buffer>, opts: ReadOptions = {}): AsyncGenerator<WarcRecord> {
  const maxRecord = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD;
  const q = new ByteQueue();
  const it = decompressIfGzip(input)[Symbol.asyncIterator]();
  let eof = false;
  const fill = async (): Promise<boolean> => {
    if (eof) return false;
    const n = await it.next();
    if (n.done) {
      eof = true;
      return false;
    }
    q.push(n.value);
    return true;
  };
  let sawRecord = false;

  for (;;) {
    // Skip the blank lines that separate records.
    for (;;) {
      while (q.length > 0) {
        const c = q.firstByte();
        if (c === 0x0d || c === 0x0a) q.skip(1);
        else break;
      }
      if (q.length > 0 || !(await fill())) break;
    }
    if (q.length === 0) return;

    const offset = q.consumed;
    // Header block ends at the first blank line (CRLF CRLF, tolerating bare LF).
    let end = -1;
    let sepLen = 4;
    for (;;) {
      const [at, which] = q.indexOfAny(HEADER_ENDS, MAX_HEADER_BYTES);
      end = at;
      sepLen = HEADER_ENDS[which]?.length ?? 4;
      if (end >= 0) break;
      if (q.length > MAX_HEADER_BYTES) throw new CorruptInputError('bad-header', 'record header longer than 1 MiB', offset);
      if (!(await fill())) {
        const head = q.peek(Math.min(q.length, 16)).toString('latin1');
        if (!head.startsWith('WARC/')) {
          throw new CorruptInputError(sawRecord ? 'garbage' : 'not-warc', `trailing bytes are not a WARC record: ${JSON.stringify(head)}`, offset);
        }
        throw new CorruptInputError('truncated', 'input ends inside a record header', offset);
      }
    }
    const headerText = q.peek(end).toString('utf8');
    if (!headerText.startsWith('WARC/')) {
      throw new CorruptInputError(sawRecord ? 'garbage' : 'not-warc',
        `expected a WARC/ version line, got ${JSON.stringify(headerText.slice(0, 40))}`, offset);
    }
    const { version, headers } = parseHeaderBlock(headerText);
    q.skip(end + sepLen);
    const lengthField = headers.get('content-length');
    const contentLength = lengthField !== undefined && /^\d+$/.test(lengthField) ? Number(lengthField) : NaN;
    if (!Number.isFinite(contentLength)) {
      throw new CorruptInputError('bad-header', `record without a valid Content-Length (${JSON.stringify(lengthField)})`, offset);
    }
    let block: Buffer | null = null;
    if (contentLength <= maxRecord) {
      while (q.length < contentLength) {
        if (!(await fill())) throw new CorruptInputError('truncated', `record block needs ${contentLength} bytes, input has ${q.length}`, offset);
      }
      block = q.take(contentLength);
    } else {
      let left = contentLength;
      while (left > 0) {
        if (q.length === 0 && !(await fill())) throw new CorruptInputError('truncated', 'input ends inside an oversized record', offset);
        const n = Math.min(left, q.length);
        q.skip(n);
        left -= n;
      }
    }
    sawRecord = true;
    let targetUri = headers.get('warc-target-uri');
    // wget writes WARC-Target-URI as <uri>; warcio unwraps it.
    if (targetUri && targetUri.startsWith('<') && targetUri.endsWith('>')) targetUri = targetUri.slice(1, -1);
    yield { offset, version, headers, type: (headers.get('warc-type') ?? '').toLowerCase(), targetUri, block, contentLength };
  }
}
