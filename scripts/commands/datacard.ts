import path from 'node:path';
import { formatDatacard } from '../../curation/datacard';
import { ConfigError } from '../../curation/errors';
import { layout } from '../../curation/layout';
import { openStore } from '../../storage/store';
import type { Command } from '../args';
import { DATA_DIR } from '../devserver';
import { resolveOutRoot } from './plan';

/** The curated sets of a run (set ids from their manifests), sorted. */
export async function curatedSetIds(outRoot: string, runId: string): Promise<string[]> {
  const store = openStore(outRoot);
  const root = layout.curatedRoot(runId);
  return (await store.list(root)).filter((k) => k.endsWith('/manifest.json')).map((k) => k.slice(root.length, -'/manifest.json'.length)).sort();
}

export const command: Command = {
  name: 'datacard',
  summary: "Print a curated set's datacard (sizes per stage, head/tail, top entries) and the paths of its figures",
  usage: 'datacard <runId> [--set t=20000/seed=0] [--out ROOT] [--json]',
  flags: {
    set: { type: 'string', help: "curated set id (default: the run's own set, else the only one)" },
    out: { type: 'string', help: 'output root holding runs/<runId>/', default: path.join(DATA_DIR, 'out') },
    json: { type: 'boolean', help: 'print the datacard JSON' },
  },
  async run({ positional, flags }) {
    const runId = positional[0];
    if (!runId) throw new ConfigError('datacard needs a run id: npx curate datacard <runId>');
    const outRoot = resolveOutRoot(flags.out);
    const store = openStore(outRoot);
    const sets = await curatedSetIds(outRoot, runId);
    if (sets.length === 0) throw new ConfigError(`run ${runId} has no curated set under ${store.uri(layout.curatedRoot(runId))}`);
    let setId = flags.set as string | undefined;
    if (!setId) {
      const manifestKey = layout.manifest(runId);
      const own = (await store.exists(manifestKey)) ? JSON.parse((await store.get(manifestKey)).toString('utf8')).curated?.setId : undefined;
      setId = own && sets.includes(own) ? own : sets[sets.length - 1];
      if (sets.length > 1) console.error(`(${sets.length} curated sets: ${sets.join(', ')}; showing ${setId}, pick one with --set)`);
    }
    if (!sets.includes(setId!)) throw new ConfigError(`run ${runId} has no curated set ${setId}; it has: ${sets.join(', ')}`);
    const card = JSON.parse((await store.get(layout.datacard(runId, setId!))).toString('utf8'));
    if (flags.json) {
      console.log(JSON.stringify(card, null, 2));
      return;
    }
    console.log(formatDatacard(card));
    console.log('');
    for (const k of (await store.list(layout.curatedDir(runId, setId!) + '/')).filter((x) => /datacard-.*\.(png|svg)$/.test(x)).sort()) {
      console.log(`figure: ${store.uri(k)}`);
    }
    console.log(`datacard: ${store.uri(layout.datacard(runId, setId!))}`);
  },
};
