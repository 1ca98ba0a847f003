import { ensureDefaultMetadata } from '../../curation/metadata';
import type { Command } from '../args';
import { CONNECTION_FLAGS, UI_URL_FLAG, connectClient, connectionFromFlags, followRun, startCuration, uiLink } from '../client';
import { explainStartError } from '../diagnose';
import { RUN_FLAGS, configFromFlags } from '../runconfig';

export const command: Command = {
  name: 'start',
  summary: 'Start a curation run on the Temporal server (workers must be running: npm run worker)',
  usage: 'start --shards <paths | list file | dir | glob> [--out ROOT] [--metadata M.json] [--t 20000] [--seed S] [--detach]',
  flags: {
    ...RUN_FLAGS,
    detach: { type: 'boolean', help: 'print the run id and UI link and return without waiting' },
    ...UI_URL_FLAG,
    ...CONNECTION_FLAGS,
  },
  async run({ flags }) {
    const config = configFromFlags(flags, ensureDefaultMetadata);
    const conn = connectionFromFlags(flags);
    const client = await connectClient(conn);
    const handle = await startCuration(client, config).catch((err: unknown) => {
      // The SDK says only "Failed to start Workflow"; the server's reason is in the gRPC cause.
      throw new Error(explainStartError(err), { cause: err });
    });
    console.log(`run ${config.runId}: ${config.shards.length} shards → ${config.outRoot}/runs/${config.runId}/`);
    console.log(uiLink(conn, flags['ui-url'], handle.workflowId));
    if (flags.detach) {
      console.log(`follow it with: npx curate status ${config.runId}`);
      return;
    }
    const result = await followRun(handle);
    console.log(`done: ${result.shardsDone} shards matched, ${result.shardsFailed} failed, ${result.selected} pairs selected`);
    if (result.manifest) console.log(`manifest: ${result.manifest}`);
  },
};
