/**
 * `npx curate record-histories`: records the replay fixtures of test/replay.test.ts. Runs, on a fresh dev server
 * with a worker process and a loopback image server, a small curation with images (continued as new once),
 * a rebalance, a plan and a retry-failed, then writes every execution's history under test/fixtures/histories/.
 * Re-record after an intended, versioned change of workflow code; never to make a replay failure go away.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Command } from '../args';
import { ensureDefaultMetadata } from '../../curation/metadata';
import { shardRefs } from '../../curation/run';
import { startCuration, startPlan, startRebalance } from '../client';
import { temporalBinary } from '../devserver';
import { HISTORY_FIXTURES, writeHistoryFixture } from '../histories';
import { startImageServer } from '../image-server';
import { generateSamples, writeCorruptShard } from '../samples';
import { spawn } from 'node:child_process';
import { PHASE, RUN_ID, SHARDS_DONE, SHARDS_FAILED, SOURCE_RUN_ID, TASK_QUEUES } from '../../workflows/search-attributes';

export const command: Command = {
  name: 'record-histories',
  summary: 'Record the workflow replay fixtures (a small curation with images, a rebalance, a plan, a retry-failed) on a fresh dev server',
  usage: 'record-histories [--out test/fixtures/histories]',
  flags: {
    out: { type: 'string', help: 'fixture directory (its *.history.pb files are replaced)', default: HISTORY_FIXTURES },
  },
  async run({ flags }) {
    const out = path.resolve(String(flags.out));
    const work = mkdtempSync(path.join(tmpdir(), 'record-histories-'));
    // A fresh server (not the dev server of `npm run server`), so every execution on it belongs to this recording.
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: temporalBinary() },
        searchAttributes: [RUN_ID, PHASE, SHARDS_DONE, SHARDS_FAILED, SOURCE_RUN_ID],
        // Forces one continue-as-new of the root, so its replay is covered too.
        extraArgs: ['--log-level', 'error', '--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=40'],
      },
    });
    const images = await startImageServer({ variants: 16, width: 200, height: 150, port: 0 });
    // Workers in their own process (the test environment owns this process's Temporal runtime).
    const workers = spawn(process.execPath, [path.join(__dirname, '..', '..', 'workers', 'all.js')], {
      env: { ...process.env, TEMPORAL_ADDRESS: env.address }, stdio: ['ignore', 'ignore', 'inherit'],
    });    try {
      const samples = (await generateSamples({ outDir: path.join(work, 'samples'), shards: 1, seed: 2, imageBase: `${images.baseUrl}img/` })).files.sort();
      const corrupt = path.join(work, 'samples', 'zz-corrupt.warc.gz');
      writeCorruptShard(corrupt);
      const outRoot = path.join(work, 'out');
      const runId = 'fixture';
      console.error('[record] curation with images');
      const run = await startCuration(env.client, {
        runId, outRoot, shards: shardRefs([...samples, corrupt]), metadataSource: ensureDefaultMetadata(), lid: 'on', langs: ['en'],
        t: 5, t1: 20, seed: '1', oneTextPerImage: false, dedupBuckets: 2, shardsPerBatch: 1, maxConcurrentBatches: 1, maxFailedShardRatio: 0.5,
        images: { imagesPerTar: 20, bucketConcurrency: 2, concurrency: 8, fetch: { allowCidrs: ['127.0.0.1/32'], userAgentToken: 'metaclip-curate' }, image: { imageSize: 64 }, phashDistance: 4 },
      });
      await run.result();
      console.error('[record] rebalance, plan, retry-failed');
      await (await startRebalance(env.client, { outRoot, runId, rebalanceId: `${runId}.rebalance-1`, t: 3, seed: '2', oneTextPerImage: false, maxConcurrent: 2 }, run.workflowId)).result();
      await (await startPlan(env.client, { outRoot, runId, planId: `${runId}.plan-1`, ts: [2, 4], targetSize: 20, seed: '1', oneTextPerImage: false, maxConcurrent: 2 })).result();
      await env.client.workflow.execute('retryFailed', {
        taskQueue: TASK_QUEUES.orchestration, workflowId: `retry-${runId}.retry-1`,
        args: [{ outRoot, runId, retryId: 'retry-1', maxConcurrent: 2 }],
      });
      mkdirSync(out, { recursive: true });
      for (const f of readdirSync(out).filter((x) => x.endsWith('.history.pb'))) rmSync(path.join(out, f));
      let n = 0;
      for await (const w of env.client.workflow.list()) {
        const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
        const name = `${w.type}--${w.workflowId.replace(/[^A-Za-z0-9._-]+/g, '_')}--${w.runId.slice(-8)}`;
        writeHistoryFixture(out, name, history);
        n++;
      }
      console.log(`${n} histories written to ${out}`);
    } finally {
      workers.kill('SIGKILL');
      await images.close();
      await env.teardown();
      rmSync(work, { recursive: true, force: true });
    }
  },
};
