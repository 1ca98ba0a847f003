/**
 * Client commands that wait on a workflow (plan, rebalance) run the workers in their own process by default,
 * so they work right after `npm start` stopped its workers. Temporal remembers departed pollers for minutes,
 * so "is a worker polling?" cannot be answered reliably; with --no-local-workers they rely on external ones.
 */
import type { Client } from '@temporalio/client';
import type { ConnectionConfig } from '../workers/connection';
import { startWorkers } from '../workers/run';
import { queuesWithoutWorkers } from './client';

export interface LocalWorkers {
  stop(): Promise<void>;
}

/** `conn`: the settings the client connected with (the workers use the same server, namespace, TLS and key). */
export async function workersIfNeeded(client: Client, conn: ConnectionConfig, local: boolean): Promise<LocalWorkers> {
  if (!local) {
    const missing = await queuesWithoutWorkers(client);
    if (missing.length) console.error(`warning: no worker polls ${missing.join(', ')}; the workflow waits until one starts (npm run worker)`);
    return { stop: async () => undefined };
  }
  console.error('(running workers in this process; pass --no-local-workers to use only external ones)');
  const w = await startWorkers({ ...conn, namespace: client.options.namespace, queues: ['orchestration', 'cpu', 'io'] });
  return {
    stop: async () => {
      w.stop();
      await w.done;
    },
  };
}
