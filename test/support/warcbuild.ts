/** Builds small WARC files in memory for tests (per-record gzip, whole-file gzip or plain). */
import { gzipSync } from 'node:zlib';
import { gzipMember, headerLines, serializeRecord } from '../../scripts/warc-writer';

export interface RecordSpec {
  type: string;
  targetUri?: string;
  contentType?: string;
  block: Buffer | string;
  extraHeaders?: Record<string, string>;
}

export function warcRecord(r: RecordSpec): Buffer {
  const block = Buffer.isBuffer(r.block) ? r.block : Buffer.from(r.block, 'utf8');
  return serializeRecord([
    ['WARC-Type', r.type],
    ['WARC-Target-URI', r.targetUri],
    ['WARC-Record-ID', `<urn:uuid:00000000-0000-0000-0000-${String(block.length).padStart(12, '0')}>`],
    ['Content-Type', r.contentType || undefined],
    ...Object.entries(r.extraHeaders ?? {}),
  ], block).bytes;
}

export function httpResponse(body: Buffer | string, headers: Record<string, string> = { 'Content-Type': 'text/html' }): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  return Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\n${headerLines(Object.entries(headers))}\r\n`, 'latin1'), b]);
}

export function watRecord(targetUri: string, links: unknown[]): Buffer {
  const json = JSON.stringify({ Envelope: { 'Payload-Metadata': { 'HTTP-Response-Metadata': { 'HTML-Metadata': { Links: links } } } } });
  return warcRecord({ type: 'metadata', targetUri, contentType: 'application/json', block: json + '\r\n' });
}

export type Packing = 'plain' | 'gzip-per-record' | 'gzip-whole';

export function warcFile(records: Buffer[], packing: Packing = 'gzip-per-record'): Buffer {
  if (packing === 'plain') return Buffer.concat(records);
  if (packing === 'gzip-whole') return gzipSync(Buffer.concat(records));
  return Buffer.concat(records.map(gzipMember));
}

export async function* chunks(buf: Buffer, size = 777): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
