/**
 * The two read-ahead gunzips of the shard path against zlib's own one-shot gunzip: curation/gunzip.ts (zlib) and
 * curation/gzip-members.ts (libdeflate whole members, zlib from the first member it leaves). The same bytes for any
 * input chunking, chunk size and read-ahead; on truncated or damaged input every byte inflated before the damage
 * (zlib's output up to the call that failed), then CorruptInputError('gzip'); input errors raised as they are; an
 * early stop releases the input. The libdeflate cases need dist/native/gzip-members.node (bin/build-native.js,
 * run by setup where a C compiler is found); without it they run gunzipMembers' zlib path, and say so.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { CorruptInputError } from '../curation/errors';
import { gunzipAhead, type GunzipOptions } from '../curation/gunzip';
import { GZIP_MEMBERS_ADDON, MEMBERS_CHUNK, gunzipMembers, gzipMembersNative } from '../curation/gzip-members';
import { decompressIfGzip } from '../curation/warc';

const libdeflate = gzipMembersNative() !== null;
if (!libdeflate) console.warn(`gunzip.test: ${GZIP_MEMBERS_ADDON} is not built or is off (CURATE_LIBDEFLATE=0); gunzipMembers is tested on its zlib path only`);

type Gunzip = (input: AsyncIterable<Buffer>, opts?: GunzipOptions) => AsyncGenerator<Buffer>;
const GUNZIPS: Array<[string, Gunzip]> = [
  ['gunzipAhead (zlib)', gunzipAhead],
  [libdeflate ? 'gunzipMembers (libdeflate)' : 'gunzipMembers (addon not built: zlib)', gunzipMembers],
];

/** Pseudo-random text-like bytes (compressible, like pages) of length n. */
function texty(n: number, seed: number): Buffer {
  const words = ['<img src="', 'alt="', 'the ', 'data ', 'http://example.com/', '</div>', '\r\n', 'WARC/1.0', 'x', 'ünïcødé '];
  const out: string[] = [];
  let s = seed >>> 0 || 1;
  let len = 0;
  while (len < n) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const w = words[s % words.length] + (s % 7 === 0 ? String(s) : '');
    out.push(w);
    len += Buffer.byteLength(w);
  }
  return Buffer.from(out.join(''), 'utf8').subarray(0, n);
}

async function* chunked(buf: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let i = 0;
  let k = 0;
  while (i < buf.length) {
    const n = Math.max(1, sizes[k++ % sizes.length]);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

/** Everything gunzipAhead yields, and what it throws (null when it ends normally). */
async function drain(it: AsyncIterable<Buffer>): Promise<{ out: Buffer; error: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const c of it) parts.push(Buffer.from(c));
    return { out: Buffer.concat(parts), error: null };
  } catch (err) {
    return { out: Buffer.concat(parts), error: err };
  }
}

/** Members of per-record gzip (CC style) with their plain bytes. */
function members(count: number, seed: number): { gz: Buffer; plain: Buffer; memberEnds: number[]; plainEnds: number[] } {
  const gzs: Buffer[] = [];
  const plains: Buffer[] = [];
  const memberEnds: number[] = [];
  const plainEnds: number[] = [];
  let g = 0;
  let p = 0;
  for (let k = 0; k < count; k++) {
    const plain = texty(((seed * 7919 + k * 104729) % 200_000) + (k % 5 === 0 ? 0 : 1), seed + k);
    const gz = gzipSync(plain, { level: 1 + ((seed + k) % 9) });
    gzs.push(gz);
    plains.push(plain);
    g += gz.length;
    p += plain.length;
    memberEnds.push(g);
    plainEnds.push(p);
  }
  return { gz: Buffer.concat(gzs), plain: Buffer.concat(plains), memberEnds, plainEnds };
}

describe.each(GUNZIPS)('%s equals zlib gunzip', (_name, gunzip) => {
  test('one member, many members, any chunking, chunk size and read-ahead (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 5 }),
        fc.constantFrom(64, 1024, 65536, 1 << 20),
        fc.constantFrom(1, 100_000, 8 << 20),
        async (count, seed, sizes, chunkSize, readAhead) => {
          const { gz, plain } = members(count, seed);
          expect(gunzipSync(gz).equals(plain)).toBe(true); // the reference
          const { out, error } = await drain(gunzip(chunked(gz, sizes), { chunkSize, readAhead }));
          expect(error).toBeNull();
          expect(out.equals(plain)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);

  test('a whole-file member of 30 MB read from a file stream', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gunzip-'));
    try {
      const plain = Buffer.concat([texty(20 << 20, 3), randomBytes(10 << 20)]);
      const file = path.join(dir, 'big.gz');
      writeFileSync(file, gzipSync(plain));
      const { out, error } = await drain(gunzip(createReadStream(file, { highWaterMark: 1 << 20 })));
      expect(error).toBeNull();
      expect(out.equals(plain)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test('empty members and bytes after the last member are handled as zlib does', async () => {
    const a = gzipSync(Buffer.alloc(0));
    const b = gzipSync(Buffer.from('abc'));
    const both = Buffer.concat([a, b, a]);
    expect((await drain(gunzip(chunked(both, [3])))).out.toString()).toBe(gunzipSync(both).toString());
    // Trailing bytes that are not a gzip member: zlib stops at the last member and ignores them.
    const trailing = Buffer.concat([b, Buffer.from('\0\0\0\0garbage')]);
    const ref = gunzipSync(trailing);
    const { out, error } = await drain(gunzip(chunked(trailing, [5])));
    expect(error).toBeNull();
    expect(out.equals(ref)).toBe(true);
  });
});

describe.each(GUNZIPS)('%s on damaged input: what was inflated before the damage, then CorruptInputError(gzip)', (_name, gunzip) => {
  test('truncated anywhere (property): a prefix of the plain bytes with every complete member, then gzip', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 4 }),
        fc.constantFrom(1024, 65536, 1 << 20),
        async (count, seed, where, sizes, chunkSize) => {
          const { gz, plain, memberEnds, plainEnds } = members(count, seed);
          const cut = Math.min(gz.length - 1, Math.floor(where * gz.length));
          const cutAtMemberEnd = memberEnds.includes(cut);
          const { out, error } = await drain(gunzip(chunked(gz.subarray(0, cut), sizes), { chunkSize }));
          expect(out.equals(plain.subarray(0, out.length))).toBe(true);
          // Every member that ends before the cut was handed out whole.
          let complete = 0;
          for (let k = 0; k < memberEnds.length && memberEnds[k] <= cut; k++) complete = plainEnds[k];
          expect(out.length).toBeGreaterThanOrEqual(complete);
          if (cut === 0) {
            expect(out.length).toBe(0);
          } else if (cutAtMemberEnd) {
            expect(error).toBeNull(); // a cut between members is a valid (shorter) file
          } else {
            expect(error).toBeInstanceOf(CorruptInputError);
            expect((error as CorruptInputError).kind).toBe('gzip');
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);

  test('a damaged member in the middle: the members before it, then gzip', async () => {
    const { gz, plain, memberEnds, plainEnds } = members(8, 42);
    const bad = Buffer.from(gz);
    // Corrupt the CRC32 of member 4 (its trailer's first 4 bytes): its data inflates, the check fails.
    bad[memberEnds[4] - 8] ^= 0xff;
    const { out, error } = await drain(gunzip(chunked(bad, [4096]), { chunkSize: 1024 }));
    expect(error).toBeInstanceOf(CorruptInputError);
    expect((error as CorruptInputError).kind).toBe('gzip');
    expect(out.equals(plain.subarray(0, out.length))).toBe(true);
    expect(out.length).toBeGreaterThanOrEqual(plainEnds[3]);
    expect(out.length).toBeLessThanOrEqual(plainEnds[4]);
    // Garbage instead of deflate data right after a member header. zlib loses the output of the call that fails, so
    // what comes out is exact when the damage starts a chunk of the input, as here.
    const garbage = Buffer.concat([gz.subarray(0, memberEnds[1]), gz.subarray(memberEnds[1], memberEnds[1] + 10), Buffer.alloc(64, 0xff)]);
    const r = await drain(gunzip(chunked(garbage, [memberEnds[0], memberEnds[1] - memberEnds[0], 100])));
    expect(r.error).toBeInstanceOf(CorruptInputError);
    expect(r.out.equals(plain.subarray(0, plainEnds[1]))).toBe(true);
    expect(() => inflateRawSync(Buffer.alloc(64, 0xff))).toThrow(); // (the garbage is not deflate data)
  });

  test('an input that fails: its own error, after the bytes inflated before it', async () => {
    const { gz, plain } = members(6, 7);
    const boom = new Error('read failed (ECONNRESET)');
    async function* failing(): AsyncGenerator<Buffer> {
      yield gz.subarray(0, Math.floor(gz.length / 2));
      throw boom;
    }
    const { out, error } = await drain(gunzip(failing(), { chunkSize: 4096 }));
    expect(error).toBe(boom);
    expect(error).not.toBeInstanceOf(CorruptInputError);
    expect(out.length).toBeGreaterThan(0);
    expect(out.equals(plain.subarray(0, out.length))).toBe(true);
  });
});

describe.each(GUNZIPS)('%s stopping early', (_name, gunzip) => {
  test('a reader that stops after the first chunk releases the input (its finally runs) and does not hang', async () => {
    const { gz } = members(20, 9);
    let released = false;
    let pulled = 0;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        for (let i = 0; i < gz.length; i += 1000) {
          pulled++;
          yield gz.subarray(i, i + 1000);
        }
      } finally {
        released = true;
      }
    }
    for await (const c of gunzip(source(), { chunkSize: 1024, readAhead: 4096, writeAhead: 1000 })) {
      expect(c.length).toBeGreaterThan(0);
      break;
    }
    for (let i = 0; i < 50 && !released; i++) await new Promise((r) => setTimeout(r, 10));
    expect(released).toBe(true);
    expect(pulled).toBeLessThan(Math.ceil(gz.length / 1000)); // it did not read the whole input
  });

  test('decompressIfGzip: plain input passes through; an early stop releases a gzip or plain input', async () => {
    const plain = texty(50_000, 5);
    for (const bytes of [plain, gzipSync(plain)]) {
      let released = false;
      async function* source(): AsyncGenerator<Buffer> {
        try {
          yield* chunked(bytes, [1000]);
        } finally {
          released = true;
        }
      }
      const all = await drain(decompressIfGzip(chunked(bytes, [1000])));
      expect(all.out.equals(plain)).toBe(true);
      for await (const _ of decompressIfGzip(source())) break;
      for (let i = 0; i < 50 && !released; i++) await new Promise((r) => setTimeout(r, 10));
      expect(released).toBe(true);
    }
  });
});

/** A gzip member with a header CRC (FHCRC): zlib checks it, libdeflate skips it, so the fast path leaves it to zlib. */
function withHeaderCrc(member: Buffer, correct: boolean): Buffer {
  const header = Buffer.from(member.subarray(0, 10));
  header[3] |= 0x02;
  const crc = Buffer.alloc(2);
  // zlib's crc32 of the header bytes, low 16 bits (RFC 1952 2.3.1).
  crc.writeUInt16LE((crc32(header) & 0xffff) ^ (correct ? 0 : 0x5a5a));
  return Buffer.concat([header, crc, member.subarray(10)]);
}

function crc32(b: Buffer): number {
  let c = ~0;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** What gunzipMembers gives against gunzipAhead on the same input: equal when zlib accepts it; else zlib's error, after at least zlib's output. */
async function expectLikeZlib(bytes: Buffer, sizes: number[]): Promise<{ members: number; zlibFrom: number | null }> {
  const stats = { members: 0, zlibFrom: null as number | null };
  const ours = await drain(gunzipMembers(chunked(bytes, sizes), { stats }));
  const ref = await drain(gunzipAhead(chunked(bytes, sizes)));
  if (ref.error === null) {
    expect(ours.error).toBeNull();
    expect(ours.out.equals(ref.out)).toBe(true);
  } else {
    expect(ours.error).toBeInstanceOf(CorruptInputError);
    expect((ours.error as Error).message).toBe((ref.error as Error).message);
    expect(ours.out.length).toBeGreaterThanOrEqual(ref.out.length);
    expect(ours.out.subarray(0, ref.out.length).equals(ref.out)).toBe(true);
  }
  return stats;
}

(libdeflate ? describe : describe.skip)('gunzipMembers: what libdeflate decodes and what it leaves to zlib', () => {
  test('every member of a member-per-record file is decoded by libdeflate, a member of 5 MB included', async () => {
    const { gz, plain } = members(20, 11);
    const big = texty(5 << 20, 12); // more than MEMBERS_CHUNK of output: the output buffer grows for it
    expect(big.length).toBeGreaterThan(MEMBERS_CHUNK);
    const all = Buffer.concat([gz, gzipSync(big), gz]);
    const stats = { members: 0, zlibFrom: null as number | null };
    const { out, error } = await drain(gunzipMembers(chunked(all, [1 << 20]), { stats }));
    expect(error).toBeNull();
    expect(out.equals(Buffer.concat([plain, big, plain]))).toBe(true);
    expect(stats).toEqual({ members: 41, zlibFrom: null });
  }, 60_000);

  test('a member with a header CRC goes to zlib, which checks it: the same bytes, or the same error', async () => {
    const { gz, plain, memberEnds } = members(6, 13);
    const third = gz.subarray(memberEnds[1], memberEnds[2]);
    for (const correct of [true, false]) {
      const file = Buffer.concat([gz.subarray(0, memberEnds[1]), withHeaderCrc(third, correct), gz.subarray(memberEnds[2])]);
      const stats = await expectLikeZlib(file, [777]);
      expect(stats.members).toBe(2);
      expect(stats.zlibFrom).toBe(memberEnds[1]);
      if (correct) expect((await drain(gunzipMembers(chunked(file, [4096])))).out.equals(plain)).toBe(true);
    }
  });

  test('bytes after the last member (zeros, garbage, a lone magic byte) end as they do in zlib', async () => {
    const { gz } = members(4, 17);
    for (const tail of [Buffer.alloc(9), Buffer.from('garbage'), Buffer.from([0x1f]), Buffer.from([0x1f, 0x8b]), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2]), Buffer.from('\0\0x')]) {
      for (const sizes of [[gz.length + tail.length], [1000], [97]]) {
        const stats = await expectLikeZlib(Buffer.concat([gz, tail]), sizes);
        expect(stats.members).toBe(4);
      }
    }
  });

  test('a byte changed anywhere (property): zlib\'s bytes when zlib accepts the file, else zlib\'s error after at least its bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 255 }),
        fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 3 }),
        async (count, seed, where, flip, sizes) => {
          const { gz } = members(count, seed);
          const bad = Buffer.from(gz);
          bad[Math.min(gz.length - 1, Math.floor(where * gz.length))] ^= flip;
          await expectLikeZlib(bad, sizes);
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);

  test('a damaged last member after seven good ones: zlib resumes with the output buffer where it would have been', async () => {
    // Found by the property above: from a fresh zlib stream the damaged member gave less before the error (897,693
    // bytes in all) than zlib reading the whole file (1,048,576: its 1 MiB output buffer filled inside that member).
    const { gz } = members(8, 261);
    const bad = Buffer.from(gz);
    bad[203026] ^= 25;
    const stats = await expectLikeZlib(bad, [92921]);
    expect(stats.members).toBe(7);
    expect((await drain(gunzipAhead(chunked(bad, [92921])))).out.length).toBe(1 << 20);
  });

  test('input a byte at a time: the same bytes, decoding in linear time', async () => {
    const { gz, plain } = members(3, 19);
    const stats = { members: 0, zlibFrom: null as number | null };
    const { out, error } = await drain(gunzipMembers(chunked(gz, [1]), { stats }));
    expect(error).toBeNull();
    expect(out.equals(plain)).toBe(true);
    expect(stats.members).toBe(3);
  }, 60_000);
});

(libdeflate ? describe : describe.skip)('gunzipMembers while the GC runs', () => {
  test('decode calls in the pool give the same bytes with full GCs running between and during them', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('node:v8').setFlagsFromString('--expose-gc');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const gc = require('node:vm').runInNewContext('gc') as () => void;
    const { gz, plain } = members(30, 23);
    const timer = setInterval(() => {
      // Garbage of every size, then a full (compacting) GC, while decodes run on the pool.
      for (let i = 0; i < 200; i++) void new Float64Array(4), Buffer.alloc(i % 70), Buffer.allocUnsafe(1 << 16);
      gc();
    }, 1);
    try {
      for (const sizes of [[48], [64, 7], [1 << 16]]) {
        const { out, error } = await drain(gunzipMembers(chunked(gz, sizes)));
        expect(error).toBeNull();
        expect(out.equals(plain)).toBe(true);
      }
    } finally {
      clearInterval(timer);
    }
  }, 120_000);
});
