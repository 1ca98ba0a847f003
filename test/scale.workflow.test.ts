/**
 * Temporal budgets at pool scale: a run of 20,000 shards with Common-Crawl-length paths (a few point at tiny
 * real files, the rest are missing and fail as InputUnavailable) goes through matching and the rest of the
 * pipeline, and every payload of every recorded history is ≤ 256 KB, every history ≤ 4,000 events and 4 MB.
 * And shards whose headers carry megabyte-long corrupt values fail once, with classified, capped reasons.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { MAX_REASON_CHARS } from '../curation/errors';
import { ensureDefaultMetadata } from '../curation/metadata';
import { shardRefs, type CurationRequest } from '../curation/run';
import { startCuration } from '../scripts/client';
import { checkBudget, HistoryBudgetBuilder } from '../scripts/history-budget';
import { generateSamples } from '../scripts/samples';
import type { CurationProgress } from '../workflows/curation';
import { spawnWorker, startTestServer, stopWorker, type WorkerProcess } from './support/temporal';

jest.setTimeout(900_000);

let env: TestWorkflowEnvironment;
let worker: WorkerProcess | undefined;
let dir: string;
let samples: string[];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'curation-scale-'));
  samples = (await generateSamples({ outDir: path.join(dir, 'samples'), shards: 1, seed: 11 })).files.sort();
  env = await startTestServer();
  worker = spawnWorker(env.address, { CURATE_CPU_SLOTS: '32' });
});

afterAll(async () => {
  if (worker) await stopWorker(worker, 'SIGKILL');
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function request(runId: string, shards: string[], extra: Partial<CurationRequest> = {}): CurationRequest {
  return {
    runId, outRoot: path.join(dir, 'out'), shards: shardRefs(shards), metadataSource: ensureDefaultMetadata(), lid: 'on', langs: ['en'],
    t: 5, t1: 20, seed: '1', oneTextPerImage: false, images: null,
    shardsPerBatch: 200, maxConcurrentBatches: 8, maxFailedShardRatio: 1, ...extra,
  };
}

/** A Common Crawl-shaped path of over 200 bytes (a mirror directory, then the CC key) for shard i. */
function ccPath(i: number, kind: 'warc' | 'wat'): string {
  const segment = `1707947473347.${String(i % 97).padStart(2, '0')}`;
  const stamp = `2024022${i % 10}2110${String(i).padStart(6, '0')}`;
  return path.join(dir, 'mirror-of-the-s3-commoncrawl-bucket-made-for-the-scale-test-of-this-suite', 'crawl-data', 'CC-MAIN-2024-10', 'segments', segment, kind,
    `CC-MAIN-${stamp}-20240221001055-${String(i).padStart(5, '0')}.${kind === 'wat' ? 'warc.wat' : 'warc'}.gz`);
}

/** Every execution recorded on the (fresh) server: histories read one by one into the budget. */
async function recordedBudget() {
  const builder = new HistoryBudgetBuilder();
  let executions = 0;
  for await (const w of env.client.workflow.list()) {
    builder.add({ workflowId: w.workflowId, runId: w.runId, history: await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory() });
    executions++;
  }
  return { budget: builder.result(), executions };
}

test('20,000 Common-Crawl-length shards: every payload ≤ 256 KB, every history ≤ 4,000 events and 4 MB', async () => {
  const N = 20_000;
  const shards: string[] = [];
  for (let i = 0; i < N; i++) {
    const kind = i % 2 ? 'wat' : 'warc';
    const p = ccPath(i, kind);
    if (i % 200 < 2) {
      // One real tiny file per 200 paths (a link under a Common Crawl name); the rest are missing.
      mkdirSync(path.dirname(p), { recursive: true });
      symlinkSync(samples.find((f) => (kind === 'wat') === /\.wat/.test(f))!, p);
    }
    shards.push(p);
  }
  expect(shards.reduce((s, p) => s + p.length, 0) / N).toBeGreaterThan(200);
  const handle = await startCuration(env.client, request('scale-run', shards));
  const result = (await handle.result()) as CurationProgress;
  expect(result).toMatchObject({ phase: 'done', shardsTotal: N, shardsDone: 200, shardsFailed: N - 200, batchesTotal: 100, batchesDone: 100 });
  expect(result.failures.length).toBeLessThanOrEqual(20);
  expect(result.failures[0].reason).toMatch(/^InputUnavailable: /);
  expect(result.selected).toBeGreaterThan(0);

  const { budget, executions } = await recordedBudget();
  expect(executions).toBeGreaterThan(100);
  const checks = checkBudget(budget);
  for (const c of checks) expect({ what: c.what, ok: c.ok, actual: c.actual, where: c.where }).toMatchObject({ what: c.what, ok: true });

  // Every shard's result is in the store, not in Temporal: the manifest points at it and keeps a sample.
  const manifest = JSON.parse(readFileSync(path.join(dir, 'out', 'runs', 'scale-run', 'manifest.json'), 'utf8'));
  expect(manifest.shards).toMatchObject({ total: N, done: 200, failed: N - 200 });
  expect(manifest.shards.failures).toHaveLength(100);
  const failedLines = readFileSync(path.join(dir, 'out', 'runs', 'scale-run', 'failed-shards.jsonl'), 'utf8').trim().split('\n');
  expect(failedLines).toHaveLength(N - 200);
});

/** A one-record WARC whose header carries a huge value: a corrupt shard that must fail once, with a short reason. */
function hostileHeaderShard(file: string, header: string): void {
  writeFileSync(file, gzipSync(Buffer.from(`WARC/1.0\r\nWARC-Type: response\r\n${header}\r\n\r\n`, 'latin1')));
}

test('shards with megabyte-long corrupt header values fail once, with classified reasons capped at ~1 KB', async () => {
  const bad = path.join(dir, 'bad');
  mkdirSync(bad, { recursive: true });
  const control = Array.from({ length: 900_000 }, (_, i) => String.fromCharCode(1 + (i % 30))).join('');
  hostileHeaderShard(path.join(bad, 'a-control-length.warc.gz'), `Content-Length: ${control}`);
  hostileHeaderShard(path.join(bad, 'b-huge-header.warc.gz'), `WARC-Target-URI: http://x/${'\u0007'.repeat(1_200_000)}\r\nContent-Length: 0`);
  hostileHeaderShard(path.join(bad, 'c-digits-length.warc.gz'), `Content-Length: 12${'x'.repeat(800_000)}`);
  const shards = [samples[0], path.join(bad, 'a-control-length.warc.gz'), samples[1], path.join(bad, 'b-huge-header.warc.gz'), path.join(bad, 'c-digits-length.warc.gz')];
  const handle = await startCuration(env.client, request('hostile-headers', shards, { shardsPerBatch: 5, maxConcurrentBatches: 1 }));
  const result = (await handle.result()) as CurationProgress;
  expect(result).toMatchObject({ phase: 'done', shardsDone: 2, shardsFailed: 3 });
  for (const f of result.failures) {
    expect(f.reason).toMatch(/^CorruptInput: bad-header: /);
    expect(f.reason.length).toBeLessThanOrEqual(MAX_REASON_CHARS + 50);
    expect(f.reason).not.toMatch(/[\u0000-\u0008]/);
  }
  // Corrupt input is never retried: one attempt per shard.
  const batch = await env.client.workflow.getHandle('hostile-headers/match/batch-00000').fetchHistory();
  const attempts = batch.events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
  expect(attempts.length).toBeGreaterThanOrEqual(5);
  expect(attempts.every((a) => a === 1)).toBe(true);
  const failed = readFileSync(path.join(dir, 'out', 'runs', 'hostile-headers', 'failed-shards.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(failed.map((f: { shard: { index: number } }) => f.shard.index)).toEqual([1, 3, 4]);
});
