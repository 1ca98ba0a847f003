/**
 * The Temporal server itself killed (SIGKILL) mid-run: a dev server on a SQLite file is restarted on the same
 * port and file, the worker reconnects by itself, and the run finishes with the same data bytes as an
 * undisturbed run on the same server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { ensureDefaultMetadata } from '../curation/metadata';
import { shardRefs, type CurationRequest } from '../curation/run';
import { startCuration } from '../scripts/client';
import { portOpen, startDevServerArgs } from '../scripts/devserver';
import { generateSamples, writeCorruptShard } from '../scripts/samples';
import type { CurationProgress } from '../workflows/curation';
import { PHASE, RUN_ID, SHARDS_DONE, SHARDS_FAILED, SOURCE_RUN_ID } from '../workflows/search-attributes';
import { finishedShards, outputDigests as outputDigestsOf } from './support/runs';
import { spawnWorker, stopWorker, temporalCliPath, waitUntil, type WorkerProcess } from './support/temporal';

jest.setTimeout(600_000);

let dir: string;
let server: ChildProcess | undefined;
let worker: WorkerProcess | undefined;
let port: number;
let shards: string[];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startServer(): Promise<void> {
  const args = startDevServerArgs({ port, uiPort: port + 1, dbFile: path.join(dir, 'temporal.sqlite'), headless: true });
  for (const [k, t] of [[RUN_ID, 'Keyword'], [PHASE, 'Keyword'], [SHARDS_DONE, 'Int'], [SHARDS_FAILED, 'Int'], [SOURCE_RUN_ID, 'Keyword']]) args.push('--search-attribute', `${k}=${t}`);
  server = spawn(temporalCliPath(), args, { stdio: 'ignore' });
  await waitUntil(async () => portOpen(port), 60_000, 'the dev server to listen');
}

async function killServer(): Promise<void> {
  const s = server!;
  const exited = new Promise((r) => s.once('exit', r));
  s.kill('SIGKILL');
  await exited;
}

function request(runId: string): CurationRequest {
  return {
    runId, outRoot: path.join(dir, 'out'), shards: shardRefs(shards), metadataSource: ensureDefaultMetadata(), lid: 'on', langs: ['en'],
    t: 5, t1: 20, seed: '7', oneTextPerImage: false, dedupBuckets: 3, images: null, shardsPerBatch: 1, maxConcurrentBatches: 1, maxFailedShardRatio: 0.5,
  };
}

/** Data files, and the shuffle files too: they must be the same bytes after a server crash. */
const outputDigests = (runId: string) => outputDigestsOf(path.join(dir, 'out'), runId, /\.parquet$|\.shuffle$|counts\.json$|matched(\.ids)?\.json$/);

/** The run's result, asked again while the server is down or restarting. */
async function resultOf(client: Client, workflowId: string): Promise<CurationProgress> {
  for (;;) {
    try {
      return (await client.workflow.getHandle(workflowId).result()) as CurationProgress;
    } catch (err) {
      if (/WorkflowFailed|TooManyFailedShards/.test(String((err as Error).name) + String((err as Error).message))) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'server-crash-'));
  const generated = await generateSamples({ outDir: path.join(dir, 'samples'), shards: 2, seed: 8 });
  const corrupt = path.join(dir, 'samples', 'zz-corrupt.warc.gz');
  writeCorruptShard(corrupt);
  shards = [...generated.files.sort(), corrupt];
  port = await freePort();
  await startServer();
});

afterAll(async () => {
  if (worker) await stopWorker(worker, 'SIGKILL');
  if (server && server.exitCode === null) await killServer();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the dev server SIGKILLed mid-run and restarted on its database: the run finishes with the same bytes', async () => {
  const address = `127.0.0.1:${port}`;
  const client = new Client({ connection: await Connection.connect({ address }) });
  worker = spawnWorker(address, { CURATE_FAULT_SHARD_DELAY_MS: '1000', CURATE_CPU_SLOTS: '1' });
  const calm = await startCuration(client, request('calm-run'));
  expect((await calm.result() as CurationProgress).phase).toBe('done');

  const crash = await startCuration(client, request('crash-run'));
  const markers = () => finishedShards(path.join(dir, 'out'), 'crash-run');
  await waitUntil(async () => markers() >= 1, 120_000, 'the first shard of the crash run');
  expect(markers()).toBeLessThan(shards.length - 1); // really mid-run
  await killServer();
  await new Promise((r) => setTimeout(r, 2000));
  await startServer();
  const result = await resultOf(client, crash.workflowId);
  expect(result).toMatchObject({ phase: 'done', shardsDone: shards.length - 1, shardsFailed: 1 });
  expect(outputDigests('crash-run')).toEqual(outputDigests('calm-run'));
  expect(Object.keys(outputDigests('crash-run')).length).toBeGreaterThan(6);
  await client.connection.close();
});
