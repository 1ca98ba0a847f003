/**
 * Test-only workflows for test/diagnose.workflow.test.ts: ones whose workflow task fails on every attempt (a
 * plain Error thrown from the workflow body fails the task, not the workflow, so Temporal retries it
 * forever), and one that waits (after a continue-as-new) until it is told to finish.
 */
import { condition, continueAsNew, defineSignal, executeChild, setHandler, workflowInfo } from '@temporalio/workflow';

export async function stuckWorkflow(reason: string): Promise<void> {
  throw new Error(reason);
}

export const finish = defineSignal('finish');

/** Continues as new once (like a long curation run), then waits for `finish`. */
export async function waitingWorkflow(continued = false): Promise<string> {
  let done = false;
  setHandler(finish, () => void (done = true));
  if (!continued) await continueAsNew<typeof waitingWorkflow>(true);
  await condition(() => done);
  return workflowInfo().runId;
}

/** Continues as new with an input over Temporal's 2 MiB payload limit: the task that does it fails on every attempt. */
export async function oversizedContinueWorkflow(size: number, _padding = ''): Promise<void> {
  await continueAsNew<typeof oversizedContinueWorkflow>(size, 'x'.repeat(size));
}

/** A parent whose child's workflow task keeps failing: the parent itself is healthy, waiting on the child. */
export async function parentOfStuckWorkflow(reason: string): Promise<void> {
  await executeChild(stuckWorkflow, { args: [reason], workflowId: `${workflowInfo().workflowId}.child` });
}
