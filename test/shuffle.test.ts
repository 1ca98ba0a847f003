/** The dedup shuffle file (one per batch, a Parquet segment per bucket read by range) and the stored shard list. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { EACH, keyAt, keysOf, layout } from '../curation/layout';
import { MAX_BUCKETS, bucketsForPairs } from '../curation/dedup';
import { capReason } from '../curation/errors';
import { shardRefs } from '../curation/run';
import { SHARD_LIST_PART, readShardSlice, verifyShardList, writeShardList } from '../storage/shard-list';
import { encodeShuffle, readShuffleSegment, shuffleBuckets, shuffleHeaderSize, shuffleSegment } from '../storage/shuffle';
import { openStore } from '../storage/store';
import { itemsPerChild, MAX_CHILDREN } from '../workflows/buckets';

let dir: string;
beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'shuffle-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('property: every segment comes back byte for byte, from memory and by range from the store', async () => {
  const store = openStore(dir);
  await fc.assert(fc.asyncProperty(
    fc.array(fc.option(fc.uint8Array({ minLength: 0, maxLength: 64 }), { nil: null }), { minLength: 1, maxLength: 40 }),
    async (segments) => {
      const file = encodeShuffle(segments);
      expect(shuffleBuckets(file)).toBe(segments.length);
      const total = segments.reduce((s, x) => s + (x?.length ?? 0), 0);
      expect(file.length).toBe(shuffleHeaderSize(segments.length) + total);
      await store.put('s/batch.shuffle', file);
      for (let b = 0; b < segments.length; b++) {
        const want = Buffer.from(segments[b] ?? []);
        expect(shuffleSegment(file, b).equals(want)).toBe(true);
        expect((await readShuffleSegment(store, 's/batch.shuffle', b, segments.length)).equals(want)).toBe(true);
      }
    },
  ), { numRuns: 60 });
});

test('a damaged header is an error, not silently wrong rows', async () => {
  const file = encodeShuffle([Buffer.from('abc'), Buffer.from('defg')]);
  expect(() => shuffleBuckets(Buffer.from('NOTSHUF1xxxxxxxx'))).toThrow(/bad magic/);
  const bad = Buffer.from(file);
  bad.writeBigUInt64LE(3n, 16); // bucket 0's segment "starts" inside the header
  expect(() => shuffleSegment(bad, 0)).toThrow(/points into the header/);
  const store = openStore(dir);
  await store.put('s/short.shuffle', file.subarray(0, file.length - 2));
  await expect(readShuffleSegment(store, 's/short.shuffle', 1, 2)).rejects.toThrow(/short read/);
});

test('key templates expand to the same keys as the layout functions', () => {
  expect(keyAt(layout.dedupCounts('r', EACH), 7)).toBe(layout.dedupCounts('r', 7));
  expect(keysOf({ template: layout.partition('r', EACH), count: 3 })).toEqual([0, 1, 2].map((b) => layout.partition('r', b)));
  expect(() => keyAt('runs/r/x.json', 1)).toThrow(/has no/);
});

test('the shard list round-trips across parts, refuses another list under the same run, and detects damage', async () => {
  const store = openStore(path.join(dir, 'lists'));
  const uris = Array.from({ length: SHARD_LIST_PART * 2 + 17 }, (_, i) => `s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/x/warc/CC-MAIN-${i}.warc.gz`);
  const shards = shardRefs(uris);
  const ref = await writeShardList(store, 'run-a', shards);
  expect(ref).toMatchObject({ runId: 'run-a', count: uris.length });
  expect(JSON.stringify(ref).length).toBeLessThan(200);
  await verifyShardList(store, ref);
  expect(await readShardSlice(store, ref, SHARD_LIST_PART - 2, 5)).toEqual(shards.slice(SHARD_LIST_PART - 2, SHARD_LIST_PART + 3));
  expect(await readShardSlice(store, ref, uris.length - 1, 1)).toEqual([shards[uris.length - 1]]);
  await expect(readShardSlice(store, ref, uris.length - 1, 2)).rejects.toThrow(/outside the list/);
  // The same list again is fine; another one under the same run id is refused.
  await expect(writeShardList(store, 'run-a', shards)).resolves.toEqual(ref);
  await expect(writeShardList(store, 'run-a', shards.slice(1))).rejects.toThrow(/another shard list/);
  // A list whose content changed under the reference is detected.
  await store.put(layout.shardList('run-a', 2), '');
  await expect(verifyShardList(store, ref)).rejects.toThrow(/damaged|does not match/);
});

test('failure reasons are escaped and capped before they travel', () => {
  const control = Array.from({ length: 250_000 }, (_, i) => String.fromCharCode(1 + (i % 30))).join('');
  const r = capReason(`CorruptInput: bad-header: record without a valid Content-Length (${control})`);
  expect(r.length).toBeLessThan(1_100);
  expect(r).not.toMatch(/[\u0000-\u001f]/);
  expect(r).toMatch(/more characters\)$/);
  expect(capReason('InputUnavailable: no such file')).toBe('InputUnavailable: no such file');
  expect(capReason('lone \ud800 surrogate, pair 😀')).toBe('lone \\ud800 surrogate, pair 😀');
});

test('bucket counts follow the pool, and a phase never has more than 64 children of ≤ 256 items', () => {
  expect(bucketsForPairs(0)).toBe(1);
  expect(bucketsForPairs(1_000_001, 500_000)).toBe(3);
  expect(bucketsForPairs(1e15)).toBe(MAX_BUCKETS);
  for (const items of [1, 64, 65, 4_096, 4_097, MAX_BUCKETS, 31_250]) {
    const per = itemsPerChild(items);
    expect(Math.ceil(items / per)).toBeLessThanOrEqual(MAX_CHILDREN);
    if (items <= MAX_BUCKETS) expect(per).toBeLessThanOrEqual(256);
  }
});
