/**
 * The deployment shape of a real snapshot, on one machine (issue 12, item 2): one orchestration, two cpu and
 * one io worker, each its own process (`node dist/workers/<queue>.js`), on one real dev server, shards and
 * outputs on a real S3 server (SeaweedFS). The run writes the same bytes as a single-process run, and both
 * cpu processes did shard work (the histories name the worker that ran each activity).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureDefaultMetadata } from '../curation/metadata';
import { shardRefs, type CurationRequest } from '../curation/run';
import { startCuration } from '../scripts/client';
import { generateSamples } from '../scripts/samples';
import { openStore } from '../storage/store';
import type { CurationProgress } from '../workflows/curation';
import { TASK_QUEUES } from '../workflows/search-attributes';
import { startS3Server, type S3TestServer } from './support/s3server';
import { ROOT, spawnWorker, startTestServer, stopWorker, waitUntil } from './support/temporal';

jest.setTimeout(600_000);

let env: TestWorkflowEnvironment;
let s3: S3TestServer;
let dir: string;
let shards: string[];
let metadata: string;

function config(runId: string): CurationRequest {
  return {
    runId, outRoot: `s3://${s3.bucket}/curation`, shards: shardRefs(shards), metadataSource: metadata, lid: 'on', langs: ['en'],
    t: 5, t1: 20, seed: '7', oneTextPerImage: false, dedupBuckets: 3, images: null,
    shardsPerBatch: 2, maxConcurrentBatches: 2, maxFailedShardRatio: 0.5, heartbeatTimeoutSeconds: 10,
  };
}

/** sha256 of every output of a run on S3 that depends on neither timing nor run id. */
async function s3Digests(runId: string): Promise<Record<string, string>> {
  const store = openStore(`s3://${s3.bucket}/curation`, s3.settings);
  const out: Record<string, string> = {};
  for (const k of await store.list(`runs/${runId}/`)) {
    if (/\.parquet$|counts\.json$|matched(\.ids)?\.json$/.test(k)) out[k.slice(`runs/${runId}/`.length)] = createHash('sha256').update(await store.get(k)).digest('hex');
  }
  return out;
}

interface QueueProcess { queue: string; child: ChildProcess; output: () => string; exited: Promise<number | null> }

function queueWorker(queue: 'orchestration' | 'cpu' | 'io', extra: Record<string, string> = {}): QueueProcess {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'workers', `${queue}.js`)], {
    env: { ...process.env, ...s3.env, TEMPORAL_ADDRESS: env.address, CURATE_CPU_THREADS: '1', ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { queue, child, output: () => out, exited };
}

/** Pollers of a task queue (workflow tasks for orchestration, activity tasks for the others). */
async function pollerIdentities(queue: keyof typeof TASK_QUEUES): Promise<string[]> {
  const res = await env.client.workflowService.describeTaskQueue({
    namespace: 'default', taskQueue: { name: TASK_QUEUES[queue] }, taskQueueType: queue === 'orchestration' ? 1 : 2,
  });
  return (res.pollers ?? []).map((p) => p.identity ?? '');
}

/** Identity of the worker that started each activity of every workflow of the run, by task queue. */
async function activityWorkers(runId: string): Promise<Record<string, Set<string>>> {
  const byQueue: Record<string, Set<string>> = {};
  for await (const w of env.client.workflow.list()) {
    if (!w.workflowId.includes(runId)) continue;
    const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
    const queueOf = new Map<string, string>();
    for (const e of history.events ?? []) {
      if (e.activityTaskScheduledEventAttributes) queueOf.set(String(e.eventId), e.activityTaskScheduledEventAttributes.taskQueue?.name ?? '');
      const started = e.activityTaskStartedEventAttributes;
      if (started) {
        const q = queueOf.get(String(started.scheduledEventId)) ?? '?';
        (byQueue[q] ??= new Set()).add(started.identity ?? '');
      }
    }
  }
  return byQueue;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'multiprocess-'));
  const generated = await generateSamples({ outDir: path.join(dir, 'samples'), shards: 3, seed: 21 });
  metadata = ensureDefaultMetadata();
  [env, s3] = await Promise.all([startTestServer(), startS3Server()]);
  const store = openStore(`s3://${s3.bucket}`, s3.settings);
  shards = [];
  for (const file of generated.files.sort()) {
    await store.put(`crawl/${path.basename(file)}`, readFileSync(file));
    shards.push(`s3://${s3.bucket}/crawl/${path.basename(file)}`);
  }
});

afterAll(async () => {
  await s3?.stop();
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('one orchestration, two cpu and one io worker process on one server, outputs on S3: the same bytes as one process', async () => {
  // The reference: all three queues in one process.
  const single = spawnWorker(env.address, s3.env);
  try {
    const result = (await (await startCuration(env.client, config('single'), openStore(config('single').outRoot, s3.settings))).result()) as CurationProgress;
    expect(result.phase).toBe('done');
  } finally {
    await stopWorker(single);
  }

  const procs = [queueWorker('orchestration'), queueWorker('cpu', { CURATE_CPU_SLOTS: '1' }), queueWorker('cpu', { CURATE_CPU_SLOTS: '1' }), queueWorker('io')];
  try {
    const pids = procs.map((p) => p.child.pid!);
    const ours = (ids: string[]) => ids.filter((id) => pids.some((pid) => id.startsWith(`${pid}@`)));
    // Every process polls its queue before the run starts (so the run cannot be served by leftovers).
    await waitUntil(async () => (await Promise.all([
      pollerIdentities('orchestration').then((ids) => ours(ids).length >= 1),
      pollerIdentities('cpu').then((ids) => ours(ids).length >= 2),
      pollerIdentities('io').then((ids) => ours(ids).length >= 1),
    ])).every(Boolean), 120_000, 'the four worker processes to poll');

    const handle = await startCuration(env.client, config('multi'), openStore(config('multi').outRoot, s3.settings));
    const result = (await handle.result()) as CurationProgress;
    expect(result.phase).toBe('done');
    expect(result.shardsDone).toBe(shards.length);

    const reference = await s3Digests('single');
    expect(Object.keys(reference).length).toBeGreaterThan(4);
    expect(await s3Digests('multi')).toEqual(reference);

    // The work really was spread: each queue's activities ran in its own processes, and both cpu processes worked.
    const workers = await activityWorkers('multi');
    const [, cpuA, cpuB, io] = pids;
    const ranOn = (q: string) => [...(workers[q] ?? [])].map((id) => Number(id.split('@')[0]));
    expect(new Set(ranOn(TASK_QUEUES.cpu))).toEqual(new Set([cpuA, cpuB]));
    expect(new Set(ranOn(TASK_QUEUES.io))).toEqual(new Set([io]));
  } finally {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    const codes = await Promise.all(procs.map((p) => p.exited));
    if (codes.some((c) => c !== 0 && c !== null)) console.error(procs.map((p) => `${p.queue}: ${p.output().slice(-2000)}`).join('\n'));
  }
});
