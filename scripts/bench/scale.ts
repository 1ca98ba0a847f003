/**
 * `npm run bench:scale -- --shards N` (= `npx curate bench scale --shards N`): one whole run at pool scale on
 * this machine, to see what the orchestration costs. It
 *   1. writes a handful of small real-looking WARC/WAT files with gen-samples (cached under .data/bench/scale/samples)
 *      and N symlinks to them with Common Crawl-length paths (≈ 210 bytes absolute:
 *      …/crawl-data/CC-MAIN-2024-10/segments/<segment>/{warc,wat}/CC-MAIN-<ts>-<ts>-NNNNN.warc[.wat].gz) plus a list file;
 *   2. starts its own Temporal dev server on free ports with a fresh SQLite file (.data/bench/scale/run/temporal.sqlite)
 *      and its own worker process(es) (`node dist/workers/all.js`);
 *   3. runs `curate start --shards <list> --out … --images off --run-id … --detach` (the CLI, so the bench follows the
 *      CLI's shape) and follows the root workflow until it closes, with a progress line, a stall watchdog and a check
 *      for workflow tasks that keep failing;
 *   4. reads every execution of the run back (histories through a connection with a 256 MiB receive limit) and prints
 *      wall time, shards/s, orchestration overhead (wall − Σ activity time ÷ cores), the largest payload, events and
 *      bytes of the largest history (root and child), the tasks per shard, worker and server peak RSS (VmHWM) and
 *      CPU, objects written and the SQLite size, and checks the budget (payload ≤ 256 KB, history ≤ 4,000 events and
 *      ≤ 4 MB: scripts/history-budget.ts). Figures go to .data/bench/scale.json.
 * Exit status: 0 when the run completed within the budget, 1 otherwise (the figures are printed either way).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Command, ParsedArgs } from '../args';
import { portOpen, startDevServerArgs, temporalBinary } from '../devserver';
import { checkBudget, HistoryBudgetBuilder, type BudgetCheck, type Extremes, type HistoryBudget } from '../history-budget';
import { generateSamples } from '../samples';
import { DATA, int, machineInfo, mb, nowS, progress, rel, ROOT, writeFileAtomic } from '../commands/bench';

// commands/bench.ts imports SCALE_FLAGS from here, so nothing of it is read while this module loads.
const BASE = path.resolve(__dirname, '..', '..', '..', '.data', 'bench', 'scale');
const SAMPLES = path.join(BASE, 'samples');
const RUN = path.join(BASE, 'run');
const SAMPLE_SHARDS = 4;
const SAMPLE_PAGES = 12;
/** Absolute shard path length to aim at: an s3://commoncrawl/… key in a run's shard list is about this long. */
const PATH_LENGTH = 210;

export const SCALE_FLAGS: Command['flags'] = {
  shards: { type: 'number', help: 'scale: number of shards in the run (symlinks to a few tiny gen-samples files)', default: 1_000 },
  workers: { type: 'number', help: 'scale: worker processes (node dist/workers/all.js), each serving every task queue', default: 1 },
  'shard-format': { type: 'string', help: 'scale: what the shard paths point at: warc, wat or mix', default: 'mix' },
  'start-args': { type: 'string', help: "scale: extra flags for `curate start`, e.g. '--shards-per-batch 64'" },
  cores: { type: 'number', help: 'scale: cores the orchestration overhead divides activity time by (default: this machine)' },
  stall: { type: 'number', help: 'scale: give up when the progress line has not changed for this many seconds', default: 600 },
  'timeout-min': { type: 'number', help: 'scale: give up after this many minutes', default: 240 },
  keep: { type: 'boolean', help: 'scale: leave the dev server and workers running at the end (printed: address, pids)' },
};

// ---------------------------------------------------------------------------------------------------------
// shards

/** Common Crawl-like relative path of shard i (CC-MAIN-2024-10 has 100 segments of ~900 files). */
function ccPath(i: number, format: 'warc' | 'wat'): string {
  const seg = Math.floor(i / 900);
  const segment = `${1707947473347 + seg * 8192}.${seg % 100}`;
  const num = String(i).padStart(5, '0');
  const name = `CC-MAIN-20240220211055-20240221001055-${num}.${format === 'warc' ? 'warc.gz' : 'warc.wat.gz'}`;
  return `crawl-data/CC-MAIN-2024-10/segments/${segment}/${format}/${name}`;
}

async function ensureSamples(): Promise<{ warc: string[]; wat: string[] }> {
  const stamp = path.join(SAMPLES, 'stamp.json');
  const want = JSON.stringify({ shards: SAMPLE_SHARDS, pages: SAMPLE_PAGES, seed: 'bench-scale' });
  let files: string[];
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) {
    files = readdirSync(SAMPLES).filter((f) => f.endsWith('.gz')).map((f) => path.join(SAMPLES, f)).sort();
  } else {
    rmSync(SAMPLES, { recursive: true, force: true });
    files = (await generateSamples({ outDir: SAMPLES, shards: SAMPLE_SHARDS, pages: SAMPLE_PAGES, seed: 'bench-scale' })).files;
    writeFileSync(stamp, want);
  }
  return { warc: files.filter((f) => f.endsWith('.warc.gz')), wat: files.filter((f) => f.endsWith('.wat.gz')) };
}

/** N symlinks with Common Crawl-length absolute paths, and the list file naming them. */
function writeShardTree(n: number, format: string, samples: { warc: string[]; wat: string[] }): { list: string; avgPathBytes: number } {
  const probe = path.join(RUN, 'cc', 'p', ccPath(0, 'warc'));
  const pad = 'p' + 'x'.repeat(Math.max(0, PATH_LENGTH - probe.length));
  const root = path.join(RUN, 'cc', pad);
  const lines: string[] = [];
  const dirs = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const f: 'warc' | 'wat' = format === 'warc' ? 'warc' : format === 'wat' ? 'wat' : i % 2 === 0 ? 'warc' : 'wat';
    const p = path.join(root, ccPath(i, f));
    const dir = path.dirname(p);
    if (!dirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      dirs.add(dir);
    }
    const pool = samples[f];
    symlinkSync(pool[i % pool.length], p);
    lines.push(p);
    bytes += Buffer.byteLength(p);
  }
  const list = path.join(RUN, `shards-${n}.txt`);
  writeFileSync(list, lines.join('\n') + '\n');
  return { list, avgPathBytes: bytes / n };
}

// ---------------------------------------------------------------------------------------------------------
// processes

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface ProcStats {
  hwm: number;
  rss: number;
  cpu: number;
}

/** VmHWM / VmRSS (bytes) and user+system CPU seconds of a pid, or null when it is gone. */
function procStats(pid: number): ProcStats | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
    return { hwm: kb('VmHWM'), rss: kb('VmRSS'), cpu: ticks / 100 };
  } catch {
    return null;
  }
}

class Sampler {
  readonly last = new Map<number, ProcStats>();
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly pids: () => number[]) {}
  sample(): void {
    for (const pid of this.pids()) {
      const s = procStats(pid);
      if (s) this.last.set(pid, s);
    }
  }
  start(everyMs = 1000): void {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function stopProcess(child: ChildProcess, group: boolean): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      if (group && child.pid) process.kill(-child.pid, s);
      else child.kill(s);
    } catch {
      /* gone */
    }
  };
  if (child.exitCode !== null || child.signalCode !== null) return;
  signal('SIGTERM');
  if (!(await waitExit(child, 30_000))) {
    signal('SIGKILL');
    await waitExit(child, 5_000);
  }
}

// ---------------------------------------------------------------------------------------------------------
// following the run

interface Progress {
  phase?: string;
  shardsTotal?: number;
  shardsDone?: number;
  shardsFailed?: number;
  batchesDone?: number;
  batchesTotal?: number;
}

interface FollowResult {
  status: string;
  reason: string | null;
}

function bar(done: number, total: number, width = 30): string {
  const f = total ? Math.min(width, Math.round((done / total) * width)) : 0;
  return `[${'#'.repeat(f)}${'.'.repeat(width - f)}]`;
}

/** Running executions whose workflow task keeps failing (attempt ≥ 5), with what the server says. */
async function failingWorkflowTasks(client: Client): Promise<string[]> {
  const out: string[] = [];
  let n = 0;
  for await (const w of client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
    if (++n > 200) break;
    try {
      const d = await client.workflow.getHandle(w.workflowId, w.runId).describe();
      const attempt = d.raw.pendingWorkflowTask?.attempt ?? 0;
      if (attempt >= 5) out.push(`${w.workflowId}: workflow task attempt ${attempt}`);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

async function follow(client: Client, workflowId: string, t0: number, stallS: number, timeoutS: number, n: number): Promise<FollowResult> {
  const handle = client.workflow.getHandle(workflowId);
  const tty = process.stderr.isTTY;
  let last = '';
  let lastChange = nowS();
  let lastPrint = 0;
  let lastCheck = nowS();
  for (;;) {
    const d = await handle.describe().catch(() => null);
    const status = d?.status.name ?? 'UNKNOWN';
    if (d && status !== 'RUNNING' && status !== 'CONTINUED_AS_NEW') {
      if (tty) process.stderr.write('\n');
      return { status, reason: status === 'COMPLETED' ? null : `the root workflow closed as ${status}` };
    }
    let p: Progress | null = null;
    try {
      p = await handle.query<Progress>('progress');
    } catch {
      const sa = (d?.searchAttributes ?? {}) as Record<string, unknown[]>;
      p = { phase: String(sa.CurationPhase?.[0] ?? '?'), shardsDone: Number(sa.CurationShardsDone?.[0] ?? 0), shardsFailed: Number(sa.CurationShardsFailed?.[0] ?? 0), shardsTotal: n };
    }
    const done = (p.shardsDone ?? 0) + (p.shardsFailed ?? 0);
    const total = p.shardsTotal ?? n;
    const state = `${String(p.phase ?? '?').padEnd(9)} ${bar(done, total)} shards ${int(done)}/${int(total)}` +
      (p.shardsFailed ? ` (${int(p.shardsFailed)} failed)` : '') + (p.batchesTotal ? `  batches ${int(p.batchesDone ?? 0)}/${int(p.batchesTotal)}` : '');
    const t = nowS();
    if (state !== last) {
      last = state;
      lastChange = t;
    }
    const rate = done > 0 ? `  ${(done / (t - t0)).toFixed(1)} shards/s` : '';
    const line = `[bench] ${state}  ${(t - t0).toFixed(0)} s${rate}`;
    if (tty) process.stderr.write(`\r${line}\x1b[K`);
    else if (t - lastPrint >= 15) {
      process.stderr.write(line + '\n');
      lastPrint = t;
    }
    if (t - lastCheck >= 15) {
      lastCheck = t;
      const failing = await failingWorkflowTasks(client).catch(() => []);
      if (failing.length) {
        if (tty) process.stderr.write('\n');
        return { status: 'STUCK', reason: `workflow tasks keep failing: ${failing.join('; ')}` };
      }
    }
    if (t - lastChange > stallS) {
      if (tty) process.stderr.write('\n');
      return { status: 'STALLED', reason: `no progress for ${stallS} s (${state})` };
    }
    if (t - t0 > timeoutS) {
      if (tty) process.stderr.write('\n');
      return { status: 'TIMED_OUT', reason: `still running after ${(timeoutS / 60).toFixed(0)} min` };
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---------------------------------------------------------------------------------------------------------
// reading the run back

interface Executions {
  budget: HistoryBudget;
  /** The server's own history sizes (visibility), largest. */
  serverMaxHistoryBytes: number;
  serverMaxHistoryLength: number;
  firstStart: number;
  lastClose: number;
}

async function readExecutions(client: Client): Promise<Executions> {
  // A fresh server holds this run only: every execution (each continue-as-new run too) belongs to it.
  const infos: Array<{ workflowId: string; runId: string; historySize: number; historyLength: number; start: number; close: number }> = [];
  for await (const w of client.workflow.list()) {
    infos.push({
      workflowId: w.workflowId, runId: w.runId, historySize: w.historySize ?? 0, historyLength: w.historyLength ?? 0,
      start: w.startTime.getTime() / 1000, close: w.closeTime ? w.closeTime.getTime() / 1000 : NaN,
    });
  }
  progress(`reading ${int(infos.length)} histories…`);
  const builder = new HistoryBudgetBuilder();
  let next = 0;
  let doneN = 0;
  let lastPrint = nowS();
  const worker = async () => {
    while (next < infos.length) {
      const w = infos[next++];
      const history = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
      builder.add({ workflowId: w.workflowId, runId: w.runId, history });
      doneN++;
      if (nowS() - lastPrint > 10) {
        lastPrint = nowS();
        progress(`histories ${int(doneN)}/${int(infos.length)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return {
    budget: builder.result(),
    serverMaxHistoryBytes: Math.max(0, ...infos.map((i) => i.historySize)),
    serverMaxHistoryLength: Math.max(0, ...infos.map((i) => i.historyLength)),
    firstStart: Math.min(...infos.map((i) => i.start)),
    lastClose: Math.max(...infos.map((i) => i.close).filter(Number.isFinite)),
  };
}

function countFiles(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (d: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        files++;
        try {
          bytes += statSync(p).size;
        } catch {
          /* removed meanwhile */
        }
      }
    }
  };
  walk(dir);
  return { files, bytes };
}

function sqliteBytes(db: string): number {
  return ['', '-wal', '-shm'].reduce((s, suffix) => s + (existsSync(db + suffix) ? statSync(db + suffix).size : 0), 0);
}

const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

function extremesLine(label: string, x: Extremes): string {
  if (!x.executions) return `  ${label}: none`;
  return `  ${label} (${int(x.executions)} executions): largest history ${int(x.maxEvents!.events)} events (${x.maxEvents!.workflowId}), ` +
    `${mb(x.maxBytes!.bytes)} (${x.maxBytes!.workflowId}); largest payload ${kb(x.largestPayload?.bytes ?? 0)}` +
    (x.largestPayload ? ` (${x.largestPayload.eventType} in ${x.largestPayload.workflowId})` : '');
}

// ---------------------------------------------------------------------------------------------------------

export async function benchScale(flags: ParsedArgs['flags']): Promise<void> {
  const n = Number(flags.shards);
  const workersN = Number(flags.workers);
  const format = String(flags['shard-format']);
  const cores = typeof flags.cores === 'number' ? flags.cores : availableParallelism();
  if (!(Number.isInteger(n) && n >= 1 && n <= 10_000_000)) throw new Error(`--shards must be 1..10,000,000, got ${flags.shards}`);
  if (!(Number.isInteger(workersN) && workersN >= 1 && workersN <= 64)) throw new Error(`--workers must be 1..64, got ${flags.workers}`);
  if (!['warc', 'wat', 'mix'].includes(format)) throw new Error(`--shard-format must be warc, wat or mix, got ${format}`);
  const extra = String(flags['start-args'] ?? '').split(/\s+/).filter(Boolean);
  const workerScript = path.join(ROOT, 'dist', 'workers', 'all.js');
  if (!existsSync(workerScript)) throw new Error('dist/ is missing: run `npm run build`');

  progress(`preparing ${int(n)} shards under ${rel(RUN)} (fresh)…`);
  rmSync(RUN, { recursive: true, force: true });
  mkdirSync(RUN, { recursive: true });
  const samples = await ensureSamples();
  const { list, avgPathBytes } = writeShardTree(n, format, samples);
  const out = path.join(RUN, 'out');
  const db = path.join(RUN, 'temporal.sqlite');
  const runId = `scale-${n}-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')}`;

  const port = await freePort();
  const uiPort = await freePort();
  const address = `127.0.0.1:${port}`;
  const serverLog = openSync(path.join(RUN, 'server.log'), 'a');
  const server = spawn(temporalBinary(), startDevServerArgs({ port, uiPort, dbFile: db, headless: true }), {
    detached: true, stdio: ['ignore', serverLog, serverLog],
  });
  closeSync(serverLog);
  const workers: ChildProcess[] = [];
  const sampler = new Sampler(() => [server.pid!, ...workers.map((w) => w.pid!)].filter(Boolean));
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    sampler.stop();
    await Promise.all(workers.map((w) => stopProcess(w, false)));
    await stopProcess(server, true);
  };
  const onSignal = () => {
    process.stderr.write('\n[bench] interrupted: stopping the workers and the dev server…\n');
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let connection: Connection | null = null;
  try {
    const deadline = nowS() + 60;
    while (!(await portOpen(port))) {
      if (server.exitCode !== null) throw new Error(`the dev server exited (${server.exitCode}); see ${rel(path.join(RUN, 'server.log'))}`);
      if (nowS() > deadline) throw new Error('the dev server did not answer within 60 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    for (let k = 0; k < workersN; k++) {
      const log = openSync(path.join(RUN, `worker-${k}.log`), 'a');
      workers.push(spawn(process.execPath, [workerScript], { env: { ...process.env, TEMPORAL_ADDRESS: address }, stdio: ['ignore', log, log] }));
      closeSync(log);
    }
    sampler.start();
    progress(`dev server ${address} (pid ${server.pid}, ${rel(db)}), ${workersN} worker process(es) (pids ${workers.map((w) => w.pid).join(', ')})`);

    // The run, through the CLI.
    const t0 = nowS();
    const startArgs = [path.join(ROOT, 'bin', 'curate.js'), 'start', '--shards', list, '--out', out, '--images', 'off', '--run-id', runId, '--detach', ...extra];
    progress(`curate ${startArgs.slice(1).map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`);
    const started = spawnSync(process.execPath, startArgs, { env: { ...process.env, TEMPORAL_ADDRESS: address }, encoding: 'utf8', maxBuffer: 64 << 20 });
    const startS = nowS() - t0;
    connection = await Connection.connect({ address, channelArgs: { 'grpc.max_receive_message_length': 256 * 1024 * 1024 } });
    const client = new Client({ connection, namespace: 'default' });
    let result: FollowResult;
    if (started.status !== 0) {
      result = { status: 'START_REFUSED', reason: `curate start exited ${started.status}: ${(started.stderr || started.stdout).trim().slice(0, 2000)}` };
    } else {
      progress(`started in ${startS.toFixed(1)} s; following curation-${runId}`);
      result = await follow(client, `curation-${runId}`, t0, Number(flags.stall), Number(flags['timeout-min']) * 60, n);
    }
    const wall = nowS() - t0;
    sampler.sample();
    progress(`run ${result.status} after ${wall.toFixed(1)} s; reading the histories back…`);
    const ex = await readExecutions(client);
    const b = ex.budget;
    const serverSpan = Number.isFinite(ex.lastClose) ? ex.lastClose - ex.firstStart : NaN;
    sampler.sample();
    const objects = countFiles(path.join(out, 'runs', runId));
    const allObjects = countFiles(out);
    const sqlite = sqliteBytes(db);

    const procs = (pids: number[]) => {
      const s = pids.map((p) => sampler.last.get(p)).filter((x): x is ProcStats => !!x);
      return { peakRssBytes: s.reduce((a, x) => a + x.hwm, 0), maxPeakRssBytes: Math.max(0, ...s.map((x) => x.hwm)), cpuSeconds: s.reduce((a, x) => a + x.cpu, 0) };
    };
    const serverFig = procs([server.pid!]);
    const workerFig = procs(workers.map((w) => w.pid!));
    const checks: BudgetCheck[] = checkBudget(b);
    const rootChecks = checkBudget(b.byRole.root);
    const childChecks = checkBudget(b.byRole.child);
    const activity = b.totals.activitySeconds;
    const overhead = wall - activity / cores;
    const perShard = (x: number) => x / n;
    const completed = result.status === 'COMPLETED';
    const budgetOk = checks.every((c) => c.ok);

    const lines = [
      `== bench scale: ${int(n)} shards (${format}, Common Crawl-length paths, avg ${avgPathBytes.toFixed(0)} bytes), images off, ${workersN} worker process(es), ${cores} cores ==`,
      `  run ${runId}: ${result.status}${result.reason ? ` (${result.reason})` : ''}`,
      `  wall ${wall.toFixed(1)} s (curate start ${startS.toFixed(1)} s; server start→close ${serverSpan.toFixed(1)} s), ${(n / wall).toFixed(2)} shards/s`,
      `  activity time ${activity.toFixed(1)} s in ${int(b.totals.activityTasks)} activities; orchestration overhead = wall − activity ÷ ${cores} cores = ${overhead.toFixed(1)} s (${((100 * overhead) / wall).toFixed(0)}% of wall)`,
      `  executions ${int(b.executions)} (root runs ${int(b.byRole.root.executions)}, children ${int(b.byRole.child.executions)}); events ${int(b.totals.events)} = ${perShard(b.totals.events).toFixed(1)} per shard; ` +
        `workflow tasks ${int(b.totals.workflowTasks)} = ${perShard(b.totals.workflowTasks).toFixed(2)} per shard; activity tasks ${int(b.totals.activityTasks)} = ${perShard(b.totals.activityTasks).toFixed(2)} per shard; ` +
        `history bytes ${mb(b.totals.bytes)} = ${(perShard(b.totals.bytes) / 1024).toFixed(1)} KiB per shard`,
      extremesLine('root', b.byRole.root),
      extremesLine('child', b.byRole.child),
      `  largest payload ${kb(b.largestPayload?.bytes ?? 0)}${b.largestPayload ? ` (${b.largestPayload.eventType}, event ${b.largestPayload.eventId} of ${b.largestPayload.workflowId})` : ''}; ` +
        `server-reported largest history ${int(ex.serverMaxHistoryLength)} events, ${mb(ex.serverMaxHistoryBytes)}`,
      `  worker peak RSS ${mb(workerFig.peakRssBytes)} (VmHWM${workersN > 1 ? `, sum of ${workersN}; largest ${mb(workerFig.maxPeakRssBytes)}` : ''}), CPU ${workerFig.cpuSeconds.toFixed(1)} s; ` +
        `server peak RSS ${mb(serverFig.peakRssBytes)}, CPU ${serverFig.cpuSeconds.toFixed(1)} s (${(1000 * perShard(serverFig.cpuSeconds)).toFixed(1)} ms per shard)`,
      `  objects written: ${int(objects.files)} files, ${mb(objects.bytes)} under runs/${runId}/ (${int(allObjects.files)} files under --out); SQLite ${mb(sqlite)}`,
      `  budget (payload ≤ 256 KiB, history ≤ 4,000 events and ≤ 4 MiB):`,
      ...checks.map((c) => `    ${c.ok ? 'pass' : 'FAIL'}  ${c.what}: ${int(c.actual)} (limit ${int(c.limit)}) at ${c.where}`),
    ];
    console.log(lines.join('\n'));

    const report = {
      bench: 'scale',
      date: new Date().toISOString(),
      machine: machineInfo(),
      config: { shards: n, shardFormat: format, workers: workersN, cores, startArgs: extra, avgShardPathBytes: avgPathBytes, samples: { shards: SAMPLE_SHARDS, pages: SAMPLE_PAGES } },
      run: { runId, status: result.status, reason: result.reason, completed },
      wallSeconds: wall,
      startSeconds: startS,
      serverSpanSeconds: serverSpan,
      shardsPerSecond: n / wall,
      activitySeconds: activity,
      orchestrationOverheadSeconds: overhead,
      histories: {
        executions: b.executions,
        byRole: b.byRole,
        byType: b.byType,
        largestPayload: b.largestPayload,
        maxEvents: b.maxEvents,
        maxBytes: b.maxBytes,
        serverMaxHistoryBytes: ex.serverMaxHistoryBytes,
        serverMaxHistoryLength: ex.serverMaxHistoryLength,
        totals: b.totals,
        perShard: {
          events: perShard(b.totals.events), workflowTasks: perShard(b.totals.workflowTasks), activityTasks: perShard(b.totals.activityTasks),
          historyBytes: perShard(b.totals.bytes), activitySeconds: perShard(activity), serverCpuSeconds: perShard(serverFig.cpuSeconds),
          workerCpuSeconds: perShard(workerFig.cpuSeconds),
        },
      },
      worker: workerFig,
      server: serverFig,
      objects: { runDir: objects, outRoot: allObjects },
      sqliteBytes: sqlite,
      budget: { ok: budgetOk, all: checks, root: rootChecks, child: childChecks },
    };
    writeFileAtomic(path.join(DATA, 'scale.json'), JSON.stringify(report, null, 2) + '\n');
    writeFileAtomic(path.join(RUN, 'figures.json'), JSON.stringify({ ...report, perWorkflow: b.perWorkflow }, null, 1) + '\n');
    progress(`figures written to ${rel(path.join(DATA, 'scale.json'))} (per workflow: ${rel(path.join(RUN, 'figures.json'))})`);
    if (!completed || !budgetOk) process.exitCode = 1;
  } finally {
    await connection?.close().catch(() => undefined);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (flags.keep) {
      sampler.stop();
      progress(`--keep: dev server ${address} (pid ${server.pid}; stop with kill -- -${server.pid}), workers pids ${workers.map((w) => w.pid).join(', ')}`);
      server.unref();
      for (const w of workers) w.unref();
    } else {
      await cleanup();
    }
  }
}
