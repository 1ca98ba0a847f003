/** Client side: connect, start a curation run, follow its progress, read its status. */
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { CurationConfig } from '../curation/run';
import type { CurationProgress } from '../workflows/curation';
import { PHASE, RUN_ID, SHARDS_DONE, SHARDS_FAILED, TASK_QUEUES } from '../workflows/search-attributes';

export function curationWorkflowId(runId: string): string {
  return `curation-${runId}`;
}

export async function connectClient(address = process.env.TEMPORAL_ADDRESS ?? 'localhost:7233'): Promise<Client> {
  const connection = await Connection.connect({ address, connectTimeout: '5s' }).catch((err: Error) => {
    throw new Error(`cannot reach the Temporal server at ${address} (${err.message}). Start one with: npm run server`);
  });
  return new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
}

function details(c: CurationConfig): string {
  return [
    `**Run** \`${c.runId}\``,
    '',
    '| setting | value |',
    '|---|---|',
    `| shards | ${c.shards.length} (${c.shardsPerBatch} per batch, ${c.maxConcurrentBatches} batches at once) |`,
    `| output | \`${c.outRoot}/runs/${c.runId}/\` |`,
    `| metadata | \`${c.metadataSource}\` |`,
    `| language filter | ${c.lid === 'on' ? c.langs.join(', ') : 'off'} |`,
    `| balance | t = ${c.t}, seed = ${c.seed} |`,
  ].join('\n');
}

export async function startCuration(client: Client, config: CurationConfig): Promise<WorkflowHandleWithFirstExecutionRunId> {
  return client.workflow.start('curation', {
    taskQueue: TASK_QUEUES.orchestration,
    workflowId: curationWorkflowId(config.runId),
    args: [config],
    memo: { outRoot: config.outRoot },
    staticSummary: `MetaCLIP curation ${config.runId}: ${config.shards.length} shards, t=${config.t}`,
    staticDetails: details(config),
    typedSearchAttributes: [
      { key: RUN_ID, value: config.runId },
      { key: PHASE, value: 'preparing' },
      { key: SHARDS_DONE, value: 0 },
      { key: SHARDS_FAILED, value: 0 },
    ],
  });
}

function bar(done: number, total: number, width = 30): string {
  const f = total ? Math.min(width, Math.round((done / total) * width)) : 0;
  return `[${'#'.repeat(f)}${'.'.repeat(width - f)}]`;
}

export function formatProgress(p: CurationProgress): string {
  const handled = p.shardsDone + p.shardsFailed;
  const base = `${p.phase.padEnd(9)} ${bar(handled, p.shardsTotal)} shards ${handled}/${p.shardsTotal}` + (p.shardsFailed ? ` (${p.shardsFailed} failed)` : '');
  if (p.phase === 'balancing' || p.phase === 'manifest' || p.phase === 'done') return `${base}  balance ${p.balanceDone}/${p.batchesTotal}  selected ${p.selected}`;
  return base;
}

/** Polls the `progress` query and draws a bar on stderr until the workflow closes; returns its result. */
export async function followRun(handle: WorkflowHandle, intervalMs = 1000): Promise<CurationProgress> {
  const tty = process.stderr.isTTY;
  let last = '';
  let lastPrint = 0;
  const resultPromise = handle.result() as Promise<CurationProgress>;
  let settled = false;
  resultPromise.then(() => (settled = true), () => (settled = true));
  while (!settled) {
    try {
      const p = await handle.query<CurationProgress>('progress');
      const line = formatProgress(p);
      if (tty) process.stderr.write(`\r${line}\x1b[K`);
      else if (line !== last && Date.now() - lastPrint > 5000) {
        process.stderr.write(line + '\n');
        lastPrint = Date.now();
      }
      last = line;
    } catch {
      /* the query can fail while no worker is up; the run goes on */
    }
    await Promise.race([resultPromise.catch(() => undefined), new Promise((r) => setTimeout(r, intervalMs))]);
  }
  if (tty) process.stderr.write('\n');
  const result = await resultPromise;
  if (!tty) process.stderr.write(formatProgress(result) + '\n');
  return result;
}

export async function describeRun(client: Client, runId: string): Promise<{ status: string; progress?: CurationProgress; outRoot?: string } | null> {
  const handle = client.workflow.getHandle(curationWorkflowId(runId));
  try {
    const d = await handle.describe();
    let progress: CurationProgress | undefined;
    try {
      progress = await handle.query<CurationProgress>('progress');
    } catch {
      /* closed long ago or no worker: the manifest tells the rest */
    }
    return { status: d.status.name, progress, outRoot: (d.memo as { outRoot?: string } | undefined)?.outRoot };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}
