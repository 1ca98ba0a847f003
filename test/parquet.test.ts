import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetMetadata } from 'hyparquet';
import {
  CURATED_COLUMNS, parquetSchema, readCandidatesParquet, readCuratedParquet, readParquetRows, writeCandidatesParquet, writeCuratedParquet, writeParquet,
  type CandidateRow, type ColumnSpec, type CuratedRow, type Row, type ScalarType,
} from '../storage/parquet';

const candidates: CandidateRow[] = [
  { uuid: '0f8fad5bd9cb469fa16570867728950e', url: 'https://example.com/a.jpg', key: '000000000', text: 'a photo of a cat', lang: 'en', entry_ids: [1, 2, 2147483647] },
  { uuid: '7c9e6679742540de944be07fc1f90ae7', url: 'https://example.com/ü/b.png?x=1&y=2', key: '000000001', text: 'Ünïcödé — 日本語 🐱', lang: null, entry_ids: [] },
  { uuid: '16fd2706880041c4a2a6e1d5ef2b0f86', url: 'http://x.org/c', key: '000000002', text: '', lang: 'ja', entry_ids: [0] },
];

const curated: CuratedRow[] = candidates.map((r, i) => ({
  ...r, p: [1, 0.25, 1e-9][i], shard: `shard-${i % 2}`, position: [0, 17, 2 ** 40][i],
  // Pointers into the image tars (null before the image stage).
  image_key: i === 1 ? '000010000003' : null, image_tar: i === 1 ? 'runs/r/images/bucket-00001/chunk-00000.tar' : null,
}));

const toArrayBuffer = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

describe('candidates', () => {
  test('round trip keeps strings, nulls, empty and full lists', async () => {
    expect(await readCandidatesParquet(await writeCandidatesParquet(candidates))).toEqual(candidates);
  });

  test('zero rows still make a valid, typed file', async () => {
    const buf = await writeCandidatesParquet([]);
    expect(await readCandidatesParquet(buf)).toEqual([]);
    expect(parquetMetadata(toArrayBuffer(buf)).schema.map((e) => e.name)).toEqual(['root', 'uuid', 'url', 'key', 'text', 'lang', 'entry_ids', 'list', 'element']);
  });

  test('same rows give byte-identical files', async () => {
    const a = await writeCandidatesParquet(candidates);
    const b = await writeCandidatesParquet(candidates.map((r) => ({ ...r, entry_ids: [...r.entry_ids] })));
    expect(a.equals(b)).toBe(true);
    expect(parquetMetadata(toArrayBuffer(a)).key_value_metadata ?? []).toEqual([]);
  });

  test('columns are ZSTD-compressed', async () => {
    const meta = parquetMetadata(toArrayBuffer(await writeCandidatesParquet(candidates)));
    expect(meta.row_groups[0].columns.map((c) => c.meta_data?.codec)).toEqual(Array(6).fill('ZSTD'));
  });

  test('bad values are rejected with the column and row', async () => {
    const bad = (patch: Partial<Record<keyof CandidateRow, unknown>>) =>
      expect(writeCandidatesParquet([candidates[0], { ...candidates[1], ...patch } as CandidateRow])).rejects;
    await bad({ entry_ids: [1, 1.5] }).toThrow('parquet column entry_ids, row 1: expected list of INT32, got 1.5');
    await bad({ entry_ids: [2 ** 31] }).toThrow(/entry_ids, row 1/);
    await bad({ entry_ids: null }).toThrow(/entry_ids, row 1: expected list of INT32, got null/);
    await bad({ text: undefined }).toThrow('parquet column text, row 1: expected STRING, got undefined');
    await bad({ uuid: 5 }).toThrow(/uuid, row 1/);
  });

  test('100k rows across two row groups', async () => {
    const rows: CandidateRow[] = Array.from({ length: 100_001 }, (_, i) => ({
      uuid: i.toString(16).padStart(32, '0'), url: `https://example.com/${i}.jpg`, key: String(i).padStart(9, '0'),
      text: `text ${i % 977}`, lang: i % 10 ? 'en' : null, entry_ids: Array.from({ length: i % 4 }, (_, j) => i + j),
    }));
    const buf = await writeCandidatesParquet(rows);
    expect(parquetMetadata(toArrayBuffer(buf)).row_groups.length).toBe(2);
    const back = await readCandidatesParquet(buf);
    expect(back.length).toBe(rows.length);
    expect(back[100_000]).toEqual(rows[100_000]);
    expect(back[12_345]).toEqual(rows[12_345]);
  });
});

describe('curated and generic tables', () => {
  test('curated round trip: DOUBLE p, shard, INT64 position beyond 2^32', async () => {
    expect(await readCuratedParquet(await writeCuratedParquet(curated))).toEqual(curated);
  });

  test('generic columns: booleans, doubles, nullable lists of strings, small row groups, column selection', async () => {
    const columns: ColumnSpec[] = [
      { name: 'ok', type: 'BOOLEAN' },
      { name: 'score', type: 'DOUBLE', nullable: true },
      { name: 'tags', type: 'STRING', list: true, nullable: true },
      { name: 'n', type: 'INT64' },
    ];
    const rows = Array.from({ length: 10 }, (_, i) => ({
      ok: i % 2 === 0, score: i % 3 ? i / 3 : null, tags: i % 4 ? Array.from({ length: i % 4 }, (_, j) => `t${j}`) : null, n: BigInt(i) * 10n ** 15n,
    }));
    const buf = await writeParquet(rows, columns, { rowGroupSize: 3, codec: 'UNCOMPRESSED' });
    expect(parquetMetadata(toArrayBuffer(buf)).row_groups.length).toBe(4);
    const back = await readParquetRows(buf);
    expect(back).toEqual(rows.map((r) => ({ ...r, n: Number(r.n) })));
    expect(await readParquetRows(buf, { columns: ['tags'] })).toEqual(rows.map((r) => ({ tags: r.tags })));
  });

  test('reading a file of another table names the missing columns', async () => {
    const buf = await writeParquet([{ uuid: 'x', a: 1 }], [{ name: 'uuid', type: 'STRING' }, { name: 'a', type: 'INT32' }]);
    await expect(readCandidatesParquet(buf)).rejects.toThrow('parquet file has no column url, key, text, lang, entry_ids (it has uuid, a)');
  });
});

// ---------------------------------------------------------------------------------------------------
// The writer (storage/parquet-writer.ts) on every ColumnSpec shape

const TYPES: ScalarType[] = ['STRING', 'INT32', 'INT64', 'DOUBLE', 'BOOLEAN'];
/** Every type, REQUIRED and OPTIONAL, flat and as a list. */
const ALL_COLUMNS: ColumnSpec[] = TYPES.flatMap((type) => {
  const t = type.toLowerCase();
  return [
    { name: t, type }, { name: `${t}_null`, type, nullable: true },
    { name: `${t}_list`, type, list: true }, { name: `${t}_list_null`, type, list: true, nullable: true },
  ];
});

/** mulberry32: the same rows on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const POOLS: Record<ScalarType, unknown[]> = {
  STRING: ['', 'a', 'Ünïcödé — 日本語', '🐱🐶 astral', 'tab\tnew\nline "quoted"', 'nul\u0000byte', 'x'.repeat(300), 'é'.repeat(70_000)],
  INT32: [0, -1, 1, -(2 ** 31), 2 ** 31 - 1, 123_456],
  INT64: [0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -(2n ** 60n), 2 ** 40],
  DOUBLE: [0, -0, 1.5, -1e300, 5e-324, Number.MAX_VALUE, 1 / 3],
  BOOLEAN: [true, false],
};
const DOUBLE_SPECIALS = [NaN, Infinity, -Infinity];

/**
 * Rows over ALL_COLUMNS: nulls in runs of 1 to `maxRun` (long runs and alternations, so levels take both
 * RLE and bit-packed runs), lists of 0 to 4 elements.
 */
function allTypeRows(n: number, seed: number, opts: { maxRun?: number; specials?: boolean } = {}): Row[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const pool = (t: ScalarType): unknown[] => (t === 'DOUBLE' && opts.specials ? [...POOLS.DOUBLE, ...DOUBLE_SPECIALS] : POOLS[t]);
  const nullRun = new Map<string, { left: number; isNull: boolean }>();
  const isNull = (name: string): boolean => {
    let r = nullRun.get(name);
    if (!r || r.left === 0) {
      r = { left: 1 + Math.floor(rnd() * (opts.maxRun ?? 30)), isNull: !(r?.isNull ?? rnd() < 0.5) };
      nullRun.set(name, r);
    }
    r.left--;
    return r.isNull;
  };
  return Array.from({ length: n }, () => {
    const row: Row = {};
    for (const c of ALL_COLUMNS) {
      if (c.nullable && isNull(c.name)) row[c.name] = rnd() < 0.5 ? null : undefined; // a missing value is null too
      else if (c.list) row[c.name] = Array.from({ length: Math.floor(rnd() * 5) }, () => pick(pool(c.type)));
      else row[c.name] = pick(pool(c.type));
    }
    return row;
  });
}

/** What readParquetRows gives back: null for null/undefined, top-level INT64 as number when safe, list INT64 as bigint. */
function expectedBack(rows: readonly Row[], columns: readonly ColumnSpec[]): Row[] {
  return rows.map((r) => {
    const out: Row = {};
    for (const c of columns) {
      const v = r[c.name];
      if (v === null || v === undefined) out[c.name] = null;
      else if (c.type === 'INT64' && c.list) out[c.name] = (v as (number | bigint)[]).map((x) => BigInt(x));
      else if (c.type === 'INT64') out[c.name] = Number.isSafeInteger(Number(v)) && BigInt(v as bigint) === BigInt(Number(v)) ? Number(v) : BigInt(v as bigint);
      else out[c.name] = v;
    }
    return out;
  });
}

describe('writer: every ColumnSpec shape', () => {
  test('all types, required and nullable, flat and lists, many row groups: hyparquet reads the same values', async () => {
    const rows = allTypeRows(500, 1, { specials: true });
    const buf = await writeParquet(rows, ALL_COLUMNS, { rowGroupSize: 37 });
    const meta = parquetMetadata(toArrayBuffer(buf));
    expect(meta.row_groups.length).toBe(Math.ceil(500 / 37));
    expect(meta.row_groups.map((g) => Number(g.num_rows))).toEqual([...Array(13).fill(37), 500 - 13 * 37]);
    expect(await readParquetRows(buf)).toEqual(expectedBack(rows, ALL_COLUMNS));
    // Column selection reads only those columns.
    expect(await readParquetRows(buf, { columns: ['int64_list_null', 'boolean'] }))
      .toEqual(expectedBack(rows, ALL_COLUMNS).map((r) => ({ int64_list_null: r.int64_list_null, boolean: r.boolean })));
  });

  test('the footer has exactly parquetSchema(columns), and the schema hyparquet-writer wrote', async () => {
    const { schema } = parquetMetadata(toArrayBuffer(await writeParquet(allTypeRows(3, 2), ALL_COLUMNS)));
    expect(schema).toEqual(parquetSchema(ALL_COLUMNS));
    const old = readFileSync(path.join(__dirname, 'fixtures', 'parquet', 'curated-hyparquet-writer-0.17-snappy.parquet'));
    const ours = parquetMetadata(toArrayBuffer(await writeCuratedParquet(curated))).schema;
    expect(ours).toEqual(parquetMetadata(toArrayBuffer(old)).schema);
    expect(ours).toEqual(parquetSchema(CURATED_COLUMNS));
  });

  test('zero rows: no row group, every column typed', async () => {
    const buf = await writeParquet([], ALL_COLUMNS);
    const meta = parquetMetadata(toArrayBuffer(buf));
    expect(meta.row_groups).toEqual([]);
    expect(Number(meta.num_rows)).toBe(0);
    expect(meta.schema).toEqual(parquetSchema(ALL_COLUMNS));
    expect(await readParquetRows(buf)).toEqual([]);
  });

  test('column chunks of several pages (1 MiB of values each), cut at row boundaries, in every codec', async () => {
    const rnd = prng(3);
    const columns: ColumnSpec[] = [
      { name: 'text', type: 'STRING' },
      { name: 'ids', type: 'INT32', list: true, nullable: true },
      { name: 'flag', type: 'BOOLEAN', nullable: true },
    ];
    const rows = Array.from({ length: 6000 }, (_, i) => ({
      text: `${i}:`.padEnd(200 + Math.floor(rnd() * 600), String.fromCharCode(97 + (i % 26))),
      ids: i % 7 === 0 ? null : Array.from({ length: i % 5 }, (_, j) => i * 10 + j),
      flag: i % 3 === 0 ? null : i % 2 === 0,
    }));
    for (const codec of ['ZSTD', 'UNCOMPRESSED'] as const) {
      const buf = await writeParquet(rows, columns, { codec, rowGroupSize: 5000 });
      const meta = parquetMetadata(toArrayBuffer(buf));
      const pages = meta.row_groups.map((g) => g.columns.map((c) => c.meta_data?.encoding_stats?.[0].count));
      expect(pages[0][0]).toBeGreaterThan(2); // ~2.5 MB of text in the first row group
      expect(pages[1]).toEqual([1, 1, 1]);
      expect(meta.row_groups[0].columns.map((c) => c.meta_data?.codec)).toEqual(Array(3).fill(codec));
      expect(await readParquetRows(buf)).toEqual(rows);
    }
  });

  test('levels: long runs, alternations and everything between (RLE and bit-packed runs of up to 63 groups)', async () => {
    const columns: ColumnSpec[] = [
      { name: 'a', type: 'INT32', nullable: true },
      { name: 'l', type: 'STRING', list: true, nullable: true },
    ];
    const pattern = (i: number): number => (i < 1000 ? i % 2 : i < 3000 ? Math.floor(i / 9) % 2 : i < 3700 ? 1 : (i * 2654435761) % 3);
    const rows = Array.from({ length: 5000 }, (_, i) => ({
      a: pattern(i) === 0 ? null : i,
      l: pattern(i) === 0 ? null : pattern(i) === 1 ? [] : ['x', String(i)],
    }));
    const buf = await writeParquet(rows, columns);
    expect(await readParquetRows(buf)).toEqual(rows);
  });

  test('INT64: bigints beyond 2^53 and the extremes; numbers written exactly; readers get number when safe', async () => {
    const columns: ColumnSpec[] = [{ name: 'n', type: 'INT64' }, { name: 'm', type: 'INT64', nullable: true }];
    const values: (number | bigint)[] = [0, -1, 1, 2 ** 53 - 1, -(2 ** 53 - 1), 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), -(2 ** 40) - 7, 2 ** 32, -(2 ** 32)];
    const rows = values.map((n, i) => ({ n, m: i % 2 ? null : n }));
    const back = await readParquetRows(await writeParquet(rows, columns));
    expect(back.map((r) => r.n)).toEqual([0, -1, 1, 2 ** 53 - 1, -(2 ** 53 - 1), 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), -(2 ** 40) - 7, 2 ** 32, -(2 ** 32)]);
    expect(back.map((r) => r.m)).toEqual(back.map((r, i) => (i % 2 ? null : r.n)));
  });

  test('statistics: null counts of flat columns, min/max of flat INT32/INT64, none where not exact and cheap', async () => {
    const columns: ColumnSpec[] = [
      { name: 'i', type: 'INT32', nullable: true }, { name: 'n', type: 'INT64' }, { name: 's', type: 'STRING', nullable: true },
      { name: 'l', type: 'INT32', list: true },
    ];
    const rows = [
      { i: 5, n: 2n ** 62n, s: 'b', l: [9] }, { i: null, n: -3, s: null, l: [] }, { i: -7, n: 10, s: null, l: [1, 2] },
    ];
    const stats = parquetMetadata(toArrayBuffer(await writeParquet(rows, columns))).row_groups[0].columns.map((c) => c.meta_data?.statistics);
    expect(stats[0]).toEqual({ null_count: 1n, min_value: -7, max_value: 5 });
    expect(stats[1]).toEqual({ null_count: 0n, min_value: -3n, max_value: 2n ** 62n });
    expect(stats[2]).toEqual({ null_count: 2n });
    expect(stats[3]).toBeUndefined();
  });

  test('bad values of every type are rejected with the column and row', async () => {
    const good: Record<ScalarType, unknown> = { STRING: '', INT32: 0, INT64: 0, DOUBLE: 0, BOOLEAN: true };
    const w = (c: ColumnSpec, v: unknown) => writeParquet([{ [c.name]: c.list ? [] : good[c.type] }, { [c.name]: v }], [c]);
    await expect(w({ name: 'b', type: 'BOOLEAN' }, 1)).rejects.toThrow(new TypeError('parquet column b, row 1: expected BOOLEAN, got 1'));
    await expect(w({ name: 'd', type: 'DOUBLE', nullable: true }, '1')).rejects.toThrow('parquet column d, row 1: expected DOUBLE or null, got "1"');
    await expect(w({ name: 'n', type: 'INT64' }, 2n ** 63n)).rejects.toThrow('parquet column n, row 1: expected INT64, got 9223372036854775808');
    await expect(w({ name: 'n', type: 'INT64' }, 2 ** 53)).rejects.toThrow('parquet column n, row 1: expected INT64, got 9007199254740992');
    await expect(w({ name: 'i', type: 'INT32' }, NaN)).rejects.toThrow('parquet column i, row 1: expected INT32, got NaN');
    await expect(w({ name: 'i', type: 'INT32' }, -(2 ** 31) - 1)).rejects.toThrow(/column i, row 1/);
    await expect(w({ name: 's', type: 'STRING', list: true, nullable: true }, ['ok', null])).rejects.toThrow('parquet column s, row 1: expected list of STRING or null, got null');
    await expect(w({ name: 's', type: 'STRING', list: true }, 'abc')).rejects.toThrow('parquet column s, row 1: expected list of STRING, got "abc"');
    await expect(w({ name: 's', type: 'STRING' }, 'y'.repeat(100))).resolves.toBeInstanceOf(Buffer);
    await expect(w({ name: 's', type: 'STRING' }, { a: 1 })).rejects.toThrow('parquet column s, row 1: expected STRING, got [object Object]');
  });

  test('deterministic: equal rows give equal bytes, whatever their key order or earlier writes', async () => {
    const rows = allTypeRows(300, 4);
    const a = await writeParquet(rows, ALL_COLUMNS, { rowGroupSize: 100 });
    await writeParquet(allTypeRows(2000, 5), ALL_COLUMNS); // grows nothing that outlives a call
    const reordered = rows.map((r) => Object.fromEntries(Object.entries(r).reverse()));
    const b = await writeParquet(reordered, ALL_COLUMNS, { rowGroupSize: 100 });
    expect(a.equals(b)).toBe(true);
    expect(parquetMetadata(toArrayBuffer(a)).created_by).toBe('metaclip-temporal storage/parquet-writer');
  });

  test('files of earlier versions (hyparquet-writer, SNAPPY, dictionary pages, data pages v2) still read', async () => {
    const fixture = (name: string) => readFileSync(path.join(__dirname, 'fixtures', 'parquet', name));
    expect(await readCuratedParquet(fixture('curated-hyparquet-writer-0.17-snappy.parquet'))).toEqual(curated);
    const generic = Array.from({ length: 10 }, (_, i) => ({
      ok: i % 2 === 0, score: i % 3 ? i / 3 : null, tags: i % 4 ? Array.from({ length: i % 4 }, (_, j) => `t${j}`) : null, n: i * 10 ** 15,
    }));
    expect(await readParquetRows(fixture('generic-hyparquet-writer-0.17-snappy.parquet'))).toEqual(generic);
  });
});

describe('readable by pyarrow and DuckDB', () => {
  const python = path.resolve(__dirname, '..', '.tools', 'venv', 'bin', 'python');
  let tmp: string;
  beforeAll(() => { tmp = mkdtempSync(path.join(os.tmpdir(), 'curate-parquet-')); });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** False (with a warning) when the venv is missing; throws when it is there but broken. */
  const pythonReady = (): boolean => {
    if (!existsSync(python)) {
      console.warn(`skipping the pyarrow/DuckDB check: ${python} not found (run \`node bin/setup.js --s3\`)`);
      return false;
    }
    const probe = spawnSync(python, ['-c', 'import pyarrow, duckdb'], { encoding: 'utf8' });
    if (probe.status !== 0) throw new Error(`pyarrow/duckdb not importable (run \`node bin/setup.js --s3\`): ${probe.stderr}`);
    return true;
  };

  test('values, lists, nulls and types agree', async () => {
    if (!pythonReady()) return;

    const file = path.join(tmp, 'curated.parquet');
    writeFileSync(file, await writeCuratedParquet(curated));
    const script = `
import json, sys, pyarrow.parquet as pq, duckdb
t = pq.read_table(sys.argv[1])
con = duckdb.connect()
rel = con.execute("select * from read_parquet(?)", [sys.argv[1]])
cols = [d[0] for d in rel.description]
duck = [dict(zip(cols, row)) for row in rel.fetchall()]
types = dict(con.execute("select column_name, column_type from (describe select * from read_parquet(?))", [sys.argv[1]]).fetchall())
print(json.dumps({"arrow_schema": {f.name: str(f.type) for f in t.schema}, "arrow": t.to_pylist(), "duck": duck, "duck_types": types}))
`;
    const out = JSON.parse(execFileSync(python, ['-c', script, file], { encoding: 'utf8' }));
    expect(out.arrow).toEqual(curated);
    expect(out.duck).toEqual(curated);
    expect(out.arrow_schema).toEqual({
      uuid: 'string', url: 'string', key: 'string', text: 'string', lang: 'string',
      entry_ids: 'list<element: int32 not null>', p: 'double', shard: 'string', position: 'int64', image_key: 'string', image_tar: 'string',
    });
    expect(out.duck_types).toEqual({
      uuid: 'VARCHAR', url: 'VARCHAR', key: 'VARCHAR', text: 'VARCHAR', lang: 'VARCHAR',
      entry_ids: 'INTEGER[]', p: 'DOUBLE', shard: 'VARCHAR', position: 'BIGINT', image_key: 'VARCHAR', image_tar: 'VARCHAR',
    });
  });
  test('every ColumnSpec shape, many row groups, multi-page chunks: same values, types and statistics', async () => {
    if (!pythonReady()) return;
    const shortStrings = (rows: Row[]): Row[] => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) =>
      [k, typeof v === 'string' ? v.slice(0, 1000) : Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x.slice(0, 1000) : x)) : v])));
    const all = shortStrings(allTypeRows(300, 6));
    const paged: Row[] = Array.from({ length: 4000 }, (_, i) => ({
      text: `${i}:`.padEnd(300 + (i % 500), 'ü'),
      ids: i % 7 === 0 ? null : Array.from({ length: i % 5 }, (_, j) => i * 10 + j),
      flag: i % 3 === 0 ? null : i % 2 === 0,
    }));
    const pagedColumns: ColumnSpec[] = [
      { name: 'text', type: 'STRING' }, { name: 'ids', type: 'INT32', list: true, nullable: true }, { name: 'flag', type: 'BOOLEAN', nullable: true },
    ];
    const tables: { file: string; rows: Row[]; columns: ColumnSpec[]; rowGroupSize: number }[] = [
      { file: path.join(tmp, 'all.parquet'), rows: all, columns: ALL_COLUMNS, rowGroupSize: 70 },
      { file: path.join(tmp, 'paged.parquet'), rows: paged, columns: pagedColumns, rowGroupSize: 3000 },
    ];
    for (const t of tables) writeFileSync(t.file, await writeParquet(t.rows, t.columns, { rowGroupSize: t.rowGroupSize }));
    const script = `
import json, sys, pyarrow.parquet as pq, duckdb
def norm(v):
    if v is None or isinstance(v, bool): return v
    if isinstance(v, int): return str(v)
    if isinstance(v, list): return [norm(x) for x in v]
    return v
out = []
for f in sys.argv[1:]:
    pf = pq.ParquetFile(f)
    t = pf.read()
    con = duckdb.connect()
    rel = con.execute("select * from read_parquet(?)", [f])
    cols = [d[0] for d in rel.description]
    duck = [{k: norm(v) for k, v in zip(cols, row)} for row in rel.fetchall()]
    types = dict(con.execute("select column_name, column_type from (describe select * from read_parquet(?))", [f]).fetchall())
    stats = []
    for g in range(pf.metadata.num_row_groups):
        rg = pf.metadata.row_group(g)
        for k in range(rg.num_columns):
            c = rg.column(k); s = c.statistics
            if s is None: continue
            stats.append({"group": g, "column": c.path_in_schema, "nulls": s.null_count if s.has_null_count else None,
                          "min": str(s.min) if s.has_min_max else None, "max": str(s.max) if s.has_min_max else None})
    out.append({"arrow": [{k: norm(v) for k, v in r.items()} for r in t.to_pylist()], "duck": duck, "duck_types": types, "stats": stats,
                "arrow_schema": {f.name: str(f.type) + ("" if f.nullable else " not null") for f in t.schema},
                "groups": pf.metadata.num_row_groups})
print(json.dumps(out))
`;
    const out = JSON.parse(execFileSync(python, ['-c', script, ...tables.map((t) => t.file)], { encoding: 'utf8', maxBuffer: 1 << 28 }));
    const arrowType: Record<ScalarType, string> = { STRING: 'string', INT32: 'int32', INT64: 'int64', DOUBLE: 'double', BOOLEAN: 'bool' };
    const duckType: Record<ScalarType, string> = { STRING: 'VARCHAR', INT32: 'INTEGER', INT64: 'BIGINT', DOUBLE: 'DOUBLE', BOOLEAN: 'BOOLEAN' };
    // What Python prints: integers as strings (exact beyond 2^53), null for null or missing.
    const norm = (v: unknown): unknown => (v === null || v === undefined ? null : typeof v === 'number' && Number.isInteger(v) && !Object.is(v, -0) ? String(v) : typeof v === 'bigint' ? String(v) : Array.isArray(v) ? v.map(norm) : v);
    tables.forEach((t, k) => {
      const isInt = (c: ColumnSpec) => c.type === 'INT32' || c.type === 'INT64';
      const expected = t.rows.map((r) => Object.fromEntries(t.columns.map((c) => {
        const v = r[c.name];
        // Doubles that are integers (0, 1e300…) stay numbers; -0 stays -0.
        return [c.name, c.type === 'DOUBLE' ? (Array.isArray(v) ? v : v ?? null) : norm(v)];
      })));
      expect(out[k].groups).toBe(Math.ceil(t.rows.length / t.rowGroupSize));
      expect(out[k].arrow).toEqual(expected);
      expect(out[k].duck).toEqual(expected);
      expect(out[k].arrow_schema).toEqual(Object.fromEntries(t.columns.map((c) =>
        [c.name, c.list ? `list<element: ${arrowType[c.type]} not null>${c.nullable ? '' : ' not null'}` : `${arrowType[c.type]}${c.nullable ? '' : ' not null'}`])));
      expect(out[k].duck_types).toEqual(Object.fromEntries(t.columns.map((c) => [c.name, `${duckType[c.type]}${c.list ? '[]' : ''}`])));
      // Statistics: flat columns only; min/max for the integer ones.
      const stats = [];
      for (let g = 0; g * t.rowGroupSize < t.rows.length; g++) {
        const group = t.rows.slice(g * t.rowGroupSize, (g + 1) * t.rowGroupSize);
        for (const c of t.columns.filter((x) => !x.list)) {
          const present = group.map((r) => r[c.name]).filter((v) => v !== null && v !== undefined).map((v) => BigInt(isInt(c) ? (v as number | bigint) : 0));
          const min = present.reduce((a, b) => (b < a ? b : a), present[0]);
          const max = present.reduce((a, b) => (b > a ? b : a), present[0]);
          stats.push({
            group: g, column: c.name, nulls: group.length - present.length,
            min: isInt(c) && present.length ? String(min) : null, max: isInt(c) && present.length ? String(max) : null,
          });
        }
      }
      expect(out[k].stats).toEqual(stats);
    });
  });
});
