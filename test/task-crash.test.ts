/**
 * CPU worker threads with a heap limit (issue 11): a task that exhausts its thread's heap is rejected with
 * ERR_WORKER_OUT_OF_MEMORY and classified as ResourceExhausted, while the process (this jest worker) and the
 * tasks running next to it carry on, and the pool keeps serving.
 */
import path from 'node:path';
import { Piscina } from 'piscina';
import { classifyTaskCrash, taskHeapLimitMb } from '../curation/task-crash';

const GB = 1024 ** 3;

describe('taskHeapLimitMb', () => {
  test('default: 60% of memory over the threads, 512 MB..4 GB; CURATE_TASK_HEAP_MB overrides', () => {
    expect(taskHeapLimitMb(2, {}, 24 * GB)).toBe(4096);
    expect(taskHeapLimitMb(4, {}, 8 * GB)).toBe(1228);
    expect(taskHeapLimitMb(64, {}, 4 * GB)).toBe(512);
    expect(taskHeapLimitMb(2, { CURATE_TASK_HEAP_MB: '1500' }, 24 * GB)).toBe(1500);
    expect(() => taskHeapLimitMb(2, { CURATE_TASK_HEAP_MB: 'lots' })).toThrow(/CURATE_TASK_HEAP_MB must be an integer/);
    expect(() => taskHeapLimitMb(2, { CURATE_TASK_HEAP_MB: '64' })).toThrow(/≥ 256/);
  });
});

describe('classifyTaskCrash', () => {
  test('out-of-memory crashes are ResourceExhausted with the limit; anything else is null', () => {
    const oom = Object.assign(new Error('Worker terminated due to reaching memory limit: JS heap out of memory'), { code: 'ERR_WORKER_OUT_OF_MEMORY' });
    expect(classifyTaskCrash(oom, 4096)).toBe(
      'ResourceExhausted: shard parsing exceeded the worker heap limit (4096 MB): Worker terminated due to reaching memory limit: JS heap out of memory');
    expect(classifyTaskCrash(new Error('Worker terminated due to reaching memory limit: JS heap out of memory'), null)).toMatch(/^ResourceExhausted: .* limit: Worker/);
    expect(classifyTaskCrash(new RangeError('Array buffer allocation failed'), 512)).toMatch(/^ResourceExhausted: .*\(512 MB\)/);
    expect(classifyTaskCrash(new Error('ECONNRESET'))).toBeNull();
    expect(classifyTaskCrash(Object.assign(new Error('gzip: unexpected end of file'), { name: 'CorruptInputError' }))).toBeNull();
    expect(classifyTaskCrash('boom')).toBeNull();
    expect(classifyTaskCrash(null)).toBeNull();
  });
});

describe('a piscina pool with resourceLimits', () => {
  test('OOM tasks fail alone and classified; tasks in parallel finish; the pool keeps serving', async () => {
    const pool = new Piscina({
      filename: path.join(__dirname, 'support', 'oom-task.js'), maxThreads: 2, resourceLimits: { maxOldGenerationSizeMb: 64 },
    });
    try {
      const runs = [
        pool.run({ kind: 'grow' }), pool.run({ kind: 'ok', n: 1 }), pool.run({ kind: 'ok', n: 2 }),
        pool.run({ kind: 'grow' }), pool.run({ kind: 'ok', n: 3 }),
      ];
      const settled = await Promise.allSettled(runs);
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      for (const s of settled) {
        if (s.status === 'rejected') {
          expect((s.reason as { code?: string }).code).toBe('ERR_WORKER_OUT_OF_MEMORY');
          expect(classifyTaskCrash(s.reason, 64)).toMatch(/^ResourceExhausted: shard parsing exceeded the worker heap limit \(64 MB\)/);
        } else {
          expect(s.value).toMatchObject({ echo: { kind: 'ok' }, pid: process.pid }); // a thread of this process
        }
      }
      expect(await pool.run({ kind: 'ok', n: 4 })).toMatchObject({ echo: { n: 4 } });
    } finally {
      await pool.destroy();
    }
  });
});
