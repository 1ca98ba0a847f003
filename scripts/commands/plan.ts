import path from 'node:path';
import { ConfigError } from '../../curation/errors';
import { SEED_PATTERN } from '../../curation/run';
import { localPath } from '../../storage/sources';
import type { PlanResult } from '../../activities/types';
import type { Command } from '../args';
import { CONNECTION_FLAGS, connectClient, connectionFromFlags, startPlan } from '../client';
import { DATA_DIR } from '../devserver';
import { workersIfNeeded } from '../workers-if-needed';

export const DERIVED_FLAGS: Command['flags'] = {
  run: { type: 'string', help: 'id of a finished curation run (its stored pool is used; nothing upstream is redone)' },
  out: { type: 'string', help: 'output root holding runs/<id>/', default: path.join(DATA_DIR, 'out') },
  seed: { type: 'string', help: 'sampling seed', default: '0' },
  'one-text-per-image': { type: 'boolean', help: 'MetaCLIP v2: one seeded text per image is a candidate' },
  'max-concurrent': { type: 'number', help: 'bucket chunks (of 64 buckets) processed at once', default: 4 },
  'no-local-workers': { type: 'boolean', help: 'do not run workers in this process (use external ones: npm run worker)' },
  ...CONNECTION_FLAGS,
};

export function resolveOutRoot(out: unknown): string {
  const local = localPath(String(out));
  return local !== null ? path.resolve(local) : String(out);
}

export function requireRun(flags: Record<string, unknown>): string {
  const run = flags.run;
  if (typeof run !== 'string' || !run) throw new ConfigError('--run <id> is required (the run id printed by `npx curate start` / `npm start`)');
  return run;
}

export function requireSeed(flags: Record<string, unknown>): string {
  const seed = String(flags.seed);
  if (!SEED_PATTERN.test(seed)) throw new ConfigError(`--seed must be 1-64 characters of letters, digits, . _ -, got ${JSON.stringify(seed)}`);
  return seed;
}

export function positiveNumber(name: string, v: unknown): number {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new ConfigError(`--${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

export function positiveInt(name: string, v: unknown): number {
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw new ConfigError(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

export function formatPlan(plan: PlanResult): string {
  const lines = [
    `plan for run ${plan.runId} (${plan.stage} pool, ${fmt(plan.pairs)} pairs${plan.oneTextPerImage ? ', one text per image' : ''})`,
    '',
    `${'t'.padStart(12)} ${'expected pairs'.padStart(16)} ${'expected matches'.padStart(17)} ${'head entries'.padStart(13)} ${'tail entries'.padStart(13)} ${'head matches'.padStart(14)} ${'tail share'.padStart(11)}`,
  ];
  for (const r of plan.rows) {
    lines.push(`${fmt(r.t, r.t < 1000 && !Number.isInteger(r.t) ? 3 : 0).padStart(12)} ${fmt(r.expectedPairs, 1).padStart(16)} ${fmt(r.expectedMatches, 1).padStart(17)} ${fmt(r.headEntries).padStart(13)} ${fmt(r.tailEntries).padStart(13)} ${fmt(r.headMatches).padStart(14)} ${(r.tailShare * 100).toFixed(1).padStart(10)}%`);
  }
  if (plan.target) {
    lines.push('');
    lines.push(plan.target.t !== null
      ? `target ${fmt(plan.target.size)} pairs → t = ${plan.target.t} (expected ${fmt(plan.target.expectedPairs ?? 0, 1)} pairs)`
      : `target ${fmt(plan.target.size)} pairs: ${plan.target.note}`);
  }
  lines.push('', `stored: ${plan.key}`);
  return lines.join('\n');
}

export const command: Command = {
  name: 'plan',
  summary: 'Expected curated size for many t at once, and the t that gives a target size (no upstream work redone)',
  usage: 'plan --run <id> [--t a,b,c] [--target-size N] [--seed S] [--one-text-per-image] [--json]',
  flags: {
    ...DERIVED_FLAGS,
    t: { type: 'list', help: 'thresholds to tabulate', default: '5000,10000,20000,50000,90000,170000' },
    'target-size': { type: 'number', help: 'solve for the t whose expected size is this many pairs' },
    json: { type: 'boolean', help: 'print the plan as JSON' },
  },
  async run({ flags }) {
    const runId = requireRun(flags);
    const ts = (flags.t as string[]).map((v) => positiveNumber('t', v));
    const targetSize = flags['target-size'] !== undefined ? positiveInt('target-size', flags['target-size']) : undefined;
    const seed = requireSeed(flags);
    const conn = connectionFromFlags(flags);
    const client = await connectClient(conn);
    const workers = await workersIfNeeded(client, conn, !flags['no-local-workers']);
    try {
      const planId = `${runId}.plan-${Date.now().toString(36)}`;
      const handle = await startPlan(client, {
        outRoot: resolveOutRoot(flags.out),
        runId, planId, ts, targetSize, seed, oneTextPerImage: flags['one-text-per-image'] === true,
        maxConcurrent: positiveInt('max-concurrent', flags['max-concurrent']),
      });
      console.error(`plan workflow ${handle.workflowId}`);
      const plan = (await handle.result()) as PlanResult;
      console.log(flags.json ? JSON.stringify(plan, null, 2) : formatPlan(plan));
    } finally {
      await workers.stop();
    }
  },
};
