/** Activity inputs and outputs: small, JSON-serialisable references (never bulk data through Temporal). */
import type { DrawStream } from '../curation/balance';
import type { HeadTailStats } from '../curation/counts';
import type { DatacardStage } from '../curation/datacard';
import type { DedupStats } from '../curation/dedup';
import type { PlanRow } from '../curation/planner';
import type { ShardMatchStats } from '../curation/shard';
import type { KeyRange } from '../curation/layout';
import type { CurationConfig, ShardListRef, ShardRef } from '../curation/run';

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
  /** The run's shard list in the store; the activity reads shard `index` from it. */
  list: ShardListRef;
  index: number;
  lid: 'on' | 'off';
  langs: string[];
  shardConfigHash: string;
}

/** What a shard activity returns to its batch: a few numbers and a capped reason (the full result is in the store). */
export interface ShardOutcome {
  index: number;
  status: 'done' | 'failed';
  /** Classified reason, escaped and capped (capReason). */
  reason?: string;
}

/** A shard's full result, recorded in its marker (_SUCCESS.json, or _FAILED.json) and in the batch manifest. */
export interface ShardResult {
  shard: ShardRef;
  status: 'done' | 'failed';
  /** Classified reason for a failed shard, e.g. "CorruptInput: gzip: unexpected end of file". */
  reason?: string;
  rows?: number;
  stats?: ShardMatchStats;
  seconds?: number;
}

/** A batch's shards, first..first+count-1 of the run's list. */
export interface BatchRef extends RunRef {
  list: ShardListRef;
  batch: number;
  first: number;
  count: number;
}

export interface FinishBatchInput extends BatchRef {
  shardConfigHash: string;
}

export interface RecordShardFailureInput extends RunRef {
  list: ShardListRef;
  index: number;
  reason: string;
}

export interface SumCountsResult {
  entries: number;
  matches: number;
}

/** Totals of shards (a batch's, or the run's so far): a fixed size whatever the pool. */
export interface ShardTotals {
  shards: number;
  done: number;
  failed: number;
  /** Matched rows of the done shards (all languages). */
  rows: number;
  /** Matched texts in the kept languages: the pairs handed to the dedup buckets. */
  pairs: number;
}

/** A finished batch: its totals and the first few failures (all of them are in its manifest). */
export interface BatchSummary extends ShardTotals {
  batch: number;
  failures: Array<{ shard: string; reason: string }>;
}

export interface PartitionBatchInput extends RunRef {
  batch: number;
  buckets: number;
  /** Languages kept in the pool; null keeps all. */
  langs: string[] | null;
}

export interface PartitionBatchResult {
  batch: number;
  /** Buckets with at least one pair. */
  nonEmptyBuckets: number;
  pairs: number;
}

export interface BucketInput extends RunRef {
  bucket: number;
}

export interface DedupBucketInput extends BucketInput {
  /** Buckets of the run (the shuffle files' header size) and batches to read, in pool order. */
  buckets: number;
  batches: number;
}

export interface DedupBucketResult {
  bucket: number;
  stats: DedupStats;
}

/** Balance one pool file (a bucket) into one output part: Algorithm 1 with a fixed draw per pair. */
export interface BalanceBucketInput extends RunRef {
  bucket: number;
  input: string;
  /** Entry counts of the whole pool being balanced (id JSON). */
  countsKey: string;
  metadataEntries: number;
  t: number;
  seed: string;
  stream: DrawStream;
  oneTextPerImage: boolean;
  /** Output directory: writes part-<bucket>.parquet, .counts.json (counts of the selected pairs) and a .json marker. */
  outDir: string;
}

/** Sums of balance results over buckets. */
export interface BalanceTotals {
  considered: number;
  selected: number;
  images: number;
  expected: number;
}

export interface BalanceBucketResult {
  bucket: number;
  /** Candidate pairs considered (all, or one per image). */
  considered: number;
  selected: number;
  /** Distinct images among the selected pairs. */
  images: number;
  /** Σ selection probabilities over the considered pairs. */
  expected: number;
}

export interface PlanBucketInput extends RunRef {
  bucket: number;
  input: string;
  countsKey: string;
  metadataEntries: number;
  ts: number[];
  oneTextPerImage: boolean;
  seed: string;
}

/** Sums sparse id-keyed count files and writes every form of the stage's counts. */
export interface PublishCountsInput extends RunRef {
  inputs: KeyRange;
  stage: string;
  /** Thresholds whose head/tail statistics go into the stats file. */
  thresholds: number[];
  /** Identifies the pool the counts were computed on (recorded; a changed pool is recounted). */
  fingerprint: string;
}

export interface CountsSummary {
  stage: string;
  /** Id-keyed counts (what balancing reads). */
  key: string;
  /** MetaCLIP's form: entry string → count. */
  entriesKey: string;
  binaryKey: string;
  statsKey: string;
  entries: number;
  matches: number;
  maxCount: number;
  fingerprint: string;
  headTail: HeadTailStats[];
}

/**
 * The pool the final balance draws from, stored in the run (balance-input.json): what `curate rebalance` and
 * `curate plan` read. Today it is the pass-1 survivors; the image stage will point it at its outputs.
 */
export interface BalanceInput {
  runId: string;
  stage: string;
  /** Buckets of the pool. */
  buckets: number;
  /** The pool file of each bucket: a key template (layout EACH) expanded with the bucket. */
  parts: string;
  /** Per-part counts files, a template likewise (summed into `counts` when the pool changes). */
  partCounts: string;
  counts: CountsSummary;
  metadataEntries: number;
  /** Pairs in the pool. */
  pairs: number;
  /** Sizes of the stages that led to this pool (for datacards). */
  stages: DatacardStage[];
  /** Thresholds and seed that made this pool (pass 1). */
  t1: number;
  seed: string;
  /** Default final t and seed of the run. */
  t: number;
}

export interface FinalizeSetInput extends RunRef {
  setId: string;
  t: number;
  seed: string;
  oneTextPerImage: boolean;
  /** How t was chosen (given, or solved for a target size). */
  tSource: { kind: 'given' } | { kind: 'target'; targetSize: number; plannedPairs: number };
  balanceInput: BalanceInput;
  /** Temporal workflow that made the set (for the manifest). */
  workflowId: string;
  sourceOf?: string;
}

export interface CuratedSetSummary {
  setId: string;
  dir: string;
  t: number;
  seed: string;
  oneTextPerImage: boolean;
  considered: number;
  selected: number;
  images: number;
  expected: number;
  datacard: string;
  figures: string[];
  manifest: string;
}

export interface PlanResult {
  runId: string;
  planId: string;
  stage: string;
  oneTextPerImage: boolean;
  seed: string;
  pairs: number;
  rows: Array<PlanRow & { headEntries: number; tailEntries: number; headMatches: number; tailMatches: number; tailShare: number }>;
  target?: { size: number; t: number | null; expectedPairs: number | null; note: string };
  key: string;
}

export interface WriteManifestInput extends RunRef {
  config: CurationConfig;
  prepared: PrepareRunResult;
  /** Batches of the run (their manifests hold every shard's result). */
  batches: number;
  shards: ShardTotals;
  counts: SumCountsResult;
  buckets: number;
  dedup: DedupStats;
  dedupCounts: CountsSummary;
  pass1: { t1: number; considered: number; selected: number; expected: number; counts: CountsSummary };
  /** Download outcomes when the image stage ran. */
  images?: unknown;
  curated: CuratedSetSummary;
  status: 'completed' | 'failed';
  startedAt: string;
}
