/**
 * Telling a user why a run cannot progress, from what the Temporal server knows:
 *
 * - a workflow task that keeps failing (a payload over the 2 MiB limit, a bug thrown from workflow code, a
 *   non-deterministic change) leaves the workflow RUNNING forever while the worker retries the task. The
 *   server shows it as the pending workflow task's attempt count, the `TemporalReportedProblems` search
 *   attribute (once enough attempts failed in a row, when the server has it enabled), and the
 *   WorkflowTaskFailed event of the first failure near the end of the history (later attempts of the same
 *   task are not written to the history). `diagnoseRun` looks at the run's root workflow and its pending
 *   children, reading only the last events of each history (so a history too big for one gRPC message is
 *   no obstacle);
 * - a start the server refuses: the SDK's error says only "Failed to start Workflow"; the server's reason
 *   is in its gRPC cause (`explainStartError`).
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

/** A pending workflow task failing this many attempts in a row means the workflow cannot progress on its own. */
export const STUCK_TASK_ATTEMPTS = 3;
/** Activities retried this often are reported (informational: they may still succeed). */
export const RETRYING_ACTIVITY_ATTEMPTS = 3;
/** Children of a workflow examined at most (a run has a few batches and buckets in flight). */
const MAX_CHILDREN = 50;
/** Characters of a failure message shown (messages can carry input: a corrupt header, a URL). */
const MAX_MESSAGE = 500;

export interface StuckWorkflow {
  workflowId: string;
  runId?: string;
  workflowType?: string;
  /** Attempt of the pending workflow task (1 = first try). */
  attempt: number;
  /** When the first attempt of the failing task was scheduled. */
  since?: Date;
  /** The failure cause, e.g. `PAYLOADS_TOO_LARGE`, `WORKFLOW_WORKER_UNHANDLED_FAILURE`, `NON_DETERMINISTIC_ERROR`. */
  cause?: string;
  /** The failure message (capped), e.g. `[TMPRL1103] Attempted to upload payloads with size that exceeded the error limit.` */
  message?: string;
  /** Failure type (an ApplicationFailure's type), e.g. `PayloadsTooLarge`. */
  failureType?: string;
  /** The server's `TemporalReportedProblems` values, e.g. `category=WorkflowTaskFailed`, `cause=WorkflowTaskFailedCausePayloadsTooLarge`. */
  reportedProblems: string[];
  /** What the cause usually means for this project, when known. */
  hint?: string;
}

export interface RetryingActivity {
  workflowId: string;
  activityType: string;
  attempt: number;
  lastFailure?: string;
}

export interface RunDiagnosis {
  /** Workflows (the root, its children) whose workflow task keeps failing: the run cannot progress. */
  stuck: StuckWorkflow[];
  /** Activities retried at least RETRYING_ACTIVITY_ATTEMPTS times, with their last failure. */
  retrying: RetryingActivity[];
}

/** `status` exits with this code when the run cannot progress (1: other errors, 2: bad arguments, 3: corrupt input). */
export const STUCK_EXIT_CODE = 4;

export class StuckRunError extends Error {
  readonly exitCode = STUCK_EXIT_CODE;
  constructor(readonly diagnosis: RunDiagnosis) {
    const s = diagnosis.stuck[0];
    super(`the run cannot progress: workflow ${s.workflowId}'s workflow task failed ${s.attempt} times in a row` +
      `${s.cause ? ` (${s.cause})` : ''}${s.message ? `: ${s.message}` : ''}`);
    this.name = 'StuckRunError';
  }
}

const HINTS: Record<string, string> = {
  PAYLOADS_TOO_LARGE: 'a workflow input, result or continue-as-new state exceeded Temporal\'s 2 MiB payload limit; the task fails the same way on every retry',
  NON_DETERMINISTIC_ERROR: 'the workflow code changed under a running workflow (its history no longer replays); run the code it was started with',
  WORKFLOW_WORKER_UNHANDLED_FAILURE: 'the workflow code threw an error that is not an ApplicationFailure (a bug, or an oversized value); it is retried until the code is fixed',
};

/** One line, capped: failure messages can carry input (a corrupt header value, a URL). */
export function oneLine(text: string, max = MAX_MESSAGE): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}… (${flat.length} characters)` : flat;
}

function enumName(e: Record<number, string>, value: unknown, prefix: string): string | undefined {
  const name = typeof value === 'number' ? e[value] : typeof value === 'string' ? value : undefined;
  return name?.startsWith(prefix) ? name.slice(prefix.length) : name;
}

function toDate(t: { seconds?: unknown; nanos?: number | null } | null | undefined): Date | undefined {
  if (!t || t.seconds === undefined || t.seconds === null) return undefined;
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
}

/** The `TemporalReportedProblems` keyword list, when the server set it. */
function reportedProblems(info: temporal.api.workflow.v1.IWorkflowExecutionInfo | null | undefined): string[] {
  const payload = info?.searchAttributes?.indexedFields?.TemporalReportedProblems;
  if (!payload?.data) return [];
  try {
    const value = JSON.parse(Buffer.from(payload.data).toString('utf8')) as unknown;
    return (Array.isArray(value) ? value : [value]).map(String);
  } catch {
    return [];
  }
}

type Describe = temporal.api.workflowservice.v1.IDescribeWorkflowExecutionResponse;

async function describe(client: Client, workflowId: string, runId?: string): Promise<Describe | null> {
  try {
    return await client.workflowService.describeWorkflowExecution({ namespace: client.options.namespace, execution: { workflowId, runId } });
  } catch (err) {
    if ((err as { code?: number }).code === 5) return null; // NOT_FOUND
    throw err;
  }
}

/** The last WorkflowTaskFailed event among the last events of the run's history (read newest first, one small page). */
async function lastWorkflowTaskFailure(client: Client, workflowId: string, runId?: string) {
  const res = await client.workflowService.getWorkflowExecutionHistoryReverse({
    namespace: client.options.namespace, execution: { workflowId, runId }, maximumPageSize: 20,
  });
  for (const e of res.history?.events ?? []) {
    if (e.workflowTaskFailedEventAttributes) return e.workflowTaskFailedEventAttributes;
  }
  return null;
}

function stuckFrom(workflowId: string, d: Describe, minAttempts: number): Omit<StuckWorkflow, 'cause' | 'message' | 'failureType' | 'hint'> | null {
  const info = d.workflowExecutionInfo;
  if (info?.status !== temporal.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING) return null;
  const attempt = d.pendingWorkflowTask?.attempt ?? 0;
  const problems = reportedProblems(info);
  if (attempt < minAttempts && problems.length === 0) return null;
  return {
    workflowId, runId: info.execution?.runId ?? undefined, workflowType: info.type?.name ?? undefined, attempt,
    since: toDate(d.pendingWorkflowTask?.originalScheduledTime), reportedProblems: problems,
  };
}

/**
 * The workflow's failing workflow task, or null when its task is not failing (or the workflow is not running
 * or not found). `minAttempts`: how many attempts in a row count as stuck (the server's
 * `TemporalReportedProblems` counts regardless).
 */
export async function describeStuckWorkflow(client: Client, workflowId: string, minAttempts = STUCK_TASK_ATTEMPTS, described?: Describe): Promise<StuckWorkflow | null> {
  const d = described ?? (await describe(client, workflowId));
  if (!d) return null;
  const stuck = stuckFrom(workflowId, d, minAttempts);
  if (!stuck) return null;
  const out: StuckWorkflow = { ...stuck };
  try {
    const failed = await lastWorkflowTaskFailure(client, workflowId, stuck.runId);
    if (failed) {
      out.cause = enumName(temporal.api.enums.v1.WorkflowTaskFailedCause, failed.cause, 'WORKFLOW_TASK_FAILED_CAUSE_');
      if (failed.failure?.message) out.message = oneLine(failed.failure.message);
      const type = failed.failure?.applicationFailureInfo?.type;
      if (type) out.failureType = type;
    }
  } catch {
    /* the history is not readable: the attempt count and reported problems still tell */
  }
  if (!out.cause) {
    const c = out.reportedProblems.find((p) => p.startsWith('cause='));
    if (c) out.cause = c.slice('cause='.length).replace(/^WorkflowTaskFailedCause/, '');
  }
  const hintKey = out.cause?.replace(/(?<=[a-z])(?=[A-Z])/g, '_').toUpperCase();
  out.hint = out.cause ? HINTS[out.cause] ?? (hintKey ? HINTS[hintKey] : undefined) : undefined;
  return out;
}

/**
 * The run's root workflow and its pending children (and theirs, one level down): which cannot progress
 * (a workflow task failing in a loop), and which activities keep retrying.
 */
export async function diagnoseRun(client: Client, workflowId: string, minAttempts = STUCK_TASK_ATTEMPTS): Promise<RunDiagnosis> {
  const out: RunDiagnosis = { stuck: [], retrying: [] };
  let frontier = [workflowId];
  for (let depth = 0; depth < 3 && frontier.length; depth++) {
    const next: string[] = [];
    for (const id of frontier) {
      const d = await describe(client, id);
      if (!d) continue;
      const stuck = await describeStuckWorkflow(client, id, minAttempts, d);
      if (stuck) out.stuck.push(stuck);
      for (const a of d.pendingActivities ?? []) {
        if ((a.attempt ?? 0) >= RETRYING_ACTIVITY_ATTEMPTS) {
          out.retrying.push({
            workflowId: id, activityType: a.activityType?.name ?? '?', attempt: a.attempt ?? 0,
            lastFailure: a.lastFailure?.message ? oneLine(a.lastFailure.message) : undefined,
          });
        }
      }
      for (const c of (d.pendingChildren ?? []).slice(0, MAX_CHILDREN)) if (c.workflowId) next.push(c.workflowId);
    }
    frontier = next;
  }
  return out;
}

/** Lines for `status`. */
export function formatDiagnosis(d: RunDiagnosis): string[] {
  const lines: string[] = [];
  for (const s of d.stuck) {
    const since = s.since ? ` since ${s.since.toISOString()}` : '';
    lines.push(`STUCK: workflow ${s.workflowId}${s.workflowType ? ` (${s.workflowType})` : ''}: its workflow task failed ${s.attempt} times in a row${since}; the run cannot progress`);
    if (s.cause) lines.push(`  cause: ${s.cause}${s.failureType ? ` (${s.failureType})` : ''}`);
    if (s.message) lines.push(`  failure: ${s.message}`);
    if (s.reportedProblems.length) lines.push(`  TemporalReportedProblems: ${s.reportedProblems.join(', ')}`);
    if (s.hint) lines.push(`  what it means: ${s.hint}`);
  }
  for (const a of d.retrying) {
    lines.push(`retrying: activity ${a.activityType} of ${a.workflowId}, attempt ${a.attempt}${a.lastFailure ? `; last failure: ${a.lastFailure}` : ''}`);
  }
  return lines;
}

const GRPC_CODES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

/**
 * Why a workflow start failed, in one line: the server's own reason (e.g. `Blob data size exceeds limit.`,
 * `WorkflowId exceeds maximum allowed length (2000/1000)`) from the error's gRPC cause, with its status
 * code, instead of the SDK's bare "Failed to start Workflow".
 */
export function explainStartError(err: unknown): string {
  if (err instanceof WorkflowExecutionAlreadyStartedError) return `${err.message}: workflow ${err.workflowId} (${err.workflowType}) exists already; choose another run id`;
  const top = err instanceof Error ? err.message : String(err);
  let reason: string | undefined;
  let code: string | undefined;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { details, code: c } = e as { details?: unknown; code?: unknown };
    if (typeof details === 'string' && details.trim()) {
      reason = details.trim();
      if (typeof c === 'number') code = GRPC_CODES[c] ?? String(c);
      break;
    }
    if (depth > 0 && e instanceof Error && e.message) reason ??= e.message;
  }
  if (!reason || reason === top) return top;
  let line = `${top}: ${oneLine(reason)}${code ? ` (${code})` : ''}`;
  if (/blob data size exceeds limit/i.test(reason)) line += ' — the workflow input is over the server\'s payload limit (2 MiB by default)';
  return line;
}
