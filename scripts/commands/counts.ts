/**
 * `curate counts`: a local contract (spec §3). JSONL with `entry_ids` on stdin → one JSON object
 * `{"<entry_id>": count}` on stdout (ascending ids, non-zero counts only, then a newline).
 *
 * Also home of the JSONL reading and field checks shared with `curate balance`.
 */
import { StringDecoder } from 'node:string_decoder';
import { countsToIdJson } from '../../curation/counts';
import { ConfigError } from '../../curation/errors';
import type { Command } from '../args';
import { LineWriter } from '../output';

/** Entry ids below this are counted in a dense vector; larger (unusual) ids go to a sparse map. */
export const DENSE_ID_LIMIT = 1 << 24;

/**
 * Calls `onLine` for every line of `input` (1-based line numbers; a last line without a newline counts),
 * chunk by chunk. After each chunk `afterChunk` may flush output; returning true stops reading.
 */
export async function forEachLine(
  input: AsyncIterable<Buffer | string>,
  onLine: (line: string, lineNo: number) => void,
  afterChunk?: () => Promise<boolean>,
): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let parts: string[] = []; // the current, unfinished line (kept in pieces: one long line is not re-scanned)
  let lineNo = 0;
  for await (const chunk of input) {
    const s = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let nl = s.indexOf('\n');
    if (nl < 0) {
      if (s.length) parts.push(s);
      continue;
    }
    const head = s.slice(0, nl);
    onLine(parts.length ? parts.join('') + head : head, ++lineNo);
    parts = [];
    let start = nl + 1;
    while ((nl = s.indexOf('\n', start)) >= 0) {
      onLine(s.slice(start, nl), ++lineNo);
      start = nl + 1;
    }
    if (start < s.length) parts.push(s.slice(start));
    if (afterChunk && (await afterChunk())) return;
  }
  const rest = parts.join('') + decoder.end();
  if (rest.length) onLine(rest, ++lineNo);
}

/**
 * Parses one JSONL line into an object. Returns null for a blank line (skipped); throws a ConfigError
 * naming the line otherwise.
 */
export function parseObjectLine(raw: string, lineNo: number): Record<string, unknown> | null {
  if (raw === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`line ${lineNo}: not valid JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`line ${lineNo}: expected a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

/** The line's `entry_ids`, checked: an array of non-negative (safe) integers. */
export function entryIdsOf(obj: Record<string, unknown>, lineNo: number): number[] {
  const ids = obj.entry_ids;
  if (!Array.isArray(ids)) {
    throw new ConfigError(`line ${lineNo}: entry_ids must be an array of non-negative integers (${ids === undefined ? 'missing' : `got ${describe(ids)}`})`);
  }
  for (let i = 0; i < ids.length; i++) {
    const e = ids[i];
    if (typeof e !== 'number' || !Number.isSafeInteger(e) || e < 0) {
      throw new ConfigError(`line ${lineNo}: entry_ids must be an array of non-negative integers (element ${i} is ${describe(e)})`);
    }
  }
  return ids as number[];
}

/** A string field of the line, checked. */
export function stringField(obj: Record<string, unknown>, name: string, lineNo: number): string {
  const v = obj[name];
  if (typeof v !== 'string') throw new ConfigError(`line ${lineNo}: ${name} must be a string (${v === undefined ? 'missing' : `got ${describe(v)}`})`);
  return v;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** Match counts per entry id: dense (growing) below DENSE_ID_LIMIT, sparse above. */
export class IdCounter {
  private dense = new Float64Array(1024);
  private maxDense = -1;
  private readonly sparse = new Map<number, number>();

  add(ids: readonly number[]): void {
    for (let i = 0; i < ids.length; i++) {
      const e = ids[i];
      if (e < DENSE_ID_LIMIT) {
        if (e >= this.dense.length) this.grow(e);
        this.dense[e]++;
        if (e > this.maxDense) this.maxDense = e;
      } else this.sparse.set(e, (this.sparse.get(e) ?? 0) + 1);
    }
  }

  private grow(e: number): void {
    let n = this.dense.length;
    while (n <= e) n *= 2;
    const next = new Float64Array(Math.min(n, DENSE_ID_LIMIT));
    next.set(this.dense);
    this.dense = next;
  }

  /** `{"<entry_id>": count}`: non-zero counts, ascending ids (JSON.stringify keeps this order, see below). */
  toIdJson(): Record<string, number> {
    const out = countsToIdJson(this.dense.subarray(0, this.maxDense + 1));
    // Sparse ids are all ≥ DENSE_ID_LIMIT, so added in ascending order after the dense ones. Integer-like keys
    // below 2^32 − 1 are enumerated in ascending numeric order, larger ones in insertion order: ascending either way.
    for (const e of [...this.sparse.keys()].sort((a, b) => a - b)) out[String(e)] = this.sparse.get(e)!;
    return out;
  }
}

export const command: Command = {
  name: 'counts',
  summary: 'Count matches per entry id over JSONL with "entry_ids" on stdin; writes {"<entry_id>": count} (spec §3)',
  usage: [
    'counts < matched.jsonl > counts.json',
    '',
    'input:  JSONL on stdin, one object per line with "entry_ids": an array of non-negative integers',
    '        (other fields ignored, blank lines skipped). Streams line by line.',
    'output: one JSON object {"<entry_id>": count} and a newline: ids as strings in ascending numeric order,',
    '        non-zero counts only; each id in a line\'s entry_ids adds 1. Empty input gives {}.',
    'errors: bad JSON or a missing/ill-typed entry_ids stop with "line N: …" on stderr and exit code 2.',
  ].join('\n'),
  flags: {},
  async run({ positional }) {
    if (positional.length > 0) throw new ConfigError(`counts takes no arguments (got ${positional.join(' ')}); it reads JSONL on stdin`);
    // Input: one JSON object per line with "entry_ids" (non-negative integers); other fields are ignored and
    // blank lines skipped. Each id in a line's entry_ids adds 1 to that entry. Streams: memory is bounded by
    // the largest entry id, not by the input.
    const counter = new IdCounter();
    await forEachLine(process.stdin, (line, lineNo) => {
      const obj = parseObjectLine(line.trim(), lineNo);
      if (obj) counter.add(entryIdsOf(obj, lineNo));
    });
    const out = new LineWriter();
    await out.line(JSON.stringify(counter.toIdJson()));
    await out.flush();
  },
};
