/**
 * The image download activity against a real loopback HTTP server: one download per image however many
 * texts, WebDataset tars + Parquet index + stats, failures classified, and resumption that skips published
 * chunks and committed parts of a chunk (no finished image downloaded twice, no partial tar visible, the
 * same bytes as an undisturbed run).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DEFAULT_IMAGES_PER_PART, downloadBucket, type DownloadBucketInput, type DownloadBucketResult } from '../activities/images';
import { readImageIndexParquet } from '../storage/image-index';
import { writeCuratedParquet, type CuratedRow } from '../storage/parquet';
import { readTar } from '../storage/webdataset';
import { startImageServer, type ImageServer } from '../scripts/image-server';
import { openStore } from '../storage/store';
import { startS3Server } from './support/s3server';

jest.setTimeout(60_000);

let dir: string;
let server: ImageServer;

function row(uuid: string, url: string, text: string, position: number): CuratedRow {
  return { uuid, url, key: 'alt', text, lang: 'en', entry_ids: [1, 2], shard: '000000-s', position, p: 0.5 };
}

async function run(input: DownloadBucketInput): Promise<DownloadBucketResult> {
  return (await new MockActivityEnvironment().run(downloadBucket, input)) as DownloadBucketResult;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'download-'));
  server = await startImageServer({ variants: 8, width: 320, height: 240, missingShare: 0 });
});

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a part becomes tars of <key>.jpg/.txt/.json, an index and stats; one download per image; failures classified', async () => {
  const rows: CuratedRow[] = [];
  for (let i = 0; i < 5; i++) rows.push(row(`u${i}`, `${server.baseUrl}img/p${i}.jpg`, `text ${i}`, i));
  rows.push(row('u0', `${server.baseUrl}img/p0.jpg`, 'second text of image 0', 5)); // same image, another text
  rows.push(row('blocked', 'http://169.254.169.254/latest/meta-data/x.jpg', 'metadata service', 6));
  rows.push(row('bad-scheme', 'ftp://example.com/x.jpg', 'ftp', 7));
  const out = path.join(dir, 'out');
  const { writeFileSync, mkdirSync } = await import('node:fs');
  mkdirSync(path.join(out, 'pass1'), { recursive: true });
  writeFileSync(path.join(out, 'pass1', 'part-00003.parquet'), await writeCuratedParquet(rows));
  const before = server.requests();
  const input: DownloadBucketInput = {
    outRoot: out, runId: 'r', bucket: 3, input: 'pass1/part-00003.parquet', outDir: 'images/bucket-00003', imagesPerTar: 4, concurrency: 4,
    fetch: { allowCidrs: ['127.0.0.1/32'], retries: 0 }, image: { imageSize: 64 },
  };
  const result = await run(input);
  expect(server.requests() - before).toBe(5); // u0 once despite two texts; blocked/ftp never requested
  expect(result).toMatchObject({ bucket: 3, images: 7, chunks: 2, resumedChunks: 0 });
  expect(result.stats).toMatchObject({ total: 7, successes: 5, failed: 2, failures: { blocked_address: 1, bad_scheme: 1 } });

  const index = [
    ...(await readImageIndexParquet(readFileSync(path.join(out, 'images/bucket-00003/chunk-00000.parquet')))),
    ...(await readImageIndexParquet(readFileSync(path.join(out, 'images/bucket-00003/chunk-00001.parquet')))),
  ];
  expect(index.map((r) => r.key)).toEqual(['000030000000', '000030000001', '000030000002', '000030000003', '000030000004', '000030000005', '000030000006']);
  expect(index.map((r) => r.status)).toEqual(['success', 'success', 'success', 'success', 'success', 'failed', 'failed']);
  expect(index[5].error).toMatch(/^blocked_address: /);
  expect(index[0]).toMatchObject({ width: 64, height: 64, original_width: 320, original_height: 240, tar: 'chunk-00000.tar' });

  const members = readTar(readFileSync(path.join(out, 'images/bucket-00003/chunk-00000.tar')));
  expect(members.map((m) => m.name).slice(0, 3)).toEqual(['000030000000.jpg', '000030000000.txt', '000030000000.json']);
  expect(members).toHaveLength(12); // 4 images × 3 members
  expect(members[1].data.toString()).toBe('text 0');
  const json = JSON.parse(members[2].data.toString());
  expect(json).toMatchObject({ uuid: 'u0', texts: ['text 0', 'second text of image 0'], width: 64, height: 64 });
  expect(members[0].data.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  expect(JSON.parse(readFileSync(path.join(out, 'images/bucket-00003/stats.json'), 'utf8')).successes).toBe(5);

  // Resumption: a published chunk is never downloaded again; a lost one is.
  const tar0 = readFileSync(path.join(out, 'images/bucket-00003/chunk-00000.tar'));
  unlinkSync(path.join(out, 'images/bucket-00003/chunk-00001.parquet'));
  unlinkSync(path.join(out, 'images/bucket-00003/chunk-00001.tar'));
  const mid = server.requests();
  const again = await run(input);
  expect(again).toMatchObject({ chunks: 2, resumedChunks: 1 });
  expect(again.stats).toEqual(result.stats);
  expect(server.requests() - mid).toBe(1); // only image 4 of chunk 1 (5 and 6 are refused before any request)
  expect(readFileSync(path.join(out, 'images/bucket-00003/chunk-00000.tar'))).toEqual(tar0);
  expect(existsSync(path.join(out, 'images/bucket-00003/chunk-00001.tar'))).toBe(true);
});

test('into an S3 store (a real SeaweedFS server): the same tar, index and stats bytes as on local disk, and resumption there too', async () => {
  const rows: CuratedRow[] = [];
  for (let i = 0; i < 6; i++) rows.push(row(`s${i}`, `${server.baseUrl}img/s3-${i}.jpg`, `s3 text ${i}`, i));
  rows.push(row('s-blocked', 'http://169.254.169.254/s3.jpg', 'metadata service', 6)); // refused, recorded in the index
  const part = await writeCuratedParquet(rows);
  const base = {
    runId: 'r', bucket: 1, input: 'pass1/part-00001.parquet', outDir: 'images/bucket-00001', imagesPerTar: 3, concurrency: 3,
    fetch: { allowCidrs: ['127.0.0.1/32'], retries: 0 }, image: { imageSize: 48 },
  };
  const local = path.join(dir, 's3-local');
  await openStore(local).put(base.input, part);
  await run({ ...base, outRoot: local });

  const s3 = await startS3Server();
  const saved = Object.fromEntries(Object.keys(s3.env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, s3.env); // the activity opens its store from the environment, as a worker does
  try {
    const root = `s3://${s3.bucket}/curation`;
    const remote = openStore(root, s3.settings);
    await remote.put(base.input, part);
    const first = await run({ ...base, outRoot: root });
    expect(first).toMatchObject({ images: 7, chunks: 3, resumedChunks: 0 });
    expect(first.stats).toMatchObject({ successes: 6, failed: 1 });
    const keys = (await remote.list(`${base.outDir}/`)).sort();
    expect(keys.map((k) => k.slice(base.outDir.length + 1))).toEqual([
      'chunk-00000.parquet', 'chunk-00000.tar', 'chunk-00001.parquet', 'chunk-00001.tar', 'chunk-00002.parquet', 'chunk-00002.tar', 'stats.json',
    ]);
    for (const k of keys) expect({ k, bytes: await remote.get(k) }).toEqual({ k, bytes: readFileSync(path.join(local, k)) });

    // A lost chunk on S3 is downloaded again; the published ones are not.
    const tar1 = await remote.get(`${base.outDir}/chunk-00001.tar`);
    await remote.delete(`${base.outDir}/chunk-00001.parquet`);
    const before = server.requests();
    const again = await run({ ...base, outRoot: root });
    expect(again).toMatchObject({ chunks: 3, resumedChunks: 2 });
    expect(server.requests() - before).toBe(3);
    expect(await remote.get(`${base.outDir}/chunk-00001.tar`)).toEqual(tar1);
    expect(again.stats).toEqual(first.stats);

    // A chunk committed in parts on S3 (staged there, assembled, the parts removed): the same bytes again.
    const parted = `s3://${s3.bucket}/parted`;
    const partedStore = openStore(parted, s3.settings);
    await partedStore.put(base.input, part);
    expect(await run({ ...base, outRoot: parted, imagesPerPart: 2 })).toMatchObject({ images: 7, chunks: 3 });
    const partedKeys = (await partedStore.list(`${base.outDir}/`)).sort();
    expect(partedKeys.map((k) => k.slice(base.outDir.length + 1))).toEqual(keys.map((k) => k.slice(base.outDir.length + 1)));
    for (const k of partedKeys) expect({ k, bytes: await partedStore.get(k) }).toEqual({ k, bytes: readFileSync(path.join(local, k)) });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await s3.stop();
  }
});

/** Every file under `root/dir`: name → sha256 of its bytes (jest compares big Buffers byte by byte, slowly). */
function filesOf(root: string, dir: string): Map<string, string> {
  const d = path.join(root, dir);
  return new Map(readdirSync(d).sort().map((f) => [f, createHash('sha256').update(readFileSync(path.join(d, f))).digest('hex')]));
}

test('a download stopped mid-chunk keeps its committed parts: the retry re-fetches at most two parts (the one committing, the next) plus the images in flight, and the files equal an undisturbed run\'s', async () => {
  const N = 450;
  const CONCURRENCY = 8;
  // Tiny pictures: the test is about what is fetched, not about decoding.
  const tiny = await startImageServer({ variants: 4, width: 24, height: 16, missingShare: 0 });
  try {
    const rows: CuratedRow[] = [];
    for (let i = 0; i < N; i++) rows.push(row(`k${i}`, `${tiny.baseUrl}img/kill-${i}.jpg`, `kill text ${i}`, i));
    rows.push(row('k-blocked', 'http://169.254.169.254/kill.jpg', 'metadata service', N)); // a failure in the index too
    const part = await writeCuratedParquet(rows);
    const base = {
      runId: 'r', bucket: 2, input: 'pass1/part-00002.parquet', outDir: 'images/bucket-00002', imagesPerTar: 1000, concurrency: CONCURRENCY,
      fetch: { allowCidrs: ['127.0.0.1/32'], retries: 0 }, image: { imageSize: 16 },
    };
    const requested = () => rows.slice(0, N).map((r) => tiny.requests(new URL(r.url).pathname));

    // An undisturbed run (the reference bytes).
    const calm = path.join(dir, 'kill-calm');
    await openStore(calm).put(base.input, part);
    const reference = await run({ ...base, outRoot: calm });
    expect(reference).toMatchObject({ images: N + 1, chunks: 1, resumedChunks: 0, resumedParts: 0 });
    const calmFiles = filesOf(calm, base.outDir);
    expect([...calmFiles.keys()]).toEqual(['chunk-00000.parquet', 'chunk-00000.tar', 'stats.json']);
    // One chunk written at once (a part as big as the chunk) has the same bytes as one assembled from parts.
    const whole = path.join(dir, 'kill-whole');
    await openStore(whole).put(base.input, part);
    await run({ ...base, outRoot: whole, imagesPerPart: 1000 });
    expect(filesOf(whole, base.outDir)).toEqual(calmFiles);

    // The same bucket, stopped once 250 images were requested.
    const out = path.join(dir, 'kill-out');
    await openStore(out).put(base.input, part);
    const start = requested();
    const env = new MockActivityEnvironment();
    const first = env.run(downloadBucket, { ...base, outRoot: out });
    const stop = setInterval(() => {
      if (requested().reduce((a, n, i) => a + n - start[i], 0) >= 250) {
        clearInterval(stop);
        env.cancel();
      }
    }, 2);
    await expect(first).rejects.toBeInstanceOf(CancelledFailure);
    clearInterval(stop);
    const afterFirst = requested();
    const staged = [...filesOf(out, base.outDir).keys()];
    expect(staged).toEqual(expect.arrayContaining(['chunk-00000.part-00000-00100.parquet', 'chunk-00000.part-00000-00100.tar']));
    expect(staged).not.toContain('chunk-00000.parquet');

    // The retry: committed parts are not downloaded again; only the part(s) in flight are.
    const again = await run({ ...base, outRoot: out });
    const end = requested();
    const fetchedFirst = afterFirst.map((n, i) => n - start[i]);
    const fetchedAgain = end.map((n, i) => n - afterFirst[i]);
    const refetched = fetchedAgain.filter((n, i) => n > 0 && fetchedFirst[i] > 0).length;
    expect(fetchedFirst.every((n, i) => n + fetchedAgain[i] >= 1)).toBe(true);
    expect(refetched).toBeLessThanOrEqual(2 * DEFAULT_IMAGES_PER_PART + CONCURRENCY); // the commit window (activities/images.ts)
    expect(again.resumedParts).toBeGreaterThanOrEqual(1); // image 201+ started only once part 0-100 was committed
    expect(again.stats).toEqual(reference.stats);
    // Byte-identical to the undisturbed run, and no staged part left.
    expect(filesOf(out, base.outDir)).toEqual(calmFiles);
    console.log(`download stopped after ${fetchedFirst.reduce((a, n) => a + n, 0)} of ${N} requests: the retry re-fetched ${refetched} images (${again.resumedParts} parts resumed)`);

    // What a kill can leave behind: a part whose tar was published but not its index (downloaded again),
    // and parts of a chunk already published (removed, nothing downloaded).
    expect(readTar(readFileSync(path.join(out, base.outDir, 'chunk-00000.tar')))).toHaveLength(3 * N);
    const calmStaged = path.join(dir, 'kill-staged');
    await openStore(calmStaged).put(base.input, part);
    // Stage every part (a run that was stopped just before assembling), then drop one part's index.
    const env2 = new MockActivityEnvironment();
    const staging = env2.run(downloadBucket, { ...base, outRoot: calmStaged });
    const s0 = tiny.requests();
    const stop2 = setInterval(() => {
      if (tiny.requests() - s0 >= N - 10) {
        clearInterval(stop2);
        env2.cancel();
      }
    }, 1);
    await expect(staging).rejects.toBeInstanceOf(CancelledFailure);
    clearInterval(stop2);
    const stagedStore = openStore(calmStaged);
    await stagedStore.delete(`${base.outDir}/chunk-00000.part-00100-00200.parquet`);
    const s1 = tiny.requests();
    const finished = await run({ ...base, outRoot: calmStaged });
    expect(tiny.requests() - s1).toBeLessThanOrEqual(100 + 51); // part 100-200 again, and the last (unfinished) part
    expect(finished.resumedParts).toBeGreaterThanOrEqual(3);
    expect(filesOf(calmStaged, base.outDir)).toEqual(calmFiles);
    // Leftover parts beside a published chunk are removed by the next attempt, which downloads nothing.
    await stagedStore.put(`${base.outDir}/chunk-00000.part-00000-00100.tar`, 'stale');
    await stagedStore.put(`${base.outDir}/chunk-00000.part-00000-00100.parquet`, 'stale');
    const s2 = tiny.requests();
    const resumed = await run({ ...base, outRoot: calmStaged });
    expect(tiny.requests()).toBe(s2);
    expect(resumed).toMatchObject({ resumedChunks: 1, resumedParts: 0 });
    expect(filesOf(calmStaged, base.outDir)).toEqual(calmFiles);
  } finally {
    await tiny.close();
  }
});

test('a download SIGKILLed mid-chunk (its process killed): the next attempt re-fetches at most two parts (the one committing, the next) plus the images in flight, same bytes', async () => {
  const N = 450;
  const CONCURRENCY = 8;
  const tiny = await startImageServer({ variants: 4, width: 24, height: 16, missingShare: 0 });
  try {
    const rows: CuratedRow[] = [];
    for (let i = 0; i < N; i++) rows.push(row(`q${i}`, `${tiny.baseUrl}img/sigkill-${i}.jpg`, `sigkill text ${i}`, i));
    const part = await writeCuratedParquet(rows);
    const base = {
      runId: 'r', bucket: 5, input: 'pass1/part-00005.parquet', outDir: 'images/bucket-00005', imagesPerTar: 1000, concurrency: CONCURRENCY,
      fetch: { allowCidrs: ['127.0.0.1/32'], retries: 0 }, image: { imageSize: 16 },
    };
    const requested = () => rows.map((r) => tiny.requests(new URL(r.url).pathname));
    const calm = path.join(dir, 'sigkill-calm');
    await openStore(calm).put(base.input, part);
    await run({ ...base, outRoot: calm });
    const calmFiles = filesOf(calm, base.outDir);

    const out = path.join(dir, 'sigkill-out');
    await openStore(out).put(base.input, part);
    const start = requested();
    const child = spawn(process.execPath, [path.join(__dirname, 'support', 'download-child.js'), JSON.stringify({ ...base, outRoot: out })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
    const deadline = Date.now() + 60_000;
    while (requested().reduce((a, n, i) => a + n - start[i], 0) < 250) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the child did not get to 250 requests: ${output}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const afterKill = requested();
    expect([...filesOf(out, base.outDir).keys()].filter((f) => !f.startsWith('.'))).toEqual(expect.arrayContaining(['chunk-00000.part-00000-00100.parquet']));

    const again = await run({ ...base, outRoot: out });
    const fetchedFirst = afterKill.map((n, i) => n - start[i]);
    const refetched = requested().filter((n, i) => n > afterKill[i] && fetchedFirst[i] > 0).length;
    expect(refetched).toBeLessThanOrEqual(2 * DEFAULT_IMAGES_PER_PART + CONCURRENCY); // the commit window (activities/images.ts)
    expect(again.resumedParts).toBeGreaterThanOrEqual(1); // image 201+ started only once part 0-100 was committed
    // The same files as the undisturbed run (a put cut by the kill can leave a hidden temp file, never a visible one).
    const visible = new Map([...filesOf(out, base.outDir)].filter(([f]) => !f.startsWith('.')));
    if (visible.get('chunk-00000.parquet') !== calmFiles.get('chunk-00000.parquet')) {
      // Say which rows differ (the digests alone do not), then fail below.
      const rowsOf = async (root: string) => readImageIndexParquet(readFileSync(path.join(root, base.outDir, 'chunk-00000.parquet')));
      const [a, b] = [await rowsOf(calm), await rowsOf(out)];
      const differing = a.map((r, i) => [r, b[i]]).filter(([x, y]) => JSON.stringify(x) !== JSON.stringify(y)).slice(0, 5);
      console.log(`SIGKILL resume differs from the undisturbed run in ${differing.length}+ index rows: ${JSON.stringify(differing)}\n${output}`);
    }
    expect(visible).toEqual(calmFiles);
    console.log(`download SIGKILLed after ${fetchedFirst.reduce((a, n) => a + n, 0)} of ${N} requests: the next attempt re-fetched ${refetched} images (${again.resumedParts} parts resumed)`);
  } finally {
    await tiny.close();
  }
});

test('a retried retry downloads the same images: its own earlier output does not change its task list', async () => {
  const flaky = await startImageServer({ variants: 4, width: 24, height: 16, missingShare: 0, unavailableShare: 0.5 });
  try {
    const rows: CuratedRow[] = [];
    for (let i = 0; i < 40; i++) rows.push(row(`f${i}`, `${flaky.baseUrl}img/flaky-${i}.jpg`, `flaky ${i}`, i));
    const out = path.join(dir, 'retry-out');
    const base = {
      outRoot: out, runId: 'r', bucket: 4, input: 'pass1/part-00004.parquet', outDir: 'images/bucket-00004', imagesPerTar: 4, concurrency: 4,
      fetch: { allowCidrs: ['127.0.0.1/32'], retries: 0 }, image: { imageSize: 16 },
    };
    await openStore(out).put(base.input, await writeCuratedParquet(rows));
    const first = await run(base);
    const failed = first.stats.failed;
    expect(failed).toBeGreaterThan(8);
    flaky.heal();
    const retry = await run({ ...base, retry: 'retry-x' });
    expect(retry).toMatchObject({ images: failed, chunks: Math.ceil(failed / 4) });
    expect(retry.stats.successes).toBe(failed);
    const retryFiles = filesOf(out, base.outDir);
    // The retry's attempt was killed before its last chunk and its stats: the next attempt has the same task list.
    const last = `retry-x-chunk-${String(retry.chunks - 1).padStart(5, '0')}`;
    for (const f of [`${last}.parquet`, `${last}.tar`, 'retry-x-stats.json']) unlinkSync(path.join(out, base.outDir, f));
    const before = flaky.requests();
    const again = await run({ ...base, retry: 'retry-x' });
    expect(again).toMatchObject({ images: failed, chunks: retry.chunks, resumedChunks: retry.chunks - 1 });
    expect(flaky.requests() - before).toBe(failed - 4 * (retry.chunks - 1));
    expect(filesOf(out, base.outDir)).toEqual(retryFiles);
  } finally {
    await flaky.close();
  }
});
