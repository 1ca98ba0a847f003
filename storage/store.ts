/**
 * One object-store interface over a local directory (the embedded default) and s3://bucket/prefix.
 * Keys are '/'-separated paths relative to the root. Every write publishes atomically: readers see
 * the old object or the whole new one, never a partial file (local: temp file + fsync + rename;
 * S3: a PutObject is atomic by itself).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import {
  DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { ConfigError } from '../curation/errors';
import { localPath, parseS3Uri, s3Client, s3SettingsFromEnv, s3Status, type S3Settings } from './sources';

/** The object does not exist. `code` lets callers classify without importing the class. */
export class NotFoundError extends Error {
  readonly code = 'NotFound';
  constructor(readonly uri: string) {
    super(`not found: ${uri}`);
    this.name = 'NotFoundError';
  }
}

export function isNotFound(err: unknown): err is NotFoundError {
  return err instanceof NotFoundError || (err as { code?: unknown } | null)?.code === 'NotFound';
}

export interface ObjectStore {
  /** The root URI the store was opened with, normalised (file path or s3://bucket/prefix/). */
  readonly root: string;
  /** Whole object; throws NotFoundError when missing. */
  get(key: string): Promise<Buffer>;
  /** Object as a stream; throws NotFoundError when missing (before any byte is read). */
  getStream(key: string): Promise<Readable>;
  /** `length` bytes from `offset` (a range GET on S3); throws NotFoundError when missing, an error when short. */
  getRange(key: string, offset: number, length: number): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  /** Publishes atomically, replacing any previous object. */
  put(key: string, data: Buffer | string): Promise<void>;
  /** Uploads a local file (streamed, not loaded into memory), atomically. */
  putFileFrom(key: string, localFile: string): Promise<void>;
  /** All keys starting with `prefix` (a string prefix, as on S3), sorted. */
  list(prefix?: string): Promise<string[]>;
  /** Removes the object; a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Full URI of a key (file:// or s3://). */
  uri(key: string): string;
}

/** Rejects keys that could escape the root or mean different things on disk and on S3. */
function checkKey(key: string, allowEmpty = false): string {
  if (key === '' && allowEmpty) return key;
  if (!key || key.startsWith('/') || key.includes('\\') || key.includes('\0') ||
      key.split('/').some((part, i, all) => part === '..' || part === '.' || (part === '' && i < all.length - 1))) {
    throw new ConfigError(`invalid object key ${JSON.stringify(key)}: use a relative '/'-separated path without '.', '..' or '//'`);
  }
  return key;
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// Temp names start with '.' and carry this marker, so list() can hide in-flight writes.
const TMP_MARKER = '.tmp-';

class LocalStore implements ObjectStore {
  constructor(readonly root: string) {}

  private file(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  uri(key: string): string {
    return pathToFileURL(path.join(this.root, ...checkKey(key, true).split('/'))).href;
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.file(key));
    } catch (err) {
      throw this.classify(err, key);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file(key), 'r');
    } catch (err) {
      throw this.classify(err, key);
    }
    try {
      const out = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(out, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`short read: ${this.uri(key)} has no bytes ${offset + got}..${offset + length - 1}`);
        got += bytesRead;
      }
      return out;
    } finally {
      await handle.close();
    }
  }

  async getStream(key: string): Promise<Readable> {
    const stream = createReadStream(this.file(key), { highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (err) => reject(this.classify(err, key)));
    });
    return stream;
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await fs.stat(this.file(key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
      throw err;
    }
  }

  async put(key: string, data: Buffer | string): Promise<void> {
    await this.publish(key, async (tmp) => {
      const fh = await fs.open(tmp, 'wx');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  async putFileFrom(key: string, localFile: string): Promise<void> {
    await this.publish(key, async (tmp) => {
      await fs.copyFile(localFile, tmp, fs.constants.COPYFILE_EXCL);
      const fh = await fs.open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  /** Writes through a temp name in the target directory (same filesystem, so rename is atomic). */
  private async publish(key: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.file(key);
    const dir = path.dirname(target);
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${path.basename(target)}${TMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await write(tmp);
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    // Persist the rename itself; not every platform can fsync a directory, and that is not fatal.
    try {
      const dh = await fs.open(dir, 'r');
      try { await dh.sync(); } finally { await dh.close(); }
    } catch { /* best effort */ }
  }

  async list(prefix = ''): Promise<string[]> {
    if (prefix) checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash + 1); // the deepest directory the prefix names
    const keys: string[] = [];
    const walk = async (relDir: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(path.join(this.root, ...relDir.split('/').filter(Boolean)), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      for (const e of entries) {
        const key = relDir + e.name;
        if (e.isDirectory()) {
          // Only descend where keys below can still match the prefix.
          if (prefix.startsWith(key + '/') || (key + '/').startsWith(prefix)) await walk(key + '/');
        } else if (e.isFile() && key.startsWith(prefix) && !(e.name.startsWith('.') && e.name.includes(TMP_MARKER))) {
          keys.push(key);
        }
      }
    };
    await walk(base);
    return keys.sort(byCodeUnit);
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.file(key), { force: true });
  }

  private classify(err: unknown, key: string): Error {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return new NotFoundError(this.uri(key));
    return err as Error;
  }
}

/** Adds the operation and URI to an SDK error while keeping its name (classifiers look at names). */
function s3Error(op: string, uri: string, err: unknown): Error {
  const e = err as Error;
  const status = s3Status(err);
  const wrapped = new Error(`${op} ${uri}: ${e.name}${status ? ` (HTTP ${status})` : ''}: ${e.message}`, { cause: err });
  wrapped.name = e.name;
  return wrapped;
}

const isMissing = (err: unknown) => {
  const name = (err as Error | null)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || s3Status(err) === 404;
};

// One PutObject is limited to 5 GiB; bigger uploads would need multipart (not needed for our outputs).
const MAX_SINGLE_PUT = 5 * 1024 ** 3;

class S3Store implements ObjectStore {
  readonly root: string;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly client: S3Client;

  constructor(rootUri: string, settings: S3Settings) {
    const { bucket, key } = parseS3Uri(rootUri);
    this.bucket = bucket;
    this.prefix = key && !key.endsWith('/') ? `${key}/` : key;
    this.root = `s3://${bucket}/${this.prefix}`;
    this.client = s3Client(settings);
  }

  uri(key: string): string {
    return this.root + checkKey(key, true);
  }

  private objectKey(key: string): string {
    return this.prefix + checkKey(key);
  }

  /** Runs one request: a missing object gives `missing()` when that is set, any other failure an error naming `op` and the key's URI. */
  private async request<T>(op: string, key: string, run: () => Promise<T>, missing?: () => T): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (missing && isMissing(err)) return missing();
      throw s3Error(op, this.uri(key), err);
    }
  }

  async get(key: string): Promise<Buffer> {
    const stream = await this.getStream(key);
    return this.request('GET', key, async () => {
      const parts: Buffer[] = [];
      for await (const chunk of stream) parts.push(chunk as Buffer);
      return Buffer.concat(parts);
    });
  }

  async getStream(key: string): Promise<Readable> {
    const objectKey = this.objectKey(key);
    const out = await this.request('GET', key, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey })), () => {
      throw new NotFoundError(this.uri(key));
    });
    return out.Body as Readable;
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const objectKey = this.objectKey(key);
    const range = `bytes=${offset}-${offset + length - 1}`;
    const out = await this.request('GET', key, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey, Range: range })), () => {
      throw new NotFoundError(this.uri(key));
    });
    const body = await this.request('GET', key, async () => Buffer.from(await out.Body!.transformToByteArray()));
    if (body.length !== length) throw new Error(`short read: ${this.uri(key)} ${range} gave ${body.length} bytes`);
    return body;
  }

  async exists(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    return this.request('HEAD', key, async () => {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return true;
    }, () => false);
  }

  async put(key: string, data: Buffer | string): Promise<void> {
    const objectKey = this.objectKey(key);
    // An explicit length: the SDK cannot tell the length of an empty string body and warns.
    await this.request('PUT', key, () => this.client.send(new PutObjectCommand({
      Bucket: this.bucket, Key: objectKey, Body: data, ContentLength: Buffer.byteLength(data),
    })));
  }

  async putFileFrom(key: string, localFile: string): Promise<void> {
    const objectKey = this.objectKey(key);
    const { size } = await fs.stat(localFile);
    if (size > MAX_SINGLE_PUT) throw new ConfigError(`cannot upload ${localFile} to ${this.uri(key)}: ${size} bytes is over the 5 GiB single-PUT limit`);
    // A stream body needs an explicit length: the SDK cannot sign or send it otherwise.
    await this.request('PUT', key, () => this.client.send(new PutObjectCommand({
      Bucket: this.bucket, Key: objectKey, Body: createReadStream(localFile), ContentLength: size,
    })));
  }

  async list(prefix = ''): Promise<string[]> {
    if (prefix) checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
    const keys: string[] = [];
    let token: string | undefined;
    await this.request('LIST', prefix, async () => {
      do {
        const out = await this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token,
        }));
        for (const o of out.Contents ?? []) if (o.Key && !o.Key.endsWith('/')) keys.push(o.Key.slice(this.prefix.length));
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    });
    return keys.sort(byCodeUnit);
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.objectKey(key);
    await this.request<unknown>('DELETE', key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey })),
      () => undefined);
  }
}

/** Opens a store: a local directory (path or file://, the default) or s3://bucket/prefix. */
export function openStore(rootUri: string, s3: S3Settings = s3SettingsFromEnv()): ObjectStore {
  if (/^s3:\/\//i.test(rootUri)) return new S3Store(rootUri, s3);
  const p = localPath(rootUri);
  if (p === null) throw new ConfigError(`unsupported store root ${rootUri}: use a directory, file:// or s3://bucket/prefix`);
  return new LocalStore(path.resolve(p));
}

export async function readJson<T = unknown>(store: ObjectStore, key: string): Promise<T> {
  const text = (await store.get(key)).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`invalid JSON in ${store.uri(key)}: ${(err as Error).message}`);
  }
}

export async function writeJson(store: ObjectStore, key: string, value: unknown, indent = 2): Promise<void> {
  await store.put(key, JSON.stringify(value, null, indent) + '\n');
}
