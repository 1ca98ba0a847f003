/**
 * The WebAssembly WAT payload scanner (wasm/watscan.ts, compiled by bin/build-wasm.js to dist/wasm/watscan.wasm):
 * the same grammar check and link ranges as curation/extract.ts's JS scanner, with string contents skipped
 * 16 bytes at a time (measured 2x the JS scanner on the bench corpus, see README "Benchmarks").
 *
 * Loaded on first use, synchronously (3 KB). When the module is missing (not built) or fails to load, a warning is
 * emitted once and extract.ts keeps to the JS scanner, which gives the same results. CURATE_WATSCAN_WASM=0 turns
 * it off.
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
    const instance = new wasmApi.Instance(new wasmApi.Module(readFileSync(file)), {
      env: { abort: () => { throw new Error('watscan.wasm aborted'); } },
    });
    return new WasmWatScanner(instance.exports as unknown as WatScanExports);
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
    const at = m.prepare(b.length);
    if (at === 0) return WASM_NEEDS_JS; // the memory could not grow
    new Uint8Array(m.memory.buffer, at, b.length).set(b);
    const n = m.scan(b.length);
    if (n < 0) return n;
    return { count: n, ranges: new Int32Array(m.memory.buffer, m.rangesPtr(), n * 8), kinds: new Uint8Array(m.memory.buffer, m.kindsPtr(), n * 4) };
  }
}

/** The project root (the folder of package.json above this file: curation/ from source, dist/curation/ built). */
function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return __dirname;
    dir = up;
  }
}

export const WATSCAN_WASM_FILE = path.join(projectRoot(), 'dist', 'wasm', 'watscan.wasm');

let loaded: WasmWatScanner | null | undefined;

/** The scanner, or null when it is turned off or cannot load (warned once). */
export function wasmWatScanner(): WasmWatScanner | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.CURATE_WATSCAN_WASM === '0') return null;
  try {
    loaded = WasmWatScanner.fromFile(WATSCAN_WASM_FILE);
  } catch (err) {
    process.emitWarning(`WAT scanner: ${WATSCAN_WASM_FILE} did not load (${(err as Error).message}); using the JS scanner (same results, slower). Run \`node bin/build-wasm.js\`.`);
  }
  return loaded;
}
