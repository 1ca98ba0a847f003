/**
 * The HTTP payload of a WARC `response` record: status line and headers stripped, chunked transfer
 * coding and gzip/deflate/br content coding undone where the record still has them. Decoding failures
 * fall back to the bytes as stored (Common Crawl rewrites such headers to X-Crawler-*, and some
 * archives keep a Content-Encoding header on an already-decoded body).
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { bytesStartIgnoreCase } from './html';

export interface HttpPayload {
  status: number | null;
  headers: Map<string, string>;
  body: Buffer;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');

function dechunk(body: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lineEnd = body.indexOf(0x0a, pos);
    if (lineEnd < 0) return null;
    const sizeText = body.subarray(pos, lineEnd).toString('latin1').trim().split(';')[0];
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) return null;
    const size = parseInt(sizeText, 16);
    pos = lineEnd + 1;
    if (size === 0) break;
    if (pos + size > body.length) return null;
    parts.push(body.subarray(pos, pos + size));
    pos += size;
    if (body[pos] === 0x0d) pos++;
    if (body[pos] === 0x0a) pos++;
  }
  return Buffer.concat(parts);
}

function decode(body: Buffer, encoding: string, maxOutputLength: number): Buffer | null {
  try {
    switch (encoding) {
      case 'gzip':
      case 'x-gzip':
        // Without the gzip magic zlib fails anyway ("incorrect header check"); bodies already decoded by the
        // crawler under a gzip header are common, and each failure costs a Node error object and its stack.
        if (body.length < 2 || body[0] !== 0x1f || body[1] !== 0x8b) return null;
        return gunzipSync(body, { maxOutputLength });
      case 'deflate':
        try {
          return inflateSync(body, { maxOutputLength });
        } catch {
          return inflateRawSync(body, { maxOutputLength });
        }
      case 'br':
        return brotliDecompressSync(body, { maxOutputLength });
      default:
        return null;
    }
  } catch {
    return null;
  }
}

/**
 * Where the header section of an HTTP block ends: the first CRLFCRLF, or a "\n\n" before it (then the byte there
 * is '\n', a separator of 2 bytes, else 4); -1 when there is neither.
 */
function headerEnd(block: Buffer): number {
  const end = block.indexOf(CRLFCRLF);
  // Only a "\n\n" before the CRLFCRLF matters, and one that starts before it also ends before it (the
  // CRLFCRLF starts with '\r'): search only there, not through the whole body.
  const lf = (end < 0 ? block : block.subarray(0, end)).indexOf(LFLF);
  return lf >= 0 && (end < 0 || lf < end) ? lf : end;
}

/** Splits an HTTP response block; returns null when the block has no HTTP header section. */
export function parseHttpResponse(block: Buffer, maxBodyBytes: number): HttpPayload | null {
  const head = block.subarray(0, Math.min(block.length, 12)).toString('latin1');
  if (!/^HTTP\/\d/i.test(head)) return null;
  const end = headerEnd(block);
  if (end < 0) return { status: null, headers: new Map(), body: Buffer.alloc(0) };
  const sep = block[end] === 0x0a ? 2 : 4;
  const lines = block.subarray(0, end).toString('latin1').split(/\r?\n/);
  const status = Number(lines[0].split(/\s+/)[1]);
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon <= 0) continue;
    const name = lines[i].slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, lines[i].slice(colon + 1).trim());
  }
  let body = block.subarray(end + sep);
  if ((headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) {
    body = dechunk(body) ?? body;
  }
  const encoding = (headers.get('content-encoding') ?? '').toLowerCase().trim();
  if (encoding && encoding !== 'identity') body = decode(body, encoding, maxBodyBytes) ?? body;
  return { status: Number.isFinite(status) ? status : null, headers, body };
}

/** Bytes String.prototype.trim removes from a latin1-decoded header line: \t \n \v \f \r, space, NBSP. */
function isTrimmed(c: number): boolean {
  return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0;
}

/** The trimmed header name [from, to) is `name` (lower-case ASCII), ASCII letters in either case. */
function isHeaderName(b: Buffer, from: number, to: number, name: string): boolean {
  return to - from === name.length && bytesStartIgnoreCase(b, from, name);
}

/**
 * parseHttpResponse(block, maxBodyBytes)?.body without building the status and the header map: the body of an
 * HTTP response block (chunked transfer coding and content coding undone as there), or null when the block has
 * no HTTP header section. Only Transfer-Encoding and Content-Encoding are read (their first occurrence, names
 * matched as the header map would hold them: trimmed, ASCII case-insensitive), straight from the bytes.
 * test/extract-fastpaths.test.ts checks it against parseHttpResponse.
 */
export function httpResponseBody(block: Buffer, maxBodyBytes: number): Buffer | null {
  // "HTTP/" and a digit, ASCII case-insensitive (the /^HTTP\/\d/i test).
  if (block.length < 6 || (block[0] | 0x20) !== 0x68 || (block[1] | 0x20) !== 0x74 || (block[2] | 0x20) !== 0x74 || (block[3] | 0x20) !== 0x70) return null;
  if (block[4] !== 0x2f || block[5] < 0x30 || block[5] > 0x39) return null;
  const end = headerEnd(block);
  if (end < 0) return Buffer.alloc(0);
  const sep = block[end] === 0x0a ? 2 : 4;
  let transfer: string | null = null;
  let content: string | null = null;
  // Lines are split at '\n' (a '\r' before it goes with the split; left on a line, trim drops it). The status
  // line is skipped, as there.
  let line = block.indexOf(0x0a);
  line = line < 0 || line >= end ? end : line + 1;
  while (line < end && (transfer === null || content === null)) {
    let next = block.indexOf(0x0a, line);
    if (next < 0 || next > end) next = end;
    let colon = -1;
    for (let i = line; i < next; i++) {
      if (block[i] === 0x3a) {
        colon = i;
        break;
      }
    }
    if (colon > line) {
      let from = line;
      let to = colon;
      while (from < to && isTrimmed(block[from])) from++;
      while (to > from && isTrimmed(block[to - 1])) to--;
      const isTransfer = transfer === null && isHeaderName(block, from, to, 'transfer-encoding');
      const isContent = !isTransfer && content === null && isHeaderName(block, from, to, 'content-encoding');
      if (isTransfer || isContent) {
        const value = block.toString('latin1', colon + 1, next).trim();
        if (isTransfer) transfer = value;
        else content = value;
      }
    }
    line = next + 1;
  }
  let body = block.subarray(end + sep);
  if ((transfer ?? '').toLowerCase().includes('chunked')) body = dechunk(body) ?? body;
  const encoding = (content ?? '').toLowerCase().trim();
  if (encoding && encoding !== 'identity') body = decode(body, encoding, maxBodyBytes) ?? body;
  return body;
}
