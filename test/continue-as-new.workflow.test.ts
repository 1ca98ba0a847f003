/**
 * The root workflow continues as new when Temporal suggests it (forced here with a tiny history limit)
 * and still processes and balances every shard exactly once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureDefaultMetadata } from '../curation/metadata';
import { shardRefs, type CurationRequest } from '../curation/run';
import { startCuration } from '../scripts/client';
import { generateSamples } from '../scripts/samples';
import type { CurationProgress } from '../workflows/curation';
import { spawnWorker, startTestServer, stopWorker, type WorkerProcess } from './support/temporal';
import { readRunShardResults } from '../storage/shard-list';
import { openStore as openRunStore } from '../storage/store';

/** Every shard's result of a finished run (the manifest keeps totals; batch manifests hold the results). */
const shardResultsOf = (manifest: { runId: string; config: { outRoot: string } }) => readRunShardResults(openRunStore(manifest.config.outRoot), manifest.runId);

jest.setTimeout(240_000);

let env: TestWorkflowEnvironment;
let worker: WorkerProcess;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'curation-can-'));
  env = await startTestServer({ 'limit.historyCount.suggestContinueAsNew': 25 });
  worker = spawnWorker(env.address);
});

afterAll(async () => {
  if (worker) await stopWorker(worker, 'SIGKILL');
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('continue-as-new keeps every shard exactly once, balanced once, with consistent counts', async () => {
  const { files } = await generateSamples({ outDir: path.join(dir, 'samples'), shards: 3, seed: 5 });
  const base: CurationRequest = {
    runId: 'can-run', outRoot: path.join(dir, 'out'), shards: shardRefs(files.sort()), metadataSource: ensureDefaultMetadata(),
    lid: 'on', langs: ['en'], t: 5, t1: 25, seed: '1', oneTextPerImage: false, dedupBuckets: 2,
    shardsPerBatch: 1, maxConcurrentBatches: 1, maxFailedShardRatio: 0.5,
  };
  const handle = await startCuration(env.client, base);
  const result = (await handle.result()) as CurationProgress;
  expect(result).toMatchObject({ phase: 'done', shardsDone: files.length, shardsFailed: 0, batchesDone: files.length });
  expect(result.selected).toBeGreaterThan(0);

  // The first run of the chain was continued as new (the history limit forced it).
  const first = await env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).describe();
  expect(first.status.name).toBe('CONTINUED_AS_NEW');

  const manifest = JSON.parse(readFileSync(path.join(dir, 'out', 'runs', 'can-run', 'manifest.json'), 'utf8'));
  expect((await shardResultsOf(manifest)).map((s: { shard: { index: number } }) => s.shard.index)).toEqual(files.map((_, i) => i));
  const curated = JSON.parse(readFileSync(path.join(dir, 'out', 'runs', 'can-run', 'curated', 't=5', 'seed=1', 'manifest.json'), 'utf8'));
  expect(curated.parts.map((p: { bucket: number }) => p.bucket)).toEqual([0, 1]);
  expect(curated.selected).toBe(result.selected);
  const shardMatches = (await shardResultsOf(manifest)).reduce((a: number, s) => a + (s.stats?.matches ?? 0), 0);
  expect(manifest.counts.matches).toBe(shardMatches);
});
