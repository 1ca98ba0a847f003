/**
 * Workers, one per task queue so they scale separately: orchestration (workflows), cpu (parse/match/
 * balance in worker threads), io (small store reads/writes). A dev process may host all three.
 */
import { availableParallelism } from 'node:os';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import * as activities from '../activities';
import { TASK_QUEUES } from '../workflows/search-attributes';

export type QueueName = keyof typeof TASK_QUEUES;

export interface WorkerSettings {
  address: string;
  namespace: string;
  queues: QueueName[];
  /** Concurrent shard activities on the cpu queue (default: cores). */
  cpuSlots?: number;
}

export function workerSettingsFromEnv(queues: QueueName[]): WorkerSettings {
  return {
    address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233',
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
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
    const level = (process.env.CURATE_LOG_LEVEL ?? 'ERROR') as 'ERROR';
    Runtime.install({ logger: new DefaultLogger(level), shutdownSignals: ['SIGINT', 'SIGTERM'] });
    runtimeInstalled = true;
  }
  const connection = await NativeConnection.connect({ address: settings.address });
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
export async function workerMain(queues: QueueName[]): Promise<void> {
  const settings = workerSettingsFromEnv(queues);
  console.log(`[worker] ${queues.join('+')} on ${settings.address} (namespace ${settings.namespace}), pid ${process.pid}`);
  const { done } = await startWorkers(settings);
  await done;
  console.log('[worker] stopped');
}
