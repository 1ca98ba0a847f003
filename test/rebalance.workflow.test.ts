/**
 * Balancing the MetaCLIP way, end to end on a real dev server with real worker processes:
 * cross-pool dedup over shards that repeat each other, the final balance equal to Algorithm 1 on the
 * stored pool, the planner, and rebalance-only workflows that schedule no upstream activity, write a new
 * curated set without touching earlier outputs, and are linked to their source run.
 */
import { keyAt } from '../curation/layout';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { BalanceInput, PlanResult } from '../activities/types';
import { seedKey } from '../curation/balance';
import { countsFromIdJson } from '../curation/counts';
import { ensureDefaultMetadata } from '../curation/metadata';
import { shardRefs, type CurationRequest } from '../curation/run';
import { columnsFromRows, entryProbabilities, sampleColumns } from '../curation/sampling';
import { readCandidatesParquet, readCuratedParquet, readPoolParquet, type PoolRow } from '../storage/parquet';
import { curationWorkflowId, startCuration, startPlan, startRebalance } from '../scripts/client';
import { generateSamples } from '../scripts/samples';
import type { CurationProgress } from '../workflows/curation';
import type { RebalanceProgress } from '../workflows/rebalance';
import { spawnWorker, startTestServer, stopWorker, type WorkerProcess } from './support/temporal';
import { readRunShardResults } from '../storage/shard-list';
import { openStore as openRunStore } from '../storage/store';

/** Every shard's result of a finished run (the manifest keeps totals; batch manifests hold the results). */
const shardResultsOf = (manifest: { runId: string; config: { outRoot: string } }) => readRunShardResults(openRunStore(manifest.config.outRoot), manifest.runId);

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
let dir: string;
let shards: string[];
let worker: WorkerProcess | undefined;
const RUN = 'bal-run';
const BUCKETS = 3;

function config(runId: string): CurationRequest {
  return {
    runId, outRoot: path.join(dir, 'out'), shards: shardRefs(shards), metadataSource: ensureDefaultMetadata(), lid: 'on', langs: ['en'],
    t: 5, t1: 12, seed: '7', oneTextPerImage: false, dedupBuckets: BUCKETS,
    shardsPerBatch: 2, maxConcurrentBatches: 2, maxFailedShardRatio: 0.5, heartbeatTimeoutSeconds: 10,
  };
}

const runDir = (runId = RUN) => path.join(dir, 'out', 'runs', runId);
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** sha256 of every file under a run directory, keyed by relative path (optionally only some files). */
function digests(root: string, keep: (rel: string) => boolean = () => true): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (keep(path.relative(root, p))) out[path.relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return out;
}

/** Data files whose bytes must not depend on timing, run id or worker layout. */
const dataFile = (rel: string) => !rel.endsWith('.stats.json') && (/\.parquet$|counts\.json$|\.ids\.json$|\.u64$/.test(rel) || /^counts\/[^/]+\.json$/.test(rel));

async function curatedRows(runId: string, setId: string) {
  const d = path.join(runDir(runId), 'curated', setId);
  const rows = [];
  for (const f of readdirSync(d).filter((x) => x.endsWith('.parquet')).sort()) rows.push(...(await readCuratedParquet(readFileSync(path.join(d, f)))));
  return rows;
}

/** Activity types scheduled by a workflow and its bucket children (found by their deterministic ids). */
async function activityTypes(workflowId: string, childPrefixes: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const ids = [workflowId];
  for (const prefix of childPrefixes) ids.push(`${prefix}/buckets-00000`);
  for (const id of ids) {
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    for (const e of history.events ?? []) {
      const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
      if (type) counts[type] = (counts[type] ?? 0) + 1;
      const child = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
      if (child && !ids.includes(child)) ids.push(child);
    }
  }
  return counts;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rebalance-wf-'));
  const generated = await generateSamples({ outDir: path.join(dir, 'samples'), shards: 2, seed: 11 });
  const files = generated.files.sort();
  // A later shard repeating an earlier one: every one of its pairs is a cross-shard duplicate.
  const repeat = path.join(dir, 'samples', `zz-repeat-${path.basename(files[0])}`);
  copyFileSync(files[0], repeat);
  shards = [...files, repeat];
  env = await startTestServer();
  worker = spawnWorker(env.address);
  const handle = await startCuration(env.client, config(RUN));
  const result = (await handle.result()) as CurationProgress;
  expect(result.phase).toBe('done');
});

afterAll(async () => {
  if (worker) await stopWorker(worker, 'SIGKILL');
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cross-pool dedup and the two-pass balance', () => {
  test('the deduped pool is the first occurrence of each (uuid, text) in (shard, position) order, hash-partitioned', async () => {
    const manifest = readJson(path.join(runDir(), 'manifest.json'));
    // Independent reference: every kept-language candidate of every shard, in pool order, first occurrence kept.
    const seen = new Set<string>();
    const expected: PoolRow[] = [];
    let input = 0;
    for (const s of (await shardResultsOf(manifest))) {
      const rows = await readCandidatesParquet(readFileSync(path.join(runDir(), 'shards', s.shard.id, 'candidates.parquet')));
      rows.forEach((r, position) => {
        if (r.lang !== 'en') return;
        input++;
        const k = `${r.uuid}\u0000${r.text}`;
        if (seen.has(k)) return;
        seen.add(k);
        expected.push({ ...r, shard: s.shard.id, position, image_key: null, image_tar: null });
      });
    }
    const stored: PoolRow[] = [];
    for (let b = 0; b < BUCKETS; b++) {
      const rows = await readPoolParquet(readFileSync(path.join(runDir(), 'dedup', `bucket-${String(b).padStart(5, '0')}.parquet`)));
      for (const r of rows) expect(parseInt(r.uuid.slice(0, 8), 16) % BUCKETS).toBe(b);
      stored.push(...rows);
    }
    const order = (a: PoolRow, b: PoolRow) => a.shard.localeCompare(b.shard) || a.position - b.position;
    expect(stored.sort(order)).toEqual(expected.sort(order));
    // The repeated shard contributed nothing new, and the statistics say so.
    const repeatId = (await shardResultsOf(manifest)).find((x: { shard: { uri: string } }) => x.shard.uri.includes('zz-repeat'))!.shard.id;
    expect(stored.some((r) => r.shard === repeatId)).toBe(false);
    expect(manifest.dedup).toMatchObject({ inputPairs: input, uniquePairs: expected.length, duplicatePairs: input - expected.length });
    expect(manifest.dedup.duplicatePairs).toBeGreaterThan(0);
    expect(manifest.dedup.uniqueImages).toBe(new Set(expected.map((r) => r.uuid)).size);
    // Deduped counts in every form agree: id JSON, MetaCLIP's entry-string JSON, little-endian uint64.
    const ids = readJson(path.join(runDir(), 'counts', 'deduped.ids.json')) as Record<string, number>;
    const byEntry = readJson(path.join(runDir(), 'counts', 'deduped.json')) as Record<string, number>;
    const bin = readFileSync(path.join(runDir(), 'counts', 'deduped.u64'));
    const metadata = readJson(path.join(runDir(), 'metadata.json')) as string[];
    expect(bin.length).toBe(metadata.length * 8);
    let total = 0;
    for (const r of expected) total += r.entry_ids.length;
    expect(Object.values(ids).reduce((a, b) => a + b, 0)).toBe(total);
    for (const [id, c] of Object.entries(ids)) {
      expect(byEntry[metadata[Number(id)]]).toBe(c);
      expect(Number(bin.readBigUInt64LE(Number(id) * 8))).toBe(c);
    }
  });

  test('pass 1 (t1) and the final balance (t) are Algorithm 1 on their stored pools, with p recorded per pair', async () => {
    const manifest = readJson(path.join(runDir(), 'manifest.json'));
    const bi = readJson(path.join(runDir(), 'balance-input.json')) as BalanceInput;
    expect(bi.stage).toBe('pass1');
    const metadataEntries = manifest.metadata.entries;
    // Pass 1: the deduped pool, deduped counts, t1, the pass-1 draw stream.
    const dedupCounts = countsFromIdJson(readJson(path.join(runDir(), 'counts', 'deduped.ids.json')), metadataEntries);
    const pass1: Array<{ uuid: string; text: string; p: number }> = [];
    const pool2: PoolRow[] = [];
    for (let b = 0; b < BUCKETS; b++) {
      const pool = await readPoolParquet(readFileSync(path.join(runDir(), 'dedup', `bucket-${String(b).padStart(5, '0')}.parquet`)));
      const s = sampleColumns(columnsFromRows(pool), entryProbabilities(dedupCounts, 12), seedKey('7', 'pass1'));
      s.selected.forEach((i, k) => pass1.push({ uuid: pool[i].uuid, text: pool[i].text, p: s.probability[k] }));
      pool2.push(...(await readPoolParquet(readFileSync(path.join(dir, 'out', keyAt(bi.parts, b))))));
    }
    expect(pool2.map((r) => [r.uuid, r.text])).toEqual(pass1.map((r) => [r.uuid, r.text]));
    expect(manifest.pass1.selected).toBe(pass1.length);
    // Final: the pass-1 survivors, recounted, t, the final stream: what `curate balance` computes too.
    const counts2 = countsFromIdJson(readJson(path.join(dir, 'out', bi.counts.key)), metadataEntries);
    const s = sampleColumns(columnsFromRows(pool2), entryProbabilities(counts2, 5), seedKey('7', 'final'));
    const curated = await curatedRows(RUN, 't=5/seed=7');
    expect(curated.map((r) => [r.uuid, r.text, r.p])).toEqual(Array.from(s.selected, (i, k) => [pool2[i].uuid, pool2[i].text, s.probability[k]]));
    expect(manifest.curated.selected).toBe(curated.length);
    expect(curated.length).toBeGreaterThan(0);
    expect(curated.length).toBeLessThan(pool2.length); // t really sub-sampled the head
    // The datacard and its figures sit next to the data.
    const setDir = path.join(runDir(), 'curated', 't=5', 'seed=7');
    for (const f of ['datacard.json', 'datacard-cumulative-counts.png', 'datacard-count-vs-rank.png', 'datacard-cumulative-counts.svg']) {
      expect(existsSync(path.join(setDir, f))).toBe(true);
    }
    expect(readFileSync(path.join(setDir, 'datacard-count-vs-rank.png')).subarray(1, 4).toString()).toBe('PNG');
  });
});

describe('rebalance-only and the planner', () => {
  test('a rebalance with a new t reuses the stored pool: no upstream activity, earlier outputs untouched, a nested new set, linked to its run', async () => {
    const before = digests(runDir());
    const rebalanceId = `${RUN}.rebalance-a`;
    const handle = await startRebalance(env.client, {
      outRoot: path.join(dir, 'out'), runId: RUN, rebalanceId, t: 3, seed: '7', oneTextPerImage: false, maxConcurrent: 2,
    }, curationWorkflowId(RUN));
    const result = (await handle.result()) as RebalanceProgress;
    expect(result.phase).toBe('done');
    expect(result.curated!.setId).toBe('t=3/seed=7');

    // Only balancing activities ran: nothing fetched, parsed, matched, partitioned or deduped again.
    const types = await activityTypes(handle.workflowId, [`${rebalanceId}/final`]);
    expect(types).toEqual({ loadBalanceInput: 1, balanceBucket: BUCKETS, finalizeCuratedSet: 1 });

    // Earlier outputs are byte-identical; the new set lives in its own directory.
    const after = digests(runDir());
    for (const [k, v] of Object.entries(before)) expect([k, after[k]]).toEqual([k, v]);
    const added = Object.keys(after).filter((k) => !(k in before));
    expect(added.length).toBeGreaterThan(BUCKETS);
    for (const k of added) expect(k.startsWith(path.join('curated', 't=3', 'seed=7'))).toBe(true);

    // Nested in t: the t=3 selection is a subset of the run's t=5 selection (same seed, same draws).
    const small = await curatedRows(RUN, 't=3/seed=7');
    const large = new Set((await curatedRows(RUN, 't=5/seed=7')).map((r) => `${r.uuid}\u0000${r.text}`));
    expect(small.length).toBeGreaterThan(0);
    expect(small.length).toBeLessThan(large.size);
    for (const r of small) expect(large.has(`${r.uuid}\u0000${r.text}`)).toBe(true);

    // Linked in the UI: its own id, the source run as a search attribute and memo.
    const desc = await handle.describe();
    expect(desc.searchAttributes.CurationRunId).toEqual([rebalanceId]);
    expect(desc.searchAttributes.CurationSourceRunId).toEqual([RUN]);
    expect(desc.memo).toMatchObject({ sourceRunId: RUN });
  });

  test('plan solves for a target size; rebalance --target-size lands within statistical tolerance of it', async () => {
    const bi = readJson(path.join(runDir(), 'balance-input.json')) as BalanceInput;
    const target = Math.round(bi.pairs * 0.6);
    const planHandle = await startPlan(env.client, {
      outRoot: path.join(dir, 'out'), runId: RUN, planId: `${RUN}.plan-a`, ts: [2, 5, 50], targetSize: target, seed: '7', oneTextPerImage: false, maxConcurrent: 2,
    });
    const plan = (await planHandle.result()) as PlanResult;
    expect(plan.target?.t).toBeGreaterThan(0);
    // E(t) is non-decreasing, and the table has the requested t.
    for (let q = 1; q < plan.rows.length; q++) expect(plan.rows[q].expectedPairs).toBeGreaterThanOrEqual(plan.rows[q - 1].expectedPairs - 1e-9);
    expect(plan.rows.map((r) => r.t)).toEqual(expect.arrayContaining([2, 5, 50]));
    // The planner's expected size at the run's t equals the realised run's expected size (Σ p over the same pool).
    const runSet = readJson(path.join(runDir(), 'curated', 't=5', 'seed=7', 'manifest.json'));
    expect(plan.rows.find((r) => r.t === 5)!.expectedPairs).toBeCloseTo(runSet.expected, 6);
    // E(t) is continuous and t may be fractional, so the solved t's expected size is within 1% of the target.
    const solvedT = plan.target!.t!;
    const at = plan.target!.expectedPairs!;
    expect(Math.abs(at - target) / target).toBeLessThan(0.01);
    expect(plan.rows.find((r) => r.t === solvedT)?.expectedPairs).toBe(at);
    expect(existsSync(path.join(runDir(), 'plans', `${RUN}.plan-a.json`))).toBe(true);

    // Small targets are reachable too: below E(1), the planner goes to t < 1 (every entry in the head).
    const small = Math.max(2, Math.round(bi.pairs * 0.05));
    const smallPlan = (await (await startPlan(env.client, {
      outRoot: path.join(dir, 'out'), runId: RUN, planId: `${RUN}.plan-small`, ts: [], targetSize: small, seed: '7', oneTextPerImage: false, maxConcurrent: 2,
    })).result()) as PlanResult;
    expect(smallPlan.target!.t).toBeLessThan(1);
    expect(Math.abs(smallPlan.target!.expectedPairs! - small) / small).toBeLessThan(0.01);

    const handle = await startRebalance(env.client, {
      outRoot: path.join(dir, 'out'), runId: RUN, rebalanceId: `${RUN}.rebalance-b`, targetSize: target, seed: 'other', oneTextPerImage: false, maxConcurrent: 2,
    }, curationWorkflowId(RUN));
    const result = (await handle.result()) as RebalanceProgress;
    expect(result.t).toBe(solvedT);
    const c = result.curated!;
    // Realised size: a sum of independent Bernoullis around the expected size; 5σ (σ ≤ √expected) plus the
    // planner's discretisation (|E(t) − target|).
    expect(Math.abs(c.expected - at)).toBeLessThan(1e-6 * Math.max(1, at));
    expect(Math.abs(c.selected - target)).toBeLessThanOrEqual(5 * Math.sqrt(c.expected) + Math.abs(at - target) + 1);
    const types = await activityTypes(handle.workflowId, [`${RUN}.rebalance-b/grid`, `${RUN}.rebalance-b/final`]);
    expect(Object.keys(types).sort()).toEqual(expect.arrayContaining(['balanceBucket', 'finalizeCuratedSet', 'loadBalanceInput', 'planBucket']));
    for (const upstream of ['processShard', 'partitionBatch', 'dedupBucket', 'prepareRun', 'publishCounts']) expect(types[upstream]).toBeUndefined();
  });

  test('the balance input is recounted only when its parts changed (fingerprint of the part counts)', async () => {
    const { MockActivityEnvironment } = await import('@temporalio/testing');
    const { loadBalanceInput } = await import('../activities/curation');
    const act = new MockActivityEnvironment();
    const ref = { outRoot: path.join(dir, 'out'), runId: RUN };
    const biFile = path.join(runDir(), 'balance-input.json');
    const countsFile = path.join(dir, 'out', (readJson(biFile) as BalanceInput).counts.key);
    const countsBytes = readFileSync(countsFile);
    const mtime = statSync(countsFile).mtimeMs;
    // Unchanged parts: the stored counts are used as they are (the file is not rewritten).
    const same = (await act.run(loadBalanceInput, ref)) as BalanceInput;
    expect(statSync(countsFile).mtimeMs).toBe(mtime);
    // A part changed (simulated by a stale recorded fingerprint): the counts are recomputed from the parts.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(biFile, JSON.stringify({ ...same, counts: { ...same.counts, fingerprint: 'stale' } }));
    const again = (await act.run(loadBalanceInput, ref)) as BalanceInput;
    expect(again.counts.fingerprint).toBe(same.counts.fingerprint);
    expect(statSync(countsFile).mtimeMs).toBeGreaterThan(mtime);
    expect(readFileSync(countsFile)).toEqual(countsBytes);
    expect((readJson(biFile) as BalanceInput).counts.fingerprint).toBe(same.counts.fingerprint);
  });

  test('the same run with two worker processes gives byte-identical data files', async () => {
    const second = spawnWorker(env.address, { CURATE_CPU_THREADS: '1' });
    try {
      const handle = await startCuration(env.client, config('bal-run-2w'));
      expect(((await handle.result()) as CurationProgress).phase).toBe('done');
    } finally {
      await stopWorker(second, 'SIGKILL');
    }
    const one = digests(runDir(), dataFile);
    const two = digests(runDir('bal-run-2w'), dataFile);
    // Sets written later by rebalances exist only in the first run.
    for (const k of Object.keys(one)) if (/^curated\/t=3|seed=other|^plans\//.test(k)) delete one[k];
    expect(two).toEqual(one);
    expect(Object.keys(two).length).toBeGreaterThan(20);
  });
});
