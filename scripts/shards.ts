/** Resolving `--shards` values: paths or URIs, list files (one per line, .gz allowed, CC *.paths.gz), local globs. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ConfigError } from '../curation/errors';
import { localPath } from '../storage/sources';

const LIST_FILE = /\.(txt|paths|list)(\.gz)?$/i;

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
}

export function expandGlob(pattern: string): string[] {
  const abs = path.resolve(pattern);
  const firstWild = abs.search(/[*?]/);
  const base = abs.slice(0, abs.lastIndexOf('/', firstWild));
  if (!existsSync(base)) return [];
  const files: string[] = [];
  walk(base, files);
  const re = globToRegExp(abs);
  return files.filter((f) => re.test(f)).sort();
}

function readList(file: string, prefix: string): string[] {
  let buf = readFileSync(file);
  if (file.endsWith('.gz')) buf = gunzipSync(buf);
  const dir = path.dirname(path.resolve(file));
  return buf
    .toString('utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(l) || l.startsWith('/')) return l;
      // A relative line: a file beside the list, else a Common Crawl key under the prefix.
      const local = path.join(dir, l);
      return existsSync(local) ? local : prefix + l;
    });
}

/**
 * Shard URIs in the given order (the order defines the pool order used by dedup and reports).
 * `ccPrefix` turns relative keys of Common Crawl path lists into URIs (default s3://commoncrawl/).
 */
export function resolveShards(values: string[], ccPrefix = 's3://commoncrawl/'): string[] {
  const out: string[] = [];
  for (const v of values) {
    const lp = localPath(v);
    if (lp !== null && /[*?]/.test(lp)) {
      const hits = expandGlob(lp);
      if (hits.length === 0) throw new ConfigError(`--shards ${v}: the glob matches no file`);
      out.push(...hits);
    } else if (lp !== null && LIST_FILE.test(lp) && existsSync(lp) && statSync(lp).isFile()) {
      out.push(...readList(lp, ccPrefix));
    } else if (lp !== null) {
      if (!existsSync(lp)) throw new ConfigError(`--shards ${v}: no such file`);
      if (statSync(lp).isDirectory()) {
        const files: string[] = [];
        walk(lp, files);
        out.push(...files.filter((f) => /\.(warc|wat)(\.gz)?$/i.test(f)).sort());
      } else out.push(path.resolve(lp));
    } else out.push(v);
  }
  const seen = new Set<string>();
  const dupes = out.filter((u) => (seen.has(u) ? true : (seen.add(u), false)));
  if (dupes.length) throw new ConfigError(`--shards lists ${dupes[0]} more than once`);
  return out;
}
