/** `npx curate <command>`: the user's face. Each command lives in scripts/commands/<name>.ts. */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../curation/errors';
import { helpText, parseArgs, type Command } from './args';

/** Command name → module path (loaded lazily so `curate match` does not pay for Temporal's imports). */
const COMMANDS: Record<string, string> = {
  extract: './commands/extract',
  match: './commands/match',
  'build-metadata': './commands/build-metadata',
  'gen-samples': './commands/gen-samples',
  counts: './commands/counts',
  balance: './commands/balance',
  start: './commands/start',
  status: './commands/status',
  plan: './commands/plan',
  rebalance: './commands/rebalance',
  datacard: './commands/datacard',
  'retry-failed': './commands/retry-failed',
  demo: './commands/demo',
  server: './commands/server',
  worker: './commands/worker',
  bench: './commands/bench',
  'record-histories': './commands/record-histories',
};

/** The module of a command, or undefined: own keys only, so `constructor`, `toString`, `__proto__` are unknown commands. */
export function commandModule(name: string): string | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

async function load(name: string): Promise<Command> {
  const mod = await import(commandModule(name) as string);
  return mod.command as Command;
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = ['usage: npx curate <command> [options]   (npx curate <command> --help for details; --version)', '', 'commands:'];
    for (const n of Object.keys(COMMANDS)) {
      try {
        lines.push(`  ${n.padEnd(16)} ${(await load(n)).summary}`);
      } catch {
        /* a command module that is not built yet is simply not listed */
      }
    }
    console.log(lines.join('\n'));
    return;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    // The runtime too: on a machine whose Node is older, bin/curate.js runs this on the project's Node 24.
    // package.json is one level up from scripts/ (sources, under jest) or two from dist/scripts/ (the build).
    const file = ['..', '../..'].map((up) => path.join(__dirname, up, 'package.json')).find((f) => existsSync(f)) as string;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; version: string };
    console.log(`${pkg.name} ${pkg.version} (node ${process.version}, ${process.execPath})`);
    return;
  }
  if (commandModule(name) === undefined) throw new ConfigError(`unknown command '${name}'. Run 'npx curate --help' for the list.`);
  const cmd = await load(name);
  const parsed = parseArgs(cmd, rest);
  if (parsed === 'help') {
    console.log(helpText(cmd));
    return;
  }
  await cmd.run(parsed);
}
