import { ConfigError } from '../../curation/errors';
import { workerMain, type QueueName } from '../../workers/run';
import type { Command } from '../args';

export const command: Command = {
  name: 'worker',
  summary: 'Run Temporal workers (all task queues by default) until SIGINT/SIGTERM',
  usage: 'worker [--queues orchestration,cpu,io]   (env: TEMPORAL_ADDRESS, CURATE_CPU_SLOTS, CURATE_CPU_THREADS)',
  flags: { queues: { type: 'list', help: 'task queues to serve', default: 'orchestration,cpu,io' } },
  async run({ flags }) {
    const queues = flags.queues as string[];
    for (const q of queues) if (!['orchestration', 'cpu', 'io'].includes(q)) throw new ConfigError(`unknown queue '${q}': use orchestration, cpu, io`);
    await workerMain(queues as QueueName[]);
  },
};
