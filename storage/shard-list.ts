/**
 * The run's shard list lives in the store, not in Temporal: `curate start` writes it as JSON-lines parts of
 * SHARD_LIST_PART shards (runs/<id>/shard-list/part-NNNNN.jsonl) and workflows carry only its reference
 * (count + hash). Activities read the slice they need; a worker keeps the last parts it read.
 */
import { createHash } from 'node:crypto';
import type { ShardResult } from '../activities/types';
import { ConfigError, capReason } from '../curation/errors';
import { layout } from '../curation/layout';
import type { ShardListRef, ShardRef } from '../curation/run';
import type { ObjectStore } from './store';

export const SHARD_LIST_PART = 10_000;

export type { ShardListRef };

function listHash(shards: readonly ShardRef[]): string {
  const h = createHash('sha256');
  for (const s of shards) h.update(s.uri).update('\n');
  return h.digest('hex');
}

/**
 * Writes the list and its reference (list.json, last) and returns the reference. Idempotent: the same list
 * again is left alone; another list under the same run id is refused, so a running workflow's list never changes.
 */
export async function writeShardList(store: ObjectStore, runId: string, shards: readonly ShardRef[]): Promise<ShardListRef> {
  const ref: ShardListRef = { runId, count: shards.length, sha256: listHash(shards) };
  const refKey = layout.shardListRef(runId);
  if (await store.exists(refKey)) {
    const old = JSON.parse((await store.get(refKey)).toString('utf8')) as ShardListRef;
    if (old.sha256 === ref.sha256 && old.count === ref.count) return ref;
    throw new ConfigError(`run ${runId} already exists under ${store.uri(layout.run(runId))} with another shard list (${old.count} shards); choose another --run-id`);
  }
  for (let part = 0; part * SHARD_LIST_PART < shards.length; part++) {
    const slice = shards.slice(part * SHARD_LIST_PART, (part + 1) * SHARD_LIST_PART);
    await store.put(layout.shardList(runId, part), slice.map((s) => JSON.stringify(s)).join('\n') + '\n');
  }
  await store.put(refKey, JSON.stringify(ref));
  return ref;
}

const cache = new Map<string, ShardRef[]>();
const CACHE_PARTS = 4;

async function readPart(store: ObjectStore, ref: ShardListRef, part: number, cached = true): Promise<ShardRef[]> {
  const key = layout.shardList(ref.runId, part);
  const id = `${store.root}|${key}|${ref.sha256}`;
  let shards = cached ? cache.get(id) : undefined;
  if (!shards) {
    if (!(await store.exists(key))) throw new ConfigError(`the shard list of run ${ref.runId} is missing: ${store.uri(key)}`);
    shards = (await store.get(key)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ShardRef);
    cache.set(id, shards);
    if (cache.size > CACHE_PARTS) cache.delete(cache.keys().next().value!);
  }
  return shards;
}

/** Shards first..first+count-1 of the list. */
export async function readShardSlice(store: ObjectStore, ref: ShardListRef, first: number, count: number, cached = true): Promise<ShardRef[]> {
  if (first < 0 || count < 0 || first + count > ref.count) throw new Error(`shards ${first}..${first + count - 1} are outside the list of ${ref.count}`);
  const out: ShardRef[] = [];
  for (let i = first; i < first + count;) {
    const part = Math.floor(i / SHARD_LIST_PART);
    const shards = await readPart(store, ref, part, cached);
    const end = Math.min(first + count, (part + 1) * SHARD_LIST_PART);
    for (; i < end; i++) {
      const s = shards[i - part * SHARD_LIST_PART];
      if (!s || s.index !== i) throw new Error(`the shard list of run ${ref.runId} is damaged at shard ${i}`);
      out.push(s);
    }
  }
  return out;
}

/** Reads the whole list back, part by part, and checks it against its reference (prepareRun does this once per run). */
export async function verifyShardList(store: ObjectStore, ref: ShardListRef): Promise<void> {
  const h = createHash('sha256');
  for (let first = 0; first < ref.count; first += SHARD_LIST_PART) {
    for (const s of await readShardSlice(store, ref, first, Math.min(SHARD_LIST_PART, ref.count - first), false)) h.update(s.uri).update('\n');
  }
  if (h.digest('hex') !== ref.sha256) throw new ConfigError(`the shard list of run ${ref.runId} does not match the run's (sha256 differs)`);
}

/** Records a failed shard (classified, capped reason) in its _FAILED.json, where its batch's manifest finds it. */
export async function writeShardFailure(store: ObjectStore, runId: string, shard: ShardRef, reason: string): Promise<void> {
  const result: ShardResult = { shard, status: 'failed', reason: capReason(reason) };
  await store.put(layout.shardFailure(runId, shard.id), JSON.stringify({ result }, null, 1));
}

/** Every shard's result of a finished run, in shard order, from its batch manifests. */
export async function readRunShardResults(store: ObjectStore, runId: string): Promise<ShardResult[]> {
  const out: ShardResult[] = [];
  for (let batch = 0; await store.exists(layout.batchManifest(runId, batch)); batch++) {
    out.push(...(JSON.parse((await store.get(layout.batchManifest(runId, batch))).toString('utf8')) as { shards: ShardResult[] }).shards);
  }
  return out;
}
