/**
 * The WebAssembly scanners (AssemblyScript under wasm/, compiled by bin/build-wasm.js to dist/wasm/*.wasm):
 * - watscan: the WAT payload scanner of curation/extract.ts (same grammar check and link ranges, string contents
 *   skipped 16 bytes at a time; about 2.5x the JS scanner on the bench corpus);
 * - htmlscan: scanImgTagsUtf8 of curation/html.ts (same tag reading, the searches for '<', '>' and quotes 16 bytes
 *   at a time), giving the attribute ranges of each <img>; and wellFormedUtf8Of's byte filter (keepWellFormedUtf8).
 * The JS scanners stay the reference and the fallback, with the same results.
 *
 * Each is loaded on first use, synchronously (a few KB). When a module is missing (not built) or fails to load, a
 * warning is emitted once and the JS scanner is used. CURATE_WASM=0 turns both off.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** scan() answers: the payload is not JSON / nests too deep / the JS scanner must decide (an escape that matters). */
export const WASM_INVALID = -1;
export const WASM_TOO_DEEP = -2;
export const WASM_NEEDS_JS = -3;

/**
 * Payloads above this size go to the JS scanner: WebAssembly memory never shrinks, and the module needs about
 * twice the payload (input + link ranges). Real WAT records are well under it.
 */
export const WASM_MAX_PAYLOAD = 8 << 20;

// The project compiles without the DOM lib, so the few WebAssembly types used here are declared here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface WatScanExports {
  memory: WasmMemory;
  prepare(len: number): number;
  scan(len: number): number;
  rangesPtr(): number;
  kindsPtr(): number;
  MAX_DEPTH: { value: number };
}

/** The links a scan found: `count` links, 8 range ints and 4 kinds each, views into the module's memory. */
export interface WasmLinks {
  count: number;
  ranges: Int32Array;
  kinds: Uint8Array;
}

export class WasmWatScanner {
  private constructor(private readonly m: WatScanExports) {}

  static fromFile(file: string): WasmWatScanner {
    return new WasmWatScanner(instantiate(file) as WatScanExports);
  }

  /** The deepest nesting the module accepts (must equal extract.ts's WAT_MAX_DEPTH). */
  get maxDepth(): number {
    return this.m.MAX_DEPTH.value;
  }

  /**
   * Scans `b` (≤ WASM_MAX_PAYLOAD bytes): the links (views valid until the next scan), or WASM_INVALID,
   * WASM_TOO_DEEP, WASM_NEEDS_JS.
   */
  scan(b: Uint8Array): WasmLinks | number {
    const m = this.m;
    if (copyIn(m, b) === 0) return WASM_NEEDS_JS; // the memory could not grow
    const n = m.scan(b.length);
    if (n < 0) return n;
    return { count: n, ranges: new Int32Array(m.memory.buffer, m.rangesPtr(), n * 8), kinds: new Uint8Array(m.memory.buffer, m.kindsPtr(), n * 4) };
  }
}

/**
 * Both modules take their input the same way: prepare(len) makes room (0 if it cannot), then the bytes go there.
 * Where they went, or 0.
 */
function copyIn(m: { memory: WasmMemory; prepare(len: number): number }, b: Uint8Array): number {
  const at = m.prepare(b.length);
  if (at !== 0) new Uint8Array(m.memory.buffer, at, b.length).set(b);
  return at;
}

function instantiate(file: string): unknown {
  const instance = new wasmApi.Instance(new wasmApi.Module(readFileSync(file)), {
    env: { abort: () => { throw new Error(`${path.basename(file)} aborted`); } },
  });
  return instance.exports;
}

/** Pages above this size go to the JS scanner (the module needs about 5x the page: input and attribute ranges). */
export const WASM_MAX_PAGE = 2 << 20;

interface HtmlScanExports {
  memory: WasmMemory;
  prepare(len: number): number;
  scan(len: number): number;
  outPtr(): number;
  keepWellFormedUtf8(len: number): number;
}

/** The tags a scan found: `count` tags, each (m, then m x (wanted index, start, end)) in `out`. */
export interface WasmImgTags {
  count: number;
  out: Int32Array;
}

export class WasmHtmlScanner {
  private constructor(private readonly m: HtmlScanExports) {}

  static fromFile(file: string): WasmHtmlScanner {
    return new WasmHtmlScanner(instantiate(file) as HtmlScanExports);
  }

  /** Scans a valid UTF-8 page (≤ WASM_MAX_PAGE bytes): its tags (a view valid until the next scan), or null. */
  scan(b: Uint8Array): WasmImgTags | null {
    const m = this.m;
    if (copyIn(m, b) === 0) return null; // the memory could not grow
    const count = m.scan(b.length);
    const from = m.outPtr();
    return { count, out: new Int32Array(m.memory.buffer, from, (m.memory.buffer.byteLength - from) >> 2) };
  }

  /**
   * The well-formed UTF-8 of `b` (≤ WASM_MAX_PAGE bytes) as a new buffer: every byte outside a well-formed
   * sequence dropped, and U+FFFD too (= the UTF-8 of decoding `b` with replacements and dropping them); null when
   * the memory could not grow.
   */
  keepWellFormedUtf8(b: Uint8Array): Buffer | null {
    const m = this.m;
    const at = copyIn(m, b);
    if (at === 0) return null; // the memory could not grow
    const n = m.keepWellFormedUtf8(b.length);
    const kept = Buffer.allocUnsafe(n);
    kept.set(new Uint8Array(m.memory.buffer, at, n));
    return kept;
  }
}

/** The project root (the folder of package.json above this file: curation/ from source, dist/curation/ built). */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return __dirname;
    dir = up;
  }
}

export const WATSCAN_WASM_FILE = path.join(projectRoot(), 'dist', 'wasm', 'watscan.wasm');
export const HTMLSCAN_WASM_FILE = path.join(projectRoot(), 'dist', 'wasm', 'htmlscan.wasm');

/** Loads a module once: null when CURATE_WASM=0 or it cannot load (warned once). */
function loader<T>(what: string, file: string, load: (file: string) => T): () => T | null {
  let loaded: T | null | undefined;
  return () => {
    if (loaded !== undefined) return loaded;
    loaded = null;
    if (process.env.CURATE_WASM === '0') return null;
    try {
      loaded = load(file);
    } catch (err) {
      process.emitWarning(`${what}: ${file} did not load (${(err as Error).message}); using the JS scanner (same results, slower). Run \`node bin/build-wasm.js\`.`);
    }
    return loaded;
  };
}

/** Which scanner reads an input: the WebAssembly one when it loads ('auto'), or one of the two (tests, benchmarks). */
export type ScannerMode = 'auto' | 'js' | 'wasm';

/**
 * The WebAssembly scanner for an input of `size` bytes, or null for the JS one: in 'js' mode, above `maxSize`,
 * or when it does not load ('wasm' mode throws then instead of falling back).
 */
export function chooseWasmScanner<T>(mode: ScannerMode, size: number, maxSize: number, load: () => T | null, file: string): T | null {
  if (mode === 'js' || size > maxSize) return null;
  const scanner = load();
  if (scanner === null && mode === 'wasm') throw new Error(`the WebAssembly scanner ${file} is not available`);
  return scanner;
}

/** The WAT scanner, or null when it is turned off or cannot load. */
export const wasmWatScanner = loader('WAT scanner', WATSCAN_WASM_FILE, (f) => WasmWatScanner.fromFile(f));
/** The HTML <img> scanner, or null when it is turned off or cannot load. */
export const wasmHtmlScanner = loader('HTML scanner', HTMLSCAN_WASM_FILE, (f) => WasmHtmlScanner.fromFile(f));
