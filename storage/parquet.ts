/**
 * Parquet files for the pipeline's tables: written by our own writer (storage/parquet-writer.ts), read
 * with hyparquet (pure JS); files are read identically by pyarrow and DuckDB (tested). Schemas are
 * explicit so a column's type never depends on the data (an empty shard or an all-null column still gets
 * the right type), and the same rows always give byte-identical files: nothing time- or host-dependent is
 * written.
 *
 * Why a writer of our own: hyparquet-writer (general, pure JS: SNAPPY in JS, dictionary pages where they
 * pay, min/max statistics of every column, a TextEncoder allocation per string, 30% of the time in GC)
 * was the one stage of a shard slower than MetaCLIP's Python path: 14.6 CPU s for a Common-Crawl-size
 * shard's 1.32M candidate rows, against 2.6 s for pyarrow. storage/parquet-writer.ts covers exactly what
 * ColumnSpec expresses and allocates nothing per value (PLAIN values and RLE levels in reused buffers,
 * rows walked row by row), compresses each 1 MiB page with ZSTD level 1 in Node's native zlib, and writes
 * statistics only where exact and cheap. Measured (CPU s of writeCandidatesParquet; both writers in the
 * same runs, on a 2-core machine shared with other benchmarks, hence the ranges):
 *   400k synthetic candidate rows       hyparquet-writer 2.4–3.3 s, 13.6 MB   ours 0.3–0.5 s, 2.7 MB
 *   400k rows of a shard's candidates   2.8–3.6 s, 18.6 MB                    0.33–0.5 s, 13.3 MB
 *   the shard's 1.32M candidate rows    13.3–16.5 s, 62.0 MB                  1.6–2.2 s, 44.2 MB
 * (A process's first write, JIT still cold: ours 0.4–0.7 s for 400k rows.) pyarrow on the same 1.32M rows:
 * 0.64 s to write Arrow arrays, 1.8–1.9 s with building them from Python lists (SNAPPY 65.4 MB, ZSTD
 * 42.4 MB). Reading is not slower: hyparquet takes 2.5–3.3 s for the shard, SNAPPY or ZSTD.
 *
 * Codec: ZSTD by default, a standard Parquet codec: native, so much faster than SNAPPY in JS, and files
 * ~30% smaller. pyarrow and DuckDB read it (tested); hyparquet does through its `compressors` option
 * (DECOMPRESSORS, passed by readParquetRows). Files of earlier versions (hyparquet-writer: SNAPPY,
 * dictionary pages, data pages v2) still read (test/fixtures/parquet).
 */
import { zstdDecompressSync } from 'node:zlib';
import type { Compressors, SchemaElement } from 'hyparquet';
import type { CandidateRow } from '../curation/shard';
import { encodeParquet } from './parquet-writer';

type Hyparquet = typeof import('hyparquet');
let lib: Promise<Hyparquet> | null = null;
/**
 * hyparquet ships ESM only: loaded with import() (Node's require(esm) in the CommonJS build; real ESM
 * under Jest, whose SWC transform keeps dynamic imports).
 */
function hyparquet(): Promise<Hyparquet> {
  lib ??= import('hyparquet');
  return lib;
}

/** What hyparquet does not decompress itself (it has SNAPPY built in). */
export const DECOMPRESSORS: Compressors = {
  ZSTD: (input) => zstdDecompressSync(input),
};

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
  /** ZSTD (default; level 1, Node's zlib) or UNCOMPRESSED. */
  codec?: 'ZSTD' | 'UNCOMPRESSED';
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

/** Writes rows (objects keyed by column name) as one Parquet file. Throws TypeError naming the column and row of a bad value. */
export async function writeParquet(rows: readonly Row[], columns: readonly ColumnSpec[], opts: WriteParquetOptions = {}): Promise<Buffer> {
  return encodeParquet(rows, columns, parquetSchema(columns), { codec: opts.codec ?? 'ZSTD', rowGroupSize: opts.rowGroupSize ?? 100_000 });
}

function toArrayBuffer(buf: Uint8Array): ArrayBuffer {
  // Small Buffers are slices of a shared pool: hand hyparquet only this file's bytes.
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) return buf.buffer;
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

/** Reads all rows as objects; nulls as null, INT64 as number when it is a safe integer (bigint otherwise). */
export async function readParquetRows(buf: Uint8Array, opts: { columns?: string[] } = {}): Promise<Row[]> {
  const { parquetMetadata, parquetReadObjects, parquetSchema: schemaTree } = await hyparquet();
  const file = toArrayBuffer(buf);
  const metadata = parquetMetadata(file);
  if (opts.columns) {
    const present = schemaTree(metadata).children.map((c) => c.element.name);
    const missing = opts.columns.filter((c) => !present.includes(c));
    if (missing.length) throw new Error(`parquet file has no column ${missing.join(', ')} (it has ${present.join(', ')})`);
  }
  const rows = (await parquetReadObjects({ file, metadata, columns: opts.columns, compressors: DECOMPRESSORS })) as Row[];
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
