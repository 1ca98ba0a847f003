/** Synthetic candidate pools for the balancing tests: fixed by their seed, so the tests are deterministic. */
import { createHash } from 'node:crypto';

export type Row = { uuid: string; text: string; entry_ids: number[] };

export const uuidOf = (i: number) => createHash('sha224').update(`https://img.example/${i}.jpg`).digest('hex').slice(0, 24);

/** mulberry32: a small deterministic PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ZipfOptions {
  /** Every n-th candidate (index % n === n − 1) matches nothing. */
  emptyEvery?: number;
  /** Candidates per image: rows i and i+1 share an image when 2. */
  textsPerImage?: number;
}

/** n candidates, each matching 1–3 distinct entries drawn from a Zipf(1.1) law over `entries` ids. */
export function zipfRows(n: number, entries: number, seed: number, opts: ZipfOptions = {}): Row[] {
  const next = rng(seed);
  const cdf = new Float64Array(entries);
  let acc = 0;
  for (let e = 0; e < entries; e++) cdf[e] = acc += 1 / Math.pow(e + 1, 1.1);
  const pick = () => {
    const x = next() * acc;
    let lo = 0;
    let hi = entries - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const perImage = opts.textsPerImage ?? 1;
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const k = opts.emptyEvery && i % opts.emptyEvery === opts.emptyEvery - 1 ? 0 : 1 + Math.floor(next() * 3);
    const ids = new Set<number>();
    while (ids.size < k) ids.add(pick());
    rows.push({ uuid: uuidOf(Math.floor(i / perImage)), text: `caption ${i}`, entry_ids: [...ids].sort((a, b) => a - b) });
  }
  return rows;
}
