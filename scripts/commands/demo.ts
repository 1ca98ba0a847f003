import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ensureDefaultMetadata } from '../../curation/metadata';
import { startWorkers } from '../../workers/run';
import type { Command } from '../args';
import { connectClient, followRun, startCuration, startRebalance } from '../client';
import { curatedSetId } from '../../curation/layout';
import type { RebalanceProgress } from '../../workflows/rebalance';
import { DATA_DIR, ensureDevServer, runUiUrl } from '../devserver';
import { RUN_FLAGS, configFromFlags } from '../runconfig';
import { DEFAULT_IMAGE_BASE, generateSamples } from '../samples';
import { startImageServer } from '../image-server';

/** The port of the samples' default image base (http://127.0.0.1:8777/img/). */
const DEFAULT_IMAGE_PORT = Number(new URL(DEFAULT_IMAGE_BASE).port);

const SAMPLES_DIR = path.join(DATA_DIR, 'samples');

export const command: Command = {
  name: 'demo',
  summary: 'What `npm start` runs: dev server + workers + a loopback image server + a curation over generated sample shards (images included), then a planned rebalance',
  usage: 'demo [--sample-shards 2] [--t 20000] [--out ROOT]',
  flags: {
    'sample-shards': { type: 'number', help: 'how many WARC and WAT sample shards to generate (each)', default: 2 },
    out: RUN_FLAGS.out,
    t: RUN_FLAGS.t,
    seed: RUN_FLAGS.seed,
    lid: RUN_FLAGS.lid,
  },
  async run({ flags }) {
    const step = (s: string) => console.log(`\n== ${s}`);
    step('metadata');
    const metadata = ensureDefaultMetadata();
    console.log(`using ${metadata} (WordNet stand-in for MetaCLIP's 500k-entry list; pass --metadata to use the official one)`);

    step('image server (loopback) for the samples\' image URLs');
    const pictures = { variants: 256, width: 400, height: 300 };
    const images = await startImageServer({ ...pictures, port: DEFAULT_IMAGE_PORT }).catch(() => startImageServer({ ...pictures, port: 0 }));
    console.log(`serving generated pictures at ${images.baseUrl}img/ (the demo allows 127.0.0.1/32 for downloads; real runs refuse private addresses)`);

    step('sample shards');
    const imageBase = `${images.baseUrl}img/`;
    const sampleDir = path.join(SAMPLES_DIR, `n${flags['sample-shards']}${imageBase === DEFAULT_IMAGE_BASE ? '' : `-p${images.port}`}`);
    if (!existsSync(sampleDir) || readdirSync(sampleDir).length === 0) {
      await generateSamples({ outDir: sampleDir, shards: flags['sample-shards'] as number, seed: 1, imageBase });
    }
    const shards = readdirSync(sampleDir).filter((f) => /\.(warc|wat)(\.gz)?$/.test(f)).sort().map((f) => path.join(sampleDir, f));
    console.log(`${shards.length} shards in ${sampleDir}`);

    step('Temporal dev server');
    const server = await ensureDevServer();
    console.log(`${server.startedNow ? 'started' : 'already running'} at ${server.address}; UI ${server.uiUrl}`);

    step('workers (orchestration, cpu, io) in this process');
    process.env.TEMPORAL_ADDRESS ??= server.address;
    const workers = await startWorkers({ address: server.address, namespace: 'default', queues: ['orchestration', 'cpu', 'io'] });

    step('curation run');
    const config = configFromFlags({ ...RUN_FLAGS_DEFAULTS(), ...flags, shards, 'allow-cidrs': ['127.0.0.1/32'], 'images-per-tar': 100 }, () => metadata);
    const client = await connectClient(server.address);
    const handle = await startCuration(client, config);
    const ui = runUiUrl(server.uiUrl, handle.workflowId);
    console.log(`run ${config.runId}\nTemporal UI: ${ui}`);
    try {
      const result = await followRun(handle);
      step('outputs');
      const runDir = path.join(config.outRoot, 'runs', config.runId);
      console.log(`shards: ${result.shardsDone} matched, ${result.shardsFailed} failed; ${result.matches} entry matches`);
      console.log(`pool: ${result.dedupedPairs} pairs after cross-pool dedup, ${result.pass1Selected} after pass 1 (t1=${config.t1}), ${result.selected} curated at t=${config.t}`);
      console.log(`images: ${result.imagesDownloaded} downloaded, ${result.imagesFailed} failed (${runDir}/images/bucket-*/chunk-*.tar + .parquet index, stats.json)`);
      console.log(`run directory: ${runDir}`);
      console.log(`  manifest.json, counts/{matched,deduped,pass1,images}.json (entry → count), dedup/, pass1/, images/, curated/${curatedSetId(config.t, config.seed)}/ (parquet + datacard)`);

      // The sample pool is far below t=20,000, so nothing was sub-sampled: show the planner and a rebalance-only
      // run on the stored pool, aiming at half of it.
      const target = Math.max(1, Math.round(result.selected / 2));
      step(`rebalance only: plan for ${target} pairs, then rebalance (nothing upstream is redone)`);
      const rebalanceId = `${config.runId}.rebalance-demo`;
      const rb = await startRebalance(client, {
        outRoot: config.outRoot, runId: config.runId, rebalanceId, targetSize: target, seed: config.seed, oneTextPerImage: false, maxConcurrent: 4,
      }, handle.workflowId);
      const rebalanced = (await rb.result()) as RebalanceProgress;
      const c = rebalanced.curated!;
      console.log(`planner: t = ${rebalanced.t} gives an expected ${rebalanced.plan?.target?.expectedPairs?.toFixed(1)} pairs (target ${target})`);
      console.log(`curated set ${c.setId}: ${c.selected} pairs, ${c.images} images`);
      console.log(`datacard: npx curate datacard ${config.runId} --set ${c.setId}`);
      for (const f of c.figures) console.log(`  figure: ${f}`);
      console.log(`UI: ${runUiUrl(server.uiUrl, rb.workflowId)} (linked to its run by CurationSourceRunId)`);

      step('next');
      console.log(`inspect the run:    npx curate status ${config.runId}`);
      console.log(`plan sizes:         npx curate plan --run ${config.runId} --t 2,5,10,20 --target-size ${target}`);
      console.log(`rebalance again:    npx curate rebalance --run ${config.runId} --t 5 --seed 1`);
      console.log(`the dev server keeps running (UI ${server.uiUrl}); stop it with: npm run server:stop`);
    } finally {
      workers.stop();
      await workers.done;
      await images.close();
    }
  },
};

function RUN_FLAGS_DEFAULTS(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(RUN_FLAGS)) if (f.default !== undefined) out[k] = f.type === 'list' ? String(f.default).split(',') : f.default;
  return out;
}
