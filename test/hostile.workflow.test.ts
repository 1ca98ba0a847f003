/**
 * Hostile shards in a real run: a 60 MB WAT record nested 30 million deep and one with a million image links,
 * processed in parallel with good shards by one worker whose CPU threads have a small heap (256 MB). The
 * worker stays up, the good shards finish, and each hostile shard ends either as a done shard that counted
 * its bad record or as a failed shard with a classified reason: never a dead worker or a stuck run.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureDefaultMetadata } from '../curation/metadata';
import { shardRefs } from '../curation/run';
import { startCuration } from '../scripts/client';
import { generateSamples } from '../scripts/samples';
import { readRunShardResults } from '../storage/shard-list';
import { openStore } from '../storage/store';
import type { CurationProgress } from '../workflows/curation';
import { writeDeeplyNestedWat, writeManyLinksWat } from './support/hostile';
import { spawnWorker, startTestServer, stopWorker, type WorkerProcess } from './support/temporal';

jest.setTimeout(600_000);

let env: TestWorkflowEnvironment;
let worker: WorkerProcess | undefined;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'curation-hostile-'));
  env = await startTestServer();
});

afterAll(async () => {
  if (worker) await stopWorker(worker, 'SIGKILL');
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a worker running hostile shards in parallel with good ones stays up; good shards finish, hostile ones are accounted for', async () => {
  const good = (await generateSamples({ outDir: path.join(dir, 'samples'), shards: 1, seed: 4 })).files.sort();
  mkdirSync(path.join(dir, 'hostile'));
  const nested = path.join(dir, 'hostile', 'nested.warc.wat.gz');
  const links = path.join(dir, 'hostile', 'links.warc.wat.gz');
  await writeDeeplyNestedWat(nested, 60_000_000);
  await writeManyLinksWat(links, 1_000_000);
  worker = spawnWorker(env.address, { CURATE_TASK_HEAP_MB: '256', CURATE_CPU_SLOTS: '4' });
  const shards = [good[0], nested, good[1], links];
  const outRoot = path.join(dir, 'out');
  const handle = await startCuration(env.client, {
    runId: 'hostile-run', outRoot, shards: shardRefs(shards), metadataSource: ensureDefaultMetadata(), lid: 'on', langs: ['en'],
    t: 5, t1: 20, seed: '1', oneTextPerImage: false, images: null, shardsPerBatch: 4, maxConcurrentBatches: 1, maxFailedShardRatio: 1,
  });
  const result = (await handle.result()) as CurationProgress;
  expect(result.phase).toBe('done');
  // The same worker process did all of it: it never exited.
  expect(worker.child.exitCode).toBeNull();
  expect(worker.child.signalCode).toBeNull();
  const results = await readRunShardResults(openStore(outRoot), 'hostile-run');
  expect(results.map((r) => r.shard.index)).toEqual([0, 1, 2, 3]);
  expect(results[0].status).toBe('done');
  expect(results[2].status).toBe('done');
  expect(results[0].rows).toBeGreaterThan(0);
  for (const i of [1, 3]) {
    const r = results[i];
    if (r.status === 'failed') expect(r.reason).toMatch(/^ResourceExhausted: /);
    else expect(r.status).toBe('done');
  }
  // The nested record is a counted bad record when its shard is done.
  if (results[1].status === 'done') expect(results[1].stats?.badRecordReasons).toMatchObject({ 'too-deep': 1 });
  expect(result.shardsDone + result.shardsFailed).toBe(4);
});
