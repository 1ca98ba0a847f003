/**
 * Prometheus metrics of a worker process: the SDK's runtime telemetry serves `/metrics` on
 * `CURATE_METRICS_PORT` (`curate worker --metrics-port N`), bound to `CURATE_METRICS_HOST` (default 0.0.0.0,
 * so Prometheus in another container can scrape it). It carries the SDK's own series (`temporal_*`: task slots,
 * poll and execution latencies, failures) and the project's (`curate_*`, activities/metrics.ts).
 */
import type { RuntimeOptions } from '@temporalio/worker';
import { SHARD_SECONDS_BUCKETS, METRICS } from '../activities/metrics';
import { ConfigError } from '../curation/errors';

export interface MetricsEndpoint {
  host: string;
  port: number;
}

/** The endpoint from the environment, or null when CURATE_METRICS_PORT is unset; a bad value is a ConfigError. */
export function metricsEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): MetricsEndpoint | null {
  const raw = env.CURATE_METRICS_PORT;
  if (raw === undefined || raw.trim() === '') return null;
  const port = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || port < 1 || port > 65535) {
    throw new ConfigError(`CURATE_METRICS_PORT must be a port number (1-65535), got '${raw}'`);
  }
  return { host: env.CURATE_METRICS_HOST?.trim() || '0.0.0.0', port };
}

/** The `telemetryOptions` for Runtime.install: Prometheus on the endpoint, or nothing (no metrics exported). */
export function telemetryOptions(endpoint: MetricsEndpoint | null): Pick<RuntimeOptions, 'telemetryOptions'> {
  if (!endpoint) return {};
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return {
    telemetryOptions: {
      metrics: {
        prometheus: {
          bindAddress: `${host}:${endpoint.port}`,
          histogramBucketOverrides: { [METRICS.shardSeconds]: SHARD_SECONDS_BUCKETS },
        },
      },
    },
  };
}
