/** Client side: connect, start a curation run, follow its progress, read its status. */
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { CurationConfig, CurationRequest } from '../curation/run';
import { writeShardList } from '../storage/shard-list';
import { openStore, type ObjectStore } from '../storage/store';
import type { CurationProgress } from '../workflows/curation';
import type { PlanWorkflowRequest, RebalanceRequest } from '../workflows/rebalance';
import { PHASE, RUN_ID, SHARDS_DONE, SHARDS_FAILED, SOURCE_RUN_ID, TASK_QUEUES } from '../workflows/search-attributes';
import type { QueueName } from '../workers/run';
import { connectOptions, explainConnectError, loadConnectionConfig, muteIpServernameWarning, type ConnectionConfig, type ConnectionOverrides } from '../workers/connection';
import type { Command } from './args';
import { devServerUiUrl, runUiUrl } from './devserver';

export function curationWorkflowId(runId: string): string {
  return `curation-${runId}`;
}

/**
 * A client on the server the connection settings name (workers/connection.ts: flags, TEMPORAL_* variables,
 * temporal.toml profiles). A string is a plain address of a local dev server the caller started itself.
 * Fails with one line saying whether the server is not there, TLS failed, or the credentials were refused.
 */
export async function connectClient(conn: ConnectionConfig | string = loadConnectionConfig()): Promise<Client> {
  const c: ConnectionConfig = typeof conn === 'string' ? { address: conn, namespace: 'default' } : conn;
  if (c.tls) muteIpServernameWarning();
  const connection = await Connection.connect({ ...connectOptions(c), connectTimeout: '5s' }).catch(async (err: unknown) => {
    throw await explainConnectError(err, c);
  });
  return new Client({ connection, namespace: c.namespace });
}

/** `--address`, `--namespace`, `--profile`: the flags of every command that talks to Temporal. */
export const CONNECTION_FLAGS: Command['flags'] = {
  address: { type: 'string', help: 'Temporal frontend host:port (default: TEMPORAL_ADDRESS, the profile, else localhost:7233)' },
  namespace: { type: 'string', help: 'Temporal namespace (default: TEMPORAL_NAMESPACE, the profile, else default)' },
  profile: { type: 'string', help: 'profile in temporal.toml (default: TEMPORAL_PROFILE, else default); TLS, mTLS and API key come from it or from TEMPORAL_TLS_*, TEMPORAL_API_KEY' },
};

/** `--address`, `--namespace`, `--profile` as given (unset ones stay undefined). */
export function connectionOverrides(flags: Record<string, unknown>): ConnectionOverrides {
  const str = (k: string) => (typeof flags[k] === 'string' && flags[k] ? (flags[k] as string) : undefined);
  return { address: str('address'), namespace: str('namespace'), profile: str('profile') };
}

/** The connection settings of a command: its flags over the environment and the profile. */
export function connectionFromFlags(flags: Record<string, unknown>): ConnectionConfig {
  return loadConnectionConfig(connectionOverrides(flags));
}

/** `--ui-url`: the Temporal UI base URL for the links a command prints. */
export const UI_URL_FLAG: Command['flags'] = {
  'ui-url': { type: 'string', help: 'Temporal UI base URL for the printed link (default: CURATE_UI_URL, ui_url in the profile, or the dev server started by this project)' },
};

/**
 * The UI link of a workflow, or a line saying why there is none. Never a guess: the URL comes from --ui-url,
 * CURATE_UI_URL / the profile's ui_url, or the record of a dev server this project started at that very address.
 */
export function uiLink(c: ConnectionConfig, flagUiUrl: unknown, workflowId: string): string {
  const base = (typeof flagUiUrl === 'string' && flagUiUrl ? flagUiUrl.replace(/\/+$/, '') : undefined) ?? c.uiUrl ?? devServerUiUrl(c.address);
  if (!base) return `Temporal UI: (no UI URL known for ${c.address}: pass --ui-url URL, set CURATE_UI_URL, or add ui_url to the profile)`;
  return `Temporal UI: ${runUiUrl(base, workflowId, c.namespace)}`;
}

function details(c: CurationConfig): string {
  const buckets = c.dedupBuckets ? `${c.dedupBuckets} uuid buckets` : `uuid buckets chosen from the pool (${c.pairsPerBucket ?? 'default'} pairs each)`;
  return [
    `**Run** \`${c.runId}\``,
    '',
    '| setting | value |',
    '|---|---|',
    `| shards | ${c.shardList.count} (${c.shardsPerBatch} per batch, ${c.maxConcurrentBatches} batches at once); list in \`runs/${c.runId}/shard-list/\` |`,
    `| output | \`${c.outRoot}/runs/${c.runId}/\` |`,
    `| metadata | \`${c.metadataSource}\` |`,
    `| language filter | ${c.lid === 'on' ? c.langs.join(', ') : 'off'} |`,
    `| dedup | ${buckets} |`,
    `| balance | pass 1 t1 = ${c.t1}; final t = ${c.t}, seed = ${c.seed}${c.oneTextPerImage ? ', one text per image' : ''} |`,
  ].join('\n');
}

/**
 * Writes the run's shard list into its store (the workflow carries only its reference, so a run of a million
 * shards starts with a payload of a few hundred bytes), then starts the root workflow.
 */
export async function startCuration(client: Client, request: CurationRequest, store: ObjectStore = openStore(request.outRoot)): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const { shards, ...rest } = request;
  const shardList = await writeShardList(store, request.runId, shards);
  const config: CurationConfig = { ...rest, shardList };
  return client.workflow.start('curation', {
    taskQueue: TASK_QUEUES.orchestration,
    workflowId: curationWorkflowId(config.runId),
    args: [config],
    memo: { outRoot: config.outRoot },
    staticSummary: `MetaCLIP curation ${config.runId}: ${shardList.count} shards, t=${config.t}`,
    staticDetails: details(config),
    typedSearchAttributes: [
      { key: RUN_ID, value: config.runId },
      { key: PHASE, value: 'preparing' },
      { key: SHARDS_DONE, value: 0 },
      { key: SHARDS_FAILED, value: 0 },
    ],
  });
}

export function rebalanceWorkflowId(rebalanceId: string): string {
  return `rebalance-${rebalanceId}`;
}

export async function startRebalance(client: Client, req: RebalanceRequest, sourceWorkflowId: string): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const what = req.t !== undefined ? `t=${req.t}` : `target size ${req.targetSize}`;
  return client.workflow.start('rebalance', {
    taskQueue: TASK_QUEUES.orchestration,
    workflowId: rebalanceWorkflowId(req.rebalanceId),
    args: [req],
    memo: { outRoot: req.outRoot, sourceRunId: req.runId },
    staticSummary: `Rebalance of run ${req.runId}: ${what}, seed=${req.seed}${req.oneTextPerImage ? ', one text per image' : ''}`,
    staticDetails: [
      `**Rebalance** \`${req.rebalanceId}\` of run \`${req.runId}\` (source workflow \`${sourceWorkflowId}\`).`,
      '',
      'Reuses the run\'s stored, deduped, pass-1 balanced pool: nothing is fetched, parsed, matched or downloaded again.',
      '',
      `| setting | value |`,
      '|---|---|',
      `| threshold | ${what} |`,
      `| seed | ${req.seed} |`,
      `| one text per image | ${req.oneTextPerImage ? 'yes' : 'no'} |`,
      `| output | \`${req.outRoot}/runs/${req.runId}/curated/\` |`,
    ].join('\n'),
    typedSearchAttributes: [
      { key: RUN_ID, value: req.rebalanceId },
      { key: SOURCE_RUN_ID, value: req.runId },
      { key: PHASE, value: 'loading' },
    ],
  });
}

export async function startPlan(client: Client, req: PlanWorkflowRequest): Promise<WorkflowHandleWithFirstExecutionRunId> {
  return client.workflow.start('plan', {
    taskQueue: TASK_QUEUES.orchestration,
    workflowId: `plan-${req.planId}`,
    args: [req],
    memo: { outRoot: req.outRoot, sourceRunId: req.runId },
    staticSummary: `Size plan for run ${req.runId}${req.targetSize !== undefined ? `: target ${req.targetSize} pairs` : ''}`,
    typedSearchAttributes: [
      { key: RUN_ID, value: req.planId },
      { key: SOURCE_RUN_ID, value: req.runId },
      { key: PHASE, value: 'planning' },
    ],
  });
}

/** Task queues with no worker polling them right now. */
export async function queuesWithoutWorkers(client: Client): Promise<QueueName[]> {
  const missing: QueueName[] = [];
  for (const [name, queue] of Object.entries(TASK_QUEUES) as Array<[QueueName, string]>) {
    for (const taskQueueType of [name === 'orchestration' ? 1 : 2]) {
      const res = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace, taskQueue: { name: queue }, taskQueueType,
      });
      if (!res.pollers || res.pollers.length === 0) missing.push(name);
    }
  }
  return missing;
}

/** The run ids of rebalances (and plans) made from a run, newest first, from Temporal's visibility. */
export async function listDerivedWorkflows(client: Client, runId: string): Promise<Array<{ workflowId: string; type: string; status: string; startTime: Date }>> {
  const out: Array<{ workflowId: string; type: string; status: string; startTime: Date }> = [];
  for await (const w of client.workflow.list({ query: `CurationSourceRunId = "${runId.replace(/"/g, '')}"` })) {
    out.push({ workflowId: w.workflowId, type: w.type, status: w.status.name, startTime: w.startTime });
    if (out.length >= 50) break;
  }
  return out;
}

function bar(done: number, total: number, width = 30): string {
  const f = total ? Math.min(width, Math.round((done / total) * width)) : 0;
  return `[${'#'.repeat(f)}${'.'.repeat(width - f)}]`;
}

export function formatProgress(p: CurationProgress): string {
  const handled = p.shardsDone + p.shardsFailed;
  const base = `${p.phase.padEnd(9)} ${bar(handled, p.shardsTotal)} shards ${handled}/${p.shardsTotal}` + (p.shardsFailed ? ` (${p.shardsFailed} failed)` : '');
  if (p.phase === 'matching' || p.phase === 'preparing') return base;
  const parts = [`${p.buckets} buckets`, `deduped ${p.dedupedPairs}`];
  if (p.pass1Selected) parts.push(`pass-1 ${p.pass1Selected}`);
  if (p.selected) parts.push(`curated ${p.selected}`);
  return `${base}  ${parts.join('  ')}`;
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
