import type { Command } from '../args';
import { CONNECTION_FLAGS, UI_URL_FLAG, connectClient, connectionFromFlags, uiLink } from '../client';
import { workersIfNeeded } from '../workers-if-needed';
import { RUN_ID, SOURCE_RUN_ID, PHASE, TASK_QUEUES } from '../../workflows/search-attributes';
import type { RetryFailedResult } from '../../workflows/images';
import { DERIVED_FLAGS, positiveInt, requireRun, resolveOutRoot } from './plan';

export const command: Command = {
  name: 'retry-failed',
  summary: "Download again only a run's retryable image failures (timeouts, resets, 5xx, 429), then refresh its pool",
  usage: 'retry-failed --run <id> [--out ROOT] [--detach]',
  flags: {
    run: { ...DERIVED_FLAGS.run, help: 'id of a finished curation run with the image stage' },
    out: DERIVED_FLAGS.out,
    'max-concurrent': DERIVED_FLAGS['max-concurrent'],
    'no-local-workers': DERIVED_FLAGS['no-local-workers'],
    detach: { type: 'boolean', help: 'print the workflow id and UI link and return without waiting' },
    ...UI_URL_FLAG,
    ...CONNECTION_FLAGS,
  },
  async run({ flags }) {
    const runId = requireRun(flags);
    const retryId = `retry-${Date.now().toString(36)}`;
    const conn = connectionFromFlags(flags);
    const client = await connectClient(conn);
    const workers = flags.detach ? { stop: async () => undefined } : await workersIfNeeded(client, conn, !flags['no-local-workers']);
    try {
      const handle = await client.workflow.start('retryFailed', {
        taskQueue: TASK_QUEUES.orchestration,
        workflowId: `retry-${runId}.${retryId}`,
        args: [{ outRoot: resolveOutRoot(flags.out), runId, retryId, maxConcurrent: positiveInt('max-concurrent', flags['max-concurrent']) }],
        memo: { sourceRunId: runId },
        staticSummary: `Retry of run ${runId}'s retryable image download failures (${retryId})`,
        typedSearchAttributes: [{ key: RUN_ID, value: `${runId}.${retryId}` }, { key: SOURCE_RUN_ID, value: runId }, { key: PHASE, value: 'images' }],
      });
      console.log(`retry ${retryId} of run ${runId}\n${uiLink(conn, flags['ui-url'], handle.workflowId)}`);
      if (flags.detach) return;
      const r = (await handle.result()) as RetryFailedResult;
      console.log(`retried ${r.retried} images: ${r.successes} downloaded, ${r.failed} failed ${JSON.stringify(r.failures)}`);
      console.log(`pool now: ${r.pairs} pairs, ${r.pooledImages} images; next: npx curate rebalance --run ${runId} --t <t>`);
    } finally {
      await workers.stop();
    }
  },
};
