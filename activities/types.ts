/** Activity inputs and outputs: small, JSON-serialisable references (never bulk data through Temporal). */
import type { ShardMatchStats } from '../curation/shard';
import type { CurationConfig, ShardRef } from '../curation/run';

export interface RunRef {
  outRoot: string;
  runId: string;
}

export interface PrepareRunResult {
  metadataHash: string;
  metadataEntries: number;
  shardConfigHash: string;
}

export interface ProcessShardInput extends RunRef {
  shard: ShardRef;
  lid: 'on' | 'off';
  langs: string[];
  shardConfigHash: string;
}

export interface ShardResult {
  shard: ShardRef;
  status: 'done' | 'failed';
  /** Classified reason for a failed shard, e.g. "CorruptInput: gzip: unexpected end of file". */
  reason?: string;
  rows?: number;
  stats?: ShardMatchStats;
  seconds?: number;
}

export interface SumCountsInput extends RunRef {
  inputs: string[];
  output: string;
}

export interface SumCountsResult {
  entries: number;
  matches: number;
}

export interface PublishCountsInput extends RunRef {
  countsKey: string;
}

export interface BalanceBatchInput extends RunRef {
  batch: number;
  /** The batch manifest: its shards with status done are balanced. */
  batchManifest: string;
  t: number;
  seed: string;
  /** Languages to balance; null keeps all languages. */
  langs: string[] | null;
}

export interface BalanceBatchResult {
  batch: number;
  candidates: number;
  selected: number;
  expected: number;
  key: string;
}

export interface BatchSummary {
  batch: number;
  shards: number;
  done: number;
  failed: number;
  rows: number;
  countsKey: string;
  manifestKey: string;
}

export interface WriteManifestInput extends RunRef {
  config: CurationConfig;
  prepared: PrepareRunResult;
  batches: BatchSummary[];
  balance: BalanceBatchResult[];
  counts: SumCountsResult;
  status: 'completed' | 'failed';
  startedAt: string;
}
