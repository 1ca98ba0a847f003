/**
 * WARC record serialisation, shared by everything here that writes WARC/WAT files (scripts/samples.ts,
 * the bench corpus writer in scripts/commands/bench.ts, test/support/warcbuild.ts).
 *
 * A record is `WARC/1.0` CRLF, one `Name: value` CRLF per header field, CRLF, the block, then the record
 * terminator CRLF CRLF (WARC 1.0 §4). Content-Length is always the block's length: it stands where the
 * fields place `CONTENT_LENGTH`, or last. Common Crawl ships .warc.gz/.wat.gz files with every record
 * compressed as its own gzip member (`gzipMember`), so that readers can seek to any record.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/** One header field; a field whose value is `undefined` is left out. */
export type WarcField = readonly [name: string, value: string | undefined];

/** Marks where Content-Length stands among the fields (without it, Content-Length comes last). */
export const CONTENT_LENGTH = Symbol('Content-Length');

export type WarcFieldSpec = WarcField | typeof CONTENT_LENGTH;

/** Ends every record, after its block. */
export const RECORD_END = '\r\n\r\n';

export interface WarcRecordBytes {
  /** The header fields as written, in order, Content-Length included. */
  fields: Array<[string, string]>;
  /** The header block: version line, fields and the blank line that ends them. */
  header: Buffer;
  /** The whole record: header, block and terminator. */
  bytes: Buffer;
}

/** `Name: value` CRLF per field: the syntax of WARC and HTTP headers and of application/warc-fields blocks. */
export function headerLines(fields: readonly WarcField[]): string {
  let s = '';
  for (const [name, value] of fields) if (value !== undefined) s += `${name}: ${value}\r\n`;
  return s;
}

/** An application/warc-fields block (warcinfo and metadata records), UTF-8. */
export function warcFieldsBlock(fields: readonly WarcField[]): Buffer {
  return Buffer.from(headerLines(fields), 'utf8');
}

/** The header fields and block of a warcinfo record, the first record of a WARC or WAT file. */
export function warcinfo(r: { date: string; filename: string; id: string; info: readonly WarcField[] }): { fields: WarcField[]; block: Buffer } {
  return {
    fields: [['WARC-Type', 'warcinfo'], ['WARC-Date', r.date], ['WARC-Filename', r.filename], ['WARC-Record-ID', r.id], ['Content-Type', 'application/warc-fields']],
    block: warcFieldsBlock(r.info),
  };
}

/** Serialises one record from its ordered header fields and its block. */
export function serializeRecord(spec: readonly WarcFieldSpec[], block: Buffer): WarcRecordBytes {
  const length: [string, string] = ['Content-Length', String(block.length)];
  const fields: Array<[string, string]> = [];
  for (const f of spec) {
    if (f === CONTENT_LENGTH) fields.push(length);
    else if (/^content-length$/i.test(f[0])) throw new Error('Content-Length is set from the block: place CONTENT_LENGTH instead');
    else if (f[1] !== undefined) fields.push([f[0], f[1]]);
  }
  if (!spec.includes(CONTENT_LENGTH)) fields.push(length);
  const header = Buffer.from(`WARC/1.0\r\n${headerLines(fields)}\r\n`, 'utf8');
  return { fields, header, bytes: Buffer.concat([header, block, Buffer.from(RECORD_END, 'latin1')]) };
}

/** A record compressed as its own gzip member (level 6, zlib's default). */
export function gzipMember(record: Buffer): Buffer {
  return gzipSync(record, { level: 6 });
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A WARC block/payload digest: `sha1:` and the SHA-1 in RFC 4648 base32 (no padding: 160 bits are 32 digits). */
export function sha1Base32(data: Buffer): string {
  const digest = createHash('sha1').update(data).digest();
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return `sha1:${out}`;
}
