/**
 * Metrics from a real worker process (dist/workers/all.js with CURATE_METRICS_PORT) on a real dev server: its
 * Prometheus endpoint is scraped while a small curation with images runs and after it, and carries the SDK's
 * series (temporal_*) and the project's (curate_*) with the values of the run's own records: shards done and
 * failed by class, bytes, records, candidates, matches, images downloaded and failed by reason.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { METRICS } from '../activities/metrics';
import { ensureDefaultMetadata } from '../curation/metadata';
import { shardRefs, type CurationRequest } from '../curation/run';
import { startCuration } from '../scripts/client';
import { startImageServer, type ImageServer } from '../scripts/image-server';
import { generateSamples, writeCorruptShard } from '../scripts/samples';
import { readRunShardResults } from '../storage/shard-list';
import { openStore } from '../storage/store';
import type { CurationProgress } from '../workflows/curation';
import { dashboardExprs, metricNames } from './support/dashboard';
import { spawnWorker, startTestServer, stopWorker, waitUntil, type WorkerProcess } from './support/temporal';

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
let dir: string;
let server: ImageServer;
let worker: WorkerProcess | undefined;

interface Sample { name: string; labels: Record<string, string>; value: number }

/** The samples of a Prometheus text exposition. */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of a series over the samples whose labels include `match`. */
const total = (samples: Sample[], name: string, match: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'metrics-wf-'));
  server = await startImageServer({ variants: 12, width: 120, height: 90, missingShare: 0.2, unavailableShare: 0 });
  env = await startTestServer();
});

afterAll(async () => {
  if (worker) await stopWorker(worker, 'SIGKILL');
  await env?.teardown();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a worker with CURATE_METRICS_PORT serves temporal_* and curate_* series with the run\'s counts', async () => {
  const good = (await generateSamples({ outDir: path.join(dir, 'samples'), shards: 1, seed: 5, imageBase: `${server.baseUrl}img/` })).files.sort();
  const corrupt = path.join(dir, 'samples', 'zz-corrupt.warc.gz');
  writeCorruptShard(corrupt);
  const shards = [...good, corrupt];
  const port = await freePort();
  worker = spawnWorker(env.address, { CURATE_METRICS_PORT: String(port), CURATE_METRICS_HOST: '127.0.0.1', CURATE_CPU_SLOTS: '2' });
  const url = `http://127.0.0.1:${port}/metrics`;
  const scrape = async () => parseExposition(await (await fetch(url)).text());

  // The endpoint is up once the worker runs, before any work: the SDK's worker series are there.
  const first = await waitUntil(async () => {
    const s = await scrape();
    return s.some((x) => x.name === 'temporal_worker_task_slots_available') ? s : undefined;
  }, 60_000, `${url} with temporal_worker_task_slots_available`);
  expect(first.filter((s) => s.name === 'temporal_worker_task_slots_available').map((s) => s.labels.task_queue)).toEqual(
    expect.arrayContaining(['curation-cpu', 'curation-io']),
  );
  expect(worker.output()).toContain(`metrics on http://127.0.0.1:${port}/metrics`);

  const outRoot = path.join(dir, 'out');
  const request: CurationRequest = {
    runId: 'metrics-run', outRoot, shards: shardRefs(shards), metadataSource: ensureDefaultMetadata(), lid: 'on', langs: ['en'],
    t: 5, t1: 20, seed: '2', oneTextPerImage: false, dedupBuckets: 2, shardsPerBatch: 4, maxConcurrentBatches: 1, maxFailedShardRatio: 0.9,
    heartbeatTimeoutSeconds: 5,
    images: { imagesPerTar: 20, bucketConcurrency: 1, concurrency: 2, phashDistance: 4, fetch: { allowCidrs: ['127.0.0.1/32'], retries: 0 }, image: { imageSize: 64 } },
  };
  const handle = await startCuration(env.client, request);
  // Scraped during the run: the shards show up before the run ends (the image stage comes after them).
  let runningWhenScraped = false;
  const during = await waitUntil(async () => {
    const s = await scrape();
    if (total(s, METRICS.shards) < shards.length) return undefined;
    runningWhenScraped = (await handle.describe()).status.name === 'RUNNING';
    return s;
  }, 180_000, 'curate_shards_total to count every shard');
  const result = (await handle.result()) as CurationProgress;
  expect(result.phase).toBe('done');
  expect(total(during, METRICS.shards)).toBe(shards.length);
  expect(runningWhenScraped).toBe(true);

  const after = await scrape();
  const results = await readRunShardResults(openStore(outRoot), 'metrics-run');
  const done = results.filter((r) => r.status === 'done');
  expect(done.length).toBe(good.length);
  const sum = (f: (r: (typeof done)[number]) => number) => done.reduce((a, r) => a + f(r), 0);

  // Shards by status and failure class, with the activity's tags.
  expect(total(after, METRICS.shards, { status: 'done' })).toBe(good.length);
  expect(total(after, METRICS.shards, { status: 'failed', class: 'CorruptInput' })).toBe(1);
  expect(total(after, METRICS.shards, { status: 'failed' })).toBe(1);
  const shardSeries = after.find((s) => s.name === METRICS.shards && s.labels.status === 'failed')!;
  // The activity meter's own tags (camelCase, unlike the SDK's task_queue/activity_type on temporal_* series).
  expect(shardSeries.labels).toMatchObject({ activityType: 'processShard', taskQueue: 'curation-cpu', namespace: 'default' });
  // Volume of the done shards, equal to their recorded results.
  expect(total(after, METRICS.shardBytes)).toBe(good.reduce((a, f) => a + statSync(f).size, 0));
  expect(total(after, METRICS.shardRecords)).toBe(sum((r) => r.stats!.records));
  expect(total(after, METRICS.candidates)).toBe(sum((r) => r.stats!.candidates));
  expect(total(after, METRICS.matchedTexts)).toBe(sum((r) => r.stats!.matchedTexts));
  expect(total(after, METRICS.matches)).toBe(sum((r) => r.stats!.matches));
  expect(total(after, METRICS.matches)).toBeGreaterThan(0);
  expect(total(after, `${METRICS.shardSeconds}_count`)).toBe(good.length);

  // Images: successes and failures by reason equal the run's image stats (nothing was downloaded twice).
  const manifest = JSON.parse(require('node:fs').readFileSync(path.join(outRoot, 'runs', 'metrics-run', 'manifest.json'), 'utf8'));
  expect(manifest.images.successes).toBeGreaterThan(0);
  expect(manifest.images.failed).toBeGreaterThan(0); // the image server answers 404 for a fifth of the paths
  expect(total(after, METRICS.images, { status: 'success' })).toBe(manifest.images.successes);
  expect(total(after, METRICS.images, { status: 'failed' })).toBe(manifest.images.failed);
  for (const [reason, n] of Object.entries(manifest.images.failures as Record<string, number>)) {
    expect([reason, total(after, METRICS.images, { status: 'failed', reason })]).toEqual([reason, n]);
  }
  expect(total(after, METRICS.imageBytes)).toBeGreaterThan(0);
  expect(total(after, METRICS.imagesPerSecond)).toBeGreaterThan(0);

  // The SDK's own series for the same work.
  expect(total(after, 'temporal_activity_execution_latency_count', { activity_type: 'processShard' })).toBe(shards.length);
  expect(after.some((s) => s.name === 'temporal_workflow_completed')).toBe(true);

  // Every series the Grafana dashboard queries is in the scrape (histograms as _bucket), except the failure
  // counters, which exist once something failed (the corrupt shard is a result, not an activity failure).
  const names = new Set(after.map((s) => s.name));
  const onlyOnFailure = new Set(['temporal_activity_execution_failed', 'temporal_workflow_task_execution_failed']);
  for (const name of metricNames(dashboardExprs())) {
    if (!onlyOnFailure.has(name)) expect([name, names.has(name)]).toEqual([name, true]);
  }
});
