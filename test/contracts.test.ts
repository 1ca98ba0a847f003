/**
 * The local contracts `curate counts` and `curate balance`, run as the real CLI (`node bin/curate.js`) with
 * JSONL on stdin, and cross-checked in-process against the core (curation/balance, counts, sampling).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { seedKey, uniformDraw } from '../curation/balance';
import { countsFromIdJson, countsToIdJson } from '../curation/counts';
import { columnsFromRows, countMatches, entryProbabilities, entryRange, oneTextPerImage, sampleColumns } from '../curation/sampling';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'curate.js');

interface Row {
  uuid: string;
  text: string;
  entry_ids: number[];
  [k: string]: unknown;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function curate(args: string[], input: string): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, input, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: string[], input: string): string {
  const r = curate(args, input);
  if (r.status !== 0) throw new Error(`curate ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const jsonl = (rows: readonly object[]) => rows.map((r) => JSON.stringify(r) + '\n').join('');
const parseLines = (out: string) => out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Row & { p: number });

let tmp: string;
function writeCounts(name: string, json: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  return file;
}

/** Deterministic generator: texts with skewed (Zipf-like) entry matches, several texts per image. */
function generate(n: number, seed = 1, textsPerImage = 1): Row[] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const k = Math.floor(rnd() * 4); // 0..3 matches (0: never selected)
    const ids: number[] = [];
    for (let j = 0; j < k; j++) ids.push(Math.floor(300 * rnd() ** 3)); // low ids are heavy heads
    rows.push({ uuid: `img-${Math.floor(i / textsPerImage)}`, url: `https://example.com/${i}.jpg`, text: `text ${i} ${rnd().toString(36).slice(2, 8)}`, entry_ids: ids });
  }
  return rows;
}

/** The core's selection: sampleColumns over columnsFromRows with seedKey(seed, 'final'). */
function coreSelection(rows: Row[], countsJson: Record<string, number>, t: number, seed: string, oneText = false) {
  const cols = columnsFromRows(rows);
  const size = Math.max(entryRange(cols), ...Object.keys(countsJson).map((k) => Number(k) + 1));
  const p = entryProbabilities(countsFromIdJson(countsJson, size), t);
  const eligible = oneText ? oneTextPerImage(rows.map((r) => r.uuid), cols, seedKey(seed, 'pick')) : undefined;
  return sampleColumns(cols, p, seedKey(seed, 'final'), eligible);
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'curate-contracts-'));
  // `npm test` builds dist/ first; when run directly after a source change, build once here rather than
  // inside the first CLI call.
  const { buildIsStale } = require(path.join(ROOT, 'bin', 'freshness.js'));
  if (buildIsStale()) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'setup.js'), '--quiet'], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`setup/build failed: ${r.stderr}`);
  }
}, 300_000);

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('curate counts', () => {
  test('hand example: exact output bytes (ascending numeric ids, duplicates count, blank lines skipped)', () => {
    const input = '{"entry_ids":[3,1]}\n\n{"uuid":"x","text":"t","entry_ids":[1,10,1]}\r\n   \n{"entry_ids":[]}\n{"entry_ids":[10]}';
    expect(ok(['counts'], input)).toBe('{"1":3,"3":1,"10":2}\n');
  });

  test('empty input gives {}', () => {
    expect(ok(['counts'], '')).toBe('{}\n');
    expect(ok(['counts'], '\n\n  \n')).toBe('{}\n');
    expect(ok(['counts'], '{"entry_ids":[]}\n')).toBe('{}\n');
  });

  test('large ids keep ascending order', () => {
    const input = jsonl([{ entry_ids: [4294967296, 5] }, { entry_ids: [20000000, 5, 4294967295] }]);
    expect(ok(['counts'], input)).toBe('{"5":2,"20000000":1,"4294967295":1,"4294967296":1}\n');
  });

  test('equals the core count (countMatches + countsToIdJson) on generated input', () => {
    const rows = generate(3000, 7);
    const cols = columnsFromRows(rows);
    const expected = JSON.stringify(countsToIdJson(countMatches(cols, new Float64Array(entryRange(cols))))) + '\n';
    expect(ok(['counts'], jsonl(rows))).toBe(expected);
  });

  test.each([
    ['{"entry_ids":[1]}\n{"entry_ids":[1]\n', 'line 2: not valid JSON'],
    ['{"entry_ids":[1]}\n\n{"text":"no ids"}\n', 'line 3: entry_ids must be an array of non-negative integers'],
    ['{"entry_ids":[1, -1]}\n', 'line 1: entry_ids must be an array of non-negative integers'],
    ['{"entry_ids":[1.5]}\n', 'line 1: entry_ids must be an array of non-negative integers'],
    ['{"entry_ids":["3"]}\n', 'line 1: entry_ids must be an array of non-negative integers'],
    ['{"entry_ids":3}\n', 'line 1: entry_ids must be an array of non-negative integers'],
    ['[1,2]\n', 'line 1: expected a JSON object'],
  ])('bad input %j fails with %j', (input, message) => {
    const r = curate(['counts'], input);
    expect(r.status).toBe(2); // ConfigError
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  test('--help documents the contract; unknown options are errors', () => {
    expect(ok(['counts', '--help'], '')).toContain('{"<entry_id>": count}');
    const r = curate(['counts', '--t', '3'], '');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('unknown option --t');
  });
});

describe('curate balance', () => {
  // t = 2: p[1] = 2/8 = 0.25, p[2] = 2/4 = 0.5, p[3] = 1 (count 1 < t), entries absent from the counts: p = 1.
  const COUNTS = { '1': 8, '2': 4, '3': 1 };
  const HAND: Array<Row & { expectP: number }> = [
    { uuid: 'a', text: 'head one', entry_ids: [1], url: 'https://a', expectP: 0.25 },
    { uuid: 'b', text: 'two heads', entry_ids: [1, 2], expectP: 1 - 0.75 * 0.5 },
    { uuid: 'c', text: 'two heads reversed', entry_ids: [2, 1], expectP: 1 - 0.5 * 0.75 },
    { uuid: 'd', text: 'tail', entry_ids: [3], meta: { nested: [1, 2] }, expectP: 1 },
    { uuid: 'e', text: 'no match', entry_ids: [], expectP: 0 },
    { uuid: 'f', text: 'absent from counts', entry_ids: [7], expectP: 1 },
    { uuid: 'g', text: 'head and tail', entry_ids: [1, 3], expectP: 1 },
  ];
  const handInput = HAND.map(({ expectP, ...row }) => JSON.stringify(row)).join('\n') + '\n';

  test('hand example: original fields in order + p, input order, p = 1 − Π(1 − p[e]), u < p', () => {
    const countsFile = writeCounts('hand.json', COUNTS);
    for (const seed of ['0', '1', '2', 'x', 'seed with spaces']) {
      const out = ok(['balance', '--counts', countsFile, '--t', '2', '--seed', seed], handInput);
      const expected = HAND.filter((r) => uniformDraw(seed, r.uuid, r.text, 'final') < r.expectP).map(({ expectP, ...row }) => {
        const line = JSON.stringify(row);
        return `${line.slice(0, -1)},"p":${JSON.stringify(expectP)}}\n`;
      });
      expect(out).toBe(expected.join(''));
      const got = parseLines(out);
      for (const o of got) {
        const src = HAND.find((r) => r.uuid === o.uuid)!;
        expect(Object.keys(o)).toEqual([...Object.keys(src).filter((k) => k !== 'expectP'), 'p']);
        expect(o.p).toBe(src.expectP);
      }
      // tail entries (and entries absent from the counts) are always kept; texts without matches never
      expect(got.map((o) => o.uuid)).toEqual(expect.arrayContaining(['d', 'f', 'g']));
      expect(got.map((o) => o.uuid)).not.toContain('e');
    }
  });

  test('formatting of the input line is kept; an existing "p" is replaced', () => {
    const countsFile = writeCounts('hand2.json', COUNTS);
    const input = '{"uuid":"d", "text":"tail",  "entry_ids":[3], "n":1.50}\n{"p":0.5,"uuid":"f","text":"t","entry_ids":[7]}\n';
    const out = ok(['balance', '--counts', countsFile, '--t', '2', '--seed', '0'], input);
    expect(out).toBe('{"uuid":"d", "text":"tail",  "entry_ids":[3], "n":1.50,"p":1}\n{"p":1,"uuid":"f","text":"t","entry_ids":[7]}\n');
  });

  test('blank lines, CRLF and a last line without newline are handled; empty input gives no output', () => {
    const countsFile = writeCounts('hand3.json', COUNTS);
    const input = '\n{"uuid":"d","text":"tail","entry_ids":[3]}\r\n\n  \n{"uuid":"f","text":"t","entry_ids":[7]}';
    expect(ok(['balance', '--counts', countsFile, '--t', '2', '--seed', '0'], input)).toBe(
      '{"uuid":"d","text":"tail","entry_ids":[3],"p":1}\n{"uuid":"f","text":"t","entry_ids":[7],"p":1}\n',
    );
    expect(ok(['balance', '--counts', countsFile, '--t', '2', '--seed', '0'], '')).toBe('');
  });

  describe('on generated input (counts from `curate counts`)', () => {
    const rows = generate(4000, 11);
    const input = jsonl(rows);
    let countsFile: string;
    let countsJson: Record<string, number>;
    const T = 15;

    beforeAll(() => {
      const out = ok(['counts'], input);
      countsJson = JSON.parse(out);
      countsFile = writeCounts('gen.json', out);
    });

    const run = (t: number, seed: string, extra: string[] = [], data = input) => ok(['balance', '--counts', countsFile, '--t', String(t), '--seed', seed, ...extra], data);

    test('identical to the core: sampleColumns over columnsFromRows with seedKey(seed, "final")', () => {
      // the set up must actually sub-sample: some head entries
      expect(Object.values(countsJson).some((c) => c >= 4 * T)).toBe(true);
      for (const seed of ['0', '42']) {
        const core = coreSelection(rows, countsJson, T, seed);
        const out = run(T, seed);
        const expected = [...core.selected].map((i, j) => `${JSON.stringify(rows[i]).slice(0, -1)},"p":${JSON.stringify(core.probability[j])}}\n`).join('');
        expect(out).toBe(expected);
        expect(core.selected.length).toBeGreaterThan(0);
        expect(core.selected.length).toBeLessThan(rows.length);
      }
    });

    test('deterministic: the same output twice', () => {
      expect(run(T, '7')).toBe(run(T, '7'));
    });

    test('nested in t: a larger t selects a superset, and p does not decrease', () => {
      const small = parseLines(run(T, '3'));
      const large = parseLines(run(4 * T, '3'));
      const largeP = new Map(large.map((o) => [o.text, o.p]));
      expect(large.length).toBeGreaterThan(small.length);
      for (const o of small) {
        expect(largeP.has(o.text)).toBe(true);
        expect(largeP.get(o.text)!).toBeGreaterThanOrEqual(o.p);
      }
    });

    test('the seed changes the selection', () => {
      const a = parseLines(run(T, 'seed-a')).map((o) => o.text);
      const b = parseLines(run(T, 'seed-b')).map((o) => o.text);
      expect(a).not.toEqual(b);
    });

    test('output is a subsequence of the input, in input order', () => {
      const index = new Map(rows.map((r, i) => [r.text, i]));
      const order = parseLines(run(T, '5')).map((o) => index.get(o.text)!);
      expect(order.every((i) => i !== undefined)).toBe(true);
      expect([...order].sort((x, y) => x - y)).toEqual(order);
    });

    test('statistics: the selected count is within 5σ of Σp', () => {
      const big = generate(20_000, 99);
      const bigInput = jsonl(big);
      const bigCounts = writeCounts('big.json', ok(['counts'], bigInput));
      const t = 40;
      const pJson = JSON.parse(fs.readFileSync(bigCounts, 'utf8'));
      const pe = entryProbabilities(countsFromIdJson(pJson), t);
      let mean = 0;
      let variance = 0;
      for (const r of big) {
        let keepNone = 1;
        for (const e of r.entry_ids) keepNone *= 1 - pe[e];
        const p = 1 - keepNone;
        mean += p;
        variance += p * (1 - p);
      }
      expect(variance).toBeGreaterThan(100); // enough head sub-sampling for the check to mean something
      for (const seed of ['0', '1']) {
        const selected = ok(['balance', '--counts', bigCounts, '--t', String(t), '--seed', seed], bigInput).split('\n').filter(Boolean).length;
        expect(Math.abs(selected - mean)).toBeLessThan(5 * Math.sqrt(variance));
      }
    });
  });

  describe('--one-text-per-image', () => {
    const rows = generate(3000, 21, 3); // 3 texts per image
    const input = jsonl(rows);
    let countsFile: string;
    let countsJson: Record<string, number>;
    const T = 10;

    beforeAll(() => {
      const out = ok(['counts'], input);
      countsJson = JSON.parse(out);
      countsFile = writeCounts('one.json', out);
    });

    test('at most one line per uuid, identical to the core (oneTextPerImage with seedKey(seed, "pick"))', () => {
      for (const seed of ['0', '9']) {
        const out = ok(['balance', '--counts', countsFile, '--t', String(T), '--seed', seed, '--one-text-per-image'], input);
        const got = parseLines(out);
        expect(new Set(got.map((o) => o.uuid)).size).toBe(got.length);
        const core = coreSelection(rows, countsJson, T, seed, true);
        const expected = [...core.selected].map((i, j) => `${JSON.stringify(rows[i]).slice(0, -1)},"p":${JSON.stringify(core.probability[j])}}\n`).join('');
        expect(out).toBe(expected);
        expect(got.length).toBeGreaterThan(100);
        // the pick (and so the selection) does not depend on row order
        const shuffled = [...rows].reverse();
        const again = parseLines(ok(['balance', '--counts', countsFile, '--t', String(T), '--seed', seed, '--one-text-per-image'], jsonl(shuffled)));
        expect(new Set(again.map((o) => o.text))).toEqual(new Set(got.map((o) => o.text)));
      }
    });

    test('with one text per image it equals plain balancing', () => {
      const single = generate(500, 5);
      const singleInput = jsonl(single);
      const file = writeCounts('single.json', ok(['counts'], singleInput));
      const plain = ok(['balance', '--counts', file, '--t', '3', '--seed', '1'], singleInput);
      expect(ok(['balance', '--counts', file, '--t', '3', '--seed', '1', '--one-text-per-image'], singleInput)).toBe(plain);
    });
  });

  describe('errors', () => {
    let countsFile: string;
    beforeAll(() => {
      countsFile = writeCounts('err.json', COUNTS);
    });
    const args = () => ['balance', '--counts', countsFile, '--t', '2', '--seed', '0'];

    test.each([
      ['{"uuid":"d","text":"a","entry_ids":[3]}\n{"uuid":"d",\n', 'line 2: not valid JSON'],
      ['{"uuid":"d","text":"a","entry_ids":[3]}\n\n{"text":"a","entry_ids":[3]}\n', 'line 3: uuid must be a string'],
      ['{"uuid":"d","text":5,"entry_ids":[3]}\n', 'line 1: text must be a string'],
      ['{"uuid":"d","text":"a"}\n', 'line 1: entry_ids must be an array of non-negative integers'],
      ['{"uuid":"d","text":"a","entry_ids":[3, "4"]}\n', 'line 1: entry_ids must be an array of non-negative integers'],
      ['"just a string"\n', 'line 1: expected a JSON object'],
    ])('bad input %j fails with %j', (input, message) => {
      for (const extra of [[], ['--one-text-per-image']]) {
        const r = curate([...args(), ...extra], input);
        expect(r.status).toBe(2);
        expect(r.stderr).toContain(message);
      }
    });

    test('streaming: lines selected before the bad line are written, then exit non-zero', () => {
      const r = curate(args(), '{"uuid":"d","text":"a","entry_ids":[3]}\n{"uuid":"d","text":"a","entry_ids":"3"}\n');
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('{"uuid":"d","text":"a","entry_ids":[3],"p":1}\n');
      expect(r.stderr).toContain('line 2: entry_ids must be an array of non-negative integers');
    });

    test('counts keyed by entry strings (MetaCLIP form) are rejected with a clear message', () => {
      const file = writeCounts('strings.json', { dog: 3, cat: 5 });
      const r = curate(['balance', '--counts', file, '--t', '2', '--seed', '0'], '');
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('key "dog" is not an entry id');
    });

    test.each([
      [['--t', '2', '--seed', '0'], '--counts'],
      [['--counts', 'COUNTS', '--seed', '0'], '--t'],
      [['--counts', 'COUNTS', '--t', '0', '--seed', '0'], '--t must be > 0'],
      [['--counts', 'COUNTS', '--t', '2'], '--seed'],
      [['--counts', path.join(os.tmpdir(), 'no-such-counts.json'), '--t', '2', '--seed', '0'], 'cannot read'],
    ])('flags %j: error mentions %j', (flagArgs, message) => {
      const r = curate(['balance', ...flagArgs.map((a) => (a === 'COUNTS' ? countsFile : a))], '');
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(message);
    });

    test.each([
      ['[1, 2]', 'expected {"<entry_id>": count}'],
      ['{"1": -3}', 'entry 1 has count -3'],
      ['{"1": 2.5}', 'entry 1 has count 2.5'],
      ['{"01": 2}', 'key "01" is not an entry id'],
      ['{"1": 2', 'not valid JSON'],
    ])('counts file %j: error mentions %j', (text, message) => {
      const file = writeCounts('bad-counts.json', text);
      const r = curate(['balance', '--counts', file, '--t', '2', '--seed', '0'], '');
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(message);
    });

    test('--help documents the contract and the buffering of --one-text-per-image', () => {
      const help = ok(['balance', '--help'], '');
      expect(help).toContain('--one-text-per-image');
      expect(help).toContain('buffers');
      expect(help).toContain('"p"');
    });
  });
});
