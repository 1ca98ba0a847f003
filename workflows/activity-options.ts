/** Activity options shared by the workflows: where each kind of activity runs and how it is retried. */
import type { ActivityOptions } from '@temporalio/workflow';
import { TASK_QUEUES } from './search-attributes';

/** Shard and bucket activities heartbeat every 2 s; a lost worker's activity is retried after this many seconds. */
export const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 15;

/** Small store reads/writes and summaries; config errors are not retried. */
export const IO_OPTIONS: ActivityOptions = {
  taskQueue: TASK_QUEUES.io,
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: ['ConfigError'] },
};

/** CPU work (shards, buckets): a few attempts; corrupt input comes back as a failed result, not an exception. */
export function cpuOptions(heartbeatTimeoutSeconds = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS): ActivityOptions {
  return {
    taskQueue: TASK_QUEUES.cpu,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: heartbeatTimeoutSeconds * 1000,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 5, nonRetryableErrorTypes: ['ConfigError'] },
  };
}

/** Image downloads: long, IO-bound, heartbeating a cursor; a retried attempt resumes after the published parts. */
export function downloadOptions(heartbeatTimeoutSeconds = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS): ActivityOptions {
  return {
    taskQueue: TASK_QUEUES.io,
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: heartbeatTimeoutSeconds * 1000,
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10, nonRetryableErrorTypes: ['ConfigError'] },
  };
}
