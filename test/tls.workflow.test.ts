/**
 * Connecting the way a real cluster or Temporal Cloud asks for, on this machine (issue 12, item 2): a real dev
 * server behind a real TLS-terminating gRPC proxy (nginx with `listen … ssl http2` and `grpc_pass`,
 * certificates made by openssl; test/support/grpc-proxy.ts), three fronts: TLS, mTLS (`ssl_verify_client on`)
 * and TLS + API key (requests without `authorization: Bearer <key>` refused).
 * - Through each front a curation runs end to end, its worker process (`dist/`) and `curate start` / `curate
 *   status` (the CLI in a child process) both configured by the standard TEMPORAL_* variables only; the three
 *   runs write the same bytes.
 * - A wrong CA, a missing client certificate, a missing or wrong API key each fail in one stderr line with a
 *   non-zero exit, for the CLI (grpc-js) and for a worker (the SDK's Rust core).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureDefaultMetadata } from '../curation/metadata';
import { generateSamples } from '../scripts/samples';
import { startGrpcProxy, type GrpcProxy } from './support/grpc-proxy';
import { ROOT, startTestServer } from './support/temporal';

jest.setTimeout(600_000);

let env: TestWorkflowEnvironment;
let proxy: GrpcProxy;
let dir: string;
let samples: string;
let metadata: string;

interface Run { code: number | null; stdout: string; stderr: string }

/** The environment of a child: this one without any TEMPORAL_* setting, plus `vars`. */
function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TEMPORAL_')) e[k] = v;
  return { ...e, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), CURATE_CPU_THREADS: '2', ...vars };
}

function collect(child: ChildProcess): Promise<Run> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `curate <args>` from the sources (test/support/ts-cli.js), as a user runs it, with only `vars` for Temporal. */
function curate(args: string[], vars: Record<string, string>): Promise<Run> {
  return collect(spawn(process.execPath, [path.join(ROOT, 'test', 'support', 'ts-cli.js'), ...args], { env: childEnv(vars), stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** `curate worker` from the build (activities run their tasks from dist/), as `npx curate worker` does. */
function curateWorker(vars: Record<string, string>): ChildProcess {
  const cli = path.join(ROOT, 'dist', 'scripts', 'cli.js');
  if (!existsSync(cli)) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
  const main = `require(${JSON.stringify(cli)}).main(process.argv.slice(1)).catch((e) => { console.error('curate: ' + e.message); process.exit(e.exitCode ?? 1); })`;
  return spawn(process.execPath, ['-e', main, 'worker'], { env: childEnv(vars), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `node dist/workers/<queue>.js`. */
function queueWorker(queue: string, vars: Record<string, string>): ChildProcess {
  const script = path.join(ROOT, 'dist', 'workers', `${queue}.js`);
  if (!existsSync(script)) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
  return spawn(process.execPath, [script], { env: childEnv(vars), stdio: ['ignore', 'pipe', 'pipe'] });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** sha256 of the run's outputs that depend on neither timing nor run id. */
function outputDigests(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.parquet$|counts\.json$|matched(\.ids)?\.json$/.test(p)) out[path.relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return out;
}

const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tls-wf-'));
  samples = path.join(dir, 'samples');
  await generateSamples({ outDir: samples, shards: 1, seed: 12 });
  metadata = ensureDefaultMetadata();
  env = await startTestServer();
  proxy = await startGrpcProxy(env.address.replace(/^localhost:/, '127.0.0.1:'));
});

afterAll(async () => {
  await proxy?.stop();
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a curation through a TLS gRPC front, configured by the standard variables only', () => {
  const digests: Record<string, Record<string, string>> = {};
  const variants: Array<[string, () => Record<string, string>, 'queue' | 'cli']> = [
    ['tls', () => ({ TEMPORAL_ADDRESS: proxy.tls, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.certs.ca }), 'queue'],
    ['mtls', () => ({
      TEMPORAL_ADDRESS: proxy.mtls, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.certs.ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: proxy.certs.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: proxy.certs.clientKey,
    }), 'queue'],
    // The acceptance case: only these four variables, `curate worker` and `curate start`.
    ['apikey', () => ({ TEMPORAL_ADDRESS: proxy.apiKey, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.certs.ca, TEMPORAL_API_KEY: proxy.key }), 'cli'],
  ];

  test.each(variants)('%s: worker and `curate start` connect through the front; the run completes and `curate status` reads it', async (name, vars, how) => {
    const worker = how === 'cli' ? curateWorker(vars()) : queueWorker('all', vars());
    const workerOut = collect(worker);
    try {
      const out = path.join(dir, `out-${name}`);
      const started = await curate(['start', '--shards', samples, '--out', out, '--metadata', metadata, '--t', '5', '--t1', '20', '--seed', '7',
        '--images', 'off', '--dedup-buckets', '2', '--run-id', `run-${name}`], vars());
      expect({ code: started.code, stderr: started.stderr.slice(-2000) }).toEqual({ code: 0, stderr: expect.any(String) });
      expect(started.stdout).toMatch(/^done: 2 shards matched, 0 failed, \d+ pairs selected$/m);
      // Not the dev server this project started, no --ui-url: no link that would point elsewhere.
      expect(started.stdout).toContain(`Temporal UI: (no UI URL known for ${vars().TEMPORAL_ADDRESS}: pass --ui-url URL, set CURATE_UI_URL, or add ui_url to the profile)`);
      const manifest = JSON.parse(readFileSync(path.join(out, 'runs', `run-${name}`, 'manifest.json'), 'utf8'));
      expect(manifest.status).toBe('completed');
      expect(manifest.curated.selected).toBeGreaterThan(0);
      digests[name] = outputDigests(path.join(out, 'runs', `run-${name}`));

      const status = await curate(['status', `run-${name}`], vars());
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/^workflow: COMPLETED/m);
    } finally {
      await stop(worker);
    }
    const w = await workerOut;
    expect(w.stdout).toMatch(/\[worker\] .* on 127\.0\.0\.1:\d+ \(namespace default, (TLS|mTLS)/);
  });

  test('the three runs wrote the same bytes', () => {
    expect(Object.keys(digests).sort()).toEqual(['apikey', 'mtls', 'tls']);
    expect(Object.keys(digests.tls).length).toBeGreaterThan(4);
    expect(digests.mtls).toEqual(digests.tls);
    expect(digests.apikey).toEqual(digests.tls);
  });
});

describe('wrong settings fail in one line with a non-zero exit', () => {
  const cases: Array<[string, () => Record<string, string>, RegExp]> = [
    ['a wrong CA', () => ({ TEMPORAL_ADDRESS: proxy.tls, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.certs.otherCa }),
      /^TLS to the Temporal server at 127\.0\.0\.1:\d+ \(namespace default, TLS\) failed: .*(certificate|UnknownIssuer).*Check TEMPORAL_TLS_SERVER_CA_CERT_PATH/],
    ['no TLS towards a TLS server', () => ({ TEMPORAL_ADDRESS: proxy.tls }),
      /^TLS to the Temporal server at .* failed: the server speaks TLS but the connection is configured without it\. Set TEMPORAL_TLS=true/],
    ['a missing client certificate', () => ({ TEMPORAL_ADDRESS: proxy.mtls, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.certs.ca }),
      /^TLS to the Temporal server at .* failed: .*client certificate.*set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH$/],
    ['a missing API key', () => ({ TEMPORAL_ADDRESS: proxy.apiKey, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.certs.ca }),
      /^the Temporal server at 127\.0\.0\.1:\d+ \(namespace default, TLS\) refused the credentials: missing or wrong API key\. It wants an API key: set TEMPORAL_API_KEY/],
    ['a wrong API key', () => ({ TEMPORAL_ADDRESS: proxy.apiKey, TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.certs.ca, TEMPORAL_API_KEY: 'not-the-key' }),
      /^the Temporal server at .* \(namespace default, TLS, API key\) refused the credentials: missing or wrong API key\. Check TEMPORAL_API_KEY/],
  ];

  test.each(cases)('%s: `curate status` (grpc-js client)', async (_name, vars, message) => {
    const r = await curate(['status', 'some-run'], vars());
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toHaveLength(1);
    expect(lines(r.stderr)[0].replace(/^curate: /, '')).toMatch(message);
  });

  test.each(cases)('%s: a worker process (the SDK\'s Rust core)', async (_name, vars, message) => {
    const r = await collect(queueWorker('io', vars()));
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(lines(r.stderr)[0].replace(/^\[worker\] /, '')).toMatch(message);
  });

  test('`curate start` without the key is refused before anything is written', async () => {
    const out = path.join(dir, 'out-refused');
    const r = await curate(['start', '--shards', samples, '--out', out, '--metadata', metadata, '--images', 'off', '--run-id', 'refused'],
      { TEMPORAL_ADDRESS: proxy.apiKey, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.certs.ca });
    expect(r.code).not.toBe(0);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/refused the credentials: missing or wrong API key/);
    expect(existsSync(path.join(out, 'runs', 'refused'))).toBe(false);
  });
});
