/**
 * Gunzip of a member-per-record file (Common Crawl's WARC and WAT layout) with libdeflate, whole members at a time,
 * in libuv's thread pool: the same bytes as gunzipAhead (zlib), at about twice zlib's inflate speed, so that a shard's
 * inflation takes half the CPU of the core beside the parser (measured: 52 MB of WAT members in 44 ms against zlib's
 * 92 ms, in C; see the README's extraction section).
 *
 * libdeflate decodes a member only whole and only from memory. The fast path hands the pool the compressed bytes
 * read so far and a 1 MiB output buffer; native/gzip-members.c decodes member after member until the output is full
 * or the bytes end inside a member, and the next call goes on from there once more input is read. A member is
 * handed out only when its CRC-32 and length check out.
 *
 * Anything else goes to zlib (gunzipAhead) from the first member the fast path did not decode, to the end of the
 * file: a member zlib must judge (a header CRC, which libdeflate skips), bytes that are not a member (trailing
 * zeros, which Node's gunzip ignores, or garbage, which it rejects), a member libdeflate rejects or that exceeds
 * the bounds below, a truncated file. zlib resumes after a member of its own (see resumingMember), so that it is in
 * the state it would be in there (between members, its output buffer as full) and gives the bytes and the error it
 * would have given, with the input in the chunks it came in. So: the same output on every file, and the same
 * errors, after at least the output gunzipAhead hands out before them.
 *
 * The addon is dist/native/gzip-members.node (Node-API), built by bin/build-native.js (libdeflate's sources from its
 * crates.io package, compiled with the machine's C compiler). Where it is not built or does not load, or with
 * CURATE_LIBDEFLATE=0, gunzipMembers is gunzipAhead.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { GUNZIP_CHUNK, GUNZIP_READ_AHEAD, ReadAheadQueue, gunzipAhead, type GunzipOptions } from './gunzip';
import { projectRoot } from './wasm-scanners';

/** Output bytes per decode call (a fresh buffer each: the reader keeps views of it). */
export const MEMBERS_CHUNK = 1 << 20;
/** A member larger than this (output) goes to zlib, which streams it. */
export const MAX_MEMBER_OUTPUT = 64 << 20;
/** Compressed bytes held for one member before it goes to zlib (a whole-file gzip, a member that never ends). */
export const MAX_MEMBER_INPUT = 16 << 20;
/** Compressed bytes read before a decode call at least (input chunks of a file stream are 1 MiB: one each). */
const MIN_READ = 64 << 10;

// native/gzip-members.c's stop statuses.
const STOP_INPUT_END = 0;
const STOP_OUTPUT_FULL = 1;
const STOP_UNDECODED = 2;

/** The addon (native/gzip-members.c). */
interface Native {
  newDecoder(): object;
  /** callback(status, consumed, produced, members) on the JS thread once the pool has decoded. */
  decode(decoder: object, input: Uint8Array, output: Uint8Array, callback: (status: number, consumed: number, produced: number, members: number) => void): void;
}

export const GZIP_MEMBERS_ADDON = path.join(projectRoot(), 'dist', 'native', 'gzip-members.node');

let loaded: Native | null | undefined;

/** The native decoder, or null (not built, turned off with CURATE_LIBDEFLATE=0, or not loadable: warned once). */
export function gzipMembersNative(): Native | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.CURATE_LIBDEFLATE === '0' || !existsSync(GZIP_MEMBERS_ADDON)) return null;
  try {
    const addon = { exports: {} as Native };
    process.dlopen(addon, GZIP_MEMBERS_ADDON);
    loaded = addon.exports;
  } catch (err) {
    process.emitWarning(`libdeflate gunzip: ${GZIP_MEMBERS_ADDON} did not load (${(err as Error).message}); zlib inflates instead (same bytes, slower)`);
  }
  return loaded;
}

export interface GunzipMembersOptions extends GunzipOptions {
  /** Filled in as it goes: members decoded by libdeflate, and the compressed offset zlib took over at (null: never). */
  stats?: { members: number; zlibFrom: number | null };
  /** Where the output buffers come from and go back to once the reader is done with them (see OutputRecycler). */
  recycler?: OutputRecycler;
}

/** Free output buffers an OutputRecycler keeps at most (the read-ahead queue holds 8 at a time). */
const MAX_FREE_OUTPUTS = 16;

/**
 * The output buffers of gunzipMembers, handed back by a reader that no longer reads them (not even through a view)
 * and reused by the next decode calls. Measured: 52 MB of fresh 1 MiB buffers per 52 MB pass started a V8
 * mark-compact about every 64 MB ("external memory pressure"); reused, 12 instead of 26 in 20 WARC passes, and the
 * WARC pass 13% faster (WAT 4%). Only buffers it gave out are taken back; anything else handed to it is ignored.
 */
export class OutputRecycler {
  private readonly given = new WeakSet<ArrayBuffer>();
  private readonly free: ArrayBuffer[] = [];
  /** Buffers handed out again (for tests and benches). */
  reused = 0;

  /** A buffer of MEMBERS_CHUNK bytes: a free one, else a new one. */
  take(): Buffer {
    const free = this.free.pop();
    const b = free !== undefined ? Buffer.from(free) : Buffer.allocUnsafe(MEMBERS_CHUNK);
    if (free !== undefined) this.reused++;
    this.given.add(b.buffer as ArrayBuffer);
    return b;
  }

  /** `view` (a view of a buffer from take(), or anything else) is read by no one any more. */
  release(view: Uint8Array): void {
    const ab = view.buffer as ArrayBuffer;
    if (!this.given.has(ab)) return; // not ours, or already back
    this.given.delete(ab);
    if (this.free.length < MAX_FREE_OUTPUTS) this.free.push(ab);
  }
}

/**
 * The member zlib resumes after: it leaves zlib between members, as it would be in the middle of the file, and with
 * as many bytes in its current output buffer (`bytes`, what was inflated before modulo the output chunk size; they
 * are dropped again). What a zlib stream hands out before an error depends on where its inflate calls end: where
 * an input write ends, or where its output buffer fills (measured: a damaged last member of eight gave 897,693
 * bytes from a fresh zlib stream and 1,048,576 from the stream that had read the seven before it).
 */
function resumingMember(bytes: number): Buffer {
  return bytes === 0 ? EMPTY_MEMBER : gzipSync(Buffer.alloc(bytes));
}

const EMPTY_MEMBER = gzipSync(Buffer.alloc(0));

/**
 * The gunzipped bytes of `input` (concatenated gzip members), in order, decoded ahead of the reader: by libdeflate
 * where the addon is built, by zlib (gunzipAhead) otherwise and from the first member libdeflate does not decode.
 * Errors are gunzipAhead's (CorruptInputError('gzip', zlib's message), or the input's own), raised after every byte
 * decoded before them.
 */
export async function* gunzipMembers(input: AsyncIterable<Buffer>, opts: GunzipMembersOptions = {}): AsyncGenerator<Buffer> {
  const native = gzipMembersNative();
  const stats = opts.stats ?? { members: 0, zlibFrom: null };
  if (native === null) {
    stats.zlibFrom = 0;
    yield* gunzipAhead(input, opts);
    return;
  }
  const readAhead = opts.readAhead ?? GUNZIP_READ_AHEAD;
  const source = input[Symbol.asyncIterator]();
  let stopped = false;
  let resume: (() => void) | null = null; // the decoder waiting for the reader to catch up
  const queue = new ReadAheadQueue(readAhead, () => {
    const r = resume;
    resume = null;
    if (r) r();
  });

  const decoder = native.newDecoder();
  // The addon holds the decoder, the buffers and the callback until the callback has run.
  const decodeInPool = (from: Buffer, out: Buffer): Promise<[number, number, number, number]> =>
    new Promise((resolve) => native.decode(decoder, from, out, (status, consumed, produced, members) => resolve([status, consumed, produced, members])));

  // The producer: decodes while the reader parses, up to readAhead bytes ahead of it.
  const produce = async (): Promise<void> => {
    let pending: Buffer = Buffer.alloc(0); // compressed bytes from a member boundary on, not decoded yet
    let inputDone = false;
    let inputError: { err: unknown } | null = null; // a failed read: zlib raises it after the bytes before it
    let decodedAny = false; // a member was decoded (zlib then resumes between members)
    let decodedBytes = 0;
    let outCap = MEMBERS_CHUNK;
    let consumed = 0; // compressed bytes before `pending`
    // The input's chunks as they came, from the one `pending` starts in (at offset `chunksAt`): zlib is given the
    // rest as it came, since what zlib hands out before an error depends on where its input calls end.
    const chunks: Buffer[] = [];
    let chunksAt = 0;
    // Reads until `pending` holds at least `target` bytes (or the input ends): a member cut by the end of what was
    // read is decoded again from its start, so each retry comes with at least twice the bytes (linear work, even
    // when the input comes a byte at a time).
    const readMore = async (target: number): Promise<void> => {
      const parts: Buffer[] = pending.length > 0 ? [pending] : [];
      let have = pending.length;
      try {
        while (have < target) {
          const n = await source.next();
          if (n.done) {
            inputDone = true;
            break;
          }
          if (n.value.length === 0) continue;
          parts.push(n.value);
          chunks.push(n.value);
          have += n.value.length;
        }
      } catch (err) {
        inputError = { err };
        inputDone = true;
      }
      pending = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
    };
    const caughtUp = async (): Promise<void> => {
      if (queue.full && !stopped) await new Promise<void>((r) => (resume = r));
    };
    for (;;) {
      if (stopped) return;
      if (pending.length === 0) {
        if (inputDone) break;
        await readMore(MIN_READ);
        continue;
      }
      const out = outCap === MEMBERS_CHUNK && opts.recycler ? opts.recycler.take() : Buffer.allocUnsafe(outCap);
      const [status, used, produced, members] = await decodeInPool(pending, out);
      if (stopped) return;
      if (produced > 0) queue.push(out.subarray(0, produced));
      decodedBytes += produced;
      if (members > 0) {
        decodedAny = true;
        outCap = MEMBERS_CHUNK;
        stats.members += members;
      }
      pending = pending.subarray(used);
      consumed += used;
      while (chunks.length > 0 && chunksAt + chunks[0].length <= consumed) chunksAt += (chunks.shift() as Buffer).length;
      await caughtUp();
      if (status === STOP_INPUT_END) continue;
      if (status === STOP_OUTPUT_FULL) {
        if (members > 0) continue; // the next member in a fresh buffer
        if (outCap < MAX_MEMBER_OUTPUT) {
          outCap = Math.min(outCap * 4, MAX_MEMBER_OUTPUT);
          continue;
        }
      } else if (status === STOP_UNDECODED && !inputDone && pending.length < MAX_MEMBER_INPUT) {
        await readMore(Math.max(2 * pending.length, MIN_READ)); // most likely a member cut by the end of the bytes read so far
        continue;
      }
      break; // zlib's turn
    }
    if (pending.length === 0 && inputDone && inputError === null && decodedAny) return; // the input ended after a whole member
    // zlib from the first member not decoded here, to the end of the input.
    stats.zlibFrom = consumed;
    const rest = chunks.map((c, i) => (i === 0 ? c.subarray(consumed - chunksAt) : c));
    chunks.length = 0;
    const failedRead = inputError as { err: unknown } | null;
    const done = inputDone;
    let skip = decodedAny ? decodedBytes % (opts.chunkSize ?? GUNZIP_CHUNK) : 0; // the resuming member's bytes
    const tail = (async function* () {
      if (decodedAny) yield resumingMember(skip);
      yield* rest;
      if (failedRead !== null) throw failedRead.err;
      if (done) return;
      for (;;) {
        const n = await source.next();
        if (n.done) return;
        yield n.value;
      }
    })();
    for await (let chunk of gunzipAhead(tail, opts)) {
      if (stopped) return;
      if (skip > 0) {
        const dropped = Math.min(skip, chunk.length);
        skip -= dropped;
        chunk = chunk.subarray(dropped);
        if (chunk.length === 0) continue;
      }
      queue.push(chunk);
      await caughtUp();
    }
  };
  const producing = produce().then(() => queue.end(), (err: unknown) => queue.fail(err));

  try {
    yield* queue.chunksOf((err) => err);
  } finally {
    // Done, failed, or the reader stopped early: the producer stops at its next step and releases the input.
    stopped = true;
    if (resume !== null) (resume as () => void)();
    void producing.then(() => source.return?.()).catch(() => undefined);
  }
}
