/**
 * The project's own metrics, recorded through the activity's metric meter (`Context.current().metricMeter`):
 * they go wherever the worker's runtime telemetry sends the SDK's metrics (Prometheus on `/metrics` with
 * `curate worker --metrics-port`), tagged by the SDK with namespace, taskQueue and activityType. Every
 * series is named `curate_*`; counters end in `_total`.
 *
 * They count what this worker did: a shard found already done (its marker) counts as done, without bytes,
 * records or matches; images are counted as they are downloaded, so `rate(curate_images_total[1m])` is the
 * download rate.
 */
import { Context } from '@temporalio/activity';
import type { MetricMeter } from '@temporalio/common';

/** Every series, by name (the Grafana dashboard and the tests use these). */
export const METRICS = {
  shards: 'curate_shards_total',
  shardBytes: 'curate_shard_bytes_total',
  shardRecords: 'curate_shard_records_total',
  candidates: 'curate_candidates_total',
  matchedTexts: 'curate_matched_texts_total',
  matches: 'curate_matches_total',
  shardSeconds: 'curate_shard_seconds',
  images: 'curate_images_total',
  imageBytes: 'curate_image_bytes_total',
  imagesPerSecond: 'curate_download_images_per_second',
} as const;

/** Histogram buckets (seconds) for `curate_shard_seconds`: a WAT takes ~45 CPU s, a WARC ~300 (README, cost model). */
export const SHARD_SECONDS_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600];

/** The numbers a shard task hands to its activity for the metrics (not returned to the workflow). */
export interface ShardSample {
  /** Compressed bytes read from the shard. */
  bytes: number;
  records: number;
  candidates: number;
  matchedTexts: number;
  matches: number;
  seconds: number;
}

/** The failure class of a reason written `<Class>: <detail>` (e.g. CorruptInput), `Unknown` otherwise. */
export function failureClass(reason: string | undefined): string {
  const m = /^([A-Za-z][A-Za-z0-9]{0,39}):/.exec(reason ?? '');
  return m ? m[1] : 'Unknown';
}

function meter(): MetricMeter | null {
  try {
    return Context.current().metricMeter;
  } catch {
    return null; // not in an activity (a unit test calling the function directly)
  }
}

/** One shard's outcome: `curate_shards_total{status, class}` and, when it was processed here, its volume. */
export function recordShard(status: 'done' | 'failed', reason: string | undefined, sample?: ShardSample): void {
  const m = meter();
  if (!m) return;
  m.createCounter(METRICS.shards, 'shards', 'Shards finished by this worker, by status and failure class')
    .add(1, status === 'failed' ? { status, class: failureClass(reason) } : { status });
  if (!sample) return;
  m.createCounter(METRICS.shardBytes, 'By', 'Compressed shard bytes read').add(sample.bytes);
  m.createCounter(METRICS.shardRecords, 'records', 'WARC/WAT records read').add(sample.records);
  m.createCounter(METRICS.candidates, 'candidates', 'Image-text candidates extracted (after per-file dedup)').add(sample.candidates);
  m.createCounter(METRICS.matchedTexts, 'texts', 'Texts that matched at least one metadata entry').add(sample.matchedTexts);
  m.createCounter(METRICS.matches, 'matches', '(text, entry) matches counted for balancing').add(sample.matches);
  m.createHistogram(METRICS.shardSeconds, 'float', 's', 'Seconds to fetch, extract and match one shard').record(sample.seconds);
}

/** Counts images as a download activity finishes them; `done()` sets the activity's images/s gauge. */
export class ImageMeter {
  private readonly images;
  private readonly bytes;
  private readonly started = Date.now();
  private count = 0;

  constructor(private readonly m: MetricMeter | null = meter()) {
    this.images = m?.createCounter(METRICS.images, 'images', 'Images downloaded (status=success) or not (status=failed, by reason)');
    this.bytes = m?.createCounter(METRICS.imageBytes, 'By', 'Bytes of the stored (resized, re-encoded) images');
  }

  /** One image: `reason` is the failure reason (`http-404`, `timeout`, ...) or undefined for a success. */
  image(reason: string | undefined, storedBytes = 0): void {
    this.count++;
    if (reason === undefined) {
      this.images?.add(1, { status: 'success' });
      if (storedBytes > 0) this.bytes?.add(storedBytes);
    } else {
      this.images?.add(1, { status: 'failed', reason: reason.slice(0, 40) });
    }
  }

  /** The activity's average download rate (images finished here per second), as a gauge. */
  done(): void {
    const seconds = (Date.now() - this.started) / 1000;
    if (!this.m || this.count === 0 || seconds <= 0) return;
    this.m.createGauge(METRICS.imagesPerSecond, 'float', 'images/s', 'Download rate of the last download activity').set(this.count / seconds);
  }
}
