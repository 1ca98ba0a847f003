/**
 * Python string semantics the reference relies on. MetaCLIP's extractors call `str.strip()`,
 * whose whitespace set differs from JavaScript's `trim()` (Python strips \x1c-\x1f and \x85, keeps \ufeff).
 */

/** Characters for which Python's `str.isspace()` is true. */
const PY_SPACE = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

export function isPySpace(code: number): boolean {
  return PY_SPACE.has(code);
}

/** Python's `s.strip()` with no argument. */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && PY_SPACE.has(s.charCodeAt(start))) start++;
  while (end > start && PY_SPACE.has(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** Python's `s.lstrip(chars)` / `s.strip(chars)` for an explicit character set. */
export function pyStripChars(s: string, chars: string, side: 'left' | 'both' = 'both'): string {
  let start = 0;
  let end = s.length;
  while (start < end && chars.includes(s[start])) start++;
  if (side === 'both') while (end > start && chars.includes(s[end - 1])) end--;
  return s.slice(start, end);
}

/** True when the string holds no lone UTF-16 surrogate (Python would fail to encode it as UTF-8). */
export function isWellFormedUnicode(s: string): boolean {
  // String.prototype.isWellFormed exists from Node 20.
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}
