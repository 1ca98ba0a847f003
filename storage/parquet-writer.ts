/**
 * A small Parquet writer for the tables storage/parquet.ts describes with ColumnSpec: flat STRING, INT32,
 * INT64, DOUBLE and BOOLEAN columns, REQUIRED or OPTIONAL, and LISTs (3-level layout) of non-null scalars.
 * It serializes the schema it is given (parquetSchema(columns)) and writes, per row group and column, data
 * pages v1 of PLAIN values with RLE/bit-packed hybrid levels, cut at row boundaries once a page holds
 * PAGE_BYTES of values, each page compressed with ZSTD (Node's zlib, native) or left uncompressed.
 *
 * Why not a general writer: here a value costs no allocation. Rows are walked once, row by row (a row's
 * strings are read while they are in cache: walking column by column was 4x slower on a shard's rows);
 * each column appends to its own reused buffers: strings with Buffer#write straight into the page's
 * value Buffer, numbers through a DataView over it, levels into a Uint8Array. Validation is part of the
 * same pass (TypeError naming column and row). Statistics are what is exact and cheap: null_count of flat
 * columns, min/max of flat INT32/INT64 columns; none for strings (UTF-8 byte order is not JS string
 * order, and comparing costs), doubles (NaN, -0) or lists.
 *
 * Determinism: the bytes depend on the rows, the columns and the options only (no time, host or version
 * strings; ZSTD one-shot with a fixed level, single-threaded, is deterministic for a given zstd build).
 */
import { constants as zlibConstants, zstdCompressSync } from 'node:zlib';
import type { SchemaElement } from 'hyparquet';
import type { ColumnSpec, Row, ScalarType } from './parquet';

export type WriteCodec = 'ZSTD' | 'UNCOMPRESSED';

export interface EncodeOptions {
  codec: WriteCodec;
  /** Rows per row group (> 0). */
  rowGroupSize: number;
  /** ZSTD level; default ZSTD_LEVEL. */
  zstdLevel?: number;
  /** A page is closed at the first row boundary after its values reach this many bytes; default PAGE_BYTES. */
  pageBytes?: number;
}

/** pyarrow's default page size. */
export const PAGE_BYTES = 1 << 20;
/**
 * Largest output chunk of zlib's one-shot compression: a 1 MiB page of a shard's candidates compresses to
 * ~220 KB, one chunk instead of zlib's default 16 KiB pieces and their concatenation. Small pages get a
 * chunk of their compress bound (a chunk stays allocated as long as the page).
 */
const ZSTD_CHUNK = 1 << 18;
/** Level 1: levels 2 and 3 cost 10–25% more CPU for files 1–2% smaller (a shard's candidates, measured). */
export const ZSTD_LEVEL = 1;
/** Written as FileMetaData.created_by: fixed, so files do not change with the Node or package version. */
export const CREATED_BY = 'metaclip-temporal storage/parquet-writer';

// Thrift enums of parquet.thrift.
const PHYSICAL: Record<ScalarType, number> = { BOOLEAN: 0, INT32: 1, INT64: 2, DOUBLE: 5, STRING: 6 };
const PHYSICAL_NAMES = ['BOOLEAN', 'INT32', 'INT64', 'INT96', 'FLOAT', 'DOUBLE', 'BYTE_ARRAY', 'FIXED_LEN_BYTE_ARRAY'];
const REPETITION: Record<string, number> = { REQUIRED: 0, OPTIONAL: 1, REPEATED: 2 };
const CONVERTED: Record<string, number> = { UTF8: 0, LIST: 3 };
/** LogicalType union member ids. */
const LOGICAL: Record<string, number> = { STRING: 1, LIST: 3 };
const ENC_PLAIN = 0;
const ENC_RLE = 3;
const PAGE_DATA = 0;
const CODEC_ID: Record<WriteCodec, number> = { UNCOMPRESSED: 0, ZSTD: 6 };

// ---------------------------------------------------------------------------------------------------
// Thrift compact protocol (only what PageHeader and FileMetaData need)

const T_I32 = 5;
const T_I64 = 6;
const T_BINARY = 8;
const T_LIST = 9;
const T_STRUCT = 12;

class ThriftWriter {
  buf = Buffer.allocUnsafe(256);
  pos = 0;
  private lastFid = 0;
  private readonly stack: number[] = [];

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned varint of a non-negative integer up to 2^53. */
  varint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  zigzag(n: number): void {
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  private field(fid: number, type: number): void {
    const delta = fid - this.lastFid;
    if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
    else {
      this.byte(type);
      this.zigzag(fid);
    }
    this.lastFid = fid;
  }

  i32(fid: number, v: number): void {
    this.field(fid, T_I32);
    this.zigzag(v);
  }

  i64(fid: number, v: number): void {
    this.field(fid, T_I64);
    this.zigzag(v);
  }

  binary(fid: number, v: string | Uint8Array): void {
    this.field(fid, T_BINARY);
    this.rawBinary(v);
  }

  rawBinary(v: string | Uint8Array): void {
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.varint(bytes.length);
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A struct field; its fields follow, then end(). */
  struct(fid: number): void {
    this.field(fid, T_STRUCT);
    this.begin();
  }

  /** A list field of `n` elements of `elemType`; the elements follow (structs: begin() … end() each). */
  list(fid: number, elemType: number, n: number): void {
    this.field(fid, T_LIST);
    if (n < 15) this.byte((n << 4) | elemType);
    else {
      this.byte(0xf0 | elemType);
      this.varint(n);
    }
  }

  /** Starts a struct (the top-level one, or a list element). */
  begin(): void {
    this.stack.push(this.lastFid);
    this.lastFid = 0;
  }

  end(): void {
    this.byte(0);
    this.lastFid = this.stack.pop() ?? 0;
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

// ---------------------------------------------------------------------------------------------------
// Levels: the RLE / bit-packed hybrid (bit widths 1 and 2 here)

/**
 * Encodes levels[0, n) into out at pos; returns the end. Runs of 8 or more equal levels become RLE runs,
 * the rest bit-packed runs of at most 63 groups of 8 (a one-byte header; the last group padded with 0s).
 * out must have room for levelsBound(n) bytes.
 */
function encodeLevels(levels: Uint8Array, n: number, bitWidth: number, out: Buffer, pos: number): number {
  let i = 0;
  while (i < n) {
    const v = levels[i];
    let j = i + 1;
    while (j < n && levels[j] === v) j++;
    if (j - i >= 8) {
      let count = (j - i) * 2; // RLE header: count << 1, then the value in one byte
      while (count >= 0x80) {
        out[pos++] = (count % 0x80) | 0x80;
        count = Math.floor(count / 0x80);
      }
      out[pos++] = count;
      out[pos++] = v;
      i = j;
      continue;
    }
    const header = pos++;
    let groups = 0;
    for (;;) {
      let word = 0;
      for (let k = 0; k < 8; k++) {
        const x = i + k < n ? levels[i + k] : 0;
        word |= x << (k * bitWidth);
      }
      out[pos++] = word & 0xff;
      if (bitWidth === 2) out[pos++] = word >>> 8;
      i += 8;
      groups++;
      if (i >= n || groups === 63) break;
      const w = levels[i];
      let k = i + 1;
      while (k < n && k - i < 8 && levels[k] === w) k++;
      if (k - i >= 8) break; // a run starts here: leave it to RLE
    }
    out[header] = (groups << 1) | 1;
  }
  return pos;
}

/** Upper bound of encodeLevels' output for n levels of bit width ≤ 2. */
const levelsBound = (n: number): number => n + 16;

// ---------------------------------------------------------------------------------------------------
// Columns

interface Leaf {
  spec: ColumnSpec;
  path: string[];
  maxDef: number;
  maxRep: number;
  physical: number;
}

/** Leaves of the schema, checked against the column specs they must describe. */
function leavesOf(schema: readonly SchemaElement[], columns: readonly ColumnSpec[]): Leaf[] {
  const leaves: Omit<Leaf, 'spec'>[] = [];
  let next = 1;
  const walk = (path: string[], def: number, rep: number): void => {
    const e = schema[next++];
    if (!e) throw new Error('parquet schema: fewer elements than num_children say');
    const r = e.repetition_type;
    const d = def + (r === 'OPTIONAL' || r === 'REPEATED' ? 1 : 0);
    const p = rep + (r === 'REPEATED' ? 1 : 0);
    const here = [...path, e.name];
    if (e.num_children) for (let k = 0; k < e.num_children; k++) walk(here, d, p);
    else leaves.push({ path: here, maxDef: d, maxRep: p, physical: PHYSICAL_NAMES.indexOf(e.type ?? '') });
  };
  for (let k = 0; k < (schema[0]?.num_children ?? 0); k++) walk([], 0, 0);
  if (next !== schema.length || leaves.length !== columns.length) throw new Error('parquet schema does not match the columns');
  return leaves.map((l, k) => {
    const c = columns[k];
    const ok = l.path[0] === c.name && l.physical === PHYSICAL[c.type] &&
      l.maxRep === (c.list ? 1 : 0) && l.maxDef === (c.list ? 1 : 0) + (c.nullable ? 1 : 0) && l.path.length === (c.list ? 3 : 1);
    if (!ok) throw new Error(`parquet schema does not match column ${c.name}`);
    return { ...l, spec: c };
  });
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function badValue(c: ColumnSpec, row: number, v: unknown): never {
  const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : String(v);
  throw new TypeError(`parquet column ${c.name}, row ${row}: expected ${c.list ? `list of ${c.type}` : c.type}${c.nullable ? ' or null' : ''}, got ${shown}`);
}

/** Where a column chunk is in the file and what the footer says of it. */
interface ChunkMeta {
  leaf: Leaf;
  offset: number;
  numValues: number;
  uncompressed: number;
  compressed: number;
  pages: number;
  nulls: number;
  min: number | bigint | undefined;
  max: number | bigint | undefined;
}

const STRING = 0;
const INT32 = 1;
const INT64 = 2;
const DOUBLE = 3;
const BOOLEAN = 4;
const TYPE_CODE: Record<ScalarType, number> = { STRING, INT32, INT64, DOUBLE, BOOLEAN };

/**
 * One column of the row group being written: the page being built (PLAIN values in `vals`, levels in
 * `def` / `rep`) and the finished pages (header, data) of the chunk. The buffers are reused from page to
 * page and row group to row group.
 */
class ColumnEncoder {
  readonly name: string;
  readonly type: number;
  readonly nullable: boolean;
  readonly list: boolean;
  /** Definition level of a present list element (lists only). */
  private readonly fullDef: number;
  private readonly stats: boolean;

  private vals = Buffer.allocUnsafe(1 << 14);
  private view = new DataView(this.vals.buffer, this.vals.byteOffset, this.vals.length);
  vpos = 0;
  private bits = 0; // BOOLEAN values in the page (bit-packed)
  private def = new Uint8Array(1 << 10);
  private rep = new Uint8Array(1 << 10);
  private nLevels = 0;
  private pageRows = 0;

  // The chunk so far.
  private parts: Buffer[] = [];
  private numValues = 0;
  private uncompressed = 0;
  private compressed = 0;
  private pages = 0;
  private nulls = 0;
  private min: number | bigint | undefined;
  private max: number | bigint | undefined;

  constructor(readonly leaf: Leaf) {
    const c = leaf.spec;
    this.name = c.name;
    this.type = TYPE_CODE[c.type];
    this.nullable = !!c.nullable;
    this.list = !!c.list;
    this.fullDef = leaf.maxDef;
    this.stats = !c.list && (c.type === 'INT32' || c.type === 'INT64');
  }

  private growVals(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.vals.length * 2, need));
    this.vals.copy(next, 0, 0, this.vpos);
    this.vals = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.length);
  }

  private level(def: number, rep: number): void {
    if (this.nLevels === this.def.length) {
      const d = new Uint8Array(this.def.length * 2);
      d.set(this.def);
      this.def = d;
      const r = new Uint8Array(this.rep.length * 2);
      r.set(this.rep);
      this.rep = r;
    }
    this.def[this.nLevels] = def;
    this.rep[this.nLevels++] = rep;
  }

  /** Appends row `row`'s value v; throws TypeError (column, row) when v does not fit the column. */
  add(v: unknown, row: number): void {
    this.pageRows++;
    if (v === null || v === undefined) {
      if (!this.nullable) badValue(this.leaf.spec, row, v);
      this.level(0, 0);
      this.nulls++;
    } else if (!this.list) {
      if (!this.value(v)) badValue(this.leaf.spec, row, v);
      if (this.nullable) this.level(1, 0);
    } else {
      if (!Array.isArray(v)) badValue(this.leaf.spec, row, v);
      const list = v as unknown[];
      if (list.length === 0) this.level(this.fullDef - 1, 0);
      for (let j = 0; j < list.length; j++) {
        if (!this.value(list[j])) badValue(this.leaf.spec, row, list[j]);
        this.level(this.fullDef, j === 0 ? 0 : 1);
      }
    }
  }

  /** Appends one non-null value; false when it is not a value of the column's type. */
  private value(v: unknown): boolean {
    switch (this.type) {
      case STRING: {
        if (typeof v !== 'string') return false;
        const need = this.vpos + 4 + v.length * 3; // UTF-8 takes at most 3 bytes per UTF-16 unit
        if (need > this.vals.length) this.growVals(need);
        const n = this.vals.write(v, this.vpos + 4); // UTF-8 (lone surrogates as U+FFFD, like TextEncoder)
        this.view.setUint32(this.vpos, n, true);
        this.vpos += 4 + n;
        return true;
      }
      case INT32: {
        if (typeof v !== 'number' || (v | 0) !== v) return false;
        if (this.vpos + 4 > this.vals.length) this.growVals(this.vpos + 4);
        this.view.setInt32(this.vpos, v, true);
        this.vpos += 4;
        if (this.stats) this.minMax(v);
        return true;
      }
      case INT64: {
        if (this.vpos + 8 > this.vals.length) this.growVals(this.vpos + 8);
        if (typeof v === 'number') {
          if (!Number.isSafeInteger(v)) return false;
          const hi = Math.floor(v / 2 ** 32);
          this.view.setUint32(this.vpos, v - hi * 2 ** 32, true);
          this.view.setInt32(this.vpos + 4, hi, true);
        } else if (typeof v === 'bigint') {
          if (v < INT64_MIN || v > INT64_MAX) return false;
          this.view.setBigInt64(this.vpos, v, true);
        } else return false;
        this.vpos += 8;
        if (this.stats) this.minMax(v);
        return true;
      }
      case DOUBLE: {
        if (typeof v !== 'number') return false;
        if (this.vpos + 8 > this.vals.length) this.growVals(this.vpos + 8);
        this.view.setFloat64(this.vpos, v, true);
        this.vpos += 8;
        return true;
      }
      default: {
        if (typeof v !== 'boolean') return false;
        if ((this.bits & 7) === 0) {
          if (this.vpos + 1 > this.vals.length) this.growVals(this.vpos + 1);
          this.vals[this.vpos++] = 0;
        }
        if (v) this.vals[this.vpos - 1] |= 1 << (this.bits & 7);
        this.bits++;
        return true;
      }
    }
  }

  private minMax(v: number | bigint): void {
    if (this.min === undefined || v < this.min) this.min = v;
    if (this.max === undefined || v > this.max) this.max = v;
  }

  /** Closes the page being built (if it has rows): levels + values, compressed, after its header. */
  page(shared: Shared): void {
    if (this.pageRows === 0) return;
    const { leaf } = this;
    const numValues = leaf.maxDef || leaf.maxRep ? this.nLevels : this.pageRows;
    const body = shared.body(2 * (4 + levelsBound(this.nLevels)) + this.vpos);
    let pos = 0;
    if (leaf.maxRep) {
      const end = encodeLevels(this.rep, this.nLevels, 1, body, pos + 4);
      body.writeUInt32LE(end - pos - 4, pos);
      pos = end;
    }
    if (leaf.maxDef) {
      const end = encodeLevels(this.def, this.nLevels, leaf.maxDef > 1 ? 2 : 1, body, pos + 4);
      body.writeUInt32LE(end - pos - 4, pos);
      pos = end;
    }
    this.vals.copy(body, pos, 0, this.vpos);
    pos += this.vpos;
    const plain = body.subarray(0, pos);
    const data = shared.compress(plain);

    const t = new ThriftWriter();
    t.begin();
    t.i32(1, PAGE_DATA);
    t.i32(2, plain.length);
    t.i32(3, data.length);
    t.struct(5); // DataPageHeader
    t.i32(1, numValues);
    t.i32(2, ENC_PLAIN);
    t.i32(3, ENC_RLE);
    t.i32(4, ENC_RLE);
    t.end();
    t.end();
    const header = t.bytes();
    this.parts.push(header, data);
    this.numValues += numValues;
    this.uncompressed += header.length + plain.length;
    this.compressed += header.length + data.length;
    this.pages++;
    this.vpos = 0;
    this.bits = 0;
    this.nLevels = 0;
    this.pageRows = 0;
  }

  /** Hands over the chunk's pages (written at `offset`) and starts the next chunk. */
  take(offset: number): { meta: ChunkMeta; parts: Buffer[] } {
    const meta: ChunkMeta = {
      leaf: this.leaf, offset, numValues: this.numValues, uncompressed: this.uncompressed, compressed: this.compressed,
      pages: this.pages, nulls: this.nulls, min: this.min, max: this.max,
    };
    const { parts } = this;
    this.parts = [];
    this.numValues = this.uncompressed = this.compressed = this.pages = this.nulls = 0;
    this.min = this.max = undefined;
    return { meta, parts };
  }
}

/** What the columns of a file share: the page body buffer and the codec. */
class Shared {
  private buf = Buffer.allocUnsafe(1 << 16);
  private readonly zstdOptions: { chunkSize: number; params: Record<number, number> };

  constructor(private readonly codec: WriteCodec, zstdLevel: number) {
    this.zstdOptions = { chunkSize: ZSTD_CHUNK, params: { [zlibConstants.ZSTD_c_compressionLevel]: zstdLevel } };
  }

  body(size: number): Buffer {
    if (size > this.buf.length) this.buf = Buffer.allocUnsafe(Math.max(size, this.buf.length * 2));
    return this.buf;
  }

  /** The page's data as stored (a new Buffer: the body buffer is reused). */
  compress(plain: Buffer): Buffer {
    if (this.codec === 'UNCOMPRESSED') return Buffer.from(plain);
    const n = plain.length;
    this.zstdOptions.chunkSize = Math.min(ZSTD_CHUNK, n + (n >> 8) + 128); // ≥ ZSTD_compressBound(n)
    return zstdCompressSync(plain, this.zstdOptions);
  }
}

/** The footer: FileMetaData, its length, PAR1. */
function footer(schema: readonly SchemaElement[], numRows: number, groups: readonly RowGroupMeta[], leaves: number, codec: WriteCodec): Buffer {
  const t = new ThriftWriter();
  t.begin();
  t.i32(1, 2); // version
  t.list(2, T_STRUCT, schema.length);
  for (const e of schema) schemaElement(t, e);
  t.i64(3, numRows);
  t.list(4, T_STRUCT, groups.length);
  for (const g of groups) {
    t.begin();
    t.list(1, T_STRUCT, g.chunks.length);
    for (const m of g.chunks) columnChunk(t, m, codec);
    t.i64(2, g.chunks.reduce((s, m) => s + m.uncompressed, 0));
    t.i64(3, g.rows);
    t.i64(5, g.chunks[0].offset);
    t.i64(6, g.chunks.reduce((s, m) => s + m.compressed, 0));
    t.end();
  }
  t.binary(6, CREATED_BY);
  t.list(7, T_STRUCT, leaves); // column_orders: TypeDefinedOrder for every leaf
  for (let k = 0; k < leaves; k++) {
    t.begin();
    t.struct(1);
    t.end();
    t.end();
  }
  t.end();
  const meta = t.bytes();
  const tail = Buffer.allocUnsafe(8);
  tail.writeUInt32LE(meta.length, 0);
  tail.write('PAR1', 4, 'latin1');
  return Buffer.concat([meta, tail]);
}

interface RowGroupMeta {
  rows: number;
  chunks: ChunkMeta[];
}

function schemaElement(t: ThriftWriter, e: SchemaElement): void {
  const unsupported = e.type_length !== undefined || e.scale !== undefined || e.precision !== undefined || e.field_id !== undefined;
  if (unsupported) throw new Error(`parquet writer: schema element ${e.name} has fields this writer does not write`);
  t.begin();
  if (e.type !== undefined) t.i32(1, PHYSICAL_NAMES.indexOf(e.type));
  if (e.repetition_type !== undefined) t.i32(3, REPETITION[e.repetition_type]);
  t.binary(4, e.name);
  if (e.num_children !== undefined) t.i32(5, e.num_children);
  if (e.converted_type !== undefined) {
    const id = CONVERTED[e.converted_type];
    if (id === undefined) throw new Error(`parquet writer: converted type ${e.converted_type} not supported`);
    t.i32(6, id);
  }
  if (e.logical_type !== undefined) {
    const id = LOGICAL[e.logical_type.type];
    if (id === undefined) throw new Error(`parquet writer: logical type ${e.logical_type.type} not supported`);
    t.struct(10);
    t.struct(id); // StringType / ListType: empty structs
    t.end();
    t.end();
  }
  t.end();
}

function int64Bytes(v: number | bigint, bytes: 4 | 8): Buffer {
  const b = Buffer.alloc(bytes);
  if (bytes === 4) b.writeInt32LE(Number(v));
  else b.writeBigInt64LE(BigInt(v));
  return b;
}

function columnChunk(t: ThriftWriter, m: ChunkMeta, codec: WriteCodec): void {
  const { leaf } = m;
  t.begin();
  t.i64(2, m.offset); // file_offset (deprecated): the chunk's first page, like hyparquet-writer
  t.struct(3); // ColumnMetaData
  t.i32(1, leaf.physical);
  const levels = leaf.maxDef > 0 || leaf.maxRep > 0;
  t.list(2, T_I32, levels ? 2 : 1);
  t.zigzag(ENC_PLAIN);
  if (levels) t.zigzag(ENC_RLE);
  t.list(3, T_BINARY, leaf.path.length);
  for (const p of leaf.path) t.rawBinary(p);
  t.i32(4, CODEC_ID[codec]);
  t.i64(5, m.numValues);
  t.i64(6, m.uncompressed);
  t.i64(7, m.compressed);
  t.i64(9, m.offset); // data_page_offset
  if (!leaf.spec.list) {
    t.struct(12); // Statistics
    t.i64(3, m.nulls);
    if (m.max !== undefined && m.min !== undefined) {
      const size = leaf.spec.type === 'INT32' ? 4 : 8;
      t.binary(5, int64Bytes(m.max, size));
      t.binary(6, int64Bytes(m.min, size));
    }
    t.end();
  }
  if (m.pages > 0) {
    t.list(13, T_STRUCT, 1); // encoding_stats
    t.begin();
    t.i32(1, PAGE_DATA);
    t.i32(2, ENC_PLAIN);
    t.i32(3, m.pages);
    t.end();
  }
  t.end();
  t.end();
}

/** The Parquet file of `rows` under `schema` (which must be parquetSchema(columns)). */
export function encodeParquet(rows: readonly Row[], columns: readonly ColumnSpec[], schema: readonly SchemaElement[], opts: EncodeOptions): Buffer {
  const { codec, rowGroupSize } = opts;
  if (!(rowGroupSize > 0)) throw new RangeError(`parquet rowGroupSize must be positive, got ${rowGroupSize}`);
  if (CODEC_ID[codec] === undefined) throw new RangeError(`parquet codec ${String(codec)} not supported (ZSTD or UNCOMPRESSED)`);
  if (columns.length === 0) throw new RangeError('parquet needs at least one column');
  const pageBytes = opts.pageBytes ?? PAGE_BYTES;
  const leaves = leavesOf(schema, columns);
  const shared = new Shared(codec, opts.zstdLevel ?? ZSTD_LEVEL);
  const encoders = leaves.map((leaf) => new ColumnEncoder(leaf));
  const parts: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const groups: RowGroupMeta[] = [];
  for (let r0 = 0; r0 < rows.length; r0 += rowGroupSize) {
    const r1 = Math.min(rows.length, r0 + rowGroupSize);
    // Row by row (all columns of a row together): the row's strings are read while in cache; column by
    // column was 4x slower on a shard's rows.
    for (let i = r0; i < r1; i++) {
      const row = rows[i];
      for (let k = 0; k < encoders.length; k++) {
        const e = encoders[k];
        e.add(row[e.name], i);
        if (e.vpos >= pageBytes) e.page(shared);
      }
    }
    const chunks: ChunkMeta[] = [];
    for (const e of encoders) {
      e.page(shared);
      const chunk = e.take(offset);
      for (const b of chunk.parts) {
        parts.push(b);
        offset += b.length;
      }
      chunks.push(chunk.meta);
    }
    groups.push({ rows: r1 - r0, chunks });
  }
  const tail = footer(schema, rows.length, groups, leaves.length, codec);
  parts.push(tail);
  return Buffer.concat(parts, offset + tail.length);
}
