/**
 * What a run costs Temporal, read from its recorded histories: the largest payload, the longest and the
 * largest history (root and child workflows separately), and the workflow / activity tasks and activity
 * time they record. Used by `bench scale` and reusable by tests that assert the payload and history budget.
 *
 * A history is accepted as the SDK returns it (`WorkflowHandle.fetchHistory()`, protobufjs objects) or as
 * proto JSON (a string or a parsed object), the form `temporal workflow show --output json` and the Web UI
 * export write. Sizes are protobuf-encoded sizes: a payload is one `temporal.api.common.v1.Payload` (data plus
 * metadata), a history's bytes are the encoded `History` message (what a client receives; the server's own
 * `historySizeBytes` is within a few percent of it).
 */
// @temporalio/proto comes with @temporalio/client and @temporalio/common (the copy the client decodes with).
import * as protoModule from '@temporalio/proto';
import { temporal } from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

type IHistory = temporal.api.history.v1.IHistory;
type IHistoryEvent = temporal.api.history.v1.IHistoryEvent;
type IPayload = temporal.api.common.v1.IPayload;

const History = temporal.api.history.v1.History;
const Payload = temporal.api.common.v1.Payload;
const EventType = temporal.api.enums.v1.EventType;

/** The budget of issue 10: no payload over 256 KB, no workflow execution over 4,000 events or 4 MB of history. */
export const DEFAULT_BUDGET = { payloadBytes: 256 * 1024, events: 4_000, historyBytes: 4 * 1024 * 1024 } as const;
export type Budget = { payloadBytes: number; events: number; historyBytes: number };

export interface HistoryInput {
  workflowId: string;
  runId?: string;
  /** SDK history object, or its proto JSON (string or parsed). */
  history: IHistory | string | unknown;
}

export interface PayloadSpot {
  bytes: number;
  workflowId: string;
  runId: string;
  eventId: number;
  eventType: string;
}

export interface WorkflowFigures {
  workflowId: string;
  runId: string;
  type: string;
  /** root: no parent workflow (each continue-as-new run of the root is a root execution). */
  role: 'root' | 'child';
  events: number;
  bytes: number;
  largestPayload: number;
  largestPayloadEvent: string;
  workflowTasks: number;
  activityTasks: number;
  childWorkflows: number;
  /** Σ (activity closed − activity started) over the activities that closed in this history. */
  activitySeconds: number;
  /** Last event: WorkflowExecutionCompleted, ContinuedAsNew, Failed, … (or the last event of an open one). */
  lastEvent: string;
}

export interface Extremes {
  executions: number;
  maxEvents: { events: number; workflowId: string; runId: string } | null;
  maxBytes: { bytes: number; workflowId: string; runId: string } | null;
  largestPayload: PayloadSpot | null;
}

export interface HistoryBudget extends Extremes {
  byRole: { root: Extremes; child: Extremes };
  /** Per workflow type (curation, shardBatch, bucketTasks, …). */
  byType: Record<string, Extremes>;
  totals: {
    events: number;
    bytes: number;
    workflowTasks: number;
    activityTasks: number;
    childWorkflows: number;
    activitySeconds: number;
    /** Event counts by type name (WorkflowTaskCompleted, ActivityTaskScheduled, …). */
    eventTypes: Record<string, number>;
  };
  perWorkflow: WorkflowFigures[];
}

export interface BudgetCheck {
  what: string;
  limit: number;
  actual: number;
  ok: boolean;
  where: string;
}

/** `EVENT_TYPE_ACTIVITY_TASK_SCHEDULED` / 10 → `ActivityTaskScheduled`. */
export function eventTypeName(t: unknown): string {
  const raw = typeof t === 'number' ? (EventType as unknown as Record<number, string>)[t] ?? String(t) : String(t ?? 'UNSPECIFIED');
  if (!raw.startsWith('EVENT_TYPE_')) return raw;
  return raw
    .slice('EVENT_TYPE_'.length)
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _u: string, c: string) => c.toUpperCase());
}

function toNumber(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  if (typeof (v as { toNumber?: unknown }).toNumber === 'function') return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

/** Event time in seconds since the epoch (google.protobuf.Timestamp as decoded by protobufjs). */
export function eventSeconds(e: IHistoryEvent): number {
  const t = e.eventTime;
  if (!t) return NaN;
  return toNumber(t.seconds) + toNumber(t.nanos) / 1e9;
}

// ---------------------------------------------------------------------------------------------------------
// proto JSON → SDK objects. @temporalio/common's historyFromJSON would do, but with this lockfile it loads a
// second copy of protobufjs and fails ("type must be a Type"), so the conversion is done here, driven by the
// reflection of @temporalio/proto: Timestamps and Durations are parsed, enum short names (as the UI exports
// them) get their prefix, and the rest (int64 strings, base64 bytes, enum names) is what fromObject takes.

interface ReflField { name: string; map?: boolean; repeated?: boolean; resolvedType: ReflType | ReflEnum | null; resolve(): ReflField }
interface ReflType { fullName: string; fields: Record<string, ReflField> }
interface ReflEnum { fullName: string; values: Record<string, number> }
const reflRoot = patchProtobufRoot(protoModule as unknown as Record<string, unknown>) as unknown as { lookupType(name: string): ReflType };
const HISTORY_TYPE = reflRoot.lookupType('temporal.api.history.v1.History');

/** RFC 3339 with up to 9 fractional digits → { seconds, nanos }. */
function parseTimestamp(s: string): { seconds: number; nanos: number } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i.exec(s);
  if (!m) throw new TypeError(`not an RFC 3339 timestamp: ${JSON.stringify(s)}`);
  return { seconds: Date.parse(m[1] + m[3]) / 1000, nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

/** "1.5s" → { seconds: 1, nanos: 500000000 }. */
function parseDuration(s: string): { seconds: number; nanos: number } {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) throw new TypeError(`not a proto JSON duration: ${JSON.stringify(s)}`);
  const sign = m[1] ? -1 : 1;
  return { seconds: sign * Number(m[2]), nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
}

const constantCase = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

function convertValue(field: ReflField, v: unknown): unknown {
  const rt = field.resolvedType;
  if (rt === null || v === null) return v;
  if ('values' in rt) {
    if (typeof v !== 'string' || v in rt.values) return v;
    const suffix = '_' + constantCase(v);
    return Object.keys(rt.values).find((k) => k.endsWith(suffix)) ?? v;
  }
  if (rt.fullName === '.google.protobuf.Timestamp' && typeof v === 'string') return parseTimestamp(v);
  if (rt.fullName === '.google.protobuf.Duration' && typeof v === 'string') return parseDuration(v);
  return typeof v === 'object' ? fromProtoJson(rt, v as Record<string, unknown>) : v;
}

function fromProtoJson(type: ReflType, json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    const field = type.fields[k] ?? Object.values(type.fields).find((f) => f.name === k);
    if (!field) continue; // a field this SDK does not know (newer server): ignored, as the SDK does
    field.resolve();
    if (field.map && v && typeof v === 'object') {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([mk, mv]) => [mk, convertValue(field, mv)]));
    } else if (field.repeated && Array.isArray(v)) out[k] = v.map((x) => convertValue(field, x));
    else out[k] = convertValue(field, v);
  }
  return out;
}

/** A history in SDK form: proto JSON (string, or an object whose event types are strings) is converted. */
export function normalizeHistory(h: unknown): IHistory {
  const obj = typeof h === 'string' ? JSON.parse(h) : h;
  if (obj === null || typeof obj !== 'object' || !Array.isArray((obj as IHistory).events)) {
    throw new TypeError('a history must be an object with an events array');
  }
  const events = (obj as IHistory).events!;
  const isJson = events.length > 0 && typeof events[0].eventType === 'string';
  return isJson ? History.fromObject(fromProtoJson(HISTORY_TYPE, obj as Record<string, unknown>)) : (obj as IHistory);
}

/** A Payload: bytes `data` and a `metadata` map (no other message in a history has both). */
function isPayload(v: object): v is IPayload {
  const o = v as { data?: unknown; metadata?: unknown };
  return o.data instanceof Uint8Array && o.metadata !== null && typeof o.metadata === 'object' && !(o.metadata instanceof Uint8Array);
}

/** Every Payload inside a value (event attributes, failures, memos, headers, search attributes). */
export function* payloadsIn(v: unknown, depth = 0): Generator<IPayload> {
  if (v === null || typeof v !== 'object' || depth > 64 || v instanceof Uint8Array) return;
  if (isPayload(v)) {
    yield v;
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) yield* payloadsIn(x, depth + 1);
    return;
  }
  for (const k of Object.keys(v)) yield* payloadsIn((v as Record<string, unknown>)[k], depth + 1);
}

export function payloadBytes(p: IPayload): number {
  return Payload.encode(p).finish().length;
}

function emptyExtremes(): Extremes {
  return { executions: 0, maxEvents: null, maxBytes: null, largestPayload: null };
}

function addTo(x: Extremes, w: WorkflowFigures, payload: PayloadSpot | null): void {
  x.executions++;
  if (!x.maxEvents || w.events > x.maxEvents.events) x.maxEvents = { events: w.events, workflowId: w.workflowId, runId: w.runId };
  if (!x.maxBytes || w.bytes > x.maxBytes.bytes) x.maxBytes = { bytes: w.bytes, workflowId: w.workflowId, runId: w.runId };
  if (payload && (!x.largestPayload || payload.bytes > x.largestPayload.bytes)) x.largestPayload = payload;
}

/** Figures of one history, and where its largest payload is. */
export function inspectHistory(input: HistoryInput): { figures: WorkflowFigures; largest: PayloadSpot | null; eventTypes: Map<string, number> } {
  const history = normalizeHistory(input.history);
  const events = history.events ?? [];
  const first = events[0];
  const started = first?.workflowExecutionStartedEventAttributes ?? null;
  const runId = input.runId ?? (started?.originalExecutionRunId ?? '');
  const figures: WorkflowFigures = {
    workflowId: input.workflowId,
    runId,
    type: started?.workflowType?.name ?? 'unknown',
    role: started?.parentWorkflowExecution?.workflowId ? 'child' : 'root',
    events: events.length,
    bytes: History.encode(history).finish().length,
    largestPayload: 0,
    largestPayloadEvent: '',
    workflowTasks: 0,
    activityTasks: 0,
    childWorkflows: 0,
    activitySeconds: 0,
    lastEvent: events.length ? eventTypeName(events[events.length - 1].eventType) : '',
  };
  let largest: PayloadSpot | null = null;
  const eventTypes = new Map<string, number>();
  const activityStart = new Map<number, number>(); // started event id → seconds
  for (const e of events) {
    const type = eventTypeName(e.eventType);
    eventTypes.set(type, (eventTypes.get(type) ?? 0) + 1);
    if (type === 'WorkflowTaskScheduled') figures.workflowTasks++;
    else if (type === 'ActivityTaskScheduled') figures.activityTasks++;
    else if (type === 'StartChildWorkflowExecutionInitiated') figures.childWorkflows++;
    else if (type === 'ActivityTaskStarted') activityStart.set(toNumber(e.eventId), eventSeconds(e));
    else if (type === 'ActivityTaskCompleted' || type === 'ActivityTaskFailed' || type === 'ActivityTaskTimedOut' || type === 'ActivityTaskCanceled') {
      const attrs = (e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ??
        e.activityTaskCanceledEventAttributes) as { startedEventId?: unknown } | null | undefined;
      const s = activityStart.get(toNumber(attrs?.startedEventId));
      const d = eventSeconds(e) - (s ?? NaN);
      if (Number.isFinite(d) && d >= 0) figures.activitySeconds += d;
    }
    for (const p of payloadsIn(e)) {
      const bytes = payloadBytes(p);
      if (bytes > figures.largestPayload) {
        figures.largestPayload = bytes;
        figures.largestPayloadEvent = type;
        largest = { bytes, workflowId: figures.workflowId, runId, eventId: toNumber(e.eventId), eventType: type };
      }
    }
  }
  return { figures, largest, eventTypes };
}

/** Accumulates histories one at a time (so a caller can fetch, add and drop them); `result()` at the end. */
export class HistoryBudgetBuilder {
  private readonly all = emptyExtremes();
  private readonly root = emptyExtremes();
  private readonly child = emptyExtremes();
  private readonly byType = new Map<string, Extremes>();
  private readonly eventTypes = new Map<string, number>();
  private readonly perWorkflow: WorkflowFigures[] = [];

  add(input: HistoryInput): WorkflowFigures {
    const { figures, largest, eventTypes } = inspectHistory(input);
    addTo(this.all, figures, largest);
    addTo(figures.role === 'root' ? this.root : this.child, figures, largest);
    let t = this.byType.get(figures.type);
    if (!t) this.byType.set(figures.type, (t = emptyExtremes()));
    addTo(t, figures, largest);
    for (const [k, n] of eventTypes) this.eventTypes.set(k, (this.eventTypes.get(k) ?? 0) + n);
    this.perWorkflow.push(figures);
    return figures;
  }

  result(): HistoryBudget {
    const sum = (f: (w: WorkflowFigures) => number) => this.perWorkflow.reduce((s, w) => s + f(w), 0);
    return {
      ...this.all,
      byRole: { root: this.root, child: this.child },
      byType: Object.fromEntries([...this.byType.entries()].sort(([a], [b]) => a.localeCompare(b))),
      totals: {
        events: sum((w) => w.events),
        bytes: sum((w) => w.bytes),
        workflowTasks: sum((w) => w.workflowTasks),
        activityTasks: sum((w) => w.activityTasks),
        childWorkflows: sum((w) => w.childWorkflows),
        activitySeconds: sum((w) => w.activitySeconds),
        eventTypes: Object.fromEntries([...this.eventTypes.entries()].sort(([a], [b]) => a.localeCompare(b))),
      },
      perWorkflow: this.perWorkflow,
    };
  }
}

/** Figures of a set of histories (e.g. every execution of one run): see HistoryBudget. */
export function historyBudget(histories: Iterable<HistoryInput>): HistoryBudget {
  const b = new HistoryBudgetBuilder();
  for (const h of histories) b.add(h);
  return b.result();
}

/** The budget as three checks; `ok` is false when a figure is over its limit (limits are inclusive). */
export function checkBudget(b: Extremes, limits: Budget = DEFAULT_BUDGET): BudgetCheck[] {
  const at = (x: { workflowId: string; runId: string } | null) => (x ? `${x.workflowId} (run ${x.runId})` : '-');
  const payload = b.largestPayload?.bytes ?? 0;
  const events = b.maxEvents?.events ?? 0;
  const bytes = b.maxBytes?.bytes ?? 0;
  return [
    { what: 'largest payload (bytes)', limit: limits.payloadBytes, actual: payload, ok: payload <= limits.payloadBytes,
      where: b.largestPayload ? `${at(b.largestPayload)} event ${b.largestPayload.eventId} ${b.largestPayload.eventType}` : '-' },
    { what: 'events in one history', limit: limits.events, actual: events, ok: events <= limits.events, where: at(b.maxEvents) },
    { what: 'bytes of one history', limit: limits.historyBytes, actual: bytes, ok: bytes <= limits.historyBytes, where: at(b.maxBytes) },
  ];
}
