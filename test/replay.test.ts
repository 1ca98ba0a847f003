/**
 * Replay: the recorded histories of real runs (test/fixtures/histories, made by `npx curate record-histories`:
 * a curation with images that continued as new, its batch and bucket children, a rebalance, a plan, a
 * retry-failed) must replay against today's workflow code. A change that is not deterministic with respect to
 * them fails here, before it can break a running curation.
 */
import { Worker } from '@temporalio/worker';
import { HISTORY_FIXTURES, readHistoryFixtures } from '../scripts/histories';

jest.setTimeout(300_000);

test('every recorded workflow history replays against the current workflow code', async () => {
  const fixtures = readHistoryFixtures(HISTORY_FIXTURES);
  const types = new Set(fixtures.map((f) => f.name.split('--')[0]));
  // Every workflow type of the project is covered.
  for (const t of ['curation', 'shardBatch', 'bucketTasks', 'rebalance', 'plan', 'retryFailed']) expect(types).toContain(t);
  let replayed = 0;
  const failures: string[] = [];
  for await (const r of Worker.runReplayHistories({ workflowsPath: require.resolve('../workflows') }, fixtures.map((f) => ({ workflowId: f.workflowId, history: f.history })))) {
    replayed++;
    if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(fixtures.length);
});
