/**
 * A real Temporal dev server for tests (the CLI installed by bin/setup.js, started by @temporalio/testing's
 * createLocal on free ports) and worker processes built from dist/ (so tests can kill them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { PHASE, RUN_ID, SHARDS_DONE, SHARDS_FAILED, SOURCE_RUN_ID } from '../../workflows/search-attributes';

export const ROOT = path.resolve(__dirname, '..', '..');

export function temporalCliPath(): string {
  const paths = path.join(ROOT, '.tools', 'paths.json');
  if (existsSync(paths)) {
    const p = JSON.parse(readFileSync(paths, 'utf8')).temporal;
    if (p && existsSync(p)) return p;
  }
  throw new Error('Temporal CLI missing: run `node bin/setup.js` (npm test does)');
}

/** A dev server on free ports; `dynamicConfig` entries become --dynamic-config-value KEY=JSON. */
export async function startTestServer(dynamicConfig: Record<string, unknown> = {}): Promise<TestWorkflowEnvironment> {
  const extraArgs = ['--log-level', 'error'];
  for (const [k, v] of Object.entries(dynamicConfig)) extraArgs.push('--dynamic-config-value', `${k}=${JSON.stringify(v)}`);
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCliPath() },
      searchAttributes: [RUN_ID, PHASE, SHARDS_DONE, SHARDS_FAILED, SOURCE_RUN_ID],
      extraArgs,
    },
  });
}

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

/** Starts `node dist/workers/all.js` against the given server. */
export function spawnWorker(address: string, env: Record<string, string> = {}): WorkerProcess {
  const script = path.join(ROOT, 'dist', 'workers', 'all.js');
  if (!existsSync(script)) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, TEMPORAL_ADDRESS: address, CURATE_CPU_THREADS: '2', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

export async function stopWorker(w: WorkerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
  await w.exited;
}

export async function waitUntil<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`);
}
