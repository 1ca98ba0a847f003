/**
 * The WARC reader's block assembly and batching (curation/warc.ts): large blocks copied into place as they arrive
 * give the same records, offsets and errors as small ones; while inflating, batches end every GUNZIP_TURN_BYTES.
 */
import { randomBytes } from 'node:crypto';
import { CorruptInputError } from '../curation/errors';
import { GUNZIP_TURN_BYTES } from '../curation/gunzip';
import { GZIP_MEMBERS_ADDON, OutputRecycler, gunzipMembers, gzipMembersNative } from '../curation/gzip-members';
import { readWarcRecordBatches, readWarcRecords, type WarcRecord } from '../curation/warc';
import { warcFile, warcRecord, type Packing } from './support/warcbuild';

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(input: AsyncIterable<Buffer>): Promise<{ records: WarcRecord[]; error: unknown }> {
  const records: WarcRecord[] = [];
  try {
    for await (const r of readWarcRecords(input)) records.push(r);
    return { records, error: null };
  } catch (error) {
    return { records, error };
  }
}

const MB = 1 << 20;
const blocks = [Buffer.from('small one'), randomBytes(5 * MB), Buffer.from('x'), Buffer.alloc(9 * MB + 7, 'a'), randomBytes(4 * MB - 1), Buffer.from('end')];
const records = blocks.map((block, i) => warcRecord({ type: 'resource', targetUri: `http://e.com/${i}`, block }));
const offsets: number[] = [];
for (let i = 0, at = 0; i < records.length; at += records[i].length, i++) offsets.push(at);

describe('large blocks are assembled in place, with the same records as small ones', () => {
  test.each<[Packing, number]>([
    ['plain', 777_777], ['plain', 3 * MB], ['plain', 64 * MB], ['gzip-per-record', 100_000], ['gzip-whole', 1 * MB],
  ])('%s in chunks of %d bytes', async (packing, size) => {
    const { records: got, error } = await readAll(chunked(warcFile(records, packing), size));
    expect(error).toBeNull();
    expect(got.map((r) => r.offset)).toEqual(offsets);
    got.forEach((r, i) => {
      expect(r.contentLength).toBe(blocks[i].length);
      expect(r.block!.equals(blocks[i])).toBe(true);
      expect(r.targetUri).toBe(`http://e.com/${i}`);
    });
  }, 60_000);

  test('a file cut inside a large block: the records before it, then truncated with the bytes it had', async () => {
    const file = warcFile(records, 'plain');
    const cut = offsets[3] + 2 * MB; // inside the 9 MB block
    const { records: got, error } = await readAll(chunked(file.subarray(0, cut), 300_000));
    expect(got.map((r) => r.offset)).toEqual(offsets.slice(0, 3));
    expect(error).toBeInstanceOf(CorruptInputError);
    expect((error as CorruptInputError).kind).toBe('truncated');
    const headerBytes = records[3].length - blocks[3].length - 4; // the block is followed by \r\n\r\n
    expect((error as Error).message).toBe(
      `truncated: record block needs ${blocks[3].length} bytes, input has ${cut - offsets[3] - headerBytes} (at decompressed byte ${offsets[3]})`,
    );
  }, 60_000);

  test('a block over maxRecordBytes is skipped whatever its size', async () => {
    const got: WarcRecord[] = [];
    for await (const r of readWarcRecords(chunked(warcFile(records, 'plain'), 1 * MB), { maxRecordBytes: 4 * MB })) got.push(r);
    expect(got.map((r) => (r.block === null ? null : r.block.length))).toEqual([9, null, 1, null, 4 * MB - 1, 3]);
    expect(got.map((r) => r.offset)).toEqual(offsets);
  }, 60_000);
});

describe('batches while inflating', () => {
  test('a batch ends after GUNZIP_TURN_BYTES of records (gzip), and at the end of a chunk only (plain)', async () => {
    const small = Array.from({ length: 400 }, (_, i) => warcRecord({ type: 'resource', targetUri: `http://s.com/${i}`, block: Buffer.alloc(10_000, 'b') }));
    const total = small.reduce((n, r) => n + r.length, 0);
    for (const packing of ['gzip-per-record', 'plain'] as Packing[]) {
      const file = warcFile(small, packing);
      const sizes: number[] = [];
      for await (const batch of readWarcRecordBatches(chunked(file, file.length))) sizes.push(batch.length);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(400);
      if (packing === 'plain') {
        expect(sizes).toEqual([400]); // one chunk: one batch
      } else {
        const perBatch = Math.ceil(GUNZIP_TURN_BYTES / small[0].length);
        // A batch ends at the record that passes GUNZIP_TURN_BYTES: it holds less than that plus one record.
        expect(sizes.length).toBeGreaterThanOrEqual(Math.floor(total / (GUNZIP_TURN_BYTES + small[0].length)));
        expect(Math.max(...sizes)).toBeLessThanOrEqual(perBatch);
      }
    }
  });
});

describe('recycleBlocks: the inflater\'s buffers are reused once a batch is done with', () => {
  // Many records of assorted sizes (a few span the 1 MiB output buffers), each block telling its own index.
  const many = Array.from({ length: 3000 }, (_, i) => {
    const size = i % 97 === 0 ? 300_000 + i : 2000 + ((i * 7919) % 9000);
    return Buffer.concat([Buffer.from(`record ${i} `), Buffer.alloc(size, String.fromCharCode(97 + (i % 26)))]);
  });
  const file = warcFile(many.map((block, i) => warcRecord({ type: 'resource', targetUri: `http://e.com/${i}`, block })), 'gzip-per-record');

  test.each([1 << 20, 65_536, 3_000_001])('every block read within its batch is its own bytes (input chunks of %d)', async (size) => {
    let n = 0;
    for await (const batch of readWarcRecordBatches(chunked(file, size), { recycleBlocks: true })) {
      for (const r of batch) {
        expect(r.block!.equals(many[n])).toBe(true);
        n++;
      }
    }
    expect(n).toBe(many.length);
  }, 60_000);

  // Skipped, and said, where the libdeflate addon is not built (zlib's buffers are not recycled).
  if (gzipMembersNative() === null) console.warn(`warc-reader.test: ${GZIP_MEMBERS_ADDON} is not built or is off (CURATE_LIBDEFLATE=0); the reuse of its buffers is not tested`);
  (gzipMembersNative() !== null ? test : test.skip)('gunzipMembers takes its buffers back from the recycler and reuses them', async () => {
    const recycler = new OutputRecycler();
    const parts: Buffer[] = [];
    for await (const chunk of gunzipMembers(chunked(file, 1 << 20), { recycler })) {
      parts.push(Buffer.from(chunk)); // a copy: the chunk goes back
      recycler.release(chunk);
      recycler.release(Buffer.alloc(10)); // not one of its buffers: ignored
    }
    expect(Buffer.concat(parts).equals(Buffer.concat(many.map((block, i) => warcRecord({ type: 'resource', targetUri: `http://e.com/${i}`, block }))))).toBe(true);
    expect(recycler.reused).toBeGreaterThan(5);
  }, 60_000);
});
