/**
 * Substring matching against metadata (spec §2), exact and fast.
 *
 * Definition: entry e matches text x iff " " + e + " " is a substring of spaced(x), where spaced(x) puts a
 * space around the text, around each of , . ; : ? ! ` and turns \t \n \r into spaces.
 *
 * Equivalent token form used here: every space of spaced(x) is a token boundary, so " e " occurs iff the
 * tokens of e (e.split(" ")) are a contiguous run of the tokens of the spaced text's core. We index every
 * token-boundary prefix of every entry in one hash map; from each start token we extend while the prefix
 * exists. Per-text cost depends on how far real prefixes reach, not on the longest entry.
 */

/** The spaced form of a text without its two outer spaces (spec §2). */
export function spacedCore(text: string): string {
  return text.replace(/[,.;:?!`]/g, ' $& ').replace(/[\t\n\r]/g, ' ');
}

/** The reference's spaced text: " " + core + " ". */
export function spaceText(text: string): string {
  return ` ${spacedCore(text)} `;
}

const PREFIX_ONLY = -1;

export class Matcher {
  /** Token-boundary prefix → entry id, or PREFIX_ONLY when the prefix is not itself an entry. */
  private readonly index = new Map<string, number>();
  readonly size: number;

  constructor(entries: readonly string[]) {
    this.size = entries.length;
    for (let id = 0; id < entries.length; id++) {
      const e = entries[id];
      // An entry holding \t \n \r can never occur in a spaced text; leave it out.
      if (/[\t\n\r]/.test(e)) continue;
      const existing = this.index.get(e);
      // Duplicate entries: both ids match; keep the list in a side table.
      if (existing !== undefined && existing !== PREFIX_ONLY) {
        this.addDuplicate(e, id);
        continue;
      }
      this.index.set(e, id);
      let cut = e.lastIndexOf(' ');
      while (cut >= 0) {
        const prefix = e.slice(0, cut);
        if (this.index.has(prefix)) break; // its shorter prefixes are in already
        this.index.set(prefix, PREFIX_ONLY);
        cut = prefix.lastIndexOf(' ');
      }
    }
  }

  private duplicates: Map<string, number[]> | null = null;
  private addDuplicate(e: string, id: number): void {
    this.duplicates ??= new Map();
    const list = this.duplicates.get(e) ?? [];
    list.push(id);
    this.duplicates.set(e, list);
  }

  /** Matched entry ids of a text, ascending and unique. */
  match(text: string): number[] {
    const core = spacedCore(text);
    const out: number[] = [];
    const n = core.length;
    const index = this.index;
    // Start at every token: position 0 and after every space.
    let start = 0;
    for (;;) {
      let end = core.indexOf(' ', start);
      for (;;) {
        const stop = end < 0 ? n : end;
        const id = index.get(core.slice(start, stop));
        if (id === undefined) break;
        if (id !== PREFIX_ONLY) {
          out.push(id);
          if (this.duplicates !== null) {
            const more = this.duplicates.get(core.slice(start, stop));
            if (more) out.push(...more);
          }
        }
        if (end < 0) break;
        end = core.indexOf(' ', end + 1);
      }
      const next = core.indexOf(' ', start);
      if (next < 0) break;
      start = next + 1;
    }
    if (out.length > 1) {
      out.sort((a, b) => a - b);
      let w = 1;
      for (let r = 1; r < out.length; r++) if (out[r] !== out[w - 1]) out[w++] = out[r];
      out.length = w;
    }
    return out;
  }
}

/** The definition itself, for tests: every entry tested against the spaced text. */
export function naiveMatch(entries: readonly string[], text: string): number[] {
  const spaced = spaceText(text);
  const out: number[] = [];
  for (let id = 0; id < entries.length; id++) if (spaced.includes(` ${entries[id]} `)) out.push(id);
  return out;
}
