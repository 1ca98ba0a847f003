#!/usr/bin/env node
'use strict';
/**
 * Runs deploy/Dockerfile's steps on this machine, without Docker: every stage gets a directory standing for its
 * filesystem, COPY copies from the repository (minus .dockerignore) or from an earlier stage, RUN runs its
 * command with `sh -c` in the stage's WORKDIR with the stage's ENV, ARG defaults are substituted. Then the final
 * stage's ENTRYPOINT is run as the image would run it: `--help`, an unknown queue (exit 2), and every queue
 * against a closed Temporal port (the worker must load from the pruned node_modules and fail in one line).
 * What it cannot check: the base image (the host's node stands in for node:<NODE_VERSION>-bookworm-slim), USER,
 * EXPOSE and the layer cache.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const USAGE = `usage: node deploy/simulate-build.js [--dockerfile deploy/Dockerfile] [--keep] [--offline]

Runs the Dockerfile's COPY/RUN steps in a temporary directory per stage (no Docker needed), then runs the
image's ENTRYPOINT: --help, an unknown queue, and each queue against a closed Temporal port.
  --dockerfile PATH  the Dockerfile (default deploy/Dockerfile), built with the repository as context
  --keep             keep the temporary directory (printed) instead of removing it
  --offline          npm reads its cache only (npm_config_offline=true) instead of preferring it`;

function fail(message) {
  console.error(`simulate-build: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { dockerfile: path.join(ROOT, 'deploy', 'Dockerfile'), keep: false, offline: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
    else if (a === '--keep') opts.keep = true;
    else if (a === '--offline') opts.offline = true;
    else if (a === '--dockerfile') { if (!argv[i + 1]) fail('--dockerfile needs a path'); opts.dockerfile = path.resolve(argv[++i]); }
    else fail(`unknown argument '${a}' (see --help)`);
  }
  return opts;
}

/** Instructions of a Dockerfile: [{ op, args, line }], continuation lines joined, comments dropped. */
function parseDockerfile(text) {
  const out = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!buf && (/^\s*#/.test(line) || !line.trim())) return;
    if (!buf) start = i + 1;
    if (line.endsWith('\\')) { buf += line.slice(0, -1) + ' '; return; }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(buf);
    if (!m) fail(`line ${start}: cannot parse '${buf}'`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: start });
    buf = '';
  });
  return out;
}

function ignoredBy(dockerignore) {
  const pats = fs.existsSync(dockerignore) ? fs.readFileSync(dockerignore, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')) : [];
  return (rel) => pats.some((p) => rel === p || rel.startsWith(p + '/') || (p.startsWith('*.') && rel.endsWith(p.slice(1))));
}

const jsonArray = (s) => (s.startsWith('[') ? JSON.parse(s) : ['/bin/sh', '-c', s]);

async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(opts.dockerfile)) fail(`no Dockerfile at ${opts.dockerfile}`);
  const steps = parseDockerfile(fs.readFileSync(opts.dockerfile, 'utf8'));
  const ignored = ignoredBy(path.join(ROOT, '.dockerignore'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'simulate-build-'));
  const args = {};
  const stages = [];
  let stage = null;
  const sub = (s) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a, b) => args[a || b] ?? (stage && stage.env[a || b]) ?? m);
  const inStage = (st, p) => path.join(st.root, path.posix.isAbsolute(p) ? p : path.posix.join(st.workdir, p));
  try {
    for (const step of steps) {
      const where = `${path.relative(ROOT, opts.dockerfile)}:${step.line} ${step.op}`;
      if (step.op === 'ARG') {
        const [k, v] = step.args.split('=');
        if (!(k in args)) args[k] = v ?? '';
      } else if (step.op === 'FROM') {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(step.args);
        stage = { name: m[2] ?? String(stages.length), image: sub(m[1]), root: path.join(tmp, `stage-${stages.length}`), workdir: '/', env: {}, entrypoint: null, cmd: null };
        fs.mkdirSync(stage.root, { recursive: true });
        stages.push(stage);
        console.log(`[${stage.name}] FROM ${stage.image} (the host's node ${process.version} stands in)`);
      } else if (step.op === 'WORKDIR') {
        stage.workdir = path.posix.resolve(stage.workdir, sub(step.args));
        fs.mkdirSync(inStage(stage, '.'), { recursive: true });
      } else if (step.op === 'ENV') {
        for (const m of step.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) stage.env[m[1]] = m[2].replace(/^"|"$/g, '');
      } else if (step.op === 'COPY') {
        const words = step.args.split(/\s+/);
        const from = words[0].startsWith('--from=') ? words.shift().slice('--from='.length) : null;
        const dest = words.pop();
        const source = from ? stages.find((s) => s.name === from) : null;
        if (from && !source) fail(`${where}: no stage '${from}'`);
        const destPath = inStage(stage, dest);
        for (const src of words) {
          const srcPath = source ? inStage(source, src) : path.join(ROOT, src);
          if (!fs.existsSync(srcPath)) fail(`${where}: ${src} does not exist${source ? ` in stage ${from}` : ' in the build context'}`);
          if (!source && ignored(path.relative(ROOT, srcPath))) fail(`${where}: ${src} is excluded by .dockerignore`);
          const target = dest.endsWith('/') || words.length > 1 ? path.join(destPath, path.basename(src)) : destPath;
          fs.mkdirSync(path.dirname(target), { recursive: true });
          fs.cpSync(srcPath, target, {
            recursive: true, verbatimSymlinks: true,
            filter: (p) => source !== null || !ignored(path.relative(ROOT, p)) || p === srcPath,
          });
        }
        console.log(`[${stage.name}] COPY ${step.args}`);
      } else if (step.op === 'RUN') {
        const cmd = sub(step.args);
        console.log(`[${stage.name}] RUN ${cmd}`);
        const started = Date.now();
        const env = { ...process.env, ...stage.env, npm_config_update_notifier: 'false' };
        if (opts.offline) env.npm_config_offline = 'true';
        else env.npm_config_prefer_offline = 'true';
        const r = spawnSync('/bin/sh', ['-c', cmd], { cwd: inStage(stage, '.'), env, stdio: 'inherit' });
        if (r.status !== 0) fail(`${where} failed (exit ${r.status}): ${cmd}`);
        console.log(`[${stage.name}]   ok in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      } else if (step.op === 'ENTRYPOINT') {
        stage.entrypoint = jsonArray(step.args);
      } else if (step.op === 'CMD') {
        stage.cmd = jsonArray(step.args);
      } else if (!['USER', 'EXPOSE', 'LABEL'].includes(step.op)) {
        fail(`${where}: instruction not simulated`);
      }
    }
    const final = stages[stages.length - 1];
    if (!final?.entrypoint) fail('the final stage has no ENTRYPOINT');
    const entry = inStage(final, final.entrypoint[0]);
    if (!fs.existsSync(entry)) fail(`ENTRYPOINT ${final.entrypoint[0]} is not in the final stage`);
    const app = inStage(final, '.');
    const sizeMb = (d) => Number(spawnSync('du', ['-sm', d], { encoding: 'utf8' }).stdout.split('\t')[0]);
    console.log(`[${final.name}] image files: ${sizeMb(final.root)} MB (node_modules ${sizeMb(path.join(app, 'node_modules'))} MB)`);
    const port = await closedPort();
    const run = (argv, extraEnv = {}) => spawnSync(entry, argv, {
      encoding: 'utf8', timeout: 120_000,
      env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...final.env, CURATE_APP_DIR: app, ...extraEnv },
    });
    const checks = [];
    const help = run(['--help']);
    checks.push(['--help exits 0 and names the queues', help.status === 0 && /orchestration \| cpu \| io \| all/.test(help.stdout)]);
    const bad = run(['bogus']);
    checks.push(["an unknown queue exits 2 in one line", bad.status === 2 && bad.stderr.trim().split('\n').length === 1]);
    for (const q of ['orchestration', 'cpu', 'io', 'all']) {
      const r = run([q], { TEMPORAL_ADDRESS: `127.0.0.1:${port}`, CURATE_METRICS_PORT: '' });
      const err = r.stderr.trim();
      const ok = r.status === 1 && err.split('\n').length <= 2 && err.includes(`127.0.0.1:${port}`);
      checks.push([`${q}: loads from the image's files, fails in one line against a closed port (exit ${r.status}): ${err.split('\n')[0]}`, ok]);
    }
    let failed = 0;
    for (const [what, ok] of checks) {
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
      if (!ok) failed++;
    }
    if (failed) fail(`${failed} check(s) failed${opts.keep ? `; files kept in ${tmp}` : ''}`);
    console.log('simulate-build: every step ran and the entry point behaves');
  } finally {
    if (opts.keep) console.log(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => fail(err && err.message ? err.message : String(err)));
