/** Activity options shared by the workflows: where each kind of activity runs and how it is retried. */
import type { ActivityOptions } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
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

/** A heartbeating activity: retried elsewhere once `heartbeatTimeoutSeconds` pass without a beat; config errors are final. */
function heartbeating(
  taskQueue: string, startToCloseTimeout: Duration, heartbeatTimeoutSeconds: number, backoff: { initial: Duration; max: Duration; attempts: number },
): ActivityOptions {
  return {
    taskQueue, startToCloseTimeout, heartbeatTimeout: heartbeatTimeoutSeconds * 1000,
    retry: { initialInterval: backoff.initial, backoffCoefficient: 2, maximumInterval: backoff.max, maximumAttempts: backoff.attempts, nonRetryableErrorTypes: ['ConfigError'] },
  };
}

/** CPU work (shards, buckets): a few attempts; corrupt input comes back as a failed result, not an exception. */
export function cpuOptions(heartbeatTimeoutSeconds = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS): ActivityOptions {
  return heartbeating(TASK_QUEUES.cpu, '2 hours', heartbeatTimeoutSeconds, { initial: '2 seconds', max: '2 minutes', attempts: 5 });
}

/** Image downloads: long, IO-bound, heartbeating a cursor; a retried attempt resumes after the published parts. */
export function downloadOptions(heartbeatTimeoutSeconds = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS): ActivityOptions {
  return heartbeating(TASK_QUEUES.io, '12 hours', heartbeatTimeoutSeconds, { initial: '5 seconds', max: '5 minutes', attempts: 10 });
}
