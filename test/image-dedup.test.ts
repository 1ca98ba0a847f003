import fc from 'fast-check';
import {
  duplicateEdges, hammingHex, partitionOf, phashBands, representatives, signaturesOf, type DuplicateEdge, type ImageSignatureSource,
} from '../curation/image-dedup';

const hex64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => v.toString(16).padStart(16, '0'));
const flip = (h: string, bits: number[]) => {
  let v = BigInt(`0x${h}`);
  for (const b of bits) v ^= 1n << BigInt(b);
  return v.toString(16).padStart(16, '0');
};
const key = (i: number) => `00000${String(i).padStart(7, '0')}`;

/** Dedup as the pipeline does it: signatures routed to `partitions`, edges per partition, union-find over all. */
function dedup(images: ImageSignatureSource[], d: number, partitions: number): Map<string, string> {
  const parts: ReturnType<typeof signaturesOf>[] = Array.from({ length: partitions }, () => []);
  for (const img of images) for (const s of signaturesOf(img, d)) parts[partitionOf(s.sig, partitions)].push(s);
  const edges: DuplicateEdge[] = [];
  for (const p of parts) edges.push(...duplicateEdges(p, d));
  return representatives(edges);
}

test('pHash bands: d + 1 bands cover the 64 bits, and two hashes within d bits share a band (pigeonhole)', () => {
  expect(phashBands('ffffffffffffffff', 5).map((b) => b.split(':')[1].length)).toEqual([12, 13, 13, 13, 13]);
  fc.assert(fc.property(hex64, fc.integer({ min: 0, max: 8 }), fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { maxLength: 8 }), (h, d, bits) => {
    const other = flip(h, bits.slice(0, d));
    expect(hammingHex(h, other)).toBe(Math.min(bits.length, d));
    const a = new Set(phashBands(h, d + 1));
    expect(phashBands(other, d + 1).some((b) => a.has(b))).toBe(true);
  }), { numRuns: 500 });
});

test('exact copies and near copies join the first image in pool order; different pictures stay apart', () => {
  const base = 'a5a5a5a5f0f00f0f';
  const images: ImageSignatureSource[] = [
    { key: key(3), sha256: 's1', phash: base },
    { key: key(7), sha256: 's1', phash: base }, // same bytes
    { key: key(5), sha256: 's2', phash: flip(base, [1, 40]) }, // 2 bits away
    { key: key(9), sha256: 's3', phash: flip(base, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]) }, // 10 bits away
    { key: key(1), sha256: 's4', phash: '0123456789abcdef' }, // unrelated
  ];
  const reps = dedup(images, 4, 3);
  expect(Object.fromEntries(reps)).toEqual({ [key(5)]: key(3), [key(7)]: key(3) });
});

test('property: the result does not depend on the number of partitions, and every representative is its group minimum', () => {
  const clusterArb = fc.array(fc.record({ base: hex64, copies: fc.array(fc.record({ bits: fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { maxLength: 3 }), same: fc.boolean() }), { maxLength: 4 }) }), { minLength: 1, maxLength: 12 });
  fc.assert(fc.property(clusterArb, fc.integer({ min: 0, max: 1000 }), (clusters, shuffleSeed) => {
    const images: ImageSignatureSource[] = [];
    let n = 0;
    clusters.forEach((c, ci) => {
      images.push({ key: key((n++ * 7919 + shuffleSeed) % 100000), sha256: `c${ci}`, phash: c.base });
      for (const copy of c.copies) {
        images.push({ key: key((n++ * 7919 + shuffleSeed) % 100000), sha256: copy.same ? `c${ci}` : `c${ci}-${n}`, phash: copy.same ? c.base : flip(c.base, copy.bits) });
      }
    });
    const uniq = [...new Map(images.map((i) => [i.key, i])).values()];
    const one = dedup(uniq, 3, 1);
    expect(dedup(uniq, 3, 7)).toEqual(one);
    expect(dedup(uniq, 3, 64)).toEqual(one);
    for (const [k, r] of one) {
      expect(r < k).toBe(true);
      expect(one.has(r)).toBe(false); // representatives are never duplicates themselves
    }
    // Exact copies always end with one representative.
    const bySha = new Map<string, string[]>();
    for (const i of uniq) bySha.set(i.sha256, [...(bySha.get(i.sha256) ?? []), i.key]);
    for (const keys of bySha.values()) {
      const roots = new Set(keys.map((k) => one.get(k) ?? k));
      expect(roots.size).toBe(1);
    }
  }), { numRuns: 300 });
});
