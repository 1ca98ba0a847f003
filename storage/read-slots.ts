/**
 * A cap on concurrent remote shard reads (https://, s3://) shared by every thread of a worker process.
 *
 * Shards are read inside piscina worker threads, so a per-module counter would cap each thread alone. The
 * count lives in a SharedArrayBuffer instead: the main thread creates it when this module is first loaded and
 * hands it to every worker thread started afterwards through `worker_threads.setEnvironmentData` (a
 * SharedArrayBuffer is shared, not copied, by the structured clone). Waiters sleep in `Atomics.waitAsync`, so
 * a waiting thread's event loop stays free.
 *
 * The cap is `CURATE_MAX_SHARD_READS` (default 8) read by the main thread; `setShardReadCap` changes it for
 * the whole process (`curate worker --max-shard-reads`).
 */
import { getEnvironmentData, isMainThread, setEnvironmentData } from 'node:worker_threads';
import { ConfigError } from '../curation/errors';

export const DEFAULT_MAX_SHARD_READS = 8;
const ENV_KEY = 'curate.shardReadSlots';
/** Cells of the shared buffer. */
const IN_USE = 0;
const CAP = 1;

/** The cap from `CURATE_MAX_SHARD_READS`: a positive integer, default 8. */
export function shardReadCapFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CURATE_MAX_SHARD_READS;
  if (raw === undefined || raw === '') return DEFAULT_MAX_SHARD_READS;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(`CURATE_MAX_SHARD_READS must be a positive integer, got '${raw}'`);
  }
  return n;
}

/** `Atomics.waitAsync` (Node ≥ 16; typed from ES2024 on, the project compiles against ES2022). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

export class ReadSlots {
  private readonly cells: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.cells = new Int32Array(buffer);
  }

  static create(cap: number): ReadSlots {
    const slots = new ReadSlots(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
    slots.setCap(cap);
    return slots;
  }

  get cap(): number {
    return Atomics.load(this.cells, CAP);
  }

  /** Reads in progress across the process. */
  get inUse(): number {
    return Atomics.load(this.cells, IN_USE);
  }

  setCap(cap: number): void {
    if (!Number.isSafeInteger(cap) || cap < 1 || cap > 0x7fffffff) throw new RangeError(`shard read cap must be a positive integer, got ${cap}`);
    Atomics.store(this.cells, CAP, cap);
    Atomics.notify(this.cells, IN_USE); // a larger cap lets waiters in at once
  }

  /** Waits for a free slot; resolves with its release function (idempotent). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const used = Atomics.load(this.cells, IN_USE);
      if (used < Atomics.load(this.cells, CAP)) {
        if (Atomics.compareExchange(this.cells, IN_USE, used, used + 1) !== used) continue;
        let released = false;
        return () => {
          if (released) return;
          released = true;
          Atomics.sub(this.cells, IN_USE, 1);
          Atomics.notify(this.cells, IN_USE, 1);
        };
      }
      // Sleep until the count changes (a release); wake every second anyway to notice an abort. A pending
      // waitAsync does not keep a thread's event loop alive: the timer does, so a thread waiting only for a
      // slot is not taken for idle and ended.
      const wait = waitAsync(this.cells, IN_USE, used, 1_000);
      if (wait.async) {
        const keepAlive = setTimeout(() => {}, 1_000);
        try {
          await wait.value;
        } finally {
          clearTimeout(keepAlive);
        }
      }
    }
  }
}

let processSlots: ReadSlots | null = null;

/** The process-wide slots (created by the main thread, adopted by worker threads). */
export function shardReadSlots(): ReadSlots {
  if (processSlots) return processSlots;
  const shared = getEnvironmentData(ENV_KEY);
  if (shared instanceof SharedArrayBuffer) {
    processSlots = new ReadSlots(shared);
  } else {
    let cap = DEFAULT_MAX_SHARD_READS;
    try {
      cap = shardReadCapFromEnv();
    } catch (err) {
      // A bad value must not break module loading: `curate worker` checks it first and stops with its message.
      if (!isMainThread) throw err;
    }
    processSlots = ReadSlots.create(cap);
    if (isMainThread) setEnvironmentData(ENV_KEY, processSlots.buffer);
  }
  return processSlots;
}

/** Sets the process-wide cap (every thread sees it). */
export function setShardReadCap(cap: number): void {
  shardReadSlots().setCap(cap);
}

// The main thread creates the shared slots when this module loads, before any worker thread is started.
if (isMainThread) shardReadSlots();
