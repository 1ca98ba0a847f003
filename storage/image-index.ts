/**
 * The per-shard image index (`images/<shardId>/index.parquet`): one row per sample the downloader
 * tried, whatever became of it, and the shard's stats JSON (successes, failures by reason, bytes).
 * Built on storage/parquet.ts: explicit schema, so an all-failed shard still has typed columns, and
 * byte-identical files for the same rows.
 */
import { readParquetRows, writeParquet, type ColumnSpec, type Row, type WriteParquetOptions } from './parquet';

/** Conventional statuses; any other string is kept as is. */
export type ImageStatus = 'success' | 'failed' | 'duplicate' | (string & {});

export interface ImageIndexRow {
  /** The sample key (tar members `<key>.*`). */
  key: string;
  uuid: string;
  url: string;
  status: ImageStatus;
  /** Why it failed, conventionally `<reason>: <detail>` (see `failureReason`); null on success. */
  error: string | null;
  /** sha256 (hex) of the stored image bytes. */
  sha256: string | null;
  /** Perceptual hash (hex), for near-duplicate detection. */
  phash: string | null;
  /** Size of the stored (possibly resized) image. */
  width: number | null;
  height: number | null;
  /** Size of the image as downloaded. */
  original_width: number | null;
  original_height: number | null;
  /** Bytes of the stored image. */
  bytes: number | null;
  /** The tar file (name within the shard's directory) that holds the sample. */
  tar: string | null;
  /** Download attempts made. */
  attempts: number;
  /** For failures: whether a later retry may succeed (timeouts, resets, 5xx, 429); null on success. */
  retryable?: boolean | null;
}

export const IMAGE_INDEX_COLUMNS: readonly ColumnSpec[] = [
  { name: 'key', type: 'STRING' },
  { name: 'uuid', type: 'STRING' },
  { name: 'url', type: 'STRING' },
  { name: 'status', type: 'STRING' },
  { name: 'error', type: 'STRING', nullable: true },
  { name: 'sha256', type: 'STRING', nullable: true },
  { name: 'phash', type: 'STRING', nullable: true },
  { name: 'width', type: 'INT32', nullable: true },
  { name: 'height', type: 'INT32', nullable: true },
  { name: 'original_width', type: 'INT32', nullable: true },
  { name: 'original_height', type: 'INT32', nullable: true },
  { name: 'bytes', type: 'INT64', nullable: true },
  { name: 'tar', type: 'STRING', nullable: true },
  { name: 'attempts', type: 'INT32' },
  { name: 'retryable', type: 'BOOLEAN', nullable: true },
];

const COLUMN_NAMES = IMAGE_INDEX_COLUMNS.map((c) => c.name);

/** Writes index rows; a missing optional field is written as null. Throws TypeError naming the column and row of a bad value. */
export function writeImageIndexParquet(rows: readonly ImageIndexRow[], opts?: WriteParquetOptions): Promise<Buffer> {
  return writeParquet(rows as unknown as readonly Row[], IMAGE_INDEX_COLUMNS, opts);
}

export async function readImageIndexParquet(buf: Uint8Array): Promise<ImageIndexRow[]> {
  const rows = await readParquetRows(buf, { columns: COLUMN_NAMES });
  return rows.map((r) => {
    const row = {} as Record<string, unknown>;
    for (const name of COLUMN_NAMES) row[name] = r[name] ?? null;
    return row as unknown as ImageIndexRow;
  });
}

// ---------------------------------------------------------------------------------------------------
// Stats

export interface ImageStats {
  /** Rows counted. */
  total: number;
  successes: number;
  /** Rows with status 'failed'. */
  failed: number;
  /** Failed rows by reason (see `failureReason`). */
  failures: Record<string, number>;
  /** All rows by status ('success', 'failed', 'duplicate', ...). */
  statuses: Record<string, number>;
  /** Image bytes stored (sum of `bytes` over successes). */
  bytes: number;
}

export function emptyImageStats(): ImageStats {
  return { total: 0, successes: 0, failed: 0, failures: {}, statuses: {}, bytes: 0 };
}

/**
 * The reason a row failed: the part of its error before the first ':' (errors are written as
 * `<reason>: <detail>`, e.g. "http-404: Not Found"), 'unknown' without an error.
 */
export function failureReason(row: Pick<ImageIndexRow, 'error'>): string {
  const error = row.error?.trim();
  if (!error) return 'unknown';
  const colon = error.indexOf(':');
  return (colon < 0 ? error : error.slice(0, colon)).trim().slice(0, 80) || 'unknown';
}

const bump = (m: Record<string, number>, k: string, n = 1) => {
  m[k] = (Object.prototype.hasOwnProperty.call(m, k) ? m[k] : 0) + n;
};

/** Counts one row into `stats` (mutated and returned); `reason` overrides `failureReason(row)` for a failed row. */
export function addImageStats(stats: ImageStats, row: Pick<ImageIndexRow, 'status' | 'error' | 'bytes'>, reason?: string): ImageStats {
  stats.total++;
  bump(stats.statuses, row.status);
  if (row.status === 'success') {
    stats.successes++;
    stats.bytes += row.bytes ?? 0;
  } else if (row.status === 'failed') {
    stats.failed++;
    bump(stats.failures, reason ?? failureReason(row));
  }
  return stats;
}

export function imageStatsOf(rows: Iterable<Pick<ImageIndexRow, 'status' | 'error' | 'bytes'>>): ImageStats {
  const stats = emptyImageStats();
  for (const r of rows) addImageStats(stats, r);
  return stats;
}

const sortedRecord = (m: Record<string, number>) =>
  Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** Sums stats (shards into a run); the result's maps have sorted keys. */
export function mergeImageStats(...all: ImageStats[]): ImageStats {
  const out = emptyImageStats();
  for (const s of all) {
    out.total += s.total;
    out.successes += s.successes;
    out.failed += s.failed;
    out.bytes += s.bytes;
    for (const [k, n] of Object.entries(s.failures)) bump(out.failures, k, n);
    for (const [k, n] of Object.entries(s.statuses)) bump(out.statuses, k, n);
  }
  return normalizeImageStats(out);
}

/** The same stats with sorted map keys, so equal stats serialise to equal JSON. */
export function normalizeImageStats(s: ImageStats): ImageStats {
  return { total: s.total, successes: s.successes, failed: s.failed, failures: sortedRecord(s.failures), statuses: sortedRecord(s.statuses), bytes: s.bytes };
}

/** The stats JSON file's text (stable key order, trailing newline). */
export function imageStatsJson(s: ImageStats): string {
  return JSON.stringify(normalizeImageStats(s), null, 2) + '\n';
}
