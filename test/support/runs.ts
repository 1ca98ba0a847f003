/** Reading a local run's outputs in tests: data-file digests (to compare runs byte for byte) and finished shards. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** The data files whose bytes must not depend on timing, crashes or run id. */
export const DATA_FILES = /\.parquet$|counts\.json$|matched(\.ids)?\.json$/;

/** sha256 of every file under runs/<runId>/ whose path matches `files`, keyed by its path in the run. */
export function outputDigests(outRoot: string, runId: string, files: RegExp = DATA_FILES): Record<string, string> {
  const root = path.join(outRoot, 'runs', runId);
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (files.test(p)) out[path.relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return out;
}

/** Shards of a run that have published their _SUCCESS.json so far (0 before the first). */
export function finishedShards(outRoot: string, runId: string): number {
  const dir = path.join(outRoot, 'runs', runId, 'shards');
  try {
    return readdirSync(dir).filter((s) => readdirSync(path.join(dir, s)).includes('_SUCCESS.json')).length;
  } catch {
    return 0;
  }
}
