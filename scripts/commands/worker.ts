import { ConfigError } from '../../curation/errors';
import { workerMain, type QueueName } from '../../workers/run';
import type { Command } from '../args';
import { CONNECTION_FLAGS, connectionOverrides } from '../client';

export const command: Command = {
  name: 'worker',
  summary: 'Run Temporal workers (all task queues by default) until SIGINT/SIGTERM',
  usage: 'worker [--queues orchestration,cpu,io] [--address HOST:PORT] [--namespace NS] [--profile NAME]   (env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, CURATE_CPU_SLOTS, CURATE_CPU_THREADS, CURATE_METRICS_PORT, CURATE_METRICS_HOST, CURATE_MAX_SHARD_READS)',
  flags: {
    queues: { type: 'list', help: 'task queues to serve', default: 'orchestration,cpu,io' },
    'metrics-port': { type: 'number', help: 'serve Prometheus /metrics on this port (SDK temporal_* and project curate_* series; env CURATE_METRICS_PORT, bound to CURATE_METRICS_HOST, default 0.0.0.0)' },
    'max-shard-reads': { type: 'number', help: 'concurrent remote shard reads (https://, s3://) in this process (env CURATE_MAX_SHARD_READS, default 8)' },
    ...CONNECTION_FLAGS,
  },
  async run({ flags }) {
    const queues = flags.queues as string[];
    for (const q of queues) if (!['orchestration', 'cpu', 'io'].includes(q)) throw new ConfigError(`unknown queue '${q}': use orchestration, cpu, io`);
    // The flags travel as the environment variables the worker reads (workers/run.ts), which check them.
    if (flags['metrics-port'] !== undefined) process.env.CURATE_METRICS_PORT = String(flags['metrics-port']);
    if (flags['max-shard-reads'] !== undefined) process.env.CURATE_MAX_SHARD_READS = String(flags['max-shard-reads']);
    await workerMain(queues as QueueName[], connectionOverrides(flags));
  },
};
