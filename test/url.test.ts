import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { imageUuid, urljoin } from '../curation/url';

const PYTHON = ['python3', 'python'].find((p) => spawnSync(p, ['--version']).status === 0);

/** Python's urljoin (None where it raises), for an oracle comparison. */
function pythonUrljoin(pairs: Array<[string, string]>): Array<string | null> {
  const code = `
import json, sys
from urllib.parse import urljoin
out = []
for base, ref in json.load(sys.stdin):
    try:
        out.append(urljoin(base, ref))
    except Exception:
        out.append(None)
json.dump(out, sys.stdout)
`;
  const r = spawnSync(PYTHON!, ['-c', code], { input: JSON.stringify(pairs), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

const BASE = 'http://a/b/c/d;p?q';
const RFC3986: Array<[string, string]> = [
  ['g:h', 'g:h'], ['g', 'http://a/b/c/g'], ['./g', 'http://a/b/c/g'], ['g/', 'http://a/b/c/g/'], ['/g', 'http://a/g'],
  ['//g', 'http://g'], ['?y', 'http://a/b/c/d;p?y'], ['g?y', 'http://a/b/c/g?y'], ['#s', 'http://a/b/c/d;p?q#s'],
  ['g#s', 'http://a/b/c/g#s'], ['g?y#s', 'http://a/b/c/g?y#s'], [';x', 'http://a/b/c/;x'], ['g;x', 'http://a/b/c/g;x'],
  ['', BASE], ['.', 'http://a/b/c/'], ['./', 'http://a/b/c/'], ['..', 'http://a/b/'], ['../', 'http://a/b/'],
  ['../g', 'http://a/b/g'], ['../..', 'http://a/'], ['../../g', 'http://a/g'], ['../../../g', 'http://a/g'],
  ['/./g', 'http://a/g'], ['/../g', 'http://a/g'], ['g.', 'http://a/b/c/g.'], ['..g', 'http://a/b/c/..g'],
  ['./../g', 'http://a/b/g'], ['g/./h', 'http://a/b/c/g/h'], ['g/../h', 'http://a/b/c/h'], ['http:g', 'http://a/b/c/g'],
];

describe('urljoin (CPython 3.11 semantics)', () => {
  test.each(RFC3986)('RFC 3986 example %j', (ref, expected) => {
    expect(urljoin(BASE, ref)).toBe(expected);
  });

  test.each([
    ['https://Example.COM/a/b.html', 'IMG.JPG?x=1&y=2', 'https://Example.COM/a/IMG.JPG?x=1&y=2'], // host case kept, query kept
    ['https://e.com/a/', 'caf\u00e9 au lait.jpg', 'https://e.com/a/caf\u00e9 au lait.jpg'], // no percent-encoding
    ['https://e.com/a/', 'data:image/png;base64,AAAA', 'data:image/png;base64,AAAA'], // other scheme: verbatim
    ['https://e.com/a/', 'javascript:void(0)', 'javascript:void(0)'],
    ['https://e.com/a/', '//cdn.e.com/x.png', 'https://cdn.e.com/x.png'],
    ['https://e.com/a/', ' \t/x.png', 'https://e.com/x.png'], // leading C0/space stripped, tabs removed
    ['https://e.com/a/', 'x\n.png', 'https://e.com/a/x.png'],
    ['https://e.com/a/', 'http://[::1]:8080/i.png', 'http://[::1]:8080/i.png'],
  ])('%s + %j', (base, ref, expected) => {
    expect(urljoin(base, ref)).toBe(expected);
  });

  test.each([
    ['https://e.com/', 'http://[::1/i.png'], // unbalanced bracket
    ['https://e.com/', 'http://[1.2.3.4]/i.png'], // IPv4 in brackets
    ['https://e.com/', 'http://[zz]/i.png'],
    ['https://e.com/', 'http://a\uff03b/'], // NFKC turns the netloc into one with '#'
  ])('unresolvable: %s + %j → null', (base, ref) => {
    expect(urljoin(base, ref)).toBeNull();
  });

  const pyTest = PYTHON ? test : test.skip;
  if (!PYTHON) console.warn('python3 not found: skipping the urljoin oracle comparison');
  pyTest('equals Python urljoin on random references (oracle)', () => {
    const piece = fc.constantFrom('a', 'B', '/', '//', '.', '..', '?', '#', ';', ':', '%20', ' ', '\t', '@', '[', ']', '::1', 'http', 'https:', 'x.jpg', '\u00e9', '=', '&', 'v1', '1.2.3.4');
    const ref = fc.array(piece, { maxLength: 8 }).map((a) => a.join(''));
    const base = fc.constantFrom('http://a/b/c/d;p?q', 'https://Ex.com/dir/page.html?x=1#f', 'https://e.com', 'http://e.com/a/b/', 'file:///tmp/x/', 'ftp://h/p/');
    const pairs = fc.sample(fc.tuple(base, ref), { numRuns: 3000, seed: 42 });
    const expected = pythonUrljoin(pairs);
    const mismatches = pairs.map((p, i) => [p, urljoin(p[0], p[1]), expected[i]]).filter(([, ours, py]) => ours !== py);
    expect(mismatches.slice(0, 10)).toEqual([]);
  });
});

describe('imageUuid', () => {
  test('is SHA-224 hex[:24] of the UTF-8 URL (known values, from hashlib)', () => {
    expect(imageUuid('https://commoncrawl.org/wp-content/uploads/2016/03/box-1.png')).toBe('4b109d43ab0e1ff8918148a0');
    expect(imageUuid('')).toBe('d14a028c2a3a2bc9476102bb');
    expect(imageUuid('http://e.com/caf\u00e9.jpg')).toHaveLength(24);
  });
  test('a URL with a lone surrogate cannot be encoded → null (Python would raise)', () => {
    expect(imageUuid('http://e.com/\ud800.jpg')).toBeNull();
  });
});
