/**
 * The HTTP payload of a WARC `response` record: status line and headers stripped, chunked transfer
 * coding and gzip/deflate/br content coding undone where the record still has them. Decoding failures
 * fall back to the bytes as stored (Common Crawl rewrites such headers to X-Crawler-*, and some
 * archives keep a Content-Encoding header on an already-decoded body).
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';

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

/** Splits an HTTP response block; returns null when the block has no HTTP header section. */
export function parseHttpResponse(block: Buffer, maxBodyBytes: number): HttpPayload | null {
  const head = block.subarray(0, Math.min(block.length, 12)).toString('latin1');
  if (!/^HTTP\/\d/i.test(head)) return null;
  let end = block.indexOf(CRLFCRLF);
  let sep = 4;
  // Only a "\n\n" before the CRLFCRLF matters, and one that starts before it also ends before it (the
  // CRLFCRLF starts with '\r'): search only there, not through the whole body.
  const lf = (end < 0 ? block : block.subarray(0, end)).indexOf(LFLF);
  if (lf >= 0 && (end < 0 || lf < end)) {
    end = lf;
    sep = 2;
  }
  if (end < 0) return { status: null, headers: new Map(), body: Buffer.alloc(0) };
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
