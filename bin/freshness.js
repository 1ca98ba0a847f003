'use strict';
// Whether dist/ is older than the TypeScript sources (shared by setup.js and curate.js; Node built-ins only).
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const SOURCE_DIRS = ['curation', 'storage', 'activities', 'workflows', 'workers', 'scripts', 'test'];
const STAMP = path.join(ROOT, 'dist', '.build-stamp');

function mtime(p) {
  try { return fs.statSync(p).mtimeMs; } catch { return 0; }
}

function newestSource(dir) {
  let newest = 0;
  let entries;
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return 0; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, mtime(p));
  }
  return newest;
}

function buildIsStale() {
  const newest = Math.max(...SOURCE_DIRS.map((d) => newestSource(path.join(ROOT, d))), mtime(path.join(ROOT, 'tsconfig.json')));
  return !(mtime(STAMP) >= newest && newest > 0);
}

/** AssemblyScript sources and the WebAssembly modules bin/build-wasm.js compiles them to. */
const WASM_MODULES = ['watscan', 'htmlscan'].map((name) => ({
  source: path.join(ROOT, 'wasm', `${name}.ts`), output: path.join(ROOT, 'dist', 'wasm', `${name}.wasm`),
}));

function wasmIsStale(source, output) {
  if (source === undefined) return WASM_MODULES.some((m) => wasmIsStale(m.source, m.output));
  const built = mtime(output);
  const inputs = [source, path.join(ROOT, 'wasm', 'common.ts'), path.join(ROOT, 'bin', 'build-wasm.js')];
  return !(built > 0 && inputs.every((f) => built >= mtime(f)));
}

/** The libdeflate gunzip addon bin/build-native.js builds (optional: `failed` records why it could not be). */
const NATIVE = {
  source: path.join(ROOT, 'native', 'gzip-members.c'),
  output: path.join(ROOT, 'dist', 'native', 'gzip-members.node'),
  failed: path.join(ROOT, 'dist', 'native', 'gzip-members.failed'),
};

/** Whether `file` (the addon, or the record of a failed build) is older than what it was built from. */
function nativeIsStale(file = NATIVE.output) {
  const built = mtime(file);
  return !(built > 0 && [NATIVE.source, path.join(ROOT, 'bin', 'build-native.js')].every((f) => built >= mtime(f)));
}

function npmIsStale() {
  const installed = mtime(path.join(ROOT, 'node_modules', '.package-lock.json'));
  return !(installed > 0 && installed >= mtime(path.join(ROOT, 'package-lock.json')));
}

module.exports = { ROOT, STAMP, WASM_MODULES, NATIVE, mtime, buildIsStale, wasmIsStale, nativeIsStale, npmIsStale };
