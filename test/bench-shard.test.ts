/** The output check of `bench shard` (scripts/bench/shard.ts): it must fail on any difference between the sides. */
import type { CandidateRow } from '../curation/shard';
import { compareShardOutputs, oursStageCpu, type OursRun, type OursStages } from '../scripts/bench/shard';

const row = (uuid: string, text: string, ids: number[], lang: string | null = 'en', key = 'alt'): CandidateRow => ({
  uuid, url: `http://e.com/${uuid}.jpg`, key, text, lang, entry_ids: ids,
});

const rows = (): CandidateRow[] => [row('a', 'red dog', [3, 9]), row('a', 'a dog', [9]), row('b', 'Hund', [4], 'de', 'title')];
const counts = (): Record<string, number> => ({ '3': 1, '9': 2 });

describe('compareShardOutputs', () => {
  test('identical rows and counts are ok', () => {
    const c = compareShardOutputs({ rows: rows(), counts: counts() }, { rows: rows(), counts: counts() });
    expect(c.ok).toBe(true);
    expect(c.rows).toMatchObject({ ours: 3, baseline: 3, identicalInOrder: true, firstDifference: null, onlyOurs: 0, onlyBaseline: 0 });
    expect(c.counts).toMatchObject({ ours: 2, baseline: 2, identical: true, differing: 0 });
    expect(c.matchedEntries).toEqual({ ours: 3, baseline: 3, identical: true });
  });

  test.each<[string, (r: CandidateRow) => void]>([
    ['uuid', (r) => (r.uuid = 'z')],
    ['url', (r) => (r.url += '?')],
    ['key', (r) => (r.key = 'title')],
    ['text', (r) => (r.text += ' ')],
    ['lang', (r) => (r.lang = null)],
    ['entry ids', (r) => (r.entry_ids = [9, 3])],
  ])('a row differing only in its %s is a mismatch', (_what, change) => {
    const other = rows();
    change(other[1]);
    const c = compareShardOutputs({ rows: rows(), counts: counts() }, { rows: other, counts: counts() });
    expect(c.ok).toBe(false);
    expect(c.rows).toMatchObject({ identicalInOrder: false, firstDifference: 1, onlyOurs: 1, onlyBaseline: 1 });
    expect(c.rows.examples.map((e) => e.side)).toEqual(['ours', 'baseline']);
  });

  test('the same rows in another order, a missing row and a duplicated row are mismatches', () => {
    const swapped = rows().reverse();
    const c1 = compareShardOutputs({ rows: rows(), counts: counts() }, { rows: swapped, counts: counts() });
    expect(c1.ok).toBe(false);
    expect(c1.rows).toMatchObject({ identicalInOrder: false, firstDifference: 0, onlyOurs: 0, onlyBaseline: 0 });

    const c2 = compareShardOutputs({ rows: rows(), counts: counts() }, { rows: rows().slice(0, 2), counts: counts() });
    expect(c2.rows).toMatchObject({ ours: 3, baseline: 2, firstDifference: 2, onlyOurs: 1, onlyBaseline: 0 });
    expect(c2.ok).toBe(false);

    const c3 = compareShardOutputs({ rows: rows(), counts: counts() }, { rows: [...rows(), rows()[0]], counts: counts() });
    expect(c3.rows).toMatchObject({ firstDifference: 3, onlyOurs: 0, onlyBaseline: 1 });
    expect(c3.ok).toBe(false);
  });

  test('counts: a different value, a missing entry or an extra entry is a mismatch', () => {
    const others: Array<Record<string, number>> = [{ '3': 1, '9': 3 }, { '9': 2 }, { ...counts(), '4': 1 }];
    for (const other of others) {
      const c = compareShardOutputs({ rows: rows(), counts: counts() }, { rows: rows(), counts: other });
      expect(c.ok).toBe(false);
      expect(c.counts.identical).toBe(false);
      expect(c.counts.differing).toBe(1);
    }
    const c = compareShardOutputs({ rows: rows(), counts: { '3': 1, '9': 2 } }, { rows: rows(), counts: { '9': 2, '3': 1 } });
    expect(c.ok).toBe(true); // key order does not matter
  });
});

test('oursStageCpu: stage CPU from the increments between passes, write from the timed run', () => {
  const stages: OursStages = {
    bytes: 100, read_gunzip: { cpu_s: 1, wall_s: 1 }, extract: { cpu_s: 4, wall_s: 4 }, extract_lid: { cpu_s: 6, wall_s: 6 },
    extract_lid_match: { cpu_s: 9, wall_s: 9 }, lid_calls: 10,
  };
  const run = { cpu_s: 12, match_path: { cpu_s: 8, wall_s: 8 }, write: { cpu_s: 3, wall_s: 3 } } as OursRun;
  expect(oursStageCpu(stages, run)).toEqual({ read_inflate: 1, parse_extract: 3, lid: 2, match: 3, write: 3 });
});
