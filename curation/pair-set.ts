/**
 * An exact set of (uuid, text) pairs in compact form, for the per-file dedup of extraction. A JS Set of
 * `uuid + text` strings costs ~190 bytes per pair (a cons string, its flat copy, the table entry); this one keeps
 * each pair's UTF-8 bytes once in an arena of 1 MiB chunks (4-byte length + 24-byte uuid + text) and a table of
 * 32-bit hash + arena position per slot (load ≤ 1/2): ~40 + text bytes per pair, and no 2^24-entry limit.
 * Membership compares the bytes, so it is exact (no false duplicates).
 */
const CHUNK = 1 << 20;
const UUID_LENGTH = 24;

export class PairSet {
  private hashes = new Uint32Array(1 << 10);
  /** Arena position + 1 (chunk index · 2^32 + offset); 0 marks an empty slot. */
  private positions = new Float64Array(1 << 10);
  private mask = (1 << 10) - 1;
  private count = 0;
  private readonly chunks: Buffer[] = [];
  private chunk: Buffer | null = null;
  private used = 0;
  private scratch = Buffer.allocUnsafe(4096);

  get size(): number {
    return this.count;
  }

  /** Adds the pair; false when it was already in the set. `uuid` is 24 ASCII characters. */
  add(uuid: string, text: string): boolean {
    if (uuid.length !== UUID_LENGTH) throw new Error(`PairSet: a uuid has ${UUID_LENGTH} characters, got ${uuid.length}`);
    const bound = 4 + UUID_LENGTH + 3 * text.length;
    if (bound > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.max(bound, 2 * this.scratch.length));
    const s = this.scratch;
    s.write(uuid, 4, 'latin1');
    const n = UUID_LENGTH + s.write(text, 4 + UUID_LENGTH, 'utf8');
    s.writeUInt32LE(n, 0);
    // FNV-1a over the key bytes, then murmur3's finalizer.
    let h = 0x811c9dc5;
    for (let i = 4; i < 4 + n; i++) h = Math.imul(h ^ s[i], 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h = (h ^ (h >>> 16)) >>> 0;
    let slot = h & this.mask;
    for (;;) {
      const pos = this.positions[slot];
      if (pos === 0) break;
      if (this.hashes[slot] === h && this.equals(pos - 1, n)) return false;
      slot = (slot + 1) & this.mask;
    }
    this.positions[slot] = this.store(4 + n) + 1;
    this.hashes[slot] = h;
    this.count++;
    if (this.count * 2 > this.mask + 1) this.grow();
    return true;
  }

  /** The key at arena position `pos` equals the scratch key of `n` bytes. */
  private equals(pos: number, n: number): boolean {
    const c = this.chunks[Math.floor(pos / 0x100000000)];
    const off = pos % 0x100000000;
    if (c.readUInt32LE(off) !== n) return false;
    return this.scratch.compare(c, off + 4, off + 4 + n, 4, 4 + n) === 0;
  }

  /** Copies the scratch key (`bytes` with its length) into the arena; its position. */
  private store(bytes: number): number {
    if (this.chunk === null || this.used + bytes > this.chunk.length) {
      this.chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK, bytes));
      this.chunks.push(this.chunk);
      this.used = 0;
    }
    this.scratch.copy(this.chunk, this.used, 0, bytes);
    const pos = (this.chunks.length - 1) * 0x100000000 + this.used;
    this.used += bytes;
    return pos;
  }

  private grow(): void {
    const oldHashes = this.hashes;
    const oldPositions = this.positions;
    const capacity = 2 * (this.mask + 1);
    this.hashes = new Uint32Array(capacity);
    this.positions = new Float64Array(capacity);
    this.mask = capacity - 1;
    for (let i = 0; i < oldPositions.length; i++) {
      const pos = oldPositions[i];
      if (pos === 0) continue;
      let slot = oldHashes[i] & this.mask;
      while (this.positions[slot] !== 0) slot = (slot + 1) & this.mask;
      this.positions[slot] = pos;
      this.hashes[slot] = oldHashes[i];
    }
  }
}
