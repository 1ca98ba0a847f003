// AssemblyScript shared by the scanner modules (each is compiled on its own, with its copy of this).

/** Stores `s` (ASCII) at `at` as a length byte followed by its bytes. */
export function storeLengthPrefixed(at: usize, s: string): void {
  store<u8>(at, <u8>s.length);
  for (let k = 0; k < s.length; k++) store<u8>(at + 1 + <usize>k, <u8>s.charCodeAt(k));
}

/** Grows the memory to at least `need` bytes; false when it cannot grow. */
export function ensureMemory(need: usize): bool {
  const have = <usize>memory.size() << 16;
  return need <= have || memory.grow(<i32>((need - have + 0xffff) >> 16)) >= 0;
}
