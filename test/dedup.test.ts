import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { addDedupStats, bucketOf, PairDedup, type DedupStats } from '../curation/dedup';

const uuidOf = (i: number) => createHash('sha224').update(`https://img.example/${i}.jpg`).digest('hex').slice(0, 24);

type Pair = { uuid: string; text: string };
/** A pair's place in pool order. */
type Pos = { shard: number; index: number };

/** The test's own reading of §1e: first occurrence of each (uuid, text) in pool order. */
function reference(pool: Pair[][]): { kept: Pos[]; stats: DedupStats } {
  const seen = new Set<string>();
  const images = new Set<string>();
  const kept: Pos[] = [];
  let input = 0;
  pool.forEach((shard, s) =>
    shard.forEach((p, i) => {
      input++;
      const k = JSON.stringify([p.uuid, p.text]);
      if (seen.has(k)) return;
      seen.add(k);
      images.add(p.uuid);
      kept.push({ shard: s, index: i });
    }),
  );
  return { kept, stats: { inputPairs: input, uniquePairs: kept.length, duplicatePairs: input - kept.length, uniqueImages: images.size } };
}

/** Pools with many duplicates: few images, few texts (including '' and texts that differ only by case or spacing). */
const UUIDS = Array.from({ length: 8 }, (_, i) => uuidOf(i));
const pairArb = fc.record({ uuid: fc.constantFrom(...UUIDS), text: fc.constantFrom('a dog', 'A dog', 'a  dog', 'cat', '', 'x\u0000y') });
const poolArb = fc.array(fc.array(pairArb, { maxLength: 25 }), { minLength: 1, maxLength: 6 });

describe('bucketOf', () => {
  test('is the first 8 hex digits of the uuid modulo the bucket count', () => {
    expect(bucketOf('0000000a' + '0'.repeat(16), 4)).toBe(2);
    expect(bucketOf('ffffffff' + 'f'.repeat(16), 7)).toBe(0xffffffff % 7);
    expect(bucketOf('12345678abcdef', 1)).toBe(0);
    expect(bucketOf('DEADBEEF', 1000)).toBe(0xdeadbeef % 1000);
  });

  test('property: deterministic and in [0, buckets)', () => {
    fc.assert(
      fc.property(fc.nat(1e6), fc.integer({ min: 1, max: 5000 }), (i, b) => {
        const u = uuidOf(i);
        const k = bucketOf(u, b);
        expect(Number.isInteger(k) && k >= 0 && k < b).toBe(true);
        expect(bucketOf(u, b)).toBe(k);
      }),
      { numRuns: 500 },
    );
  });

  test('spreads real uuids evenly: 100k uuids over 16 buckets, chi-square < 56.49 (df 15, α = 1e-6)', () => {
    const n = 100_000;
    const bins = new Float64Array(16);
    for (let i = 0; i < n; i++) bins[bucketOf(uuidOf(i), 16)]++;
    let chi = 0;
    for (const o of bins) chi += (o - n / 16) ** 2 / (n / 16);
    expect(chi).toBeLessThan(56.49);
  });

  test('rejects a uuid that is not hex', () => {
    expect(() => bucketOf('zzzzzzzz', 4)).toThrow(/not hex/);
    expect(() => bucketOf('', 4)).toThrow(/not hex/);
  });
});

describe('PairDedup (spec §1e)', () => {
  test('keeps the first occurrence of each (uuid, text), in order; counts images and duplicates', () => {
    const d = new PairDedup();
    const offers: Array<[string, string, boolean]> = [
      ['u1', 'a', true],
      ['u1', 'a', false], // same pair
      ['u1', 'b', true], // second text: promoted to a set
      ['u2', 'a', true], // same text, other image
      ['u1', 'a', false],
      ['u1', 'c', true],
      ['u1', 'b', false],
      ['u2', 'A', true], // case-sensitive
      ['u3', '', true], // an empty text is a text
      ['u3', '', false],
      ['u3', ' ', true],
    ];
    for (const [u, t, keep] of offers) expect(d.offer(u, t)).toBe(keep);
    expect(d.stats).toEqual({ inputPairs: 11, uniquePairs: 7, duplicatePairs: 4, uniqueImages: 3 });
  });

  test('property: equals the first-occurrence definition on pools with many duplicates; stats add up', () => {
    fc.assert(
      fc.property(poolArb, (pool) => {
        const d = new PairDedup();
        const kept: Pos[] = [];
        pool.forEach((shard, s) => shard.forEach((p, i) => d.offer(p.uuid, p.text) && kept.push({ shard: s, index: i })));
        const ref = reference(pool);
        expect(kept).toEqual(ref.kept);
        expect(d.stats).toEqual(ref.stats);
        expect(d.stats.uniquePairs + d.stats.duplicatePairs).toBe(d.stats.inputPairs);
      }),
      { numRuns: 500 },
    );
  });

  test('property: hash-partitioning by bucketOf, deduping each bucket alone and merging in (shard, position) order equals one pass over the pool', () => {
    fc.assert(
      fc.property(poolArb, fc.integer({ min: 1, max: 9 }), (pool, buckets) => {
        const one = reference(pool);
        // Each bucket reads the pool in pool order, keeping only its own uuids (as the dedup activity does).
        const perBucket = Array.from({ length: buckets }, () => ({ dedup: new PairDedup(), kept: [] as Pos[] }));
        pool.forEach((shard, s) =>
          shard.forEach((p, i) => {
            const b = perBucket[bucketOf(p.uuid, buckets)];
            if (b.dedup.offer(p.uuid, p.text)) b.kept.push({ shard: s, index: i });
          }),
        );
        const merged = perBucket.flatMap((b) => b.kept).sort((x, y) => x.shard - y.shard || x.index - y.index);
        expect(merged).toEqual(one.kept);
        const total: DedupStats = { inputPairs: 0, uniquePairs: 0, duplicatePairs: 0, uniqueImages: 0 };
        for (const b of perBucket) addDedupStats(total, b.dedup.stats);
        expect(total).toEqual(one.stats);
      }),
      { numRuns: 500 },
    );
  });

  test('across shards the earlier shard wins: fed [shard 0, shard 1], the duplicates in shard 1 are the ones dropped', () => {
    const shard0: Pair[] = [{ uuid: UUIDS[0], text: 'a dog' }, { uuid: UUIDS[1], text: 'cat' }];
    const shard1: Pair[] = [{ uuid: UUIDS[1], text: 'cat' }, { uuid: UUIDS[0], text: 'a dog' }, { uuid: UUIDS[0], text: 'cat' }];
    const d = new PairDedup();
    expect([...shard0, ...shard1].map((p) => d.offer(p.uuid, p.text))).toEqual([true, true, false, false, true]);
    expect(d.stats).toEqual({ inputPairs: 5, uniquePairs: 3, duplicatePairs: 2, uniqueImages: 2 });
  });

  test('addDedupStats adds every field and returns its target', () => {
    const into: DedupStats = { inputPairs: 1, uniquePairs: 2, duplicatePairs: 3, uniqueImages: 4 };
    const out = addDedupStats(into, { inputPairs: 10, uniquePairs: 20, duplicatePairs: 30, uniqueImages: 40 });
    expect(out).toBe(into);
    expect(into).toEqual({ inputPairs: 11, uniquePairs: 22, duplicatePairs: 33, uniqueImages: 44 });
  });
});
