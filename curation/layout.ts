/** Object-store keys of a run, relative to the output root. Pure (imported by workflow code too). */
export const layout = {
  run: (runId: string) => `runs/${runId}`,
  runJson: (runId: string) => `runs/${runId}/run.json`,
  metadata: (runId: string) => `runs/${runId}/metadata.json`,
  shardCandidates: (runId: string, shard: string) => `runs/${runId}/shards/${shard}/candidates.parquet`,
  shardCounts: (runId: string, shard: string) => `runs/${runId}/shards/${shard}/counts.json`,
  shardMarker: (runId: string, shard: string) => `runs/${runId}/shards/${shard}/_SUCCESS.json`,
  batchCounts: (runId: string, batch: number) => `runs/${runId}/batches/${String(batch).padStart(5, '0')}/counts.json`,
  batchManifest: (runId: string, batch: number) => `runs/${runId}/batches/${String(batch).padStart(5, '0')}/manifest.json`,
  entryCounts: (runId: string) => `runs/${runId}/counts/matched.json`,
  entryCountsById: (runId: string) => `runs/${runId}/counts/matched.ids.json`,
  curatedDir: (runId: string, t: number, seed: string) => `runs/${runId}/curated/t=${t}/seed=${seed}`,
  curatedPart: (runId: string, t: number, seed: string, batch: number) =>
    `runs/${runId}/curated/t=${t}/seed=${seed}/part-${String(batch).padStart(5, '0')}.parquet`,
  manifest: (runId: string) => `runs/${runId}/manifest.json`,
};
