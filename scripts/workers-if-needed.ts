/** Client commands that wait on a workflow start the missing workers in-process, so they work right after `npm start`. */
import type { Client } from '@temporalio/client';
import { startWorkers } from '../workers/run';
import { queuesWithoutWorkers } from './client';

export interface LocalWorkers {
  stop(): Promise<void>;
}

export async function workersIfNeeded(client: Client, address: string, allowed: boolean): Promise<LocalWorkers> {
  const missing = await queuesWithoutWorkers(client);
  if (missing.length === 0) return { stop: async () => undefined };
  if (!allowed) {
    console.error(`warning: no worker polls ${missing.join(', ')}; the workflow waits until one starts (npm run worker)`);
    return { stop: async () => undefined };
  }
  console.error(`(no worker polls ${missing.join(', ')}: starting them in this process; --no-local-workers to disable)`);
  const w = await startWorkers({ address, namespace: client.options.namespace, queues: missing });
  return {
    stop: async () => {
      w.stop();
      await w.done;
    },
  };
}
