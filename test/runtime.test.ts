/**
 * The project's Node runtime (bin/runtime.js): tests run on Node >= 24, and on a machine whose Node is older the
 * entry points re-run themselves on the Node 24 that setup installed into .tools/.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runtime = require('../bin/runtime.js') as { REQUIRED_MAJOR: number; PINNED_VERSION: string; LOCAL_NODE: string };

/** A `node` on PATH other than the project's own, and its version (the machine's system Node, if any). */
function otherNode(): { node: string; major: number } | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const node = path.join(dir, 'node');
    if (!dir || dir.startsWith(path.join(ROOT, '.tools')) || !fs.existsSync(node)) continue;
    const r = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (r.status === 0) return { node, major: Number(r.stdout.trim().split('.')[0]) };
  }
  return null;
}

describe('Node runtime', () => {
  it(`jest itself runs on Node >= ${runtime.REQUIRED_MAJOR}`, () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(runtime.REQUIRED_MAJOR);
  });

  it('`curate --version` started by an older system Node runs on the project Node (or the system one when recent)', () => {
    const other = otherNode();
    if (!other) return; // no other node on PATH: nothing to re-execute from
    const r = spawnSync(other.node, [path.join(ROOT, 'bin', 'curate.js'), '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const version = /\(node v(\d+)\.(\d+)\.(\d+), (.+)\)/.exec(r.stdout);
    expect(version).not.toBeNull();
    if (other.major < runtime.REQUIRED_MAJOR) {
      expect(`${version![1]}.${version![2]}.${version![3]}`).toBe(runtime.PINNED_VERSION);
      expect(version![4]).toBe(fs.realpathSync(runtime.LOCAL_NODE));
    } else {
      expect(Number(version![1])).toBe(other.major);
    }
  });

  it('passes the exit code of the re-executed command through', () => {
    const other = otherNode();
    if (!other) return;
    const r = spawnSync(other.node, [path.join(ROOT, 'bin', 'curate.js'), 'no-such-command'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(2); // a ConfigError's exit code, through the parent
    expect(r.stderr).toMatch(/unknown command 'no-such-command'/);
  });
});
