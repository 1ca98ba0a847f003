#!/usr/bin/env node
'use strict';
// Builds dist/native/gzip-members.node: the Node-API addon native/gzip-members.c (ours) with libdeflate's
// decompressor, for the gunzip fast path of curation/gzip-members.ts. libdeflate's sources come from its crates.io
// package (libdeflate-sys, pinned by version and SHA-256, cached in .tools/), Node-API's headers from the
// node-api-headers devDependency; the machine's C compiler (CC, else cc, gcc or clang) builds it. Optional: without
// a compiler or the package, setup says so once and zlib inflates instead (same bytes, slower); the attempt is not
// repeated until its inputs change or --force. Run by bin/setup.js; Node built-ins only.
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { ROOT, NATIVE, nativeIsStale } = require('./freshness');

const CRATE = {
  name: 'libdeflate-sys',
  version: '1.23.1', // libdeflate 1.23
  sha256: '38b72ad3fbf5ac78f2df7b36075e48adf2459b57c150b9e63937d0204d0f9cd7',
};
const CRATE_URL = `https://static.crates.io/crates/${CRATE.name}/${CRATE.name}-${CRATE.version}.crate`;
const TOOLS = path.join(ROOT, '.tools');
const CRATE_FILE = path.join(TOOLS, `${CRATE.name}-${CRATE.version}.crate`);
const SOURCE_DIR = path.join(TOOLS, `libdeflate-${CRATE.version}`);
/** The decompressor's sources (the arm and x86 CPU-feature files compile to nothing on the other architecture). */
const COMPILED = [
  'lib/deflate_decompress.c', 'lib/gzip_decompress.c', 'lib/crc32.c', 'lib/utils.c', 'lib/x86/cpu_features.c', 'lib/arm/cpu_features.c',
];
/** What is extracted: the two top headers and lib/ (the compiled files and the headers they include). */
const extracted = (file) => file === 'libdeflate.h' || file === 'common_defs.h' || file.startsWith('lib/');

async function download() {
  if (fs.existsSync(CRATE_FILE) && sha256(fs.readFileSync(CRATE_FILE)) === CRATE.sha256) return;
  const res = await fetch(CRATE_URL, { signal: AbortSignal.timeout(60_000) });
  if (!res.ok) throw new Error(`GET ${CRATE_URL}: HTTP ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const got = sha256(bytes);
  if (got !== CRATE.sha256) throw new Error(`${CRATE_URL}: SHA-256 ${got}, expected ${CRATE.sha256}`);
  fs.mkdirSync(TOOLS, { recursive: true });
  fs.writeFileSync(CRATE_FILE, bytes);
}

function sha256(b) {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/** The files of the .crate (a gzipped ustar archive) under libdeflate/ that the build needs, into SOURCE_DIR. */
function extract() {
  const tar = zlib.gunzipSync(fs.readFileSync(CRATE_FILE));
  const prefix = `${CRATE.name}-${CRATE.version}/libdeflate/`;
  const found = new Set();
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from, len) => header.toString('latin1', from, from + len).replace(/\0.*$/s, '');
    const name = (field(345, 155) ? `${field(345, 155)}/` : '') + field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const body = at + 512;
    if ((type === '0' || type === '') && name.startsWith(prefix) && extracted(name.slice(prefix.length))) {
      const out = path.join(SOURCE_DIR, name.slice(prefix.length));
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, tar.subarray(body, body + size));
      found.add(name.slice(prefix.length));
    }
    at = body + Math.ceil(size / 512) * 512;
  }
  const missing = ['libdeflate.h', ...COMPILED].filter((f) => !found.has(f));
  if (missing.length) throw new Error(`${path.basename(CRATE_FILE)} lacks ${missing.join(', ')}`);
}

function compiler() {
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0) return cc;
  }
  return null;
}

async function buildNative({ force = false, log = () => undefined } = {}) {
  if (!force && !nativeIsStale()) return { built: false };
  if (!force && fs.existsSync(NATIVE.failed) && !nativeIsStale(NATIVE.failed)) return { built: false, skipped: fs.readFileSync(NATIVE.failed, 'utf8').trim() };
  try {
    const cc = compiler();
    if (cc === null) throw new Error('no C compiler (CC, cc, gcc or clang)');
    log(`building ${path.relative(ROOT, NATIVE.output)} (libdeflate ${CRATE.version} from crates.io, ${cc})…`);
    await download();
    extract();
    fs.mkdirSync(path.dirname(NATIVE.output), { recursive: true });
    const tmp = `${NATIVE.output}.${process.pid}.tmp`;
    const napiHeaders = path.join(ROOT, 'node_modules', 'node-api-headers', 'include');
    if (!fs.existsSync(path.join(napiHeaders, 'node_api.h'))) throw new Error(`no ${path.relative(ROOT, napiHeaders)}/node_api.h (npm install)`);
    // Node-API's functions are resolved in the node binary when the addon loads (macOS: at run time).
    const link = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];
    const r = spawnSync(cc, ['-O2', '-fPIC', '-shared', '-fvisibility=hidden', '-DNAPI_VERSION=8', '-I', SOURCE_DIR, '-I', napiHeaders,
      ...link, '-o', tmp, NATIVE.source, ...COMPILED.map((f) => path.join(SOURCE_DIR, f))], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cc} failed (exit ${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
    fs.renameSync(tmp, NATIVE.output);
    fs.rmSync(NATIVE.failed, { force: true });
    return { built: true };
  } catch (err) {
    const why = `libdeflate gunzip not built: ${err.message}; zlib inflates instead (same bytes, slower). Retried when native/ or bin/build-native.js changes, or with node bin/build-native.js --force.`;
    fs.mkdirSync(path.dirname(NATIVE.failed), { recursive: true });
    fs.writeFileSync(NATIVE.failed, why + '\n');
    return { built: false, skipped: why, failedNow: true };
  }
}

module.exports = { buildNative, CRATE, CRATE_URL };

if (require.main === module) {
  if (process.argv.includes('--help')) {
    console.log(`usage: node bin/build-native.js [--force] [--quiet]

Builds ${path.relative(ROOT, NATIVE.output)} (the libdeflate gunzip fast path, a Node-API addon) from
native/gzip-members.c and libdeflate ${CRATE.version}'s sources (crates.io package ${CRATE.name}, SHA-256 pinned,
cached in .tools/) with the machine's C compiler, when a source is newer than the addon. Optional: on failure it says why and exits 0
(zlib is used instead); --force retries a failed build; --quiet prints only a new failure.`);
    process.exit(0);
  }
  const quiet = process.argv.includes('--quiet');
  buildNative({ force: process.argv.includes('--force'), log: (m) => { if (!quiet) console.log(`[build-native] ${m}`); } }).then((r) => {
    // A new failure is said even with --quiet (once: later runs skip quietly until the inputs change).
    if (r.skipped && (r.failedNow || !quiet)) console.log(`[build-native] ${r.skipped}`);
    else if (r.built && !quiet) console.log(`[build-native] built ${path.relative(ROOT, NATIVE.output)}`);
  }, (err) => {
    console.error(`[build-native] ${err.message}`);
    process.exit(1);
  });
}
