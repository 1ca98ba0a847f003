/**
 * The image download activity against a real loopback HTTP server: one download per image however many
 * texts, WebDataset tars + Parquet index + stats, failures classified, and resumption that skips published
 * chunks (no finished image downloaded twice, no partial tar visible).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { downloadBucket, type DownloadBucketInput, type DownloadBucketResult } from '../activities/images';
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
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await s3.stop();
  }
});
