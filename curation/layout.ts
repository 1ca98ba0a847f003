/** Object-store keys of a run, relative to the output root. Pure (imported by workflow code too). */

/**
 * Stands for "every index" in a key: `layout.dedupCounts(runId, EACH)` is the template
 * `runs/<id>/dedup/bucket-{i}.counts.json`, which `keyAt` expands. Activities take one template and a count
 * instead of a list of keys, so no payload grows with the number of buckets or batches.
 */
export const EACH = '{i}';
export type Index = number | typeof EACH;

const pad5 = (n: Index) => (n === EACH ? EACH : String(n).padStart(5, '0'));

/** The key of index `i` in a template made with EACH. */
export function keyAt(template: string, i: number): string {
  if (!template.includes(EACH)) throw new Error(`key template ${JSON.stringify(template)} has no ${EACH}`);
  return template.replace(EACH, pad5(i));
}

/** `count` keys of a template, in index order. */
export interface KeyRange {
  template: string;
  count: number;
  /** Indexes whose object does not exist are skipped (e.g. batches where every shard failed). */
  optional?: boolean;
}

export function keysOf(range: KeyRange): string[] {
  return Array.from({ length: range.count }, (_, i) => keyAt(range.template, i));
}

/** Names a curated set: `t=<t>/seed=<s>`, with `+one-text` when one text per image was picked. */
export function curatedSetId(t: number, seed: string, oneTextPerImage = false): string {
  return `t=${t}/seed=${seed}${oneTextPerImage ? '+one-text' : ''}`;
}

/** The count files of one stage: MetaCLIP's form, the id form, the binary form and statistics. */
export interface CountsKeys {
  entries: string;
  ids: string;
  binary: string;
  stats: string;
}

function countsKeys(runId: string, stage: string): CountsKeys {
  const base = `runs/${runId}/counts/${stage}`;
  return { entries: `${base}.json`, ids: `${base}.ids.json`, binary: `${base}.u64`, stats: `${base}.stats.json` };
}

export const layout = {
  run: (runId: string) => `runs/${runId}`,
  runJson: (runId: string) => `runs/${runId}/run.json`,
  metadata: (runId: string) => `runs/${runId}/metadata.json`,
  shardCandidates: (runId: string, shard: string) => `runs/${runId}/shards/${shard}/candidates.parquet`,
  shardCounts: (runId: string, shard: string) => `runs/${runId}/shards/${shard}/counts.json`,
  shardMarker: (runId: string, shard: string) => `runs/${runId}/shards/${shard}/_SUCCESS.json`,
  batchCounts: (runId: string, batch: Index) => `runs/${runId}/batches/${pad5(batch)}/counts.json`,
  batchManifest: (runId: string, batch: Index) => `runs/${runId}/batches/${pad5(batch)}/manifest.json`,
  /** The run's shard list (written by the client; workflows carry its key, count and hash). */
  shardListRef: (runId: string) => `runs/${runId}/shard-list/list.json`,
  shardList: (runId: string, part: Index) => `runs/${runId}/shard-list/part-${pad5(part)}.jsonl`,
  shardFailure: (runId: string, shard: string) => `runs/${runId}/shards/${shard}/_FAILED.json`,
  /** Every failed shard of the run with its reason, one JSON line each (the manifest keeps a sample). */
  failedShards: (runId: string) => `runs/${runId}/failed-shards.jsonl`,
  /**
   * A batch's kept-language candidates, grouped by uuid bucket in one file (a header of byte ranges, then one
   * Parquet segment per bucket): the input of every bucket's dedup, read by range.
   */
  partition: (runId: string, batch: Index) => `runs/${runId}/dedup/in/batch-${pad5(batch)}.shuffle`,
  partitionMarker: (runId: string, batch: Index) => `runs/${runId}/dedup/in/_batches/${pad5(batch)}.json`,
  /** The deduplicated pool, one file per bucket, with its counts and a marker holding its statistics. */
  dedupBucket: (runId: string, bucket: Index) => `runs/${runId}/dedup/bucket-${pad5(bucket)}.parquet`,
  dedupCounts: (runId: string, bucket: Index) => `runs/${runId}/dedup/bucket-${pad5(bucket)}.counts.json`,
  dedupMarker: (runId: string, bucket: Index) => `runs/${runId}/dedup/bucket-${pad5(bucket)}.json`,
  /** Pass-1 selections (before images), per bucket. */
  pass1Dir: (runId: string, t1: number, seed: string) => `runs/${runId}/pass1/t=${t1}/seed=${seed}`,
  /** Downloaded images of one pass-1 part: chunk-<c>.tar + chunk-<c>.parquet (index), stats.json. */
  imagesDir: (runId: string, bucket: Index) => `runs/${runId}/images/bucket-${pad5(bucket)}`,
  /** The pass-1 pairs whose image was downloaded, with the image's key and tar: the next balance's pool. */
  imagePool: (runId: string, bucket: Index) => bucketPart(`runs/${runId}/images/pool`, bucket),
  /** Image dedup: a bucket's signatures split by partition (one shuffle file), duplicate edges per partition, the resolved map. */
  imageSignatures: (runId: string, bucket: Index) => `runs/${runId}/images/dedup/in/bucket-${pad5(bucket)}.shuffle`,
  imageEdges: (runId: string, partition: Index) => `runs/${runId}/images/dedup/edges/part-${pad5(partition)}.json`,
  imageDuplicates: (runId: string) => `runs/${runId}/images/duplicates.json`,
  /** The pool the final balance draws from (pass-1 survivors today; downloaded, image-deduped ones later). */
  balanceInput: (runId: string) => `runs/${runId}/balance-input.json`,
  counts: countsKeys,
  curatedRoot: (runId: string) => `runs/${runId}/curated/`,
  curatedDir: (runId: string, setId: string) => `runs/${runId}/curated/${setId}`,
  curatedManifest: (runId: string, setId: string) => `runs/${runId}/curated/${setId}/manifest.json`,
  datacard: (runId: string, setId: string) => `runs/${runId}/curated/${setId}/datacard.json`,
  datacardFigure: (runId: string, setId: string, name: string, ext: 'svg' | 'png') => `runs/${runId}/curated/${setId}/datacard-${name}.${ext}`,
  plans: (runId: string) => `runs/${runId}/plans/`,
  plan: (runId: string, planId: string) => `runs/${runId}/plans/${planId}.json`,
  manifest: (runId: string) => `runs/${runId}/manifest.json`,
};

/** Output of one bucket when balancing `inputDir` bucket files into `outDir`. */
export function bucketPart(dir: string, bucket: Index): { data: string; counts: string; marker: string } {
  const base = `${dir}/part-${pad5(bucket)}`;
  return { data: `${base}.parquet`, counts: `${base}.counts.json`, marker: `${base}.json` };
}
