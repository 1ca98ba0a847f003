/**
 * Hostile inputs generated in the tests themselves (issue 11): WAT records shaped to blow up a parser's memory.
 * Each is one metadata record of `bytes` bytes, gzipped (the files are tiny on disk: the payload repeats).
 */
import { createGzip } from 'node:zlib';
import { createWriteStream } from 'node:fs';
import { serializeRecord } from '../../scripts/warc-writer';

const HEAD = '{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[';
const TAIL = ']}}}}}';

/** The WARC header of a WAT metadata record whose block is `length` bytes. */
function watHeader(targetUri: string, length: number): Buffer {
  const { bytes } = serializeRecord([
    ['WARC-Type', 'metadata'],
    ['WARC-Target-URI', targetUri],
    ['WARC-Record-ID', '<urn:uuid:00000000-0000-0000-0000-000000000011>'],
    ['Content-Type', 'application/json'],
  ], Buffer.alloc(length));
  return bytes.subarray(0, bytes.length - length - 4); // header only: the block and the record end are streamed
}

/** Writes parts (strings or repeat specs) through gzip into `path`, without holding the record in memory. */
async function writeGz(path: string, parts: Array<string | { repeat: string; times: number }>): Promise<void> {
  const gz = createGzip({ level: 1 });
  const done = new Promise<void>((resolve, reject) => {
    const out = createWriteStream(path);
    out.on('finish', resolve);
    out.on('error', reject);
    gz.on('error', reject);
    gz.pipe(out);
  });
  const write = async (chunk: string | Buffer) => {
    if (!gz.write(chunk)) await new Promise((r) => gz.once('drain', r));
  };
  for (const part of parts) {
    if (typeof part === 'string') await write(part);
    else {
      const block = part.repeat.repeat(Math.max(1, Math.floor((1 << 20) / part.repeat.length)));
      const per = block.length / part.repeat.length;
      let left = part.times;
      while (left >= per) {
        await write(block);
        left -= per;
      }
      if (left > 0) await write(part.repeat.repeat(left));
    }
  }
  gz.end();
  await done;
}

function length(parts: Array<string | { repeat: string; times: number }>): number {
  let n = 0;
  for (const p of parts) n += typeof p === 'string' ? Buffer.byteLength(p) : Buffer.byteLength(p.repeat) * p.times;
  return n;
}

async function writeWat(path: string, targetUri: string, block: Array<string | { repeat: string; times: number }>): Promise<number> {
  const n = length(block);
  await writeGz(path, [watHeader(targetUri, n).toString('latin1'), ...block, '\r\n\r\n']);
  return n;
}

/** One WAT record of about `bytes` bytes: an image link, then `[` nested (bytes/2) deep inside another member. */
export async function writeDeeplyNestedWat(path: string, bytes: number): Promise<number> {
  const depth = Math.floor((bytes - HEAD.length - 100) / 2);
  return writeWat(path, 'http://deep.example/', [
    HEAD, '{"path":"IMG@/src","url":"/a.png","alt":"a nested picture"}', TAIL.slice(0, 2), ',"x":',
    { repeat: '[', times: depth }, { repeat: ']', times: depth }, TAIL.slice(2),
  ]);
}

/** One WAT record of about `bytes` bytes holding `links` image links (distinct URLs, short alt texts). */
export async function writeManyLinksWat(path: string, links: number): Promise<number> {
  const parts: Array<string | { repeat: string; times: number }> = [HEAD];
  // Distinct URLs in blocks of 1,000 so the generator stays cheap: /i/<block>/<k>.jpg
  let chunk = '';
  for (let i = 0; i < links; i++) {
    chunk += `${i === 0 ? '' : ','}{"path":"IMG@/src","url":"/i/${i}.jpg","alt":"photo ${i % 997}"}`;
    if (chunk.length > 1 << 20) {
      parts.push(chunk);
      chunk = '';
    }
  }
  parts.push(chunk, TAIL);
  return writeWat(path, 'http://many.example/gallery/', parts);
}
