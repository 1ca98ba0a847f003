/**
 * The image stage end to end on a real dev server, with a real loopback image server: a worker killed
 * mid-download is replaced and the run finishes without re-downloading any image of a published chunk and
 * without a truncated tar; tars, index and stats read back; duplicates dropped; the final balance and a
 * rebalance draw from the downloaded pool and point into the tars.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { BalanceInput } from '../activities/types';
import { ensureDefaultMetadata } from '../curation/metadata';
import { shardRefs, type CurationRequest } from '../curation/run';
import { readImageIndexParquet, type ImageIndexRow } from '../storage/image-index';
import { readCuratedParquet, type CuratedRow } from '../storage/parquet';
import { readTar } from '../storage/webdataset';
import { curationWorkflowId, startCuration, startRebalance } from '../scripts/client';
import { startImageServer, type ImageServer } from '../scripts/image-server';
import { generateSamples } from '../scripts/samples';
import type { CurationProgress } from '../workflows/curation';
import type { RebalanceProgress } from '../workflows/rebalance';
import { spawnWorker, startTestServer, stopWorker, waitUntil, type WorkerProcess } from './support/temporal';

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
let dir: string;
let server: ImageServer;
let shards: string[];
let worker: WorkerProcess | undefined;
const RUN = 'img-run';
const BUCKETS = 2;
const PER_TAR = 10;

const runDir = () => path.join(dir, 'out', 'runs', RUN);
const imagesDir = (b: number) => path.join(runDir(), 'images', `bucket-${String(b).padStart(5, '0')}`);
const files = (d: string) => (existsSync(d) ? readdirSync(d) : []);

function config(): CurationRequest {
  return {
    runId: RUN, outRoot: path.join(dir, 'out'), shards: shardRefs(shards), metadataSource: ensureDefaultMetadata(), lid: 'on', langs: ['en'],
    t: 5, t1: 20, seed: '3', oneTextPerImage: false, dedupBuckets: BUCKETS,
    shardsPerBatch: 4, maxConcurrentBatches: 1, maxFailedShardRatio: 0.5, heartbeatTimeoutSeconds: 5,
    images: {
      imagesPerTar: PER_TAR, bucketConcurrency: 1, concurrency: 2, phashDistance: 4,
      fetch: { allowCidrs: ['127.0.0.1/32'], retries: 0 }, image: { imageSize: 64 },
    },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'images-wf-'));
  server = await startImageServer({ variants: 24, width: 200, height: 150, missingShare: 0.1, unavailableShare: 0.15 });
  const generated = await generateSamples({ outDir: path.join(dir, 'samples'), shards: 1, seed: 21, imageBase: `${server.baseUrl}img/` });
  shards = generated.files.sort();
  env = await startTestServer();
});

afterAll(async () => {
  if (worker) await stopWorker(worker, 'SIGKILL');
  await env?.teardown();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a worker killed mid-download: published chunks are not downloaded again, no truncated tar, outputs read back', async () => {
  worker = spawnWorker(env.address, { CURATE_FAULT_IMAGE_DELAY_MS: '150', CURATE_CPU_SLOTS: '1' });
  const handle = await startCuration(env.client, config());
  const published = () => [0, 1].flatMap((b) => files(imagesDir(b)).filter((f) => f.endsWith('.parquet')).map((f) => path.join(imagesDir(b), f)));
  await waitUntil(async () => published().length >= 1, 180_000, 'the first published image chunk');
  await stopWorker(worker, 'SIGKILL');
  // The chunks published before the kill, and how often their images had been requested by then.
  const before = published();
  const beforeRows: ImageIndexRow[] = [];
  for (const f of before) beforeRows.push(...(await readImageIndexParquet(readFileSync(f))));
  const urlPath = (u: string) => new URL(u).pathname;
  const requestedBefore = new Map(beforeRows.filter((r) => r.url.startsWith('http://127.0.0.1')).map((r) => [r.url, server.requests(urlPath(r.url))]));
  worker = spawnWorker(env.address);
  const result = (await handle.result()) as CurationProgress;
  expect(result.phase).toBe('done');

  // Not one image of a chunk published before the kill was requested again.
  for (const [url, n] of requestedBefore) expect([url, server.requests(urlPath(url))]).toEqual([url, n]);
  const manifest = JSON.parse(readFileSync(path.join(runDir(), 'manifest.json'), 'utf8'));
  expect(manifest.images.resumedChunks).toBeGreaterThanOrEqual(before.length);
  expect(before.length).toBeLessThan(published().length); // the kill really was mid-download

  // Every tar is whole and matches its index; nothing half-written is left in the output.
  const index: ImageIndexRow[] = [];
  const members = new Map<string, Map<string, Buffer>>();
  for (const b of [0, 1]) {
    for (const f of files(imagesDir(b))) {
      expect(f).toMatch(/^chunk-\d{5}\.(tar|parquet)$|^stats\.json$/);
      if (f.endsWith('.tar')) members.set(`runs/${RUN}/images/bucket-${String(b).padStart(5, '0')}/${f}`, new Map(readTar(readFileSync(path.join(imagesDir(b), f))).map((m) => [m.name, m.data])));
      if (f.endsWith('.parquet')) index.push(...(await readImageIndexParquet(readFileSync(path.join(imagesDir(b), f)))));
    }
  }
  const ok = index.filter((r) => r.status === 'success');
  expect(ok.length).toBeGreaterThan(10);
  for (const r of ok) {
    const tar = members.get(`runs/${RUN}/images/bucket-${r.key.slice(0, 5)}/${r.tar}`)!;
    expect(tar.get(`${r.key}.jpg`)!.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(JSON.parse(tar.get(`${r.key}.json`)!.toString())).toMatchObject({ uuid: r.uuid, url: r.url, width: 64, height: 64, sha256: r.sha256 });
  }
  // Failures are classified (the server answers 404 for ~10% of paths and 503 for ~15%), and stats add up.
  expect(manifest.images.failures.http_error).toBeGreaterThan(0);
  expect(index.some((r) => r.status === 'failed' && r.retryable === true)).toBe(true);
  expect(index.some((r) => r.status === 'failed' && r.retryable === false)).toBe(true);
  expect(manifest.images.successes + manifest.images.failed).toBe(manifest.images.images);
  expect(manifest.images.successes).toBe(ok.length);

  // 24 pictures behind many URLs: duplicates are dropped, one image per picture at most stays.
  expect(manifest.images.duplicates.images).toBeGreaterThan(0);
  // The server sends each picture at three JPEG qualities: same bytes are exact duplicates, other qualities near ones.
  expect(manifest.images.duplicates.exact).toBeGreaterThan(0);
  expect(manifest.images.duplicates.near).toBeGreaterThan(0);
  expect(manifest.images.pooledImages).toBeLessThanOrEqual(24);
  const bi = JSON.parse(readFileSync(path.join(runDir(), 'balance-input.json'), 'utf8')) as BalanceInput;
  expect(bi.stage).toBe('images');
  expect(bi.stages.map((s) => s.stage)).toEqual(expect.arrayContaining(['images downloaded', 'image dedup']));

  // The curated set points into the tars.
  const setDir = path.join(runDir(), 'curated', 't=5', 'seed=3');
  const curated: CuratedRow[] = [];
  for (const f of readdirSync(setDir).filter((x) => x.endsWith('.parquet'))) curated.push(...(await readCuratedParquet(readFileSync(path.join(setDir, f)))));
  expect(curated.length).toBeGreaterThan(0);
  for (const r of curated) expect(members.get(r.image_tar!)!.has(`${r.image_key}.jpg`)).toBe(true);
  const sha = new Set(ok.filter((r) => curated.some((c) => c.image_key === r.key)).map((r) => r.sha256));
  expect(sha.size).toBe(new Set(curated.map((c) => c.image_key)).size); // no two curated images with the same bytes

  // A rebalance uses the downloaded pool and downloads nothing.
  const requests = server.requests();
  const rb = await startRebalance(env.client, {
    outRoot: path.join(dir, 'out'), runId: RUN, rebalanceId: `${RUN}.rebalance-1`, t: 2, seed: '3', oneTextPerImage: false, maxConcurrent: 1,
  }, curationWorkflowId(RUN));
  const r = (await rb.result()) as RebalanceProgress;
  expect(r.curated!.selected).toBeLessThanOrEqual(curated.length);
  expect(server.requests()).toBe(requests);
  for (const f of readdirSync(path.join(runDir(), 'curated', 't=2', 'seed=3'))) expect(statSync(path.join(runDir(), 'curated', 't=2', 'seed=3', f)).size).toBeGreaterThan(0);
});

test('retry-failed downloads only the retryable failures, refreshes the pool, and a rebalance recounts from it', async () => {
  worker ??= spawnWorker(env.address);
  const rowsOf = async () => {
    const rows: ImageIndexRow[] = [];
    for (const b of [0, 1]) for (const f of files(imagesDir(b)).filter((x) => x.endsWith('.parquet')).sort()) rows.push(...(await readImageIndexParquet(readFileSync(path.join(imagesDir(b), f)))));
    return rows;
  };
  const latest = new Map((await rowsOf()).map((r) => [r.key, r]));
  const retryable = [...latest.values()].filter((r) => r.status === 'failed' && r.retryable);
  const permanent = [...latest.values()].filter((r) => r.status === 'failed' && !r.retryable && r.url.startsWith('http://127.0.0.1'));
  const ok = [...latest.values()].filter((r) => r.status === 'success');
  expect(retryable.length).toBeGreaterThan(0);
  const urlPath = (u: string) => new URL(u).pathname;
  const counts = new Map([...latest.values()].filter((r) => r.url.startsWith('http://127.0.0.1')).map((r) => [r.url, server.requests(urlPath(r.url))]));
  const before = JSON.parse(readFileSync(path.join(runDir(), 'balance-input.json'), 'utf8')) as BalanceInput;

  server.heal();
  const handle = await env.client.workflow.start('retryFailed', {
    taskQueue: 'curation-orchestration', workflowId: `retry-${RUN}.retry-a`, args: [{ outRoot: path.join(dir, 'out'), runId: RUN, retryId: 'retry-a', maxConcurrent: 1 }],
  });
  const result = (await handle.result()) as { retried: number; successes: number };
  expect(result.retried).toBe(retryable.length);
  expect(result.successes).toBe(retryable.length);
  // Exactly the retryable ones were requested again, once each; successes and permanent failures were not.
  for (const r of retryable) expect(server.requests(urlPath(r.url))).toBe(counts.get(r.url)! + 1);
  for (const r of [...permanent, ...ok]) expect(server.requests(urlPath(r.url))).toBe(counts.get(r.url)!);
  // Their latest rows are now successes, in retry-a-chunk-* files next to the original chunks.
  const after = new Map((await rowsOf()).map((r) => [r.key, r]));
  for (const r of retryable) expect(after.get(r.key)).toMatchObject({ status: 'success', tar: expect.stringMatching(/^retry-a-chunk-\d{5}\.tar$/) });
  // The pool and its counts were refreshed; a rebalance uses them without downloading anything.
  const bi = JSON.parse(readFileSync(path.join(runDir(), 'balance-input.json'), 'utf8')) as BalanceInput;
  expect(bi.counts.fingerprint).not.toBe(before.counts.fingerprint);
  expect(bi.pairs).toBeGreaterThanOrEqual(before.pairs);
  const requests = server.requests();
  const rb = await startRebalance(env.client, {
    outRoot: path.join(dir, 'out'), runId: RUN, rebalanceId: `${RUN}.rebalance-2`, t: 4, seed: '3', oneTextPerImage: false, maxConcurrent: 1,
  }, curationWorkflowId(RUN));
  expect(((await rb.result()) as RebalanceProgress).phase).toBe('done');
  expect(server.requests()).toBe(requests);
});
