import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ensureDefaultMetadata } from '../../curation/metadata';
import { startWorkers } from '../../workers/run';
import type { Command } from '../args';
import { connectClient, followRun, startCuration } from '../client';
import { DATA_DIR, ensureDevServer, runUiUrl } from '../devserver';
import { RUN_FLAGS, configFromFlags } from '../runconfig';
import { generateSamples } from '../samples';

const SAMPLES_DIR = path.join(DATA_DIR, 'samples');

export const command: Command = {
  name: 'demo',
  summary: 'What `npm start` runs: dev server + workers + a curation over generated sample shards, end to end',
  usage: 'demo [--sample-shards 4] [--t 20000] [--out ROOT]',
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

    step('sample shards');
    const sampleDir = path.join(SAMPLES_DIR, `n${flags['sample-shards']}`);
    if (!existsSync(sampleDir) || readdirSync(sampleDir).length === 0) {
      await generateSamples({ outDir: sampleDir, shards: flags['sample-shards'] as number, seed: 1 });
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
    const config = configFromFlags({ ...RUN_FLAGS_DEFAULTS(), ...flags, shards }, () => metadata);
    const client = await connectClient(server.address);
    const handle = await startCuration(client, config);
    const ui = runUiUrl(server.uiUrl, handle.workflowId);
    console.log(`run ${config.runId}\nTemporal UI: ${ui}`);
    try {
      const result = await followRun(handle);
      step('outputs');
      const runDir = path.join(config.outRoot, 'runs', config.runId);
      console.log(`shards: ${result.shardsDone} matched, ${result.shardsFailed} failed; ${result.matches} entry matches; ${result.selected} pairs selected at t=${config.t}`);
      console.log(`run directory: ${runDir}`);
      console.log(`  manifest.json, counts/matched.json (entry → count), shards/*/candidates.parquet, curated/t=${config.t}/seed=${config.seed}/*.parquet`);
      console.log(`inspect it: npx curate status ${config.runId}   |   UI: ${ui}`);
      console.log(`the dev server keeps running; stop it with: npm run server:stop`);
    } finally {
      workers.stop();
      await workers.done;
    }
  },
};

function RUN_FLAGS_DEFAULTS(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(RUN_FLAGS)) if (f.default !== undefined) out[k] = f.type === 'list' ? String(f.default).split(',') : f.default;
  return out;
}
