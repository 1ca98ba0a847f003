/**
 * A real S3-compatible server for tests: SeaweedFS (`weed mini`: master, volume, filer and S3
 * gateway in one process) on loopback, free ports, data in a temp dir, static credentials.
 *
 * `weed mini` answers in ~0.7 s here where `weed server` takes ~3 s (its master waits out a raft
 * bootstrap check). Data is throwaway, so stop() kills the process group outright (SIGTERM takes
 * ~3.5 s) and removes the temp dir plus the gRPC unix sockets weed always puts in /tmp.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { s3Client, type S3Settings } from '../../storage/sources';

export interface S3TestServer {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Settings for openStore/openInput with this server's credentials. */
  settings: S3Settings;
  /** Environment for child processes (workers) so s3SettingsFromEnv() and the SDK find this server. */
  env: Record<string, string>;
  /** Milliseconds from spawn to bucket created. */
  startupMs: number;
  stop(): Promise<void>;
}

export interface StartS3Options {
  bucket?: string;
  /** Let unsigned requests read and list the bucket (to test anonymous access, as on `commoncrawl`). */
  anonymousRead?: boolean;
  timeoutMs?: number;
}

const ROOT = path.resolve(__dirname, '..', '..');

/** The weed binary: from .tools/paths.json (written by `node bin/setup.js --s3`), else PATH. */
export function weedBinary(): string {
  try {
    const paths = JSON.parse(readFileSync(path.join(ROOT, '.tools', 'paths.json'), 'utf8')) as { weed?: string };
    if (paths.weed && existsSync(paths.weed)) return paths.weed;
  } catch { /* fall through to PATH */ }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'weed');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error('SeaweedFS (`weed`) not found: run `node bin/setup.js --s3` (npm test does) or put weed on PATH');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * `count` ports P with P and P+10000 both free. weed derives gRPC ports as HTTP port + 10000 in
 * places that ignore the explicit flag (mini's worker dials admin port + 10000), so keep both free.
 */
async function freePortPairs(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries++) {
    if (tries > 500) throw new Error('no free port pairs found for SeaweedFS');
    const p = 20000 + Math.floor(Math.random() * 25000);
    if (ports.some((q) => Math.abs(q - p) < 2)) continue;
    if ((await portFree(p)) && (await portFree(p + 10000))) ports.push(p);
  }
  return ports;
}

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown when weed exits during startup, typically because another process took a port first. */
class EarlyExit extends Error {}

export async function startS3Server(opts: StartS3Options = {}): Promise<S3TestServer> {
  const weed = weedBinary();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(weed, opts);
    } catch (err) {
      if (!(err instanceof EarlyExit) || attempt >= 3) throw err;
    }
  }
}

async function startOnce(weed: string, opts: StartS3Options): Promise<S3TestServer> {
  const bucket = opts.bucket ?? 'curate-test';
  const accessKeyId = `AK${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(20).toString('hex');
  const region = 'us-east-1';
  const [master, volume, filer, s3, admin] = await freePortPairs(5);
  const grpc = (p: number) => p + 10000;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'curate-s3-'));
  const identities: object[] = [
    { name: 'test', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'] },
  ];
  if (opts.anonymousRead) identities.push({ name: 'anonymous', actions: [`Read:${bucket}`, `List:${bucket}`] });
  writeFileSync(path.join(tmp, 's3.json'), JSON.stringify({ identities }));
  const args = [
    `-logdir=${tmp}`, // glog would otherwise leave weed.* files in /tmp
    'mini',
    `-dir=${path.join(tmp, 'data')}`,
    '-ip=127.0.0.1', '-ip.bind=127.0.0.1',
    `-master.port=${master}`, `-master.port.grpc=${grpc(master)}`,
    `-volume.port=${volume}`, `-volume.port.grpc=${grpc(volume)}`,
    `-filer.port=${filer}`, `-filer.port.grpc=${grpc(filer)}`, `-filer.localSocket=${path.join(tmp, 'filer.sock')}`,
    `-s3.port=${s3}`, `-s3.port.grpc=${grpc(s3)}`, `-s3.localSocket=${path.join(tmp, 's3.sock')}`,
    `-s3.config=${path.join(tmp, 's3.json')}`, '-s3.port.iceberg=0', '-s3.port.lance=0',
    '-s3.autoCreateBucket=false', // as on AWS: a PUT into a missing bucket fails
    `-admin.port=${admin}`, `-admin.port.grpc=${grpc(admin)}`, '-admin.ui=false',
    '-webdav=false', '-master.telemetry=false',
    // Small volumes: tests write little, and the default sizes volumes from free disk space.
    '-master.volumeSizeLimitMB=64', '-volume.max=16',
  ];
  const logFile = path.join(tmp, 'weed.log');
  const logFd = openSync(logFile, 'a');
  const started = Date.now();
  // detached: its own process group, so one signal stops weed and anything it spawned.
  const child = spawn(weed, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  // weed always puts its gRPC unix sockets in /tmp, named by port.
  const sockets = ([['master', master], ['volume', volume], ['filer', filer], ['s3', s3], ['admin', admin]] as const)
    .map(([kind, port]) => path.join('/tmp', `seaweedfs-${kind}-grpc-${grpc(port)}.sock`));
  // Watchdog: waits for EOF on its stdin, then kills weed's group and removes its files. EOF comes from
  // stop(), or from the kernel when this process dies in any way (even SIGKILL), so weed never outlives the tests.
  const watchdog = spawn('sh', ['-c', 'read _ignored; kill -9 -"$1" 2>/dev/null; shift; rm -rf "$@"', 'weed-watchdog', String(child.pid), tmp, ...sockets], {
    detached: true, stdio: ['pipe', 'ignore', 'ignore'],
  });
  const watchdogDone = new Promise<void>((resolve) => watchdog.once('exit', () => resolve()));

  const stop = async () => {
    watchdog.stdin?.end();
    await Promise.all([watchdogDone, exitedPromise]);
    for (const p of [tmp, ...sockets]) rmSync(p, { recursive: true, force: true }); // in case the watchdog could not
  };
  const fail = async (why: string): Promise<never> => {
    let log = '';
    try { log = readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n'); } catch { /* no log */ }
    await stop();
    const message = `SeaweedFS did not start (${why}); last log lines:\n${log}`;
    throw exited ? new EarlyExit(message) : new Error(message);
  };

  const endpoint = `http://127.0.0.1:${s3}`;
  const deadline = started + (opts.timeoutMs ?? 30_000);
  while (!(await answers(endpoint))) {
    if (exited) return fail(`exited with ${child.exitCode ?? child.signalCode}`);
    if (Date.now() > deadline) return fail('timeout waiting for the S3 port');
    await sleep(50);
  }
  // The gateway answers before it can store anything: retry until the bucket exists.
  const settings: S3Settings = { endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } };
  for (;;) {
    try {
      await s3Client(settings).send(new CreateBucketCommand({ Bucket: bucket }));
      break;
    } catch (err) {
      if ((err as Error).name === 'BucketAlreadyOwnedByYou' || (err as Error).name === 'BucketAlreadyExists') break;
      if (exited) return fail(`exited with ${child.exitCode ?? child.signalCode}`);
      if (Date.now() > deadline) return fail(`cannot create bucket: ${(err as Error).message}`);
      await sleep(100);
    }
  }
  // The first data written into a bucket makes SeaweedFS grow a volume for it (~200 ms); do it here so
  // tests see steady-state timings. (Known quirk, not worked around: the first burst of concurrent
  // writes to one key waits 1-4 s once, apparently for the filer's lock ring; warming that costs 3-4 s.)
  const client = s3Client(settings);
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: '_warmup', Body: Buffer.alloc(1024) }));
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: '_warmup' }));
  const startupMs = Date.now() - started;
  return {
    endpoint, bucket, region, accessKeyId, secretAccessKey, startupMs, stop, settings,
    env: {
      CURATE_S3_ENDPOINT: endpoint, AWS_REGION: region, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  };
}
