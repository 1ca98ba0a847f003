/**
 * The dedup shuffle's file: one per batch, holding the batch's pairs grouped by uuid bucket, so a run writes
 * O(batches + buckets) objects instead of one per (batch, bucket). Layout:
 *
 *   "CURSHUF1" | u32 LE bucket count | u32 0 | per bucket: u64 LE offset, u64 LE length | segments…
 *
 * A segment is the bucket's rows as one Parquet file (empty buckets have length 0). A bucket's dedup reads
 * its entry of the header and then its segment, each by range (a range GET on S3).
 */
import type { ObjectStore } from './store';

const MAGIC = Buffer.from('CURSHUF1', 'latin1');
const PREAMBLE = 16;
const ENTRY = 16;

export function shuffleHeaderSize(buckets: number): number {
  return PREAMBLE + ENTRY * buckets;
}

/** One shuffle file from its segments (index = bucket; null or empty = no rows). */
export function encodeShuffle(segments: ReadonlyArray<Uint8Array | null>): Buffer {
  const header = Buffer.alloc(shuffleHeaderSize(segments.length));
  MAGIC.copy(header, 0);
  header.writeUInt32LE(segments.length, 8);
  let offset = header.length;
  const body: Uint8Array[] = [header];
  segments.forEach((seg, b) => {
    const length = seg?.length ?? 0;
    header.writeBigUInt64LE(BigInt(length ? offset : 0), PREAMBLE + ENTRY * b);
    header.writeBigUInt64LE(BigInt(length), PREAMBLE + ENTRY * b + 8);
    if (length) body.push(seg!);
    offset += length;
  });
  return Buffer.concat(body);
}

/** Where bucket `b`'s segment lies, from its 16-byte header entry. */
export function decodeShuffleEntry(entry: Buffer, bucket: number, buckets: number): { offset: number; length: number } {
  if (entry.length !== ENTRY) throw new Error(`shuffle header entry of bucket ${bucket} has ${entry.length} bytes`);
  const offset = Number(entry.readBigUInt64LE(0));
  const length = Number(entry.readBigUInt64LE(8));
  if (length > 0 && offset < shuffleHeaderSize(buckets)) throw new Error(`shuffle header entry of bucket ${bucket} points into the header (${offset})`);
  return { offset, length };
}

/** Checks the preamble of a whole shuffle file (tests, tools) and returns its bucket count. */
export function shuffleBuckets(file: Buffer): number {
  if (file.length < PREAMBLE || !file.subarray(0, 8).equals(MAGIC)) throw new Error('not a shuffle file (bad magic)');
  return file.readUInt32LE(8);
}

/** Bucket `b`'s segment of a shuffle file in the store (empty when the batch has no rows for it): two range reads. */
export async function readShuffleSegment(store: ObjectStore, key: string, bucket: number, buckets: number): Promise<Buffer> {
  const entry = decodeShuffleEntry(await store.getRange(key, PREAMBLE + ENTRY * bucket, ENTRY), bucket, buckets);
  return entry.length ? store.getRange(key, entry.offset, entry.length) : Buffer.alloc(0);
}

/** Bucket `b`'s segment out of a whole shuffle file held in memory. */
export function shuffleSegment(file: Buffer, bucket: number): Buffer {
  const buckets = shuffleBuckets(file);
  if (bucket >= buckets) throw new Error(`bucket ${bucket} is not in a shuffle file of ${buckets} buckets`);
  const { offset, length } = decodeShuffleEntry(file.subarray(PREAMBLE + ENTRY * bucket, PREAMBLE + ENTRY * (bucket + 1)), bucket, buckets);
  return file.subarray(offset, offset + length);
}
