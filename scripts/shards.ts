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

export const CC_HTTPS_PREFIX = 'https://data.commoncrawl.org/';
export const CC_S3_PREFIX = 's3://commoncrawl/';

/** Environment variables that give the AWS SDK credentials without a network probe (keys, profiles, web identity, ECS). */
const AWS_CREDENTIAL_VARS = ['AWS_ACCESS_KEY_ID', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI'];

/**
 * Where relative Common Crawl keys point when `--cc-prefix` is not given, following Common Crawl's access page:
 * from outside AWS the data is read over HTTPS from data.commoncrawl.org; the S3 bucket is for authenticated
 * requests from AWS's us-east-1. So s3://commoncrawl/ is chosen only when the environment says that route is
 * set up: AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, a web-identity role, ECS task
 * credentials), region us-east-1 (AWS_REGION or AWS_DEFAULT_REGION), no S3-compatible endpoint
 * (CURATE_S3_ENDPOINT, AWS_ENDPOINT_URL[_S3]) and no CURATE_S3_ANONYMOUS. An EC2 instance role cannot be seen
 * without a network probe: pass `--cc-prefix s3://commoncrawl/` there.
 */
export function defaultCcPrefix(env: NodeJS.ProcessEnv = process.env): string {
  const credentials = AWS_CREDENTIAL_VARS.some((k) => Boolean(env[k]));
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || '';
  const endpoint = env.CURATE_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  const anonymous = env.CURATE_S3_ANONYMOUS === '1' || env.CURATE_S3_ANONYMOUS === 'true';
  return credentials && region === 'us-east-1' && !endpoint && !anonymous ? CC_S3_PREFIX : CC_HTTPS_PREFIX;
}

/**
 * Shard URIs in the given order (the order defines the pool order used by dedup and reports).
 * `ccPrefix` turns relative keys of Common Crawl path lists into URIs (default: `defaultCcPrefix()`).
 */
export function resolveShards(values: string[], ccPrefix = defaultCcPrefix()): string[] {
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
