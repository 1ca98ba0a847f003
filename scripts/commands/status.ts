import path from 'node:path';
import { ConfigError } from '../../curation/errors';
import { layout } from '../../curation/layout';
import { openStore } from '../../storage/store';
import type { Command } from '../args';
import { connectClient, describeRun, formatProgress } from '../client';
import { DATA_DIR } from '../devserver';

export const command: Command = {
  name: 'status',
  summary: 'Show a run: live progress from Temporal, else its manifest from the output root',
  usage: 'status <runId> [--out ROOT] [--json]',
  flags: {
    out: { type: 'string', help: 'output root holding runs/<runId>/ (default: the one recorded with the run)' },
    json: { type: 'boolean', help: 'print JSON' },
  },
  async run({ positional, flags }) {
    const runId = positional[0];
    if (!runId) throw new ConfigError('status needs a run id');
    let live: Awaited<ReturnType<typeof describeRun>> = null;
    try {
      live = await describeRun(await connectClient(), runId);
    } catch (err) {
      console.error(`(Temporal not reachable: ${(err as Error).message}; reading the manifest only)`);
    }
    const outRoot = (flags.out as string | undefined) ?? live?.outRoot ?? path.join(DATA_DIR, 'out');
    const store = openStore(outRoot);
    const manifestKey = layout.manifest(runId);
    const manifest = (await store.exists(manifestKey)) ? JSON.parse((await store.get(manifestKey)).toString('utf8')) : null;
    if (flags.json) {
      console.log(JSON.stringify({ workflow: live, manifest }, null, 2));
      return;
    }
    if (!live && !manifest) throw new ConfigError(`no run ${runId}: not in Temporal, no manifest under ${outRoot}`);
    if (live) console.log(`workflow: ${live.status}${live.progress ? `  ${formatProgress(live.progress)}` : ''}`);
    if (manifest) {
      console.log(`manifest: ${store.uri(manifestKey)} (${manifest.status})`);
      console.log(`shards: ${manifest.shards.done} done, ${manifest.shards.failed} failed of ${manifest.shards.total}`);
      for (const s of manifest.shards.list.filter((x: { status: string }) => x.status === 'failed').slice(0, 10)) console.log(`  failed ${s.shard.id}: ${s.reason}`);
      console.log(`matches: ${manifest.counts.matches} over ${manifest.counts.entries} entries (${store.uri(manifest.counts.key)})`);
      console.log(`curated t=${manifest.curated.t} seed=${manifest.curated.seed}: ${manifest.curated.selected} of ${manifest.curated.candidates} pairs (expected ${manifest.curated.expected.toFixed(1)}) in ${store.uri(manifest.curated.dir)}`);
    }
  },
};
