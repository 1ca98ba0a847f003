import { temporal } from '@temporalio/proto';
import { checkBudget, DEFAULT_BUDGET, eventTypeName, historyBudget, normalizeHistory } from '../scripts/history-budget';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const jsonPayload = (data: string) => ({ metadata: { encoding: b64('json/plain') }, data: b64(data) });
/** Protobuf size of that payload: metadata map entry (2 + 2+8 + 2+10 bytes) + data (tag, varint length, bytes). */
const payloadSize = (dataLen: number) => 24 + 1 + (dataLen < 128 ? 1 : dataLen < 16384 ? 2 : 3) + dataLen;

let nextId = 0;
function ev(type: string, seconds: number, attrs: Record<string, unknown> = {}) {
  const name = type[0].toLowerCase() + type.slice(1);
  return {
    eventId: String(++nextId),
    eventTime: new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + seconds * 1000).toISOString(),
    eventType: `EVENT_TYPE_${type.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`,
    [`${name}EventAttributes`]: attrs,
  };
}

/** proto JSON as `temporal workflow show --output json` writes it: a root with one activity and one child. */
function rootHistory(activityInputBytes: number) {
  nextId = 0;
  return {
    events: [
      ev('WorkflowExecutionStarted', 0, {
        workflowType: { name: 'curation' }, taskQueue: { name: 'curation-orchestration', kind: 'TASK_QUEUE_KIND_NORMAL' },
        input: { payloads: [jsonPayload(JSON.stringify({ runId: 'r1', shards: 'x'.repeat(1000) }))] },
        originalExecutionRunId: 'run-root',
      }),
      ev('WorkflowTaskScheduled', 0, { taskQueue: { name: 'curation-orchestration' } }),
      ev('WorkflowTaskStarted', 0.1, { scheduledEventId: '2' }),
      ev('WorkflowTaskCompleted', 0.2, { scheduledEventId: '2', startedEventId: '3' }),
      ev('ActivityTaskScheduled', 0.2, {
        activityId: '1', activityType: { name: 'prepareRun' }, taskQueue: { name: 'curation-io' },
        input: { payloads: [jsonPayload('y'.repeat(activityInputBytes))] }, workflowTaskCompletedEventId: '4',
      }),
      ev('ActivityTaskStarted', 1.0, { scheduledEventId: '5', attempt: 1 }),
      ev('ActivityTaskCompleted', 3.5, { scheduledEventId: '5', startedEventId: '6', result: { payloads: [jsonPayload('{"ok":true}')] } }),
      ev('WorkflowTaskScheduled', 3.5, { taskQueue: { name: 'curation-orchestration' } }),
      ev('WorkflowTaskStarted', 3.6, { scheduledEventId: '8' }),
      ev('WorkflowTaskCompleted', 3.7, { scheduledEventId: '8', startedEventId: '9' }),
      ev('StartChildWorkflowExecutionInitiated', 3.7, {
        workflowId: 'r1/match/batch-00000', workflowType: { name: 'shardBatch' }, taskQueue: { name: 'curation-orchestration' },
        workflowTaskCompletedEventId: '10', parentClosePolicy: 'PARENT_CLOSE_POLICY_ABANDON',
      }),
      ev('WorkflowExecutionCompleted', 9, { result: { payloads: [jsonPayload('{"done":1}')] }, workflowTaskCompletedEventId: '10' }),
    ],
  };
}

function childHistory() {
  nextId = 0;
  return {
    events: [
      ev('WorkflowExecutionStarted', 4, {
        workflowType: { name: 'shardBatch' }, taskQueue: { name: 'curation-orchestration' },
        parentWorkflowExecution: { workflowId: 'curation-r1', runId: 'run-root' }, input: { payloads: [jsonPayload('{"batch":0}')] },
        originalExecutionRunId: 'run-child',
      }),
      ev('WorkflowTaskScheduled', 4), ev('WorkflowTaskStarted', 4.1, { scheduledEventId: '2' }),
      ev('WorkflowTaskCompleted', 4.2, { scheduledEventId: '2', startedEventId: '3' }),
      ...[0, 1, 2].map((i) => ev('ActivityTaskScheduled', 4.2, {
        activityId: String(i), activityType: { name: 'processShard' }, taskQueue: { name: 'curation-cpu' }, input: { payloads: [jsonPayload(`{"shard":${i}}`)] },
      })),
      ev('ActivityTaskStarted', 5, { scheduledEventId: '5' }),
      ev('ActivityTaskCompleted', 5.5, { scheduledEventId: '5', startedEventId: '8' }),
      ev('ActivityTaskStarted', 5, { scheduledEventId: '6' }),
      ev('ActivityTaskFailed', 6, { scheduledEventId: '6', startedEventId: '10', failure: { message: 'boom', encodedAttributes: jsonPayload('z'.repeat(2000)) } }),
      ev('WorkflowExecutionCompleted', 7, { result: { payloads: [jsonPayload('{}')] } }),
    ],
  };
}

describe('historyBudget', () => {
  test('largest payload, events, bytes, tasks and activity time of a root and a child, from proto JSON', () => {
    const root = rootHistory(300 * 1024);
    const b = historyBudget([
      { workflowId: 'curation-r1', history: JSON.stringify(root) },
      { workflowId: 'r1/match/batch-00000', history: childHistory() },
    ]);
    expect(b.executions).toBe(2);
    expect(b.largestPayload).toEqual({ bytes: payloadSize(300 * 1024), workflowId: 'curation-r1', runId: 'run-root', eventId: 5, eventType: 'ActivityTaskScheduled' });
    expect(b.maxEvents).toEqual({ events: 12, workflowId: 'curation-r1', runId: 'run-root' });
    expect(b.maxBytes!.bytes).toBeGreaterThan(300 * 1024);
    expect(b.byRole.root.executions).toBe(1);
    expect(b.byRole.child.executions).toBe(1);
    expect(b.byRole.child.maxEvents!.events).toBe(12);
    expect(b.byRole.child.largestPayload!.bytes).toBe(payloadSize(2000)); // a failure's encoded attributes count too
    expect(Object.keys(b.byType)).toEqual(['curation', 'shardBatch']);

    const [r, c] = b.perWorkflow;
    expect(r).toMatchObject({ type: 'curation', role: 'root', events: 12, workflowTasks: 2, activityTasks: 1, childWorkflows: 1, lastEvent: 'WorkflowExecutionCompleted' });
    expect(r.activitySeconds).toBeCloseTo(2.5, 6);
    expect(c).toMatchObject({ type: 'shardBatch', role: 'child', runId: 'run-child', workflowTasks: 1, activityTasks: 3, childWorkflows: 0 });
    expect(c.activitySeconds).toBeCloseTo(1.5, 6); // one completed (0.5 s), one failed (1 s), one never started
    expect(b.totals).toMatchObject({ events: 24, workflowTasks: 3, activityTasks: 4, childWorkflows: 1 });
    expect(b.totals.eventTypes.ActivityTaskScheduled).toBe(4);
    expect(b.totals.bytes).toBe(r.bytes + c.bytes);
  });

  test('the SDK object form (as decoded from the wire) gives the same figures as its proto JSON', () => {
    const json = rootHistory(5000);
    const fromJson = historyBudget([{ workflowId: 'w', history: json }]);
    const { History } = temporal.api.history.v1;
    const wire = History.decode(History.encode(normalizeHistory(json)).finish());
    expect(typeof wire.events[0].eventType).toBe('number');
    const fromSdk = historyBudget([{ workflowId: 'w', history: wire }]);
    expect(fromSdk).toEqual(fromJson);
    expect(fromJson.largestPayload!.bytes).toBe(payloadSize(5000));
  });

  test('checkBudget: limits are inclusive and each failed check says where', () => {
    const over = historyBudget([{ workflowId: 'curation-r1', history: rootHistory(DEFAULT_BUDGET.payloadBytes) }]);
    const checks = checkBudget(over);
    expect(checks.map((c) => c.ok)).toEqual([false, true, true]);
    expect(checks[0].where).toBe('curation-r1 (run run-root) event 5 ActivityTaskScheduled');
    const at = checkBudget(over, { payloadBytes: over.largestPayload!.bytes, events: 12, historyBytes: over.maxBytes!.bytes });
    expect(at.every((c) => c.ok)).toBe(true);
    expect(checkBudget(over, { payloadBytes: 1e9, events: 11, historyBytes: 1e9 })[1]).toMatchObject({ ok: false, actual: 12, limit: 11 });
  });

  test('event type names', () => {
    expect(eventTypeName('EVENT_TYPE_ACTIVITY_TASK_SCHEDULED')).toBe('ActivityTaskScheduled');
    expect(eventTypeName(10)).toBe('ActivityTaskScheduled');
    expect(eventTypeName(1)).toBe('WorkflowExecutionStarted');
  });
});
