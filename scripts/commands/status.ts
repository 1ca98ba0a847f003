import path from 'node:path';
import { ConfigError } from '../../curation/errors';
import { layout } from '../../curation/layout';
import { openStore } from '../../storage/store';
import type { Command } from '../args';
import type { Client } from '@temporalio/client';
import { CONNECTION_FLAGS, connectClient, connectionFromFlags, curationWorkflowId, describeRun, formatProgress, listDerivedWorkflows } from '../client';
import { ConnectionError } from '../../workers/connection';
import { diagnoseRun, formatDiagnosis, StuckRunError, type RunDiagnosis } from '../diagnose';
import { curatedSetIds } from './datacard';
import { DATA_DIR } from '../devserver';

export const command: Command = {
  name: 'status',
  summary: 'Show a run: live progress from Temporal, its manifest, its curated sets and the rebalances made from it',
  usage: 'status <runId> [--out ROOT] [--json] [--address HOST:PORT] [--namespace NS] [--profile NAME]',
  flags: {
    out: { type: 'string', help: 'output root holding runs/<runId>/ (default: the one recorded with the run)' },
    json: { type: 'boolean', help: 'print JSON' },
    ...CONNECTION_FLAGS,
  },
  async run({ positional, flags }) {
    const runId = positional[0];
    if (!runId) throw new ConfigError('status needs a run id');
    let live: Awaited<ReturnType<typeof describeRun>> = null;
    let client: Client | null = null;
    const conn = connectionFromFlags(flags);
    try {
      client = await connectClient(conn);
      live = await describeRun(client, runId);
    } catch (err) {
      // A server that is not there: the manifest still tells a lot. A TLS failure or a refused credential is a
      // setting to fix, not an outage: say so and stop.
      if (err instanceof ConnectionError && err.kind !== 'unreachable') throw err;
      console.error(`(Temporal not reachable: ${(err as Error).message}; reading the manifest only)`);
    }
    // A running workflow whose workflow task keeps failing (here or in a child) cannot progress: say so, exit 2.
    let diagnosis: RunDiagnosis | null = null;
    if (client && live?.status === 'RUNNING') {
      try {
        diagnosis = await diagnoseRun(client, curationWorkflowId(runId));
      } catch (err) {
        console.error(`(could not check the run's workflow tasks: ${(err as Error).message})`);
      }
    }
    const outRoot = (flags.out as string | undefined) ?? live?.outRoot ?? path.join(DATA_DIR, 'out');
    const store = openStore(outRoot);
    const manifestKey = layout.manifest(runId);
    const manifest = (await store.exists(manifestKey)) ? JSON.parse((await store.get(manifestKey)).toString('utf8')) : null;
    if (flags.json) {
      console.log(JSON.stringify({ workflow: live, diagnosis, manifest }, null, 2));
      if (diagnosis?.stuck.length) throw new StuckRunError(diagnosis);
      return;
    }
    if (!live && !manifest && (await curatedSetIds(outRoot, runId)).length === 0) throw new ConfigError(`no run ${runId}: not in Temporal, no manifest under ${outRoot}${flags.out ? '' : ' (pass --out ROOT for a run written elsewhere)'}`);
    if (live) console.log(`workflow: ${live.status}${live.progress ? `  ${formatProgress(live.progress)}` : ''}`);
    for (const line of diagnosis ? formatDiagnosis(diagnosis) : []) console.log(line);
    if (manifest) {
      console.log(`manifest: ${store.uri(manifestKey)} (${manifest.status})`);
      console.log(`shards: ${manifest.shards.done} done, ${manifest.shards.failed} failed of ${manifest.shards.total}`);
      for (const s of (manifest.shards.failures ?? []).slice(0, 10)) console.log(`  failed ${s.shard.id}: ${s.reason}`);
      if (manifest.shards.failed > 10 && manifest.shards.failedList) console.log(`  … every failed shard with its reason: ${store.uri(manifest.shards.failedList)}`);
      console.log(`matches: ${manifest.counts.matches} over ${manifest.counts.entries} entries (${store.uri(manifest.counts.key)})`);
      if (manifest.dedup) console.log(`dedup: ${manifest.dedup.uniquePairs} unique pairs of ${manifest.dedup.inputPairs} (${manifest.dedup.duplicatePairs} duplicates; ${manifest.dedup.uniqueImages} images) in ${manifest.dedup.buckets} buckets`);
      if (manifest.pass1) console.log(`pass 1 (t1=${manifest.pass1.t1}): ${manifest.pass1.selected} of ${manifest.pass1.considered} pairs`);
    }
    // Every curated set of the run: its own and those written by later rebalances.
    const sets = [];
    for (const id of await curatedSetIds(outRoot, runId)) sets.push(JSON.parse((await store.get(layout.curatedManifest(runId, id))).toString('utf8')));
    if (sets.length) {
      console.log(`curated sets (${sets.length}):`);
      for (const c of sets) {
        const how = c.tSource?.kind === 'target' ? `target ${c.tSource.targetSize}` : 'given t';
        console.log(`  ${c.setId.padEnd(28)} ${String(c.selected).padStart(10)} pairs  ${String(c.images).padStart(9)} images  (${how}; ${c.workflowId})  ${c.dir}`);
      }
    }
    if (client) {
      try {
        const derived = await listDerivedWorkflows(client, runId);
        if (derived.length) {
          console.log('rebalance/plan workflows from this run:');
          for (const d of derived) console.log(`  ${d.workflowId.padEnd(48)} ${d.type.padEnd(10)} ${d.status}`);
        }
      } catch {
        /* visibility not available: the store listing above is the registry */
      }
    }
    if (diagnosis?.stuck.length) throw new StuckRunError(diagnosis);
  },
};
