/**
 * `curate balance`: a local contract (spec §3–4). JSONL candidates (uuid, text, entry_ids) on stdin → the
 * selected ones on stdout, in input order, each with its selection probability "p" added.
 *
 * Selection is exactly the pipeline's final pass (sampleColumns over columnsFromRows with seedKey(seed,
 * 'final')): p[e] = 1 if count[e] < t else t / count[e]; P = 1 − Π (1 − p[e]) over the line's entry_ids in
 * the order given; selected iff drawFromKeys(seedKey, pairKey(uuid, text)) < P. One SHA-256 per line.
 */
import { readFileSync } from 'node:fs';
import { drawFromKeys, entryProbability, pairKey, seedKey } from '../../curation/balance';
import { ConfigError } from '../../curation/errors';
import { entryProbabilities, oneTextPerImage, type MatchColumns } from '../../curation/sampling';
import type { Command } from '../args';
import { LineWriter } from '../output';
import { DENSE_ID_LIMIT, entryIdsOf, forEachLine, parseObjectLine, stringField } from './counts';

const ID_KEY = /^(0|[1-9][0-9]*)$/;

/** p[e] for every entry id: dense below DENSE_ID_LIMIT, sparse above; ids absent from the counts have p = 1. */
export interface EntryP {
  dense: Float64Array;
  sparse: Map<number, number>;
}

/** Reads `{"<entry_id>": count}` (the `curate counts` form) and turns it into p[e] for threshold t. */
export function loadEntryP(file: string, t: number): EntryP {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--counts ${file}: cannot read (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--counts ${file}: not valid JSON (${(err as Error).message})`);
  }
  return entryPFromIdJson(json, t, `--counts ${file}`);
}

export function entryPFromIdJson(json: unknown, t: number, what = 'counts'): EntryP {
  const form = `expected {"<entry_id>": count} as written by 'curate counts'`;
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(`${what}: ${form}`);
  let maxDense = -1;
  const entries: Array<[number, number]> = [];
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if (!ID_KEY.test(k) || !Number.isSafeInteger(Number(k))) {
      throw new ConfigError(
        `${what}: key ${JSON.stringify(k.length > 60 ? `${k.slice(0, 60)}…` : k)} is not an entry id; ${form}. ` +
          `MetaCLIP's {"<entry string>": count} form is not accepted here (it needs the metadata to map strings to ids).`,
      );
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new ConfigError(`${what}: entry ${k} has count ${JSON.stringify(v)}, expected a non-negative integer`);
    }
    const e = Number(k);
    entries.push([e, v]);
    if (e < DENSE_ID_LIMIT && e > maxDense) maxDense = e;
  }
  const counts = new Float64Array(maxDense + 1);
  const sparse = new Map<number, number>();
  for (const [e, c] of entries) {
    if (e < DENSE_ID_LIMIT) counts[e] = c;
    else sparse.set(e, entryProbability(c, t));
  }
  return { dense: entryProbabilities(counts, t), sparse };
}

/** 1 − Π (1 − p[e]) over `ids` in the given order, computed as sampleColumns does. */
export function selectionProbability(ids: readonly number[], p: EntryP): number {
  const { dense, sparse } = p;
  let keepNone = 1;
  for (let j = 0; j < ids.length; j++) {
    const e = ids[j];
    const pe = e < dense.length ? dense[e] : sparse.size ? (sparse.get(e) ?? 1) : 1;
    if (pe >= 1) {
      keepNone = 0;
      break;
    }
    keepNone *= 1 - pe;
  }
  return 1 - keepNone;
}

/**
 * The output line: the input object as written (fields, order and formatting kept) with `"p": P` appended.
 * An input that already has a "p" field gets it replaced (re-serialized, so the other fields keep their values).
 */
export function withP(raw: string, hasP: boolean, p: number): string {
  if (hasP) {
    const obj = JSON.parse(raw) as Record<string, unknown>;
    obj.p = p;
    return JSON.stringify(obj);
  }
  return `${raw.slice(0, raw.lastIndexOf('}'))},"p":${JSON.stringify(p)}}`;
}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

export const command: Command = {
  name: 'balance',
  summary: 'Balance JSONL candidates on stdin with counts and threshold t; writes the selected ones with "p" (spec §3–4)',
  usage: [
    'balance --counts C.json --t N --seed S [--one-text-per-image] < matched.jsonl > selected.jsonl',
    '',
    'input:  JSONL on stdin, one object per line with "uuid" (string), "text" (string) and "entry_ids"',
    '        (array of non-negative integers); other fields are carried through; blank lines skipped.',
    'output: the selected objects, one per line, in input order: each input object as written with "p" added',
    '        (an existing "p" is replaced), p = 1 − Π (1 − p[e]) over its entry_ids in the given order,',
    '        p[e] = 1 if count[e] < t else t / count[e] (ids absent from the counts: p[e] = 1).',
    '        Selected iff u < p, u = uniformDraw(seed, uuid, text, "final"): deterministic, nested in t.',
    'memory: streams line by line; --one-text-per-image buffers all of stdin (it needs every text of an image).',
    'errors: bad JSON or missing/ill-typed fields stop with "line N: …" on stderr and exit code 2 (when',
    '        streaming, stdout holds the selections from the lines before it; buffered, nothing).',
  ].join('\n'),
  flags: {
    counts: { type: 'string', help: 'entry counts JSON {"<entry_id>": count}, as written by `curate counts`' },
    t: { type: 'number', help: 'balancing threshold t (> 0)' },
    seed: { type: 'string', help: 'sampling seed (any string; the draw is hash(seed, uuid, text))' },
    'one-text-per-image': {
      type: 'boolean',
      help: 'MetaCLIP v2: among lines with the same uuid only one seeded pick is a candidate (buffers stdin)',
    },
  },
  async run({ positional, flags }) {
    if (positional.length > 0) throw new ConfigError(`balance takes no positional arguments (got ${positional.join(' ')}); it reads JSONL on stdin`);
    if (typeof flags.counts !== 'string' || flags.counts === '') throw new ConfigError("balance needs --counts C.json ({\"<entry_id>\": count}, e.g. from 'curate counts')");
    if (typeof flags.t !== 'number') throw new ConfigError('balance needs --t N (the balancing threshold, > 0)');
    if (!(flags.t > 0)) throw new ConfigError(`--t must be > 0, got ${flags.t}`);
    if (typeof flags.seed !== 'string') throw new ConfigError('balance needs --seed S (the sampling seed, any string)');
    const t = flags.t;
    const seed = flags.seed;
    const p = loadEntryP(flags.counts, t);
    const finalKey = seedKey(seed, 'final');
    const out = new LineWriter();
    const pending: string[] = [];
    const drain = async (): Promise<boolean> => {
      for (const s of pending) await out.line(s);
      pending.length = 0;
      return out.isClosed;
    };

    try {
      if (flags['one-text-per-image'] !== true) {
        await forEachLine(
          process.stdin,
          (line, lineNo) => {
            const raw = line.trim();
            const obj = parseObjectLine(raw, lineNo);
            if (!obj) return;
            const uuid = stringField(obj, 'uuid', lineNo);
            const text = stringField(obj, 'text', lineNo);
            const prob = selectionProbability(entryIdsOf(obj, lineNo), p);
            if (prob <= 0) return; // u ≥ 0: never selected
            const k = pairKey(uuid, text);
            if (drawFromKeys(finalKey.hi, finalKey.lo, k.hi, k.lo) < prob) pending.push(withP(raw, hasOwn(obj, 'p'), prob));
          },
          drain,
        );
        await drain();
      } else {
        // Buffered: the pick among an image's texts needs all of them.
        const raws: string[] = [];
        const hasP: boolean[] = [];
        const uuids: string[] = [];
        const hi: number[] = [];
        const lo: number[] = [];
        const probs: number[] = [];
        await forEachLine(process.stdin, (line, lineNo) => {
          const raw = line.trim();
          const obj = parseObjectLine(raw, lineNo);
          if (!obj) return;
          const uuid = stringField(obj, 'uuid', lineNo);
          const text = stringField(obj, 'text', lineNo);
          probs.push(selectionProbability(entryIdsOf(obj, lineNo), p));
          const k = pairKey(uuid, text);
          raws.push(raw);
          hasP.push(hasOwn(obj, 'p'));
          uuids.push(uuid);
          hi.push(k.hi);
          lo.push(k.lo);
        });
        const n = raws.length;
        const keyHi = Uint32Array.from(hi);
        const keyLo = Uint32Array.from(lo);
        // oneTextPerImage reads only the pair keys; entry matches are not needed for the pick.
        const cols: MatchColumns = { n, offsets: new Uint32Array(n + 1), entryIds: new Int32Array(0), keyHi, keyLo };
        const eligible = oneTextPerImage(uuids, cols, seedKey(seed, 'pick'));
        for (let i = 0; i < n; i++) {
          if (!eligible[i] || !(drawFromKeys(finalKey.hi, finalKey.lo, keyHi[i], keyLo[i]) < probs[i])) continue;
          pending.push(withP(raws[i], hasP[i], probs[i]));
          if (pending.length >= 4096 && (await drain())) break;
        }
        await drain();
      }
    } finally {
      // On an input error too: what was selected before the bad line is written, then the error is reported.
      await drain();
      await out.flush();
    }
  },
};
