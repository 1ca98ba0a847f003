/**
 * WebDataset shards: POSIX ustar archives of `<key>.<ext>`, `<key>.txt`, `<key>.json` members, as
 * img2dataset writes them and webdataset / `tarfile` / GNU tar read them.
 *
 * The writer is our own (no dependency) and deterministic: every header has mode 0644, uid/gid 0,
 * empty uname/gname, mtime 0 and type '0' (regular file), which are exactly Python's `TarInfo`
 * defaults, so the same members always give the same bytes (tested byte-for-byte against Python's
 * USTAR writer). An archive ends with two zero blocks and is not padded to a 10 KiB record (readers
 * do not need it).
 *
 * Two writers: `TarBuilder` in memory, for shards of bounded size; `TarFileWriter` streaming to a
 * local temp file with bounded memory, fsynced on finish. Neither writes to the object store: a
 * finished file is published with `store.putFileFrom(key, path)` (atomic on every backend; see
 * `publishTar`), so a killed run leaves at most a temp file on local disk, never a truncated tar
 * under a store key.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ObjectStore } from './store';

export const TAR_BLOCK = 512;
/** ustar's 12-byte octal size field holds at most 11 digits. */
export const TAR_MAX_MEMBER_SIZE = 8 * 1024 ** 3 - 1;
const NAME_LEN = 100;
const PREFIX_LEN = 155;
const END_OF_ARCHIVE = 2 * TAR_BLOCK;

/** A member name or size that cannot be written as a ustar member. */
export class TarNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarNameError';
  }
}

/** Bytes that are not a complete, valid tar archive (bad checksum, truncated, unsupported member). */
export class TarFormatError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = 'TarFormatError';
  }
}

const padding = (size: number) => (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;

/** Bytes one member of `dataSize` bytes adds to an archive (header block + data padded to a block). */
export function tarMemberBytes(dataSize: number): number {
  return TAR_BLOCK + dataSize + padding(dataSize);
}

function octal(header: Buffer, offset: number, width: number, value: number): void {
  // width - 1 zero-padded octal digits, then NUL (as GNU tar and Python write them).
  header.write(value.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'ascii');
}

/**
 * Splits a name into ustar's (prefix, name) fields: whole in `name` when it fits 100 bytes, otherwise
 * at the first '/' that leaves a prefix of at most 155 bytes and a name of at most 100 (Python's rule).
 */
function splitName(name: string): [prefix: Buffer, name: Buffer] {
  const full = Buffer.from(name, 'utf8');
  if (full.length <= NAME_LEN) return [Buffer.alloc(0), full];
  for (let i = 0; i < full.length; i++) {
    if (full[i] !== 0x2f) continue; // '/'
    const prefix = full.subarray(0, i);
    const rest = full.subarray(i + 1);
    if (prefix.length > PREFIX_LEN) break;
    if (rest.length <= NAME_LEN && prefix.length > 0 && rest.length > 0) return [prefix, rest];
  }
  throw new TarNameError(
    `tar member name too long for ustar (${full.length} bytes): it must fit 100 bytes, or be split at a '/' into ` +
    `at most 155 + 100 bytes: ${JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name)}`);
}

function checkName(name: string): void {
  const shown = JSON.stringify(name);
  if (typeof name !== 'string' || name === '') throw new TarNameError('tar member name must be a non-empty string');
  if (name.includes('\0')) throw new TarNameError(`tar member name contains NUL: ${shown}`);
  if (name.startsWith('/') || name.endsWith('/') || name.includes('\\') ||
      name.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new TarNameError(`tar member name must be a relative '/'-separated file path without '.', '..' or '//': ${shown}`);
  }
}

/** One ustar header block for a regular file; throws TarNameError for names or sizes ustar cannot hold. */
export function tarHeader(name: string, size: number): Buffer {
  checkName(name);
  if (!Number.isSafeInteger(size) || size < 0 || size > TAR_MAX_MEMBER_SIZE) {
    throw new TarNameError(`tar member ${JSON.stringify(name)}: size ${size} is not an integer in 0..${TAR_MAX_MEMBER_SIZE} (ustar's limit)`);
  }
  const [prefix, base] = splitName(name);
  const h = Buffer.alloc(TAR_BLOCK); // zero-filled: linkname, uname, gname and the padding stay empty
  base.copy(h, 0);
  octal(h, 100, 8, 0o644);        // mode
  octal(h, 108, 8, 0);            // uid
  octal(h, 116, 8, 0);            // gid
  octal(h, 124, 12, size);        // size
  octal(h, 136, 12, 0);           // mtime: fixed, so archives are reproducible
  h.fill(0x20, 148, 156);         // checksum is computed with its own field as spaces
  h.write('0', 156, 'ascii');     // typeflag: regular file
  h.write('ustar\0' + '00', 257, 'ascii'); // POSIX magic + version
  // devmajor/devminor stay empty (NUL) for a regular file, as Python writes them
  prefix.copy(h, 345);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0', 148, 7, 'ascii'); // 6 digits, NUL, and the space stays
  return h;
}

const toBuffer = (data: Buffer | Uint8Array | string): Buffer =>
  typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);

// ---------------------------------------------------------------------------------------------------
// WebDataset samples

export type ImageExt = 'jpg' | 'webp' | 'png';
export const IMAGE_EXTS: readonly ImageExt[] = ['jpg', 'webp', 'png'];

export interface WebDatasetSample {
  /** The sample key: members are `<key>.<ext>`; may hold '/' directories, but no '.' in its last part. */
  key: string;
  image: { ext: ImageExt; bytes: Buffer };
  /** The selected caption, written as `<key>.txt` (UTF-8). */
  text: string;
  /** Metadata written as `<key>.json` (e.g. uuid, url, texts, entry_ids, size), in its key order. */
  json: Record<string, unknown>;
}

/**
 * Checks a sample key: webdataset splits a member name into key and extension at the first '.' of
 * its last path part, so a key with a '.' there would be split into the wrong samples.
 */
export function checkSampleKey(key: string): void {
  const last = key.slice(key.lastIndexOf('/') + 1);
  if (!key || !last || last.includes('.')) {
    throw new TarNameError(`invalid webdataset key ${JSON.stringify(key)}: it must be non-empty and have no '.' in its last path part`);
  }
}

/** The tar members of one sample, in webdataset's order: `<key>.<ext>`, `<key>.txt`, `<key>.json` (consecutive, same key). */
export function sampleMembers(s: WebDatasetSample): Array<[name: string, data: Buffer]> {
  checkSampleKey(s.key);
  if (!IMAGE_EXTS.includes(s.image.ext)) throw new TarNameError(`sample ${s.key}: image extension must be one of ${IMAGE_EXTS.join(', ')}, got ${JSON.stringify(s.image.ext)}`);
  return [
    [`${s.key}.${s.image.ext}`, toBuffer(s.image.bytes)],
    [`${s.key}.txt`, Buffer.from(s.text, 'utf8')],
    [`${s.key}.json`, Buffer.from(JSON.stringify(s.json), 'utf8')],
  ];
}

/** webdataset's key/extension split of a member name (first '.' of the last path part); null when there is no '.'. */
export function splitSampleName(name: string): { key: string; ext: string } | null {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1) return null;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1) };
}

/** sampleMembers, with every member's header checked up front, so a sample is written whole or not at all. */
function checkedMembers(sample: WebDatasetSample): Array<[name: string, data: Buffer]> {
  const members = sampleMembers(sample);
  for (const [name, data] of members) tarHeader(name, data.length);
  return members;
}

// ---------------------------------------------------------------------------------------------------
// In-memory writer

/**
 * Builds a tar in memory. `size` is always the byte length `finish()` would return now. Added buffers
 * are kept by reference until `finish()`: do not modify them before.
 */
export class TarBuilder {
  private readonly parts: Buffer[] = [];
  private bytes = 0;
  private count = 0;
  private done = false;

  add(name: string, data: Buffer | Uint8Array | string): void {
    if (this.done) throw new Error('TarBuilder: add() after finish()');
    const buf = toBuffer(data);
    const header = tarHeader(name, buf.length);
    this.parts.push(header, buf);
    const pad = padding(buf.length);
    if (pad) this.parts.push(Buffer.alloc(pad));
    this.bytes += tarMemberBytes(buf.length);
    this.count++;
  }

  /** Adds the sample's three members, or none when one of them cannot be written. */
  addSample(sample: WebDatasetSample): void {
    const members = checkedMembers(sample);
    for (const [name, data] of members) this.add(name, data);
  }

  get size(): number {
    return this.bytes + END_OF_ARCHIVE;
  }

  get members(): number {
    return this.count;
  }

  finish(): Buffer {
    if (this.done) throw new Error('TarBuilder: finish() called twice');
    this.done = true;
    this.parts.push(Buffer.alloc(END_OF_ARCHIVE));
    return Buffer.concat(this.parts, this.bytes + END_OF_ARCHIVE);
  }
}

// ---------------------------------------------------------------------------------------------------
// Streaming file writer

export interface TarFileResult {
  /** The local file written (still a temp file: publish it, then remove it). */
  path: string;
  bytes: number;
  members: number;
  /** sha256 (hex) of the whole archive, computed while writing. */
  sha256: string;
}

export interface TarFileWriterOptions {
  /** Small writes are gathered up to this many bytes before hitting the file. Default 1 MiB. */
  bufferBytes?: number;
}

/**
 * Streams a tar to a local file with bounded memory: small members are gathered into one buffer of at
 * most `bufferBytes`, big ones are written through as they come (`addStream`, `addFile`). Calls may be
 * made without awaiting each other; they run in call order. An I/O error or a stream that does not
 * give its declared size leaves the file unusable: every later call rejects with that error, and
 * the caller should `abort()`. A failure before any byte of a call was written (a bad name, a missing
 * file for `addFile`) rejects that call only. A buffer given to `add` must not be modified before its
 * call resolves. `open` truncates an existing file at the path (a retry reuses its temp name).
 */
export class TarFileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private projected = 0;
  private count = 0;
  /** Bytes handed to write() so far (file + buffer). */
  private written = 0;
  private readonly hash: Hash = createHash('sha256');
  private queue: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  /** Set as soon as finish() or abort() is called: no member may be added after. */
  private closing: 'finish()' | 'abort()' | null = null;
  private closed = false;

  private constructor(readonly path: string, private readonly fh: fs.FileHandle, private readonly bufferLimit: number) {}

  /** Creates (or truncates) the file, creating its directory. */
  static async open(tmpPath: string, opts: TarFileWriterOptions = {}): Promise<TarFileWriter> {
    const limit = opts.bufferBytes ?? 1 << 20;
    if (!Number.isSafeInteger(limit) || limit < TAR_BLOCK) throw new RangeError(`TarFileWriter bufferBytes must be an integer >= ${TAR_BLOCK}, got ${limit}`);
    await fs.mkdir(path.dirname(tmpPath), { recursive: true });
    return new TarFileWriter(tmpPath, await fs.open(tmpPath, 'w'), limit);
  }

  /** Bytes the archive has once all calls made so far are done and it is finished (trailer included). */
  get size(): number {
    return this.projected + END_OF_ARCHIVE;
  }

  get members(): number {
    return this.count;
  }

  /** Bytes held in memory, not yet written to the file (at most `bufferBytes`). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  add(name: string, data: Buffer | Uint8Array | string): Promise<void> {
    const buf = toBuffer(data);
    return this.member(name, buf.length, async () => {
      await this.write(buf);
    });
  }

  /** Adds the sample's three members, or none (and rejects) when one of them cannot be written. */
  async addSample(sample: WebDatasetSample): Promise<void> {
    const members = checkedMembers(sample);
    await Promise.all(members.map(([name, data]) => this.add(name, data)));
  }

  /** A member of `size` bytes taken from a stream as it comes; the stream must give exactly `size` bytes. */
  addStream(name: string, size: number, source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>): Promise<void> {
    return this.member(name, size, () => this.copy(name, size, source));
  }

  /**
   * A member copied from a local file, streamed. Its size is read when its turn comes, so `size` counts
   * it only from then; a missing file rejects this call only (nothing is written).
   */
  addFile(name: string, localFile: string): Promise<void> {
    try {
      this.checkOpen();
      tarHeader(name, 0); // the name, checked now
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(async () => {
      const { size } = await fs.stat(localFile);
      const header = tarHeader(name, size);
      this.projected += tarMemberBytes(size);
      this.count++;
      const source = createReadStream(localFile, { highWaterMark: Math.min(this.bufferLimit, 1 << 20) });
      await this.writeMember(header, size, () => this.copy(name, size, source));
    });
  }

  /** Writes the end of the archive, fsyncs and closes the file. */
  async finish(): Promise<TarFileResult> {
    if (this.closing) throw new Error(`TarFileWriter: finish() after ${this.closing}`);
    this.closing = 'finish()';
    await this.enqueue(async () => {
      await this.write(Buffer.alloc(END_OF_ARCHIVE));
      await this.flush();
      await this.fh.sync();
      this.closed = true;
      await this.fh.close();
    });
    return { path: this.path, bytes: this.projected + END_OF_ARCHIVE, members: this.count, sha256: this.hash.digest('hex') };
  }

  /** Stops writing and removes the file (after a failure, or when the shard is given up). Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.closing !== 'abort()') {
      this.closing = 'abort()';
      this.failure ??= new Error('TarFileWriter: aborted');
    }
    await this.queue;
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await fs.rm(this.path, { force: true });
  }

  private checkOpen(): void {
    if (this.closing) throw new Error(`TarFileWriter: member added after ${this.closing}`);
  }

  private member(name: string, size: number, body: () => Promise<void>): Promise<void> {
    let header: Buffer;
    try {
      this.checkOpen();
      header = tarHeader(name, size);
    } catch (err) {
      return Promise.reject(err);
    }
    this.projected += tarMemberBytes(size);
    this.count++;
    return this.enqueue(() => this.writeMember(header, size, body));
  }

  private async writeMember(header: Buffer, size: number, body: () => Promise<void>): Promise<void> {
    await this.write(header);
    await body();
    const pad = padding(size);
    if (pad) await this.write(Buffer.alloc(pad));
  }

  private async copy(name: string, size: number, source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>): Promise<void> {
    let got = 0;
    for await (const chunk of source) {
      const buf = toBuffer(chunk);
      got += buf.length;
      if (got > size) throw new Error(`tar member ${JSON.stringify(name)}: stream gave more than its declared ${size} bytes`);
      await this.write(buf);
    }
    if (got !== size) throw new Error(`tar member ${JSON.stringify(name)}: stream ended after ${got} of its declared ${size} bytes`);
  }

  /** Runs `op` after every earlier call; a failure after some byte was written poisons the writer. */
  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.queue.then(async () => {
      if (this.failure) throw this.failure;
      const before = this.written;
      try {
        await op();
      } catch (err) {
        if (this.written !== before) this.failure ??= err as Error;
        throw err;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(buf: Buffer): Promise<void> {
    if (buf.length === 0) return;
    this.hash.update(buf);
    this.written += buf.length;
    if (this.pendingBytes + buf.length <= this.bufferLimit) {
      // Small writes are copied: the caller may reuse its buffer once the call resolves.
      this.pending.push(Buffer.from(buf));
      this.pendingBytes += buf.length;
      if (this.pendingBytes === this.bufferLimit) await this.flush();
      return;
    }
    await this.flush();
    if (buf.length < this.bufferLimit) {
      this.pending.push(Buffer.from(buf));
      this.pendingBytes = buf.length;
    } else {
      await this.writeAll(buf);
    }
  }

  private async flush(): Promise<void> {
    if (!this.pendingBytes) return;
    const buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.writeAll(buf);
  }

  private async writeAll(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
  }
}

/**
 * Finishes `tar`, publishes it under `key` (atomically: readers never see part of it) and removes the
 * local file. On any failure the local file is removed and nothing is published.
 */
export async function publishTar(store: ObjectStore, key: string, tar: TarFileWriter): Promise<TarFileResult> {
  try {
    const result = await tar.finish();
    await store.putFileFrom(key, result.path);
    await fs.rm(result.path, { force: true });
    return result;
  } catch (err) {
    await tar.abort();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------
// Reader (verification and tests)

export interface TarMember {
  name: string;
  data: Buffer;
}

function cstring(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

function parseNumber(buf: Buffer, start: number, len: number, what: string, offset: number): number {
  const field = buf.subarray(start, start + len);
  if (field[0] & 0x80) { // GNU base-256
    let v = 0;
    for (let i = 0; i < len; i++) v = v * 256 + (i === 0 ? field[i] & 0x7f : field[i]);
    return v;
  }
  const text = field.toString('ascii').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`invalid ${what} field ${JSON.stringify(text)}`, offset);
  return parseInt(text, 8);
}

const isZeroBlock = (buf: Buffer, at: number) => {
  for (let i = at; i < at + TAR_BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
};

/** pax extended header records: "<len> <key>=<value>\n". */
function parsePax(data: Buffer, offset: number): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    const len = space < 0 ? NaN : Number(data.subarray(i, space).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) throw new TarFormatError('invalid pax header record', offset);
    const record = data.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq < 0) throw new TarFormatError('invalid pax header record', offset);
    out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
}

/**
 * Reads a whole tar: regular files in order (directories skipped; pax and GNU long names applied).
 * Throws TarFormatError on a bad checksum or magic, an unsupported member type (links, devices), or
 * an archive that ends before its data or its two zero end blocks.
 */
export function readTar(buf: Buffer): TarMember[] {
  const out: TarMember[] = [];
  let offset = 0;
  let pax: Map<string, string> | null = null;
  let longName: string | null = null;
  for (;;) {
    if (offset + TAR_BLOCK > buf.length) throw new TarFormatError('truncated tar: no end-of-archive blocks', offset);
    if (isZeroBlock(buf, offset)) {
      if (offset + 2 * TAR_BLOCK > buf.length || !isZeroBlock(buf, offset + TAR_BLOCK)) {
        throw new TarFormatError('truncated tar: one zero block instead of the two that end an archive', offset);
      }
      if (pax || longName !== null) throw new TarFormatError('extended header without a member', offset);
      return out;
    }
    const stored = parseNumber(buf, offset + 148, 8, 'checksum', offset);
    let unsigned = 0;
    let signed = 0;
    for (let i = 0; i < TAR_BLOCK; i++) {
      const b = i >= 148 && i < 156 ? 0x20 : buf[offset + i];
      unsigned += b;
      signed += b > 127 ? b - 256 : b;
    }
    if (stored !== unsigned && stored !== signed) throw new TarFormatError(`bad tar header checksum (stored ${stored}, computed ${unsigned})`, offset);
    if (buf.toString('ascii', offset + 257, offset + 262) !== 'ustar') throw new TarFormatError('not a ustar header', offset);
    const type = String.fromCharCode(buf[offset + 156]);
    let size = parseNumber(buf, offset + 124, 12, 'size', offset);
    if (pax?.has('size')) {
      size = Number(pax.get('size'));
      if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`invalid pax size ${JSON.stringify(pax.get('size'))}`, offset);
    }
    const prefix = cstring(buf, offset + 345, PREFIX_LEN);
    const base = cstring(buf, offset, NAME_LEN);
    const dataStart = offset + TAR_BLOCK;
    if (dataStart + size > buf.length) throw new TarFormatError(`truncated tar: member ${JSON.stringify(base)} needs ${size} bytes`, offset);
    const data = buf.subarray(dataStart, dataStart + size);
    const next = dataStart + size + padding(size);
    if (type === 'x') {
      pax = parsePax(data, offset);
    } else if (type === 'L') {
      longName = cstring(data, 0, data.length);
    } else if (type === 'g') {
      // global pax header: nothing we use
    } else if (type === '0' || type === '\0' || type === '7' || type === '5') {
      const name = pax?.get('path') ?? longName ?? (prefix ? `${prefix}/${base}` : base);
      if (type !== '5') out.push({ name, data });
      pax = null;
      longName = null;
    } else {
      throw new TarFormatError(`unsupported tar member type ${JSON.stringify(type)} for ${JSON.stringify(base)}`, offset);
    }
    offset = next;
  }
}
