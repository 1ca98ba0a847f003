/**
 * CPU-heavy work, run in worker threads (piscina) so the activity worker's event loop stays free to
 * heartbeat. Each task reads its inputs from the object store and publishes its outputs atomically,
 * marker last, so a retried or repeated task returns the recorded result without redoing work.
 */
import type { MessagePort } from 'node:worker_threads';
import { countsFromIdJson, countsToIdJson, isSelected, textProbability, type EntryCounts } from '../curation/balance';
import { ConfigError, CorruptInputError } from '../curation/errors';
import { ShardExtractor } from '../curation/extract';
import { LanguageIdentifier } from '../curation/lid';
import { Matcher } from '../curation/matcher';
import { parseMetadata } from '../curation/metadata';
import { layout } from '../curation/run';
import { matchShard } from '../curation/shard';
import { openInput } from '../storage/sources';
import { openStore } from '../storage/store';
import { readCandidatesParquet, writeCandidatesParquet, writeCuratedParquet, type CuratedRow } from '../storage/parquet';
import type { BalanceBatchInput, BalanceBatchResult, ProcessShardInput, ShardResult } from './types';

export type Task =
  | { kind: 'shard'; input: ProcessShardInput; progress?: MessagePort }
  | { kind: 'balance'; input: BalanceBatchInput };

/** Thread-local caches: building a 500k-entry matcher takes seconds, so keep it per metadata copy. */
let matcherCache: { key: string; matcher: Matcher } | null = null;
let lidModel: Promise<LanguageIdentifier> | null = null;
let countsCache: { key: string; counts: EntryCounts } | null = null;

async function matcherFor(outRoot: string, runId: string): Promise<Matcher> {
  const key = `${outRoot}|${runId}`;
  if (matcherCache?.key !== key) {
    const store = openStore(outRoot);
    const entries = parseMetadata((await store.get(layout.metadata(runId))).toString('utf8'), layout.metadata(runId));
    matcherCache = { key, matcher: new Matcher(entries) };
  }
  return matcherCache.matcher;
}

async function processShard(input: ProcessShardInput, progress?: MessagePort): Promise<ShardResult> {
  const store = openStore(input.outRoot);
  const marker = layout.shardMarker(input.runId, input.shard.id);
  if (await store.exists(marker)) {
    const recorded = JSON.parse((await store.get(marker)).toString('utf8'));
    if (recorded.shardConfigHash === input.shardConfigHash) return recorded.result as ShardResult;
  }
  const started = Date.now();
  const matcher = await matcherFor(input.outRoot, input.runId);
  const lid = input.lid === 'on' ? await (lidModel ??= LanguageIdentifier.load()) : null;
  const extractor = new ShardExtractor({ lid });
  const keep = input.lid === 'on' ? new Set(input.langs) : null;
  try {
    const source = await openInput(input.shard.uri);
    const out = await matchShard(source, extractor, matcher, keep, (p) => progress?.postMessage(p));
    // Fault injection for the crash tests: widen the window in which a worker can be killed mid-shard.
    const delay = Number(process.env.CURATE_FAULT_SHARD_DELAY_MS);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    await store.put(layout.shardCandidates(input.runId, input.shard.id), await writeCandidatesParquet(out.rows));
    await store.put(layout.shardCounts(input.runId, input.shard.id), JSON.stringify(countsToIdJson(out.counts)));
    const result: ShardResult = {
      shard: input.shard, status: 'done', rows: out.rows.length, stats: out.stats, seconds: (Date.now() - started) / 1000,
    };
    await store.put(marker, JSON.stringify({ shardConfigHash: input.shardConfigHash, result }, null, 1));
    return result;
  } catch (err) {
    // Bad input is a result, not a crash: the batch records it and the run goes on.
    if (err instanceof CorruptInputError) return { shard: input.shard, status: 'failed', reason: `CorruptInput: ${err.message}` };
    if (err instanceof ConfigError) return { shard: input.shard, status: 'failed', reason: `InputUnavailable: ${err.message}` };
    throw err;
  } finally {
    progress?.close();
  }
}

async function globalCounts(outRoot: string, runId: string): Promise<EntryCounts> {
  const key = `${outRoot}|${runId}`;
  if (countsCache?.key !== key) {
    const store = openStore(outRoot);
    countsCache = { key, counts: countsFromIdJson(JSON.parse((await store.get(layout.entryCountsById(runId))).toString('utf8'))) };
  }
  return countsCache.counts;
}

async function balanceBatch(input: BalanceBatchInput): Promise<BalanceBatchResult> {
  const store = openStore(input.outRoot);
  const key = layout.curatedPart(input.runId, input.t, input.seed, input.batch);
  const markerKey = key.replace(/\.parquet$/, '.json');
  if (await store.exists(markerKey)) return JSON.parse((await store.get(markerKey)).toString('utf8')) as BalanceBatchResult;
  const counts = await globalCounts(input.outRoot, input.runId);
  const keep = input.langs ? new Set(input.langs) : null;
  const selected: CuratedRow[] = [];
  let candidates = 0;
  let expected = 0;
  const batch = JSON.parse((await store.get(input.batchManifest)).toString('utf8')) as { shards: ShardResult[] };
  for (const { shard } of batch.shards.filter((r) => r.status === 'done')) {
    const rows = await readCandidatesParquet(await store.get(layout.shardCandidates(input.runId, shard.id)));
    for (let position = 0; position < rows.length; position++) {
      const row = rows[position];
      if (keep && (row.lang === null || !keep.has(row.lang))) continue;
      candidates++;
      const p = textProbability(row.entry_ids, counts, input.t);
      expected += p;
      if (isSelected(input.seed, row.uuid, row.text, p)) selected.push({ ...row, p, shard: shard.id, position });
    }
  }
  await store.put(key, await writeCuratedParquet(selected));
  const result: BalanceBatchResult = { batch: input.batch, candidates, selected: selected.length, expected, key };
  await store.put(markerKey, JSON.stringify(result));
  return result;
}

export default async function runTask(task: Task): Promise<unknown> {
  if (task.kind === 'shard') return processShard(task.input, task.progress);
  if (task.kind === 'balance') return balanceBatch(task.input);
  throw new Error(`unknown task ${(task as { kind: string }).kind}`);
}
