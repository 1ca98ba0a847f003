/**
 * A run that cannot progress says so (issue 10, item 4), on a real dev server with an in-process worker of
 * test-only workflows (test/support/diagnose-workflows.ts) and the CLI in a child process:
 * - `curate status` of a run whose workflow task keeps failing — a continue-as-new over the 2 MiB payload
 *   limit (the case), a plain Error thrown in a child's workflow code — prints the failing task, its
 *   cause and message, and exits 2; a healthy run exits 0;
 * - `status` reads the manifest under the run's own output root (the workflow memo), or `--out`;
 * - a start the server refuses prints the server's reason, not just "Failed to start Workflow".
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { curationWorkflowId } from '../scripts/client';
import { describeStuckWorkflow, diagnoseRun, explainStartError } from '../scripts/diagnose';
import { startTestServer, waitUntil, ROOT } from './support/temporal';

jest.setTimeout(180_000);

const QUEUE = 'diagnose-test';
/** The server refuses payloads over this (the default is 2 MiB; lowered so a CLI start can exceed it). */
const BLOB_LIMIT = 3_000;

let env: TestWorkflowEnvironment;
let connection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let dir: string;

interface CliResult { code: number | null; stdout: string; stderr: string }

/** `curate <args>` from the sources in a child process (test/support/ts-cli.js), against the test server. */
function curate(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'test', 'support', 'ts-cli.js'), ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: env.address }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'diagnose-'));
  // The failing workflow tasks are the point here: keep the worker's warnings about them out of the output.
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: 'off' } } });
  env = await startTestServer({ 'limit.blobSize.error': BLOB_LIMIT, 'limit.blobSize.warn': BLOB_LIMIT / 2 });
  connection = await NativeConnection.connect({ address: env.address });
  worker = await Worker.create({ connection, taskQueue: QUEUE, workflowsPath: require.resolve('./support/diagnose-workflows') });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A minimal run manifest, as `status` reads it. */
function writeManifest(outRoot: string, runId: string): void {
  const file = path.join(outRoot, 'runs', runId, 'manifest.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({
    status: 'done', shards: { done: 3, failed: 0, total: 3, list: [] }, counts: { matches: 42, entries: 7, key: `runs/${runId}/counts/matched.json` },
  }));
}

test('status of a run whose continue-as-new exceeds the payload limit: the failing task, PAYLOADS_TOO_LARGE, exit 4', async () => {
  const runId = 'too-large';
  const out = path.join(dir, 'out-too-large');
  const handle = await env.client.workflow.start('oversizedContinueWorkflow', {
    taskQueue: QUEUE, workflowId: curationWorkflowId(runId), args: [2_300_000], memo: { outRoot: out },
  });
  try {
    const stuck = await waitUntil(async () => (await describeStuckWorkflow(env.client, handle.workflowId)) ?? undefined, 60_000, 'the workflow task failing 3 times');
    expect(stuck).toMatchObject({ workflowType: 'oversizedContinueWorkflow', cause: 'PAYLOADS_TOO_LARGE', failureType: 'PayloadsTooLarge' });
    expect(stuck.message).toMatch(/TMPRL1103/);
    expect(stuck.attempt).toBeGreaterThanOrEqual(3);

    const status = await curate(['status', runId]);
    expect(status.stdout).toMatch(/^workflow: RUNNING/m);
    expect(status.stdout).toMatch(/^STUCK: workflow curation-too-large \(oversizedContinueWorkflow\): its workflow task failed \d+ times in a row/m);
    expect(status.stdout).toMatch(/^ {2}cause: PAYLOADS_TOO_LARGE \(PayloadsTooLarge\)$/m);
    expect(status.stdout).toMatch(/^ {2}failure: \[TMPRL1103\] Attempted to upload payloads with size that exceeded the error limit/m);
    expect(status.stdout).toMatch(/2 MiB payload limit/);
    expect(status.stderr).toMatch(/curate: the run cannot progress: workflow curation-too-large's workflow task failed \d+ times in a row \(PAYLOADS_TOO_LARGE\)/);
    expect(status.code).toBe(4);

    // --json: the diagnosis is in the document, and the exit code is the same.
    const json = await curate(['status', runId, '--json']);
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stdout).diagnosis.stuck[0]).toMatchObject({ workflowId: curationWorkflowId(runId), cause: 'PAYLOADS_TOO_LARGE' });
  } finally {
    await handle.terminate('test done'); // its task fails in a tight loop
  }
});

test('a child whose workflow code throws: status of the parent shows the child stuck, with the error', async () => {
  const runId = 'child-stuck';
  const handle = await env.client.workflow.start('parentOfStuckWorkflow', {
    taskQueue: QUEUE, workflowId: curationWorkflowId(runId), args: ['boom: a bug in workflow code'], memo: { outRoot: path.join(dir, 'out-child') },
  });
  try {
    const d = await waitUntil(async () => {
      const r = await diagnoseRun(env.client, handle.workflowId);
      return r.stuck.length ? r : undefined;
    }, 60_000, 'the child stuck');
    expect(d.stuck).toHaveLength(1); // the parent is healthy: it waits on its child
    expect(d.stuck[0]).toMatchObject({ workflowId: `${handle.workflowId}.child`, cause: 'WORKFLOW_WORKER_UNHANDLED_FAILURE', message: 'boom: a bug in workflow code' });

    const status = await curate(['status', runId]);
    expect(status.stdout).toMatch(/^STUCK: workflow curation-child-stuck\.child \(stuckWorkflow\)/m);
    expect(status.stdout).toMatch(/^ {2}cause: WORKFLOW_WORKER_UNHANDLED_FAILURE$/m);
    expect(status.stdout).toMatch(/^ {2}failure: boom: a bug in workflow code$/m);
    expect(status.code).toBe(4);
  } finally {
    await handle.terminate('test done');
  }
});

test('status of a healthy run exits 0 and finds its manifest under the run\'s own output root (memo), or under --out', async () => {
  const runId = 'healthy';
  const out = path.join(dir, 'elsewhere', 'out');
  writeManifest(out, runId);
  // It continues as new first, as a long run does: the memo (outRoot) stays with the workflow.
  const handle = await env.client.workflow.start('waitingWorkflow', {
    taskQueue: QUEUE, workflowId: curationWorkflowId(runId), args: [], memo: { outRoot: out },
  });
  try {
    await waitUntil(async () => (await handle.describe()).runId !== handle.firstExecutionRunId, 30_000, 'the continue-as-new');
    const status = await curate(['status', runId]);
    expect(status.stdout).toMatch(/^workflow: RUNNING/m);
    expect(status.stdout).not.toMatch(/STUCK/);
    expect(status.stdout).toContain(`manifest: file://${path.join(out, 'runs', runId, 'manifest.json')} (done)`);
    expect(status.stdout).toMatch(/^matches: 42 over 7 entries/m);
    expect(status.code).toBe(0);
  } finally {
    await handle.signal('finish');
    await handle.result();
  }
  // A run Temporal no longer knows: --out names its root.
  const gone = path.join(dir, 'gone', 'out');
  writeManifest(gone, 'gone-run');
  const withOut = await curate(['status', 'gone-run', '--out', gone]);
  expect(withOut.stdout).toContain(`manifest: file://${path.join(gone, 'runs', 'gone-run', 'manifest.json')} (done)`);
  expect(withOut.code).toBe(0);
  const without = await curate(['status', 'gone-run']);
  expect(without.code).toBe(2);
  expect(without.stderr).toMatch(/no run gone-run: not in Temporal, no manifest under .*\(pass --out ROOT for a run written elsewhere\)/);
});

test('a start the server refuses: the server\'s reason, not just "Failed to start Workflow"', async () => {
  // With the SDK directly: an argument over the server's blob limit.
  const err = await env.client.workflow.start('waitingWorkflow', {
    taskQueue: QUEUE, workflowId: 'too-big-to-start', args: ['x'.repeat(BLOB_LIMIT + 1000) as never],
  }).then(() => null, (e: unknown) => e);
  expect((err as Error).message).toBe('Failed to start Workflow');
  expect(explainStartError(err)).toMatch(/^Failed to start Workflow: Blob data size exceeds limit\. \(INVALID_ARGUMENT\) — the workflow input is over the server's payload limit/);

  // `curate start`: a run whose configuration is over the (lowered) limit: an output root of 3,300 characters.
  const shard = path.join(dir, 'shard.warc');
  writeFileSync(shard, '');
  const longOut = path.join(dir, ...Array.from({ length: 16 }, (_, i) => `${i}`.padStart(200, 'o')));
  const start = await curate(['start', '--shards', shard, '--out', longOut, '--run-id', 'refused', '--detach']);
  expect({ code: start.code, stderr: start.stderr.slice(0, 2000) }).toEqual({ code: 1, stderr: expect.stringMatching(/^curate: Failed to start Workflow: /) });
  expect(start.stderr).toMatch(/curate: Failed to start Workflow: Blob data size exceeds limit\. \(INVALID_ARGUMENT\)/);
});
