import type { Command } from '../args';
import { UI_URL_FLAG, connectClient, connectionFromFlags, curationWorkflowId, startRebalance, uiLink } from '../client';
import { workersIfNeeded } from '../workers-if-needed';
import type { RebalanceProgress } from '../../workflows/rebalance';
import { ConfigError } from '../../curation/errors';
import { DERIVED_FLAGS, positiveInt, positiveNumber, requireRun, requireSeed, resolveOutRoot, formatPlan } from './plan';

export const command: Command = {
  name: 'rebalance',
  summary: 'Re-run only the final balance of a finished run with a new t, seed or target size (its own workflow)',
  usage: 'rebalance --run <id> (--t N | --target-size N) [--seed S] [--one-text-per-image] [--detach]',
  flags: {
    ...DERIVED_FLAGS,
    t: { type: 'number', help: 'balancing threshold' },
    'target-size': { type: 'number', help: 'plan first and use the t whose expected size is this many pairs' },
    detach: { type: 'boolean', help: 'print the workflow id and UI link and return without waiting' },
    ...UI_URL_FLAG,
  },
  async run({ flags }) {
    const runId = requireRun(flags);
    const hasT = flags.t !== undefined;
    const hasTarget = flags['target-size'] !== undefined;
    if (hasT === hasTarget) throw new ConfigError('give exactly one of --t N or --target-size N');
    const seed = requireSeed(flags);
    const oneText = flags['one-text-per-image'] === true;
    const t = hasT ? positiveNumber('t', flags.t) : undefined;
    const targetSize = hasTarget ? positiveInt('target-size', flags['target-size']) : undefined;
    const rebalanceId = `${runId}.rebalance-${Date.now().toString(36)}`;
    const conn = connectionFromFlags(flags);
    const client = await connectClient(conn);
    const workers = flags.detach ? { stop: async () => undefined } : await workersIfNeeded(client, conn, !flags['no-local-workers']);
    try {
      const handle = await startRebalance(client, {
        outRoot: resolveOutRoot(flags.out), runId, rebalanceId, t, targetSize, seed, oneTextPerImage: oneText,
        maxConcurrent: positiveInt('max-concurrent', flags['max-concurrent']),
      }, curationWorkflowId(runId));
      console.log(`rebalance ${rebalanceId} of run ${runId}`);
      console.log(uiLink(conn, flags['ui-url'], handle.workflowId));
      if (flags.detach) return;
      let last = '';
      const timer = setInterval(async () => {
        try {
          const p = await handle.query<RebalanceProgress>('progress');
          const line = `${p.phase.padEnd(9)} buckets ${p.bucketsDone}/${p.buckets}${p.t !== undefined ? `  t=${p.t}` : ''}`;
          if (line !== last) process.stderr.write(line + '\n');
          last = line;
        } catch {
          /* no worker yet */
        }
      }, 1000);
      const result = (await handle.result().finally(() => clearInterval(timer))) as RebalanceProgress;
      if (result.plan) console.log(formatPlan(result.plan));
      const c = result.curated!;
      console.log(`curated set ${c.setId}: ${c.selected} pairs (${c.images} images; expected ${c.expected.toFixed(1)}) of ${c.considered} candidates`);
      if (targetSize !== undefined) console.log(`target ${targetSize}: off by ${(((c.selected - targetSize) / targetSize) * 100).toFixed(2)}%`);
      console.log(`data: ${c.dir}/part-*.parquet`);
      console.log(`datacard: ${c.datacard}`);
      for (const f of c.figures) console.log(`figure: ${f}`);
    } finally {
      await workers.stop();
    }
  },
};
