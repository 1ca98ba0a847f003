/** Minimal, strict argument parsing for the `curate` commands: unknown flags are errors with a hint. */
import { ConfigError } from '../curation/errors';

export interface FlagSpec {
  /** 'boolean' flags take no value; others take one (`--x v` or `--x=v`). */
  type: 'string' | 'number' | 'boolean' | 'list';
  help: string;
  default?: string | number | boolean;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  run(args: ParsedArgs): Promise<void>;
}

export interface ParsedArgs {
  positional: string[];
  flags: Record<string, string | number | boolean | string[] | undefined>;
}

export function helpText(cmd: Command): string {
  const lines = [`usage: npx curate ${cmd.usage}`, '', cmd.summary, ''];
  const names = Object.keys(cmd.flags);
  if (names.length) {
    lines.push('options:');
    for (const n of names) {
      const f = cmd.flags[n];
      const v = f.type === 'boolean' ? '' : f.type === 'list' ? ' <a,b,…>' : ` <${f.type === 'number' ? 'n' : 'value'}>`;
      const d = f.default !== undefined ? ` (default: ${f.default})` : '';
      lines.push(`  --${n}${v}`.padEnd(30) + ` ${f.help}${d}`);
    }
  }
  lines.push('  --help'.padEnd(30) + ' show this help');
  return lines.join('\n');
}

/** A decimal number (`12`, `-0.5`, `2e4`); `Number()` alone would read '' and '  ' as 0 and '0x10' as 16. */
const DECIMAL = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

export function parseNumberFlag(name: string, spec: FlagSpec, value: string): number {
  const trimmed = value.trim();
  if (trimmed === '') throw new ConfigError(`option --${name} needs a number (${spec.help}), got an empty value`);
  const n = DECIMAL.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isFinite(n)) throw new ConfigError(`option --${name} must be a number (${spec.help}), got ${JSON.stringify(value)}`);
  return n;
}

export function parseArgs(cmd: Command, argv: string[]): ParsedArgs | 'help' {
  const positional: string[] = [];
  const flags: ParsedArgs['flags'] = {};
  for (const [n, f] of Object.entries(cmd.flags)) {
    if (f.default !== undefined) flags[n] = f.type === 'list' ? String(f.default).split(',') : f.default;
  }
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') return 'help';
    if (!a.startsWith('--') || a === '--') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = cmd.flags[name];
    if (!spec) {
      const known = Object.keys(cmd.flags).map((k) => `--${k}`).join(', ') || '(none)';
      throw new ConfigError(`unknown option --${name} for '${cmd.name}'. Known options: ${known}. See 'npx curate ${cmd.name} --help'.`);
    }
    if (spec.type === 'boolean') {
      flags[name] = eq < 0 ? true : !['false', '0', 'no', 'off'].includes(a.slice(eq + 1));
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`option --${name} needs a value (${spec.help})`);
    if (spec.type === 'number') {
      flags[name] = parseNumberFlag(name, spec, value);
    } else if (spec.type === 'list') {
      const prev = given.has(name) ? (flags[name] as string[]) : [];
      flags[name] = prev.concat(value.split(',').filter(Boolean));
    } else flags[name] = value;
    given.add(name);
  }
  return { positional, flags };
}
