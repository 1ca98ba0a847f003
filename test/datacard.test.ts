import { DomUtils, parseDocument } from 'htmlparser2';
import sharp from 'sharp';
import {
  buildDatacard, formatDatacard, formatSI, linearTicks, logTicks, type DatacardFigure, type DatacardInput,
} from '../curation/datacard';
import { ConfigError } from '../curation/errors';
import { svgToPng } from '../storage/render';

type Element = ReturnType<typeof DomUtils.getElementsByTagName>[number];

/** Strict enough for our generator: balanced tags, quoted attributes, only the five XML entities. */
function assertWellFormedXml(xml: string): void {
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  const entity = /&(?:amp|lt|gt|quot|apos);/y;
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  while (i < xml.length) {
    if (xml[i] === '<') {
      tag.lastIndex = i;
      const m = tag.exec(xml);
      if (!m) throw new Error(`malformed tag at ${i}: ${xml.slice(i, i + 60)}`);
      const [, close, name, attrs, selfClose] = m;
      for (const a of attrs.matchAll(/="([^"]*)"/g)) {
        for (const amp of a[1].matchAll(/&/g)) {
          entity.lastIndex = amp.index!;
          if (!entity.test(a[1])) throw new Error(`bare & in attribute of <${name}>`);
        }
      }
      if (close) {
        if (stack.pop() !== name) throw new Error(`unbalanced </${name}> at ${i}`);
      } else if (!selfClose) {
        if (stack.length === 0) roots++;
        stack.push(name);
      } else if (stack.length === 0) roots++;
      i = tag.lastIndex;
    } else if (xml[i] === '&') {
      entity.lastIndex = i;
      if (!entity.test(xml)) throw new Error(`bare & at ${i}`);
      i = entity.lastIndex;
    } else {
      if (stack.length === 0 && xml[i].trim() !== '') throw new Error(`text outside the root at ${i}`);
      i++;
    }
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
}

function parse(svg: string) {
  assertWellFormedXml(svg);
  const doc = parseDocument(svg, { xmlMode: true });
  const byTag = (name: string): Element[] => DomUtils.getElementsByTagName(name, doc);
  const byClass = (name: string, cls: string): Element[] => byTag(name).filter((e) => (e.attribs.class ?? '').split(' ').includes(cls));
  const texts = (cls: string): string[] => byClass('text', cls).map((e) => DomUtils.textContent(e));
  const root = byTag('svg')[0];
  return { doc, root, byTag, byClass, texts };
}

function points(el: Element): Array<[number, number]> {
  return el.attribs.points.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
}

const figure = (figs: DatacardFigure[], name: string): string => figs.find((f) => f.name === name)!.svg;

/** 7 entries; entry 3 and entry 5 have more matches after balancing than before (allowed). */
function handInput(over: Partial<DatacardInput> = {}): DatacardInput {
  return {
    runId: 'run-1',
    setId: 't=20/seed=0',
    t: 20,
    seed: '0',
    oneTextPerImage: false,
    stages: [
      { stage: 'matched', pairs: 1000, images: 800 },
      { stage: 'deduped', pairs: 900, note: 'text + image dedup' },
      { stage: 'curated', pairs: 120, images: 110 },
    ],
    metadata: ['zero', 'a', 'b', 'c', 'd', 'e', 'f'],
    countsBefore: Float64Array.from([0, 5, 30, 12, 50, 0, 1]),
    countsAfter: Float64Array.from([0, 5, 20, 14, 22, 1, 1]),
    expectedPairs: 118.5,
    selectedPairs: 120,
    compareThresholds: [10, 20, 40],
    createdAt: '2025-01-02T03:04:05Z',
    ...over,
  };
}

describe('datacard JSON', () => {
  test('hand example: head/tail at t, t_to_p, top entries with names, stages, pairs, thresholds, histogram', () => {
    const input = handInput();
    const { json } = buildDatacard(input);
    expect(json).toMatchObject({
      format: 'metaclip-datacard/1', runId: 'run-1', setId: 't=20/seed=0', t: 20, seed: '0',
      option: { oneTextPerImage: false }, createdAt: '2025-01-02T03:04:05Z',
    });
    expect(json.stages).toEqual(input.stages);
    expect(json.stages).not.toBe(input.stages);
    expect(json.stages[1]).not.toHaveProperty('images');
    expect(json.pairs).toEqual({ expected: 118.5, selected: 120, difference: 1.5, relativeDifference: 1.5 / 118.5 });
    expect(json.entries).toEqual({ metadata: 7, matchedBefore: 5, matchedAfter: 6 });

    expect(json.before.headTail).toEqual({
      t: 20, entriesMatched: 5, headEntries: 2, headMatches: 80, tailEntries: 3, tailMatches: 18, tailShare: 18 / 98, totalMatches: 98,
    });
    expect(json.before.tToP).toBeCloseTo(18 / 98, 15);
    expect(json.after.headTail).toEqual({
      t: 20, entriesMatched: 6, headEntries: 2, headMatches: 42, tailEntries: 4, tailMatches: 21, tailShare: 1 / 3, totalMatches: 63,
    });
    expect(json.after.tToP).toBeCloseTo(1 / 3, 15);

    expect(json.before.top).toEqual([
      { id: 4, entry: 'd', count: 50 }, { id: 2, entry: 'b', count: 30 }, { id: 3, entry: 'c', count: 12 },
      { id: 1, entry: 'a', count: 5 }, { id: 6, entry: 'f', count: 1 },
    ]);
    expect(json.after.top.map((e) => [e.entry, e.count])).toEqual([['d', 22], ['b', 20], ['c', 14], ['a', 5], ['e', 1], ['f', 1]]);

    expect(json.thresholds).toEqual([
      { t: 10, setT: false, headEntries: 3, tToP: 6 / 98, cappedMatches: 36 },
      { t: 20, setT: true, headEntries: 2, tToP: 18 / 98, cappedMatches: 58 },
      { t: 40, setT: false, headEntries: 1, tToP: 48 / 98, cappedMatches: 88 },
    ]);

    expect(json.distribution.scale).toBe('log2');
    expect(json.distribution.buckets).toEqual([
      { min: 1, max: 1, entriesBefore: 1, entriesAfter: 2, matchesBefore: 1, matchesAfter: 2 },
      { min: 2, max: 3, entriesBefore: 0, entriesAfter: 0, matchesBefore: 0, matchesAfter: 0 },
      { min: 4, max: 7, entriesBefore: 1, entriesAfter: 1, matchesBefore: 5, matchesAfter: 5 },
      { min: 8, max: 15, entriesBefore: 1, entriesAfter: 1, matchesBefore: 12, matchesAfter: 14 },
      { min: 16, max: 31, entriesBefore: 1, entriesAfter: 2, matchesBefore: 30, matchesAfter: 42 },
      { min: 32, max: 63, entriesBefore: 1, entriesAfter: 0, matchesBefore: 50, matchesAfter: 0 },
    ]);
    expect(json.figures).toEqual([
      { name: 'cumulative-counts', title: expect.any(String), svg: 'datacard-cumulative-counts.svg', png: 'datacard-cumulative-counts.png' },
      { name: 'count-vs-rank', title: expect.any(String), svg: 'datacard-count-vs-rank.svg', png: 'datacard-count-vs-rank.png' },
    ]);
  });

  test('top entries stop at 20; option text; relativeDifference null when nothing was expected', () => {
    const n = 30;
    const counts = Float64Array.from({ length: n }, (_, i) => i + 1);
    const { json } = buildDatacard(handInput({
      metadata: Array.from({ length: n }, (_, i) => `e${i}`), countsBefore: counts, countsAfter: counts,
      oneTextPerImage: true, expectedPairs: 0, selectedPairs: 0,
    }));
    expect(json.before.top).toHaveLength(20);
    expect(json.before.top[0]).toEqual({ id: 29, entry: 'e29', count: 30 });
    expect(json.option).toEqual({ oneTextPerImage: true, description: expect.stringContaining('one text per image') });
    expect(json.pairs.relativeDifference).toBeNull();
  });

  test('deterministic and JSON-serialisable', () => {
    const a = buildDatacard(handInput());
    const b = buildDatacard(handInput());
    expect(JSON.stringify(a.json)).toBe(JSON.stringify(b.json));
    expect(a.figures).toEqual(b.figures);
    expect(JSON.parse(JSON.stringify(a.json))).toEqual(a.json);
  });

  test('rejects inconsistent input', () => {
    expect(() => buildDatacard(handInput({ countsAfter: new Float64Array(6) }))).toThrow(ConfigError);
    expect(() => buildDatacard(handInput({ metadata: ['a'] }))).toThrow(/metadata/);
    expect(() => buildDatacard(handInput({ t: 0 }))).toThrow(ConfigError);
    expect(() => buildDatacard(handInput({ countsBefore: Float64Array.from([0, 1.5, 0, 0, 0, 0, 0]) }))).toThrow(/non-negative integer/);
    expect(() => buildDatacard(handInput({ countsAfter: Float64Array.from([0, -1, 0, 0, 0, 0, 0]) }))).toThrow(ConfigError);
    expect(() => buildDatacard(handInput({ compareThresholds: [NaN] }))).toThrow(ConfigError);
  });

  test('formatDatacard prints the main facts', () => {
    const text = formatDatacard(buildDatacard(handInput()).json);
    expect(text).toContain('run run-1');
    expect(text).toContain('set t=20/seed=0');
    expect(text).toMatch(/deduped\s+900 pairs/);
    expect(text).toContain('(text + image dedup)');
    expect(text).toMatch(/selected 120\s+expected 118\.5/);
    expect(text).toMatch(/head entries \(count ≥ t\)\s+2\s+2/);
    expect(text).toMatch(/tail share \(t_to_p\)\s+18\.37%\s+33\.33%/);
    expect(text).toMatch(/20 \(set\)/);
    expect(text).toContain('"d"  #4');
    expect(text).toContain('datacard-cumulative-counts.svg, datacard-count-vs-rank.svg');
  });
});

describe('datacard figures', () => {
  test('cumulative figure: one line each for uncapped, capped at t, each compare threshold, after', () => {
    const { figures } = buildDatacard(handInput());
    const svg = parse(figure(figures, 'cumulative-counts'));
    expect(svg.root.attribs).toMatchObject({ width: '900', height: '560', viewBox: '0 0 900 560' });
    expect(svg.byTag('polyline')).toHaveLength(5);
    expect(svg.byTag('path')).toHaveLength(0);
    expect(svg.texts('legend-label')).toEqual([
      'uncapped (before balancing)', 'capped at t=20 (this set)', 'capped at t=10', 'capped at t=40', 'after balancing (curated set)',
    ]);
    expect(svg.texts('axis-label')[0]).toContain('count > 0');
    // White background, a title.
    expect(svg.byTag('rect')[0].attribs.fill).toBe('#ffffff');
    expect(DomUtils.textContent(svg.byTag('title')[0])).toContain('Cumulative');
    // Every curve starts at the origin and never goes down (screen y decreases upwards).
    for (const line of svg.byTag('polyline')) {
      const pts = points(line);
      expect(pts[0]).toEqual(points(svg.byTag('polyline')[0])[0]);
      for (let i = 1; i < pts.length; i++) {
        expect(pts[i][0]).toBeGreaterThanOrEqual(pts[i - 1][0]);
        expect(pts[i][1]).toBeLessThanOrEqual(pts[i - 1][1]);
      }
    }
    // Uncapped ends highest (98), then capped at 40 (88), capped at t=20 (58), after (63) between.
    const end = (cls: string) => points(svg.byClass('polyline', cls)[0]).at(-1)![1];
    expect(end('uncapped')).toBeLessThan(end('capped-t'));
    expect(end('after')).toBeLessThan(end('capped-t'));
  });

  test('default compare thresholds are drawn even above every count, and the set t is not drawn twice', () => {
    const at20k = parse(figure(buildDatacard(handInput({ t: 20_000, compareThresholds: undefined })).figures, 'cumulative-counts'));
    expect(at20k.byTag('polyline')).toHaveLength(5);
    expect(at20k.texts('legend-label')).toEqual([
      'uncapped (before balancing)', 'capped at t=20,000 (this set)', 'capped at t=90,000', 'capped at t=170,000', 'after balancing (curated set)',
    ]);
    const at90k = parse(figure(buildDatacard(handInput({ t: 90_000, compareThresholds: undefined })).figures, 'cumulative-counts'));
    expect(at90k.byTag('polyline')).toHaveLength(5);
    expect(at90k.texts('legend-label').filter((l) => l.includes('90,000'))).toEqual(['capped at t=90,000 (this set)']);
  });

  test('count vs rank: before and after lines, a line at t, decade ticks on both axes', () => {
    const { figures } = buildDatacard(handInput());
    const svg = parse(figure(figures, 'count-vs-rank'));
    expect(svg.byTag('polyline')).toHaveLength(2);
    expect(svg.byClass('line', 'threshold').map((e) => e.attribs['data-value'])).toEqual(['20']);
    expect(svg.texts('legend-label')).toEqual(['before balancing (5 entries)', 'after balancing (6 entries)', 't = 20']);
    const majors = (axis: 'x' | 'y') => svg.byClass('line', `tick-${axis}`)
      .filter((e) => !e.attribs.class.includes('minor')).map((e) => Number(e.attribs['data-value']));
    expect(majors('x')).toEqual([1, 10]); // 6 ranks
    expect(majors('y')).toEqual([1, 10, 100]); // counts 1..50 and t = 20
    expect(svg.texts('tick-label-y')).toEqual(['1', '10', '100']);
    // The threshold line sits between the 10 and 100 gridlines, at log10(20) of the way.
    const tickY = (v: number) => Number(svg.byClass('line', 'tick-y').find((e) => e.attribs['data-value'] === String(v))!.attribs.y1);
    const tY = Number(svg.byClass('line', 'threshold')[0].attribs.y1);
    expect((tickY(10) - tY) / (tickY(10) - tickY(100))).toBeCloseTo(Math.log10(2), 2);
    // Rank 1 of "before" is the top count (50).
    const first = points(svg.byClass('polyline', 'before')[0])[0];
    expect((tickY(1) - first[1]) / (tickY(1) - tickY(100))).toBeCloseTo(Math.log10(50) / 2, 2);
  });

  test('500k entries: lines are downsampled, files stay small, SI and decade labels', () => {
    const n = 500_000;
    const before = new Float64Array(n);
    const after = new Float64Array(n);
    for (let e = 0; e < n; e++) {
      // Zipf-like with gaps: a few entries in the millions, a long tail of small counts, 10% unmatched.
      before[e] = e % 10 === 9 ? 0 : Math.floor(4e6 / (1 + e) ** 1.05) + (e % 7);
      after[e] = Math.min(before[e], 20_000 + (e % 13));
    }
    const metadata = Array.from({ length: n }, (_, i) => `entry ${i}`);
    const { json, figures } = buildDatacard(handInput({ metadata, countsBefore: before, countsAfter: after, t: 20_000, compareThresholds: undefined }));
    expect(json.entries.matchedBefore).toBe(450_000);
    for (const f of figures) {
      expect(f.svg.length).toBeLessThan(120_000);
      const svg = parse(f.svg);
      for (const line of svg.byTag('polyline')) expect(points(line).length).toBeLessThanOrEqual(2000);
    }
    const cum = parse(figure(figures, 'cumulative-counts'));
    const yLabels = cum.texts('tick-label-y');
    expect(yLabels[0]).toBe('0');
    expect(yLabels.some((l) => /^\d+(\.\d+)?M$/.test(l))).toBe(true);
    expect(cum.texts('tick-label-x')).toContain('100k');
    const rank = parse(figure(figures, 'count-vs-rank'));
    const xMajors = rank.byClass('line', 'tick-x').filter((e) => !e.attribs.class.includes('minor')).map((e) => Number(e.attribs['data-value']));
    expect(xMajors).toEqual([1, 10, 100, 1e3, 1e4, 1e5, 1e6]);
    expect(rank.texts('tick-label-x')).toEqual(['1', '10', '100', '1k', '10k', '100k', '1M']);
    const yMajors = rank.byClass('line', 'tick-y').filter((e) => !e.attribs.class.includes('minor')).map((e) => Number(e.attribs['data-value']));
    for (let i = 0; i < yMajors.length; i++) expect(yMajors[i]).toBe(10 ** i);
    expect(yMajors.at(-1)).toBeGreaterThanOrEqual(4e6);
  });

  test('no matches: a readable placeholder figure, zeros in the JSON', () => {
    for (const n of [0, 4]) {
      const zeros = new Float64Array(n);
      const { json, figures } = buildDatacard(handInput({
        metadata: Array.from({ length: n }, (_, i) => `e${i}`), countsBefore: zeros, countsAfter: zeros, expectedPairs: 0, selectedPairs: 0,
      }));
      expect(json.entries).toEqual({ metadata: n, matchedBefore: 0, matchedAfter: 0 });
      expect(json.before.headTail.totalMatches).toBe(0);
      expect(json.before.tToP).toBe(0);
      expect(json.before.top).toEqual([]);
      expect(json.distribution.buckets).toEqual([]);
      expect(json.thresholds.every((t) => t.cappedMatches === 0 && t.headEntries === 0)).toBe(true);
      expect(figures).toHaveLength(2);
      for (const f of figures) {
        const svg = parse(f.svg);
        expect(svg.byTag('polyline')).toHaveLength(0);
        expect(svg.texts('no-matches')).toEqual(['no matches']);
      }
      expect(formatDatacard(json)).toContain('No matches');
    }
  });

  test('XML special characters in ids are escaped', () => {
    const { figures } = buildDatacard(handInput({ runId: 'a<b>&"c\'' }));
    for (const f of figures) {
      const svg = parse(f.svg);
      expect(DomUtils.textContent(svg.byTag('text')[1])).toContain('a<b>&"c\'');
    }
  });
});

describe('axis helpers', () => {
  test('logTicks: decades covering the range', () => {
    const majors = (lo: number, hi: number) => logTicks(lo, hi).ticks.filter((t) => t.major).map((t) => t.value);
    expect(majors(3, 2500)).toEqual([1, 10, 100, 1000, 10000]);
    expect(majors(1, 1000)).toEqual([1, 10, 100, 1000]);
    expect(majors(1000, 1000)).toEqual([1000, 10000]);
    expect(majors(1, 1e15)).toHaveLength(16);
    expect(logTicks(1, 1e15).ticks.every((t) => t.major)).toBe(true); // no minor ticks over many decades
    expect(logTicks(1, 100).ticks.filter((t) => !t.major).map((t) => t.value)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  test('linearTicks and SI labels', () => {
    expect(linearTicks(5.67e9).ticks.map((t) => t.label)).toEqual(['0', '1B', '2B', '3B', '4B', '5B', '6B']);
    expect(linearTicks(98).ticks.map((t) => t.value)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(linearTicks(3, 6, true).ticks.map((t) => t.value)).toEqual([0, 1, 2, 3]);
    expect(formatSI(0)).toBe('0');
    expect(formatSI(999)).toBe('999');
    expect(formatSI(1500)).toBe('1.5k');
    expect(formatSI(250e6)).toBe('250M');
    expect(formatSI(1.25e9)).toBe('1.25B');
  });
});

describe('svgToPng', () => {
  test('renders a PNG at 2x by default, deterministically', async () => {
    const svg = figure(buildDatacard(handInput()).figures, 'count-vs-rank');
    const png = await svgToPng(svg);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const meta = await sharp(png).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 1800, height: 1120, channels: 3 });
    expect((await svgToPng(svg)).equals(png)).toBe(true);
    const small = await sharp(await svgToPng(svg, { density: 72 })).metadata();
    expect([small.width, small.height]).toEqual([900, 560]);
  });

  test('renders the no-matches figure', async () => {
    const { figures } = buildDatacard(handInput({ metadata: [], countsBefore: new Float64Array(0), countsAfter: new Float64Array(0) }));
    const meta = await sharp(await svgToPng(figures[0].svg)).metadata();
    expect([meta.width, meta.height]).toEqual([1800, 1120]);
  });
});
