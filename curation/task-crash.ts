/**
 * CPU worker threads run with a heap limit (piscina `resourceLimits`), so one shard that needs more memory
 * than its share ends its own thread, not the worker process and every activity in it. Piscina then rejects
 * that task with ERR_WORKER_OUT_OF_MEMORY and starts a fresh thread; this module turns that rejection into a
 * classified failure reason, so the shard is a failed shard (non-retryable: the same bytes need the same
 * memory) rather than a crash.
 */
import { totalmem } from 'node:os';

/** Largest default heap per CPU worker thread, MB (V8's own default on a 64-bit machine is about 4 GB). */
const MAX_DEFAULT_HEAP_MB = 4096;
const MIN_HEAP_MB = 256;

/**
 * The heap limit of a CPU worker thread, MB: `CURATE_TASK_HEAP_MB` when set (≥ 256), else 60% of the machine's
 * memory shared by the threads, between 512 MB and 4 GB (24 GB and 2 threads: 4,096 MB per thread).
 */
export function taskHeapLimitMb(threads: number, env: NodeJS.ProcessEnv = process.env, totalBytes = totalmem()): number {
  const given = env.CURATE_TASK_HEAP_MB;
  if (given !== undefined && given.trim() !== '') {
    const mb = Number(given);
    if (!Number.isInteger(mb) || mb < MIN_HEAP_MB) throw new Error(`CURATE_TASK_HEAP_MB must be an integer ≥ ${MIN_HEAP_MB} (MB), got ${JSON.stringify(given)}`);
    return mb;
  }
  const share = Math.floor((0.6 * totalBytes) / (1 << 20) / Math.max(1, threads));
  return Math.max(512, Math.min(MAX_DEFAULT_HEAP_MB, share));
}

/** The heap limit the pool was created with (recorded by taskPool, for the failure reason). */
let configuredHeapMb: number | null = null;
export function recordTaskHeapLimit(mb: number): void {
  configuredHeapMb = mb;
}

const OUT_OF_MEMORY = /ERR_WORKER_OUT_OF_MEMORY|reaching memory limit|heap out of memory|Array buffer allocation failed/i;

/**
 * The classified reason of a CPU task that crashed its worker thread by exhausting memory, or null for any
 * other error (which keeps its usual handling).
 *   "ResourceExhausted: shard parsing exceeded the worker heap limit (4096 MB): Worker terminated due to ..."
 */
export function classifyTaskCrash(err: unknown, heapMb: number | null = configuredHeapMb): string | null {
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null;
  if (!e || typeof e !== 'object') return null;
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  const oom = code === 'ERR_WORKER_OUT_OF_MEMORY' || OUT_OF_MEMORY.test(message);
  if (!oom) return null;
  const limit = heapMb !== null ? ` (${heapMb} MB)` : '';
  return `ResourceExhausted: shard parsing exceeded the worker heap limit${limit}: ${message.replace(/\s+/g, ' ').trim() || code}`;
}
