/**
 * Workers, one per task queue so they scale separately: orchestration (workflows), cpu (parse/match/
 * balance in worker threads), io (small store reads/writes). A dev process may host all three.
 */
import { availableParallelism } from 'node:os';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import * as activities from '../activities';
import { TASK_QUEUES } from '../workflows/search-attributes';
import { setShardReadCap, shardReadCapFromEnv } from '../storage/read-slots';
import { metricsEndpointFromEnv, telemetryOptions } from './telemetry';
import { connectOptions, describeConnection, explainConnectError, loadConnectionConfig, type ConnectionConfig, type ConnectionOverrides } from './connection';

export type QueueName = keyof typeof TASK_QUEUES;

/** Where to connect (workers/connection.ts: TEMPORAL_* variables, temporal.toml profiles, flags) and what to serve. */
export interface WorkerSettings extends ConnectionConfig {
  queues: QueueName[];
  /** Concurrent shard activities on the cpu queue (default: cores). */
  cpuSlots?: number;
}

export function workerSettingsFromEnv(queues: QueueName[], overrides: ConnectionOverrides = {}): WorkerSettings {
  return {
    ...loadConnectionConfig(overrides),
    queues,
    cpuSlots: Number(process.env.CURATE_CPU_SLOTS) || undefined,
  };
}

let runtimeInstalled = false;

/** Starts the workers; resolves when they have shut down (SIGINT/SIGTERM, or `stop()`). */
export async function startWorkers(settings: WorkerSettings): Promise<{ stop: () => void; done: Promise<void> }> {
  if (!runtimeInstalled) {
    // SDK logs at ERROR by default (CURATE_LOG_LEVEL=WARN|INFO|DEBUG for more): a worker that serves one queue
    // warns about the kinds of task it does not serve. SIGINT/SIGTERM drain the workers instead of killing tasks.
    // CURATE_METRICS_PORT: Prometheus /metrics with the SDK's series and the project's curate_* (workers/telemetry.ts).
    // CURATE_MAX_SHARD_READS: concurrent remote shard reads in this process (storage/read-slots.ts).
    const level = (process.env.CURATE_LOG_LEVEL ?? 'ERROR') as 'ERROR';
    const metrics = metricsEndpointFromEnv();
    setShardReadCap(shardReadCapFromEnv());
    Runtime.install({ logger: new DefaultLogger(level), shutdownSignals: ['SIGINT', 'SIGTERM'], ...telemetryOptions(metrics) });
    if (metrics) console.log(`[worker] metrics on http://${metrics.host}:${metrics.port}/metrics`);
    runtimeInstalled = true;
  }
  const connection = await NativeConnection.connect(connectOptions(settings)).catch(async (err: unknown) => {
    throw await explainConnectError(err, settings);
  });
  const common: Partial<WorkerOptions> = { connection, namespace: settings.namespace, shutdownGraceTime: '20s' };
  const workers: Worker[] = [];
  for (const q of settings.queues) {
    if (q === 'orchestration') {
      workers.push(await Worker.create({
        ...common, taskQueue: TASK_QUEUES.orchestration, workflowsPath: require.resolve('../workflows'),
        maxConcurrentWorkflowTaskExecutions: 20,
      }));
    } else if (q === 'cpu') {
      workers.push(await Worker.create({
        ...common, taskQueue: TASK_QUEUES.cpu, activities,
        maxConcurrentActivityTaskExecutions: settings.cpuSlots ?? availableParallelism(),
      }));
    } else {
      workers.push(await Worker.create({ ...common, taskQueue: TASK_QUEUES.io, activities, maxConcurrentActivityTaskExecutions: 50 }));
    }
  }
  const done = Promise.all(workers.map((w) => w.run())).then(async () => {
    await activities.closeTaskPool();
    await connection.close();
  });
  return { stop: () => workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown()), done };
}

/** Entry point used by workers/<queue>.ts and `curate worker`. */
export async function workerMain(queues: QueueName[], overrides: ConnectionOverrides = {}): Promise<void> {
  const settings = workerSettingsFromEnv(queues, overrides);
  console.log(`[worker] ${queues.join('+')} on ${describeConnection(settings)}, pid ${process.pid}`);
  const { done } = await startWorkers(settings);
  await done;
  console.log('[worker] stopped');
}

/** `node dist/workers/<queue>.js`: runs workerMain; a connection or configuration error is one line on stderr, exit 1. */
export function workerEntry(queues: QueueName[]): void {
  workerMain(queues).catch((err: Error) => {
    const oneLine = err?.name === 'ConnectionError' || err?.name === 'ConfigError';
    console.error(oneLine ? `[worker] ${err.message}` : err);
    process.exit(1);
  });
}
