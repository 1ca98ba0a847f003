/**
 * Gunzip that runs ahead of its reader: the inflation of the next output chunk goes on in libuv's thread pool
 * (Node's async zlib) while the caller parses the chunk it has, so on a machine with a free core the shard
 * path costs about max(inflate, parse) instead of their sum.
 *
 * Why not `for await (const c of gunzip)` (what curation/warc.ts did before): the zlib stream inflates one
 * `chunkSize` of output per call into the pool, and starts the next call only from the previous one's
 * callback, on the reading thread. A Readable's buffer of 64 KiB is full after one chunk, so the next call
 * waited for the reader to ask; and an error dropped the chunks still buffered. Here the stream flows into a
 * queue of up to READ_AHEAD bytes (its 'data' callback starts the next inflate at once), the reader takes from
 * the queue, and a failure is raised only after everything inflated before it has been handed out.
 *
 * Corrupt or truncated gzip raises CorruptInputError('gzip', zlib's message); an error of the input itself
 * (a failed read) is raised as it is, also after the bytes inflated before it.
 */
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { CorruptInputError } from './errors';

/** Output bytes per inflate call (zlib chunkSize): large, so that a hand-off costs little per byte. */
export const GUNZIP_CHUNK = 1 << 20;
/** Inflated bytes queued ahead of the reader before inflation pauses (bounds memory per stream). */
export const GUNZIP_READ_AHEAD = 8 << 20;

/** Compressed bytes the pump may write ahead of the inflation (so a new input chunk is there when one is done). */
export const GUNZIP_WRITE_AHEAD = 4 << 20;

/**
 * Parsed bytes after which a reader of gunzipAhead gives the event loop a turn (yieldToInflate). zlib inflates one
 * chunk per call in the pool and starts the next from the previous one's callback, which runs only when the
 * reading thread is free: a reader that parsed a whole chunk between turns left the pool idle part of the time
 * and then waited for it (measured: a wait at nearly every chunk, ~20% of the wall time); with a turn every
 * 32 KiB the pool stays busy, builds up its read-ahead and the reader rarely waits (measured on the 420 MB bench
 * WARC: 1.08 s at 128 KiB, 1.01 s at 32, no better at 8; the WAT unchanged; a turn costs ~1 µs).
 */
export const GUNZIP_TURN_BYTES = 32 << 10;

/** A macrotask turn: the zlib callbacks due run (each starts the next inflate call) before the reader goes on. */
export function yieldToInflate(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

export interface GunzipOptions {
  /** Output bytes per inflate call (default GUNZIP_CHUNK). */
  chunkSize?: number;
  /** Inflated bytes queued before inflation pauses (default GUNZIP_READ_AHEAD). */
  readAhead?: number;
  /** Compressed bytes read ahead of the inflation (default GUNZIP_WRITE_AHEAD). */
  writeAhead?: number;
}

/** zlib's errors (code Z_DATA_ERROR, Z_BUF_ERROR, ...) are corrupt input; anything else is raised as it is. */
function classify(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code && String(code).startsWith('Z_')) return new CorruptInputError('gzip', (err as Error).message);
  return err;
}

/**
 * The queue between an inflater running ahead and its reader: chunks in order, up to about `limit` bytes (the
 * inflater asks `full` and pauses), then the end or a failure, raised only after every chunk queued before it.
 */
export class ReadAheadQueue {
  private readonly chunks: Buffer[] = [];
  private head = 0;
  private queued = 0;
  private ended = false;
  private failure: { err: unknown } | null = null;
  private wake: (() => void) | null = null;

  /** `belowHalf` is called when the reader has taken the queue below half of `limit` (the inflater may go on). */
  constructor(private readonly limit: number, private readonly belowHalf: () => void) {}

  get full(): boolean {
    return this.queued >= this.limit;
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  /** The inflater reached the end without a failure. */
  get endedWell(): boolean {
    return this.ended && this.failure === null;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  /** The first failure wins. */
  fail(err: unknown): void {
    if (this.failure === null) this.failure = { err };
    this.notify();
  }

  /** Wakes a reader waiting for a chunk (also when the reader stops, so that nothing waits on it). */
  notify(): void {
    const w = this.wake;
    this.wake = null;
    if (w) w();
  }

  /** The chunks as they come; then returns at the end, or throws `raise(failure)`. */
  async *chunksOf(raise: (err: unknown) => unknown): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.head < this.chunks.length) {
        const chunk = this.chunks[this.head];
        this.chunks[this.head++] = undefined as unknown as Buffer;
        if (this.head > 64 && this.head * 2 > this.chunks.length) {
          this.chunks.splice(0, this.head);
          this.head = 0;
        }
        this.queued -= chunk.length;
        if (this.queued < this.limit / 2) this.belowHalf();
        yield chunk;
        continue;
      }
      if (this.failure !== null) throw raise(this.failure.err);
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** The gunzipped bytes of `input` (one or more concatenated gzip members), in order, inflated ahead of the reader. */
export async function* gunzipAhead(input: AsyncIterable<Buffer>, opts: GunzipOptions = {}): AsyncGenerator<Buffer> {
  const readAhead = opts.readAhead ?? GUNZIP_READ_AHEAD;
  // zlib streams take the stream options too (ZlibOptions does not declare them).
  const streamOptions: ZlibOptions & { writableHighWaterMark: number } = {
    chunkSize: opts.chunkSize ?? GUNZIP_CHUNK, writableHighWaterMark: opts.writeAhead ?? GUNZIP_WRITE_AHEAD,
  };
  const gunzip = createGunzip(streamOptions);
  const queue = new ReadAheadQueue(readAhead, () => {
    if (gunzip.isPaused() && !queue.failed) gunzip.resume();
  });
  gunzip.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    if (queue.full) gunzip.pause();
  });
  gunzip.on('end', () => queue.end());
  gunzip.on('error', (err) => queue.fail(err));

  // The pump: input chunks are written as they come, up to the stream's writable high-water mark ahead of the
  // inflation. The stream is ended only once every written chunk has been inflated, so the finishing call carries
  // no data: zlib reports a truncated member from that call, and the output of a call that fails is lost.
  const source = input[Symbol.asyncIterator]();
  let stopped = false;
  const closed = new Promise<void>((resolve) => gunzip.once('close', () => resolve()));
  let last: Promise<void> | null = null; // the last write's completion (its output handed to the queue)
  const pump = (async (): Promise<void> => {
    try {
      for (;;) {
        if (stopped) return;
        const next = await source.next();
        if (stopped || gunzip.destroyed) return;
        if (next.done) break;
        const chunk = next.value;
        if (chunk.length === 0) continue;
        last = new Promise<void>((resolve) => gunzip.write(chunk, () => resolve()));
        if (gunzip.writableNeedDrain) await Promise.race([new Promise<void>((resolve) => gunzip.once('drain', () => resolve())), closed]);
      }
      if (last) await Promise.race([last, closed]);
      if (!stopped && !gunzip.destroyed) gunzip.end();
    } catch (err) {
      // The input failed: raised after the output of what was read before it.
      if (last) await Promise.race([last, closed]);
      queue.fail(err);
      gunzip.destroy();
    }
  })();

  try {
    yield* queue.chunksOf(classify);
  } finally {
    // Done, failed, or the reader stopped early: stop inflating and release the input.
    stopped = true;
    if (!gunzip.destroyed) gunzip.destroy();
    queue.notify();
    // Not awaited: a source stalled in a read must not hold up the reader's return (the pump ends on its own).
    if (!queue.endedWell) void Promise.resolve(source.return?.()).catch(() => undefined);
    void pump;
  }
}
