#!/usr/bin/env node
'use strict';
// `npx curate <command>`: builds dist/ on first use (fresh clone), then runs the CLI.
const path = require('node:path');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'scripts', 'cli.js');
if (!fs.existsSync(cli) || !fs.existsSync(path.join(root, 'node_modules', '.package-lock.json'))) {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'setup.js'), '--quiet'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
require(cli).main(process.argv.slice(2)).catch((err) => {
  console.error(`curate: ${err && err.message ? err.message : err}`);
  process.exit(typeof err?.exitCode === 'number' ? err.exitCode : 1);
});
