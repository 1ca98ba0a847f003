/**
 * End to end on a real Temporal dev server (started by the test) with real worker processes:
 * a corrupt shard among good ones, outputs equal to the core's, search attributes in place, and a
 * worker killed mid-run (SIGKILL) whose replacement finishes the run to byte-identical outputs.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ShardExtractor } from '../curation/extract';
import { LanguageIdentifier } from '../curation/lid';
import { Matcher } from '../curation/matcher';
import { ensureDefaultMetadata, loadMetadataFile } from '../curation/metadata';
import { shardRefs, type CurationRequest } from '../curation/run';
import { matchShard } from '../curation/shard';
import { readCandidatesParquet } from '../storage/parquet';
import { openInput } from '../storage/sources';
import { startCuration } from '../scripts/client';
import { generateSamples, writeCorruptShard } from '../scripts/samples';
import type { CurationProgress } from '../workflows/curation';
import { openStore } from '../storage/store';
import { startS3Server } from './support/s3server';
import { finishedShards, outputDigests as outputDigestsOf } from './support/runs';
import { spawnWorker, startTestServer, stopWorker, waitUntil, type WorkerProcess } from './support/temporal';
import { readRunShardResults } from '../storage/shard-list';
import { openStore as openRunStore } from '../storage/store';

/** Every shard's result of a finished run (the manifest keeps totals; batch manifests hold the results). */
const shardResultsOf = (manifest: { runId: string; config: { outRoot: string } }) => readRunShardResults(openRunStore(manifest.config.outRoot), manifest.runId);

jest.setTimeout(240_000);

let env: TestWorkflowEnvironment;
let dir: string;
let shards: string[];
let metadata: string;

function config(runId: string, extra: Partial<CurationRequest> = {}): CurationRequest {
  return {
    runId, outRoot: path.join(dir, 'out'), shards: shardRefs(shards), metadataSource: metadata, lid: 'on', langs: ['en'],
    t: 5, t1: 20, seed: '7', oneTextPerImage: false, dedupBuckets: 3,
    shardsPerBatch: 2, maxConcurrentBatches: 1, maxFailedShardRatio: 0.5, heartbeatTimeoutSeconds: 5, ...extra,
  };
}

const outputDigests = (runId: string) => outputDigestsOf(path.join(dir, 'out'), runId);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'curation-wf-'));
  const generated = await generateSamples({ outDir: path.join(dir, 'samples'), shards: 2, seed: 3 });
  const corrupt = path.join(dir, 'samples', 'zz-corrupt.warc.gz');
  writeCorruptShard(corrupt);
  shards = [...generated.files.sort(), corrupt];
  metadata = ensureDefaultMetadata();
  env = await startTestServer();
});

afterAll(async () => {
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('curation workflow', () => {
  let worker: WorkerProcess | undefined;
  afterEach(async () => {
    if (worker) await stopWorker(worker, 'SIGKILL');
    worker = undefined;
  });

  test('a corrupt shard is recorded as failed while the others finish; outputs equal the core', async () => {
    worker = spawnWorker(env.address);
    const handle = await startCuration(env.client, config('ok-run'));
    const result = (await handle.result()) as CurationProgress;
    expect(result.phase).toBe('done');
    expect(result.shardsFailed).toBe(1);
    expect(result.shardsDone).toBe(shards.length - 1);

    const runDir = path.join(dir, 'out', 'runs', 'ok-run');
    const manifest = JSON.parse(readFileSync(path.join(runDir, 'manifest.json'), 'utf8'));
    const failed = (await shardResultsOf(manifest)).filter((s: { status: string }) => s.status === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].shard.uri).toMatch(/zz-corrupt/);
    expect(failed[0].reason).toMatch(/^CorruptInput: (gzip|truncated)/);
    expect(manifest.metadata.entries).toBeGreaterThan(1000);

    // The stored candidates of a shard are exactly what the core computes for it.
    const entries = loadMetadataFile(metadata);
    const ref = (await shardResultsOf(manifest)).find((s: { status: string }) => s.status === 'done')!.shard;
    const core = await matchShard(await openInput(ref.uri), new ShardExtractor({ lid: await LanguageIdentifier.load() }), new Matcher(entries), new Set(['en']));
    const stored = await readCandidatesParquet(readFileSync(path.join(runDir, 'shards', ref.id, 'candidates.parquet')));
    expect(stored).toEqual(core.rows);

    // Global counts are in MetaCLIP's form (entry string → count) and sum the shards' counts.
    const counts = JSON.parse(readFileSync(path.join(runDir, 'counts', 'matched.json'), 'utf8'));
    const total = Object.values(counts as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(total).toBe(manifest.counts.matches);
    expect(total).toBeGreaterThan(0);
    expect(manifest.curated.selected).toBeGreaterThan(0);
    expect(manifest.curated.selected).toBeLessThanOrEqual(manifest.curated.considered);
    expect(manifest.curated.considered).toBe(manifest.pass1.selected);
    expect(manifest.pass1.considered).toBe(manifest.dedup.uniquePairs);

    // Findable and readable in the UI: search attributes and the progress query.
    const desc = await handle.describe();
    expect(desc.searchAttributes.CurationRunId).toEqual(['ok-run']);
    expect(desc.searchAttributes.CurationPhase).toEqual(['done']);
    expect(desc.searchAttributes.CurationShardsFailed).toEqual([1]);
    const progress = await handle.query<CurationProgress>('progress');
    expect(progress.failures[0].reason).toMatch(/CorruptInput/);
  });

  test('a worker killed mid-run is replaced, the killed shard is retried within 20 s, and the run finishes with byte-identical outputs', async () => {
    worker = spawnWorker(env.address, { CURATE_FAULT_SHARD_DELAY_MS: '1500', CURATE_CPU_SLOTS: '1' });
    // The default heartbeat timeout (15 s): what a user gets.
    const handle = await startCuration(env.client, config('crash-run', { heartbeatTimeoutSeconds: undefined }));
    const markers = () => finishedShards(path.join(dir, 'out'), 'crash-run');
    await waitUntil(async () => markers() >= 1, 120_000, 'the first shard to finish');
    expect(markers()).toBeLessThan(shards.length - 1); // really mid-run
    await stopWorker(worker, 'SIGKILL');
    const killedAt = Date.now();
    worker = spawnWorker(env.address);
    // The shard that was running when the worker died starts its second attempt within 20 s of the kill.
    const batches = Array.from({ length: Math.ceil(shards.length / 2) }, (_, i) => `crash-run/match/batch-${String(i).padStart(5, '0')}`);
    const retriedAt = await waitUntil(async () => {
      for (const id of batches) {
        const d = await env.client.workflow.getHandle(id).describe().catch(() => null);
        const retried = d?.raw.pendingActivities?.find((a) => (a.attempt ?? 0) >= 2 && a.lastStartedTime);
        if (retried) return Number(retried.lastStartedTime!.seconds) * 1000 + Math.floor((retried.lastStartedTime!.nanos ?? 0) / 1e6);
      }
      return undefined;
    }, 60_000, 'the killed shard activity to be retried');
    expect(retriedAt - killedAt).toBeLessThan(20_000);
    const result = (await handle.result()) as CurationProgress;
    expect(result.phase).toBe('done');
    expect(outputDigests('crash-run')).toEqual(outputDigests('ok-run'));
    expect(Object.keys(outputDigests('crash-run')).length).toBeGreaterThan(4);
  });

  test('with shards and outputs on S3 (a real SeaweedFS server), the outputs are the same bytes as on local disk', async () => {
    const s3 = await startS3Server();
    try {
      const store = openStore(`s3://${s3.bucket}`, s3.settings);
      const remoteShards: string[] = [];
      for (const file of shards) {
        const key = `crawl/${path.basename(file)}`;
        await store.put(key, readFileSync(file));
        remoteShards.push(`s3://${s3.bucket}/${key}`);
      }
      worker = spawnWorker(env.address, s3.env);
      const outRoot = `s3://${s3.bucket}/curation`;
      const handle = await startCuration(env.client, { ...config('s3-run'), outRoot, shards: shardRefs(remoteShards) }, openStore(outRoot, s3.settings));
      const result = (await handle.result()) as CurationProgress;
      expect(result.phase).toBe('done');
      expect(result.shardsFailed).toBe(1);
      const out = openStore(outRoot, s3.settings);
      const keys = (await out.list('runs/s3-run/')).filter((k) => /\.parquet$|counts\.json$|matched(\.ids)?\.json$/.test(k));
      const remote: Record<string, string> = {};
      for (const k of keys) remote[k.replace('runs/s3-run/', '')] = createHash('sha256').update(await out.get(k)).digest('hex');
      expect(remote).toEqual(outputDigests('ok-run'));
      expect(JSON.parse((await out.get('runs/s3-run/manifest.json')).toString()).status).toBe('completed');
    } finally {
      await s3.stop();
    }
  });
});
