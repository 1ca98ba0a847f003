/**
 * Parquet files for the pipeline's tables, written with hyparquet-writer and read with hyparquet
 * (pure JS; files are read by pyarrow and DuckDB, tested). Schemas are explicit so a column's type
 * never depends on the data (an empty shard or an all-null column still gets the right type), and
 * the same rows always give byte-identical files: nothing time- or host-dependent is written.
 */
import type { SchemaElement } from 'hyparquet';
import type { CandidateRow } from '../curation/shard';

type Hyparquet = typeof import('hyparquet');
type HyparquetWriter = typeof import('hyparquet-writer');
let libs: Promise<[Hyparquet, HyparquetWriter]> | null = null;
/**
 * hyparquet and hyparquet-writer ship ESM only: loaded with import() (Node's require(esm) in the CommonJS
 * build; real ESM under Jest, whose SWC transform keeps dynamic imports).
 */
function parquetLibs(): Promise<[Hyparquet, HyparquetWriter]> {
  libs ??= Promise.all([import('hyparquet'), import('hyparquet-writer')]);
  return libs;
}

export type ScalarType = 'STRING' | 'INT32' | 'INT64' | 'DOUBLE' | 'BOOLEAN';

export interface ColumnSpec {
  name: string;
  type: ScalarType;
  /** A LIST of `type` (elements never null). */
  list?: boolean;
  /** Allows null values (the column, or the whole list). Default false. */
  nullable?: boolean;
}

export type Row = Record<string, unknown>;

export interface WriteParquetOptions {
  /** SNAPPY (default, built into hyparquet-writer) or UNCOMPRESSED. */
  codec?: 'SNAPPY' | 'UNCOMPRESSED';
  /** Rows per row group. Default 100k: few groups for fast scans, bounded memory per group when reading. */
  rowGroupSize?: number;
}

export type { CandidateRow } from '../curation/shard';

/** A candidate placed in the pool: where it came from defines the pool order (shard, then position). */
export interface PoolRow extends CandidateRow {
  /** Shard the pair came from. */
  shard: string;
  /** Row index of the pair in its shard's candidates. */
  position: number;
  /** After the image stage: the image's WebDataset key and the tar holding it (key relative to the output root). */
  image_key?: string | null;
  image_tar?: string | null;
}

export interface CuratedRow extends PoolRow {
  /** Selection probability of the pair. */
  p: number;
}

export const CANDIDATE_COLUMNS: readonly ColumnSpec[] = [
  { name: 'uuid', type: 'STRING' },
  { name: 'url', type: 'STRING' },
  { name: 'key', type: 'STRING' },
  { name: 'text', type: 'STRING' },
  { name: 'lang', type: 'STRING', nullable: true },
  { name: 'entry_ids', type: 'INT32', list: true },
];

const IMAGE_COLUMNS: readonly ColumnSpec[] = [
  { name: 'image_key', type: 'STRING', nullable: true },
  { name: 'image_tar', type: 'STRING', nullable: true },
];

export const POOL_COLUMNS: readonly ColumnSpec[] = [
  ...CANDIDATE_COLUMNS,
  { name: 'shard', type: 'STRING' },
  { name: 'position', type: 'INT64' },
  ...IMAGE_COLUMNS,
];

export const CURATED_COLUMNS: readonly ColumnSpec[] = [
  ...CANDIDATE_COLUMNS,
  { name: 'p', type: 'DOUBLE' },
  { name: 'shard', type: 'STRING' },
  { name: 'position', type: 'INT64' },
  ...IMAGE_COLUMNS,
];

function scalarElement(name: string, type: ScalarType, repetition: 'REQUIRED' | 'OPTIONAL'): SchemaElement {
  if (type === 'STRING') {
    return { name, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' }, repetition_type: repetition };
  }
  return { name, type, repetition_type: repetition };
}

/** The Parquet schema: scalars as flat columns, lists in the standard 3-level LIST layout. */
export function parquetSchema(columns: readonly ColumnSpec[]): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }];
  for (const c of columns) {
    const repetition = c.nullable ? 'OPTIONAL' : 'REQUIRED';
    if (!c.list) {
      schema.push(scalarElement(c.name, c.type, repetition));
      continue;
    }
    schema.push(
      { name: c.name, converted_type: 'LIST', logical_type: { type: 'LIST' }, repetition_type: repetition, num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      scalarElement('element', c.type, 'REQUIRED'),
    );
  }
  return schema;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Checks one value and converts it to what the writer expects (INT64 as bigint); returns undefined if invalid. */
function convertScalar(type: ScalarType, v: unknown): unknown {
  switch (type) {
    case 'STRING':
      return typeof v === 'string' ? v : undefined;
    case 'INT32':
      return Number.isInteger(v) && (v as number) >= INT32_MIN && (v as number) <= INT32_MAX ? v : undefined;
    case 'INT64':
      if (typeof v === 'bigint') return v;
      return Number.isSafeInteger(v) ? BigInt(v as number) : undefined;
    case 'DOUBLE':
      return typeof v === 'number' ? v : undefined;
    case 'BOOLEAN':
      return typeof v === 'boolean' ? v : undefined;
  }
}

function columnData(rows: readonly Row[], c: ColumnSpec): unknown[] {
  const data = new Array<unknown>(rows.length);
  const bad = (i: number, v: unknown): never => {
    const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : String(v);
    throw new TypeError(`parquet column ${c.name}, row ${i}: expected ${c.list ? `list of ${c.type}` : c.type}${c.nullable ? ' or null' : ''}, got ${shown}`);
  };
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i][c.name];
    if (v === null || v === undefined) {
      if (!c.nullable) bad(i, v);
      data[i] = null;
    } else if (c.list) {
      if (!Array.isArray(v)) bad(i, v);
      const list = v as unknown[];
      const out = new Array<unknown>(list.length);
      for (let j = 0; j < list.length; j++) {
        const x = convertScalar(c.type, list[j]);
        if (x === undefined) bad(i, list[j]);
        out[j] = x;
      }
      data[i] = out;
    } else {
      const x = convertScalar(c.type, v);
      if (x === undefined) bad(i, v);
      data[i] = x;
    }
  }
  return data;
}

/** Writes rows (objects keyed by column name) as one Parquet file. Throws TypeError naming the column and row of a bad value. */
export async function writeParquet(rows: readonly Row[], columns: readonly ColumnSpec[], opts: WriteParquetOptions = {}): Promise<Buffer> {
  const [, { parquetWriteBuffer }] = await parquetLibs();
  const buffer = parquetWriteBuffer({
    schema: parquetSchema(columns),
    columnData: columns.map((c) => ({ name: c.name, data: columnData(rows, c) })),
    codec: opts.codec ?? 'SNAPPY',
    rowGroupSize: opts.rowGroupSize ?? 100_000,
  });
  return Buffer.from(buffer);
}

function toArrayBuffer(buf: Uint8Array): ArrayBuffer {
  // Small Buffers are slices of a shared pool: hand hyparquet only this file's bytes.
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) return buf.buffer;
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

/** Reads all rows as objects; nulls as null, INT64 as number when it is a safe integer (bigint otherwise). */
export async function readParquetRows(buf: Uint8Array, opts: { columns?: string[] } = {}): Promise<Row[]> {
  const [{ parquetMetadata, parquetReadObjects, parquetSchema: schemaTree }] = await parquetLibs();
  const file = toArrayBuffer(buf);
  const metadata = parquetMetadata(file);
  if (opts.columns) {
    const present = schemaTree(metadata).children.map((c) => c.element.name);
    const missing = opts.columns.filter((c) => !present.includes(c));
    if (missing.length) throw new Error(`parquet file has no column ${missing.join(', ')} (it has ${present.join(', ')})`);
  }
  const rows = (await parquetReadObjects({ file, metadata, columns: opts.columns })) as Row[];
  const minSafe = BigInt(Number.MIN_SAFE_INTEGER);
  const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
  for (const row of rows) {
    for (const k in row) {
      const v = row[k];
      if (v === undefined) row[k] = null; // hyparquet leaves null lists undefined
      else if (typeof v === 'bigint' && v >= minSafe && v <= maxSafe) row[k] = Number(v);
    }
  }
  return rows;
}

function candidateFrom(r: Row): CandidateRow {
  const ids = r.entry_ids as ArrayLike<number>;
  return {
    uuid: r.uuid as string,
    url: r.url as string,
    key: r.key as string,
    text: r.text as string,
    lang: (r.lang as string | null | undefined) ?? null,
    entry_ids: Array.isArray(ids) ? ids : Array.from(ids),
  };
}

export function writeCandidatesParquet(rows: readonly CandidateRow[], opts?: WriteParquetOptions): Promise<Buffer> {
  return writeParquet(rows as unknown as readonly Row[], CANDIDATE_COLUMNS, opts);
}

export async function readCandidatesParquet(buf: Uint8Array): Promise<CandidateRow[]> {
  const rows = await readParquetRows(buf, { columns: CANDIDATE_COLUMNS.map((c) => c.name) });
  return rows.map(candidateFrom);
}

export function writePoolParquet(rows: readonly PoolRow[], opts?: WriteParquetOptions): Promise<Buffer> {
  return writeParquet(rows as unknown as readonly Row[], POOL_COLUMNS, opts);
}

/** Reads pool rows; curated files are pool files too (their extra `p` column is not read). */
export async function readPoolParquet(buf: Uint8Array): Promise<PoolRow[]> {
  const rows = await readParquetRows(buf, { columns: POOL_COLUMNS.map((c) => c.name) });
  return rows.map((r) => ({
    ...candidateFrom(r), shard: r.shard as string, position: r.position as number,
    image_key: (r.image_key as string | null) ?? null, image_tar: (r.image_tar as string | null) ?? null,
  }));
}

export function writeCuratedParquet(rows: readonly CuratedRow[], opts?: WriteParquetOptions): Promise<Buffer> {
  return writeParquet(rows as unknown as readonly Row[], CURATED_COLUMNS, opts);
}

export async function readCuratedParquet(buf: Uint8Array): Promise<CuratedRow[]> {
  const rows = await readParquetRows(buf, { columns: CURATED_COLUMNS.map((c) => c.name) });
  return rows.map((r) => ({
    ...candidateFrom(r), p: r.p as number, shard: r.shard as string, position: r.position as number,
    image_key: (r.image_key as string | null) ?? null, image_tar: (r.image_tar as string | null) ?? null,
  }));
}
