/** Object-store keys of a run, relative to the output root. Pure (imported by workflow code too). */
const pad5 = (n: number) => String(n).padStart(5, '0');

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
  batchCounts: (runId: string, batch: number) => `runs/${runId}/batches/${pad5(batch)}/counts.json`,
  batchManifest: (runId: string, batch: number) => `runs/${runId}/batches/${pad5(batch)}/manifest.json`,
  /** A batch's kept-language candidates that hash to one bucket (input of that bucket's dedup). */
  partitionDir: (runId: string, bucket: number) => `runs/${runId}/dedup/in/bucket=${pad5(bucket)}/`,
  partition: (runId: string, bucket: number, batch: number) => `runs/${runId}/dedup/in/bucket=${pad5(bucket)}/batch-${pad5(batch)}.parquet`,
  partitionMarker: (runId: string, batch: number) => `runs/${runId}/dedup/in/_batches/${pad5(batch)}.json`,
  /** The deduplicated pool, one file per bucket, with its counts and a marker holding its statistics. */
  dedupBucket: (runId: string, bucket: number) => `runs/${runId}/dedup/bucket-${pad5(bucket)}.parquet`,
  dedupCounts: (runId: string, bucket: number) => `runs/${runId}/dedup/bucket-${pad5(bucket)}.counts.json`,
  dedupMarker: (runId: string, bucket: number) => `runs/${runId}/dedup/bucket-${pad5(bucket)}.json`,
  /** Pass-1 selections (before images), per bucket. */
  pass1Dir: (runId: string, t1: number, seed: string) => `runs/${runId}/pass1/t=${t1}/seed=${seed}`,
  /** Downloaded images of one pass-1 part: chunk-<c>.tar + chunk-<c>.parquet (index), stats.json. */
  imagesDir: (runId: string, bucket: number) => `runs/${runId}/images/bucket-${pad5(bucket)}`,
  /** The pass-1 pairs whose image was downloaded, with the image's key and tar: the next balance's pool. */
  imagePool: (runId: string, bucket: number) => bucketPart(`runs/${runId}/images/pool`, bucket),
  /** Image dedup: signatures per (partition, bucket), duplicate edges per partition, the resolved map. */
  imageSignaturesDir: (runId: string, partition: number) => `runs/${runId}/images/dedup/in/part=${pad5(partition)}/`,
  imageSignatures: (runId: string, partition: number, bucket: number) => `runs/${runId}/images/dedup/in/part=${pad5(partition)}/bucket-${pad5(bucket)}.json`,
  imageEdges: (runId: string, partition: number) => `runs/${runId}/images/dedup/edges/part-${pad5(partition)}.json`,
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
export function bucketPart(dir: string, bucket: number): { data: string; counts: string; marker: string } {
  const base = `${dir}/part-${pad5(bucket)}`;
  return { data: `${base}.parquet`, counts: `${base}.counts.json`, marker: `${base}.json` };
}
