#!/usr/bin/env node
'use strict';
// `npx curate <command>`: installs and builds on first use (fresh clone) or when sources changed, then runs the CLI
// on the project's Node 24 (bin/runtime.js: on an older Node, the same command runs again on it; this one waits).
const path = require('node:path');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const { ROOT, buildIsStale, wasmIsStale, npmIsStale } = require('./freshness');

function main() {
  const cli = path.join(ROOT, 'dist', 'scripts', 'cli.js');
  // A fresh clone or changed sources: install/build first (quietly: stdout belongs to the command).
  if (!fs.existsSync(cli) || npmIsStale() || buildIsStale() || wasmIsStale()) {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'setup.js'), '--quiet'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  require(cli).main(process.argv.slice(2)).catch((err) => {
    console.error(`curate: ${err && err.message ? err.message : err}`);
    process.exit(typeof err?.exitCode === 'number' ? err.exitCode : 1);
  });
}

if (!require('./runtime').reexecOnRuntime()) main();
