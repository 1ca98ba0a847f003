#!/usr/bin/env node
'use strict';
// Compiles the AssemblyScript sources under wasm/ to dist/wasm/*.wasm (AssemblyScript is a devDependency; the
// .wasm is built here, never downloaded). Run by bin/setup.js and `npm run build` when a source is newer than
// its module; `--force` rebuilds. Node built-ins only, so that setup can run it before anything else is built.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { ROOT, WASM_MODULES, wasmIsStale } = require('./freshness');

function buildWasm({ force = false, log = () => undefined } = {}) {
  const asc = path.join(ROOT, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
  for (const { source, output } of WASM_MODULES) {
    if (!force && !wasmIsStale(source, output)) continue;
    log(`compiling ${path.relative(ROOT, source)} (AssemblyScript → ${path.relative(ROOT, output)})…`);
    fs.mkdirSync(path.dirname(output), { recursive: true });
    // -O3 speed, no runtime (the module manages its own memory), SIMD for the byte scans.
    const r = spawnSync(process.execPath, [asc, source, '-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', '-o', output], {
      cwd: ROOT, encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`asc failed on ${path.relative(ROOT, source)} (exit ${r.status}):\n${(r.stderr || '') + (r.stdout || '')}`);
  }
}

module.exports = { buildWasm };

if (require.main === module) {
  if (process.argv.includes('--help')) {
    console.log('usage: node bin/build-wasm.js [--force]\n\nCompiles wasm/*.ts (AssemblyScript) to dist/wasm/*.wasm when a source is newer than its module.');
    process.exit(0);
  }
  try {
    buildWasm({ force: process.argv.includes('--force'), log: (m) => console.log(`[build-wasm] ${m}`) });
  } catch (err) {
    console.error(`[build-wasm] ${err.message}`);
    process.exit(1);
  }
}
