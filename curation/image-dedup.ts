/**
 * Image dedup across the pool (pure): exact duplicates share a SHA-256 of the downloaded bytes, near
 * duplicates have pHashes within `maxDistance` bits. Neither needs one process to hold the pool:
 *   1. every image emits signatures (its SHA-256, and its pHash cut into maxDistance + 1 bands: two hashes
 *      within d bits agree exactly on at least one of d + 1 bands, by pigeonhole), each routed to a
 *      partition by a hash of the signature;
 *   2. each partition compares only images sharing a signature and emits duplicate edges;
 *   3. the edges (few: one per duplicate) are joined with union-find; each group keeps its smallest key,
 *      i.e. the first image in pool order (bucket, then position), as the deterministic representative.
 */

export interface ImageSignatureSource {
  /** WebDataset key: zero-padded bucket + index, so string order is pool order. */
  key: string;
  sha256: string;
  phash: string;
}

export interface Signature {
  /** `x:<sha256>` or `b<band>:<bits>`. */
  sig: string;
  key: string;
  phash: string;
}

/** The pHash (16 hex digits) cut into `bands` contiguous bit ranges, as signature strings. */
export function phashBands(phash: string, bands: number): string[] {
  const bits = BigInt(`0x${phash}`).toString(2).padStart(64, '0');
  const out: string[] = [];
  for (let k = 0; k < bands; k++) {
    const from = Math.floor((64 * k) / bands);
    const to = Math.floor((64 * (k + 1)) / bands);
    out.push(`b${k}:${bits.slice(from, to)}`);
  }
  return out;
}

export function signaturesOf(img: ImageSignatureSource, maxDistance: number): Signature[] {
  const sigs: Signature[] = [{ sig: `x:${img.sha256}`, key: img.key, phash: img.phash }];
  if (maxDistance >= 0) for (const b of phashBands(img.phash, maxDistance + 1)) sigs.push({ sig: b, key: img.key, phash: img.phash });
  return sigs;
}

/** FNV-1a (32-bit) of a string, to route signatures to partitions. */
export function partitionOf(sig: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < sig.length; i++) {
    h ^= sig.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

export function hammingHex(a: string, b: string): number {
  let x = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let n = 0;
  while (x) {
    x &= x - 1n;
    n++;
  }
  return n;
}

export interface DuplicateEdge {
  key: string;
  of: string;
  kind: 'exact' | 'near';
}

/**
 * Duplicate edges among signatures of one partition. Within a group sharing a signature, members are taken
 * in key order; a member joins the first earlier kept member it duplicates (same bytes for `x:` groups, pHash
 * within maxDistance for band groups), else it is kept for the next members. Cost: members × kept members.
 */
export function duplicateEdges(signatures: readonly Signature[], maxDistance: number): DuplicateEdge[] {
  const groups = new Map<string, Signature[]>();
  for (const s of signatures) {
    let g = groups.get(s.sig);
    if (!g) groups.set(s.sig, (g = []));
    g.push(s);
  }
  const edges: DuplicateEdge[] = [];
  for (const [sig, group] of groups) {
    if (group.length < 2) continue;
    group.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const exact = sig.startsWith('x:');
    const kept: Signature[] = [];
    for (const s of group) {
      if (kept.length && kept[kept.length - 1].key === s.key) continue; // the same image listed twice
      const match = exact ? kept[0] : kept.find((k) => hammingHex(k.phash, s.phash) <= maxDistance);
      if (match) edges.push({ key: s.key, of: match.key, kind: exact ? 'exact' : 'near' });
      else kept.push(s);
    }
  }
  return edges;
}

/** Union-find over the edges: every duplicate key → its group's smallest key (the representative). */
export function representatives(edges: readonly DuplicateEdge[]): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let r = k;
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!;
    // Path compression.
    let c = k;
    while (c !== r) {
      const next = parent.get(c)!;
      parent.set(c, r);
      c = next;
    }
    return r;
  };
  for (const e of edges) {
    if (!parent.has(e.key)) parent.set(e.key, e.key);
    if (!parent.has(e.of)) parent.set(e.of, e.of);
    const a = find(e.key);
    const b = find(e.of);
    if (a === b) continue;
    // The smaller key becomes the root, so each root is its group's minimum.
    if (a < b) parent.set(b, a);
    else parent.set(a, b);
  }
  const out = new Map<string, string>();
  for (const k of [...parent.keys()].sort()) {
    const r = find(k);
    if (r !== k) out.set(k, r);
  }
  return out;
}
