import { ConfigError } from '../../curation/errors';
import { workerMain, type QueueName } from '../../workers/run';
import type { Command } from '../args';
import { CONNECTION_FLAGS, connectionOverrides } from '../client';

export const command: Command = {
  name: 'worker',
  summary: 'Run Temporal workers (all task queues by default) until SIGINT/SIGTERM',
  usage: 'worker [--queues orchestration,cpu,io] [--address HOST:PORT] [--namespace NS] [--profile NAME]   (env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, CURATE_CPU_SLOTS, CURATE_CPU_THREADS)',
  flags: {
    queues: { type: 'list', help: 'task queues to serve', default: 'orchestration,cpu,io' },
    ...CONNECTION_FLAGS,
  },
  async run({ flags }) {
    const queues = flags.queues as string[];
    for (const q of queues) if (!['orchestration', 'cpu', 'io'].includes(q)) throw new ConfigError(`unknown queue '${q}': use orchestration, cpu, io`);
    await workerMain(queues as QueueName[], connectionOverrides(flags));
  },
};
