/**
 * Substring matching against metadata (spec §2), exact and fast.
 *
 * Definition: entry e matches text x iff " " + e + " " is a substring of spaced(x), where spaced(x) puts a
 * space around the text, around each of , . ; : ? ! ` and turns \t \n \r into spaces.
 *
 * Token form used here: every space of spaced(x) is a token boundary, so " e " occurs iff the tokens of e
 * (e.split(" ")) are a contiguous run of the tokens of spaced(x) without its outer spaces. Every
 * token-boundary prefix of every entry is indexed under a 32-bit hash of its token sequence in a compact
 * open-addressing table (8 bytes a slot, so the hot part stays in cache). A text is tokenised in one pass
 * over its characters, applying the spacing rule on the fly (no string is built); from each start token the
 * prefix hash is extended while the table has it. Per-text cost depends on how far real prefixes reach, not
 * on the longest entry.
 *
 * Exactness: an entry hit is confirmed by comparing the text's tokens with the entry's characters, so a hash
 * collision can never add a match; keys whose hashes collide at build time share a slot (prefix flags merge,
 * two different entries make the slot AMBIGUOUS and are resolved through an exact string map), so a
 * collision can never lose one either.
 */

/** The spaced form of a text without its two outer spaces (spec §2). */
export function spacedCore(text: string): string {
  return /[,.;:?!`\t\n\r]/.test(text) ? text.replace(/[,.;:?!`]/g, ' $& ').replace(/[\t\n\r]/g, ' ') : text;
}

/** The reference's spaced text: " " + core + " ". */
export function spaceText(text: string): string {
  return ` ${spacedCore(text)} `;
}

// Slot values (stored as (value + 3) << 1 | continues, so an all-zero slot is empty).
const AMBIGUOUS = -2; // two different entries share the hash: resolve through `exact`
const NO_ENTRY = -1; // a prefix of some entry, not an entry itself
const EMPTY_CODE = 0;

const TOKEN_SEED = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

function mixPrefix(p: number, t: number): number {
  const h = Math.imul(p ^ t, 0x9e3779b1);
  return h ^ (h >>> 15);
}

/** Character classes of the spacing rule: 1 = separator (space \t \n \r), 2 = wrapped punctuation. */
const CLASS = new Uint8Array(128);
for (const c of ' \t\n\r') CLASS[c.charCodeAt(0)] = 1;
for (const c of ',.;:?!`') CLASS[c.charCodeAt(0)] = 2;

export class Matcher {
  readonly size: number;
  private readonly entries: readonly string[];
  private mask: number;
  /** Slot i = table[2i] (hash), table[2i + 1] (encoded value, see above). */
  private table: Int32Array;
  private count = 0;
  /**
   * Bit filter over the hashes of multi-token prefixes (256 KiB, stays in L2): most extension attempts
   * (start token + next token) are not keys, and the filter answers them without touching the big table.
   */
  private readonly longKeys = new Int32Array(1 << 16);
  /** Keys of AMBIGUOUS slots: exact string → entry ids. */
  private readonly exact = new Map<string, number[]>();
  /** Additional ids of entries listed more than once. */
  private readonly duplicates = new Map<number, number[]>();
  // One text's tokens (offsets into the text; a punctuation token is one character), grown on demand.
  private tokStart = new Int32Array(64);
  private tokEnd = new Int32Array(64);
  private tokHash = new Int32Array(64);

  /**
   * @param hashMask keeps only these bits of each prefix hash; tests pass a tiny mask to force collisions
   * through the exact-resolution paths.
   */
  constructor(entries: readonly string[], private readonly hashMask = -1) {
    this.entries = entries;
    this.size = entries.length;
    let cap = 1 << 12;
    while (cap < entries.length * 2) cap <<= 1;
    this.mask = cap - 1;
    this.table = new Int32Array(cap * 2);
    for (let id = 0; id < entries.length; id++) this.add(id);
  }

  private valueAt(s: number): number {
    return (this.table[s + 1] >> 1) - 3;
  }

  private setValue(s: number, value: number): void {
    this.table[s + 1] = ((value + 3) << 1) | (this.table[s + 1] & 1);
  }

  /** Offset of the slot holding hash h, or of the empty slot where it would go. */
  private slot(h: number): number {
    const t = this.table;
    const wrap = (this.mask << 1) | 1;
    let s = (h & this.mask) << 1;
    while (t[s + 1] !== EMPTY_CODE && t[s] !== h) s = (s + 2) & wrap;
    return s;
  }

  private grow(): void {
    const old = this.table;
    this.mask = this.mask * 2 + 1;
    this.table = new Int32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) {
      if (old[i + 1] === EMPTY_CODE) continue;
      const s = this.slot(old[i]);
      this.table[s] = old[i];
      this.table[s + 1] = old[i + 1];
    }
  }

  private add(id: number): void {
    const e = this.entries[id];
    // An entry holding \t \n \r can never occur in a spaced text.
    if (/[\t\n\r]/.test(e)) return;
    let p = 0;
    let start = 0;
    for (;;) {
      let end = e.indexOf(' ', start);
      const last = end < 0;
      if (last) end = e.length;
      let t = TOKEN_SEED;
      for (let i = start; i < end; i++) t = Math.imul(t ^ e.charCodeAt(i), FNV_PRIME);
      p = mixPrefix(p, t) & this.hashMask;
      if (start > 0) this.longKeys[(p >>> 5) & 0xffff] |= 1 << (p & 31);
      if ((this.count + 1) * 2 > this.mask + 1) this.grow();
      const s = this.slot(p);
      const value = last ? id : NO_ENTRY;
      if (this.table[s + 1] === EMPTY_CODE) {
        this.table[s] = p;
        this.setValue(s, value);
        this.count++;
      } else {
        this.resolveShared(s, last ? e : e.slice(0, end), value);
      }
      if (last) return;
      this.table[s + 1] |= 1; // some entry continues past this prefix
      start = end + 1;
    }
  }

  /** A key landed on a slot already holding the same hash. */
  private resolveShared(s: number, key: string, id: number): void {
    const cur = this.valueAt(s);
    if (id === NO_ENTRY) return; // prefix flags merge; the slot's entry (if any) is confirmed at match time
    if (cur === NO_ENTRY) {
      this.setValue(s, id);
    } else if (cur === AMBIGUOUS) {
      this.exact.set(key, (this.exact.get(key) ?? []).concat([id]));
    } else if (this.entries[cur] === key) {
      this.duplicates.set(cur, (this.duplicates.get(cur) ?? []).concat([id]));
    } else {
      this.setValue(s, AMBIGUOUS);
      const curKey = this.entries[cur];
      this.exact.set(curKey, (this.exact.get(curKey) ?? []).concat([cur, ...(this.duplicates.get(cur) ?? [])]));
      this.exact.set(key, (this.exact.get(key) ?? []).concat([id]));
    }
  }

  private pushToken(n: number, start: number, end: number, hash: number): number {
    if (n === this.tokStart.length) this.growTokens();
    this.tokStart[n] = start;
    this.tokEnd[n] = end;
    this.tokHash[n] = hash;
    return n + 1;
  }

  /** Matched entry ids of a text, ascending and unique. */
  match(text: string): number[] {
    // Tokenise spaced(text) without building it: separators end a token; a punctuation mark is a token of
    // its own with a (possibly empty) token on each side.
    const n = text.length;
    let tokens = 0;
    let start = 0;
    let h = TOKEN_SEED;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      const cls = c < 128 ? CLASS[c] : 0;
      if (cls === 0) {
        h = Math.imul(h ^ c, FNV_PRIME);
      } else {
        tokens = this.pushToken(tokens, start, i, h);
        if (cls === 2) tokens = this.pushToken(tokens, i, i + 1, Math.imul(TOKEN_SEED ^ c, FNV_PRIME));
        start = i + 1;
        h = TOKEN_SEED;
      }
    }
    tokens = this.pushToken(tokens, start, n, h);

    let out: number[] | null = null;
    const table = this.table;
    const mask = this.mask;
    const wrap = (mask << 1) | 1;
    const hashMask = this.hashMask;
    const tokHash = this.tokHash;
    const longKeys = this.longKeys;
    for (let i = 0; i < tokens; i++) {
      let p = 0;
      for (let j = i; j < tokens; j++) {
        p = mixPrefix(p, tokHash[j]) & hashMask;
        if (j > i && (longKeys[(p >>> 5) & 0xffff] & (1 << (p & 31))) === 0) break;
        let s = (p & mask) << 1;
        let v: number;
        while ((v = table[s + 1]) !== EMPTY_CODE && table[s] !== p) s = (s + 2) & wrap;
        if (v === EMPTY_CODE) break;
        const value = (v >> 1) - 3;
        if (value !== NO_ENTRY) out = this.confirm(text, i, j, value, out);
        if ((v & 1) === 0) break;
      }
    }
    if (out === null) return [];
    if (out.length > 1) {
      // Insertion sort: a text matches a handful of entries.
      for (let a = 1; a < out.length; a++) {
        const x = out[a];
        let b = a - 1;
        while (b >= 0 && out[b] > x) {
          out[b + 1] = out[b];
          b--;
        }
        out[b + 1] = x;
      }
      let w = 1;
      for (let r = 1; r < out.length; r++) if (out[r] !== out[w - 1]) out[w++] = out[r];
      out.length = w;
    }
    return out;
  }

  /** Whether tokens first..last of the text spell `e` (tokens joined by single spaces). */
  private spells(text: string, first: number, last: number, e: string): boolean {
    let pos = 0;
    for (let k = first; k <= last; k++) {
      const a = this.tokStart[k];
      const len = this.tokEnd[k] - a;
      if (pos + len > e.length) return false;
      for (let q = 0; q < len; q++) if (e.charCodeAt(pos + q) !== text.charCodeAt(a + q)) return false;
      pos += len;
      if (k < last) {
        if (e.charCodeAt(pos) !== 32) return false;
        pos++;
      }
    }
    return pos === e.length;
  }

  private confirm(text: string, first: number, last: number, value: number, out: number[] | null): number[] | null {
    if (value === AMBIGUOUS) {
      const parts: string[] = [];
      for (let k = first; k <= last; k++) parts.push(text.slice(this.tokStart[k], this.tokEnd[k]));
      const ids = this.exact.get(parts.join(' '));
      if (ids) (out ??= []).push(...ids);
      return out;
    }
    if (this.spells(text, first, last, this.entries[value])) {
      (out ??= []).push(value);
      const more = this.duplicates.get(value);
      if (more) out.push(...more);
    }
    return out;
  }

  private growTokens(): void {
    const grow = (a: Int32Array) => {
      const b = new Int32Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.tokStart = grow(this.tokStart);
    this.tokEnd = grow(this.tokEnd);
    this.tokHash = grow(this.tokHash);
  }
}

/** The definition itself, for tests: every entry tested against the spaced text. */
export function naiveMatch(entries: readonly string[], text: string): number[] {
  const spaced = spaceText(text);
  const out: number[] = [];
  for (let id = 0; id < entries.length; id++) if (spaced.includes(` ${entries[id]} `)) out.push(id);
  return out;
}
