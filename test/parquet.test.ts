import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetMetadata } from 'hyparquet';
import {
  readCandidatesParquet, readCuratedParquet, readParquetRows, writeCandidatesParquet, writeCuratedParquet, writeParquet,
  type CandidateRow, type ColumnSpec, type CuratedRow,
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

  test('columns are SNAPPY-compressed', async () => {
    const meta = parquetMetadata(toArrayBuffer(await writeCandidatesParquet(candidates)));
    expect(meta.row_groups[0].columns.map((c) => c.meta_data?.codec)).toEqual(Array(6).fill('SNAPPY'));
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

describe('readable by pyarrow and DuckDB', () => {
  const python = path.resolve(__dirname, '..', '.tools', 'venv', 'bin', 'python');
  let tmp: string;
  beforeAll(() => { tmp = mkdtempSync(path.join(os.tmpdir(), 'curate-parquet-')); });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test('values, lists, nulls and types agree', async () => {
    if (!existsSync(python)) {
      console.warn(`skipping the pyarrow/DuckDB check: ${python} not found (run \`node bin/setup.js --s3\`)`);
      return;
    }
    const probe = spawnSync(python, ['-c', 'import pyarrow, duckdb'], { encoding: 'utf8' });
    if (probe.status !== 0) throw new Error(`pyarrow/duckdb not importable (run \`node bin/setup.js --s3\`): ${probe.stderr}`);

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
});
