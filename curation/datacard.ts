/**
 * The datacard of a curated set: a JSON summary (sizes per stage, expected vs selected pairs, head/tail
 * statistics at t before and after balancing, top entries, a log2 histogram of entry counts) and two SVG
 * figures (MetaCLIP's cumulative-count curve and count vs rank). Pure: no I/O; `storage/render.ts` turns
 * the SVGs into PNGs. Output is a deterministic function of the input (no clocks, no random ids).
 */
import { headTailStats, topEntries, tToP, type HeadTailStats } from './counts';
import { ConfigError } from './errors';

export interface DatacardStage { stage: string; pairs: number; images?: number; note?: string }

export interface DatacardInput {
  /** Source run. */
  runId: string;
  /** e.g. "t=20000/seed=0". */
  setId: string;
  t: number;
  seed: string;
  oneTextPerImage: boolean;
  /** Sizes per stage in pipeline order (matched, deduped, pass-1, balance input, curated …). */
  stages: DatacardStage[];
  /** Entry strings by id (names for top entries). */
  metadata: readonly string[];
  /** Entry counts of the pool that was balanced. */
  countsBefore: Float64Array;
  /** Entry counts in the curated set (same length). Not assumed ≤ countsBefore per entry. */
  countsAfter: Float64Array;
  /** Σ selection probabilities. */
  expectedPairs: number;
  selectedPairs: number;
  /** Thresholds drawn for comparison in the cumulative figure; default [20000, 90000, 170000]. */
  compareThresholds?: number[];
  createdAt: string;
}

export interface DatacardFigure { name: string; title: string; svg: string }

export interface DatacardEntry { id: number; entry: string; count: number }

/** Statistics of one count vector at the set's t. */
export interface DatacardCounts {
  /** headTailStats(counts, t): head = count ≥ t, tail = 0 < count < t. */
  headTail: HeadTailStats;
  /** t_to_p(counts, t): the share of matches held by tail entries. */
  tToP: number;
  /** The 20 entries with the largest counts, ties by id. */
  top: DatacardEntry[];
}

/** What balancing at threshold `t` would do to the pool that was balanced (computed on countsBefore). */
export interface DatacardThreshold {
  t: number;
  /** True for the set's own t; the others are compare thresholds. */
  setT: boolean;
  /** Entries with count ≥ t. */
  headEntries: number;
  /** t_to_p(countsBefore, t). */
  tToP: number;
  /** Σ min(count, t): the end point of the capped cumulative curve (≈ matches kept by balancing at t). */
  cappedMatches: number;
}

/** One log2 bucket: entries whose count lies in [min, max] (min = 2^k, max = 2^(k+1) − 1). */
export interface DatacardBucket {
  min: number;
  max: number;
  entriesBefore: number;
  entriesAfter: number;
  matchesBefore: number;
  matchesAfter: number;
}

export interface DatacardJson {
  format: 'metaclip-datacard/1';
  runId: string;
  setId: string;
  t: number;
  seed: string;
  option: { oneTextPerImage: boolean; description: string };
  createdAt: string;
  stages: DatacardStage[];
  pairs: {
    expected: number;
    selected: number;
    /** selected − expected. */
    difference: number;
    /** (selected − expected) / expected; null when expected is 0. */
    relativeDifference: number | null;
  };
  entries: { metadata: number; matchedBefore: number; matchedAfter: number };
  before: DatacardCounts;
  after: DatacardCounts;
  /** The set's t and the compare thresholds, ascending, evaluated on countsBefore. */
  thresholds: DatacardThreshold[];
  /** Histogram of non-zero entry counts on log2 buckets, from 1 up to the largest count before or after. */
  distribution: { scale: 'log2'; buckets: DatacardBucket[] };
  /** Figure file names, relative to datacard.json's directory (layout.datacardFigure), SVG and PNG rendering. */
  figures: Array<{ name: string; title: string; svg: string; png: string }>;
}

export const DEFAULT_COMPARE_THRESHOLDS: readonly number[] = [20_000, 90_000, 170_000];
const TOP_K = 20;

export const FIGURE_CUMULATIVE = 'cumulative-counts';
export const FIGURE_RANK = 'count-vs-rank';
const FIGURE_TITLES: Record<string, string> = {
  [FIGURE_CUMULATIVE]: 'Cumulative matches over entries sorted by count',
  [FIGURE_RANK]: 'Matches per entry vs rank (log-log)',
};

// ---------------------------------------------------------------------------------------------------------
// JSON

export function buildDatacard(input: DatacardInput): { json: DatacardJson; figures: DatacardFigure[] } {
  const { countsBefore: before, countsAfter: after, t } = input;
  validate(input);
  const compare = thresholdsOf(input);

  const summary = (counts: Float64Array): DatacardCounts => ({
    headTail: headTailStats(counts, t),
    tToP: tToP(counts, t),
    top: topEntries(counts, TOP_K).map(([id, count]) => ({ id, entry: input.metadata[id], count })),
  });
  const beforeSummary = summary(before);
  const afterSummary = summary(after);

  const thresholds: DatacardThreshold[] = [t, ...compare].sort((a, b) => a - b).map((tau) => {
    let head = 0;
    let capped = 0;
    for (let e = 0; e < before.length; e++) {
      const c = before[e];
      if (c >= tau) head++;
      capped += c < tau ? c : tau;
    }
    return { t: tau, setT: tau === t, headEntries: head, tToP: tToP(before, tau), cappedMatches: capped };
  });

  const difference = input.selectedPairs - input.expectedPairs;
  const json: DatacardJson = {
    format: 'metaclip-datacard/1',
    runId: input.runId,
    setId: input.setId,
    t,
    seed: input.seed,
    option: {
      oneTextPerImage: input.oneTextPerImage,
      description: optionDescription(input.oneTextPerImage),
    },
    createdAt: input.createdAt,
    stages: input.stages.map((s) => {
      const out: DatacardStage = { stage: s.stage, pairs: s.pairs };
      if (s.images !== undefined) out.images = s.images;
      if (s.note !== undefined) out.note = s.note;
      return out;
    }),
    pairs: {
      expected: input.expectedPairs,
      selected: input.selectedPairs,
      difference,
      relativeDifference: input.expectedPairs === 0 ? null : difference / input.expectedPairs,
    },
    entries: {
      metadata: input.metadata.length,
      matchedBefore: beforeSummary.headTail.entriesMatched,
      matchedAfter: afterSummary.headTail.entriesMatched,
    },
    before: beforeSummary,
    after: afterSummary,
    thresholds,
    distribution: { scale: 'log2', buckets: log2Histogram(before, after) },
    figures: [FIGURE_CUMULATIVE, FIGURE_RANK].map((name) => ({
      name, title: FIGURE_TITLES[name], svg: `datacard-${name}.svg`, png: `datacard-${name}.png`,
    })),
  };

  const subtitle = `run ${input.runId} · set ${input.setId} · t=${groupDigits(t)} · seed ${input.seed}`;
  const figures: DatacardFigure[] = [
    { name: FIGURE_CUMULATIVE, title: FIGURE_TITLES[FIGURE_CUMULATIVE], svg: cumulativeFigure(before, after, t, compare, subtitle) },
    { name: FIGURE_RANK, title: FIGURE_TITLES[FIGURE_RANK], svg: rankFigure(before, after, t, subtitle) },
  ];
  return { json, figures };
}

function optionDescription(oneTextPerImage: boolean): string {
  return oneTextPerImage
    ? 'one text per image (MetaCLIP 2: one random text per image is the candidate pair)'
    : 'every text is a candidate pair (Algorithm 1)';
}

function validate(input: DatacardInput): void {
  const { countsBefore, countsAfter, metadata, t } = input;
  if (!(Number.isFinite(t) && t > 0)) throw new ConfigError(`datacard: t must be a positive number, got ${t}`);
  if (countsBefore.length !== countsAfter.length) {
    throw new ConfigError(`datacard: counts before (${countsBefore.length}) and after (${countsAfter.length}) differ in size`);
  }
  if (metadata.length !== countsBefore.length) {
    throw new ConfigError(`datacard: counts have ${countsBefore.length} entries but the metadata has ${metadata.length}`);
  }
  for (const [name, counts] of [['before', countsBefore], ['after', countsAfter]] as const) {
    for (let e = 0; e < counts.length; e++) {
      const c = counts[e];
      if (!(c >= 0 && c % 1 === 0)) throw new ConfigError(`datacard: count ${name} of entry ${e} is ${c}, expected a non-negative integer`);
    }
  }
  for (const [name, v] of [['expectedPairs', input.expectedPairs], ['selectedPairs', input.selectedPairs]] as const) {
    if (!(Number.isFinite(v) && v >= 0)) throw new ConfigError(`datacard: ${name} must be a non-negative number, got ${v}`);
  }
  for (const s of input.stages) {
    if (!(Number.isFinite(s.pairs) && s.pairs >= 0)) throw new ConfigError(`datacard: stage ${JSON.stringify(s.stage)} has ${s.pairs} pairs`);
  }
  for (const tau of input.compareThresholds ?? []) {
    if (!(Number.isFinite(tau) && tau > 0)) throw new ConfigError(`datacard: compare threshold ${tau} is not a positive number`);
  }
}

/** Compare thresholds: ascending, unique, without the set's own t. */
function thresholdsOf(input: DatacardInput): number[] {
  const list = input.compareThresholds ?? DEFAULT_COMPARE_THRESHOLDS;
  return [...new Set(list)].filter((x) => x !== input.t).sort((a, b) => a - b);
}

/** floor(log2(c)) for an integer c ≥ 1 (exact: p stays a power of two). */
function log2Floor(c: number): number {
  let k = 0;
  for (let p = 2; p <= c; p *= 2) k++;
  return k;
}

function log2Histogram(before: Float64Array, after: Float64Array): DatacardBucket[] {
  const buckets: DatacardBucket[] = [];
  const bucket = (k: number): DatacardBucket => {
    while (buckets.length <= k) {
      const j = buckets.length;
      buckets.push({ min: 2 ** j, max: 2 ** (j + 1) - 1, entriesBefore: 0, entriesAfter: 0, matchesBefore: 0, matchesAfter: 0 });
    }
    return buckets[k];
  };
  for (let e = 0; e < before.length; e++) {
    if (before[e] > 0) {
      const b = bucket(log2Floor(before[e]));
      b.entriesBefore++;
      b.matchesBefore += before[e];
    }
    if (after[e] > 0) {
      const b = bucket(log2Floor(after[e]));
      b.entriesAfter++;
      b.matchesAfter += after[e];
    }
  }
  return buckets;
}

// ---------------------------------------------------------------------------------------------------------
// Text

export function formatDatacard(json: DatacardJson): string {
  const out: string[] = [];
  const row = (cells: string[], widths: number[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();

  out.push(`Datacard  run ${json.runId}  set ${json.setId}`);
  out.push(`  created    ${json.createdAt}`);
  out.push(`  t          ${groupDigits(json.t)}    seed ${json.seed}`);
  out.push(`  option     ${json.option.description}`);

  out.push('', 'Stages');
  if (json.stages.length === 0) out.push('  (none recorded)');
  const stageRows = json.stages.map((s, i) => {
    const prev = i > 0 ? json.stages[i - 1].pairs : 0;
    return [
      s.stage,
      `${groupDigits(s.pairs)} pairs`,
      s.images !== undefined ? `${groupDigits(s.images)} images` : '',
      prev > 0 ? `${percent(s.pairs / prev, 1)} of previous` : '',
    ];
  });
  const stageWidths = [0, 1, 2, 3].map((c) => Math.max(0, ...stageRows.map((r) => r[c].length)));
  stageRows.forEach((cells, i) => {
    const note = json.stages[i].note;
    out.push('  ' + row(cells, stageWidths) + (note ? `  (${note})` : ''));
  });

  const p = json.pairs;
  const rel = p.relativeDifference === null ? '' : ` (${p.relativeDifference >= 0 ? '+' : ''}${percent(p.relativeDifference, 3)})`;
  out.push('', `Pairs      selected ${groupDigits(p.selected)}  expected ${groupDigits(p.expected, 1)}  difference ${signed(p.difference)}${rel}`);
  out.push(`Entries    matched before ${groupDigits(json.entries.matchedBefore)}  after ${groupDigits(json.entries.matchedAfter)}  (of ${groupDigits(json.entries.metadata)} in the metadata)`);

  if (json.before.headTail.totalMatches === 0 && json.after.headTail.totalMatches === 0) {
    out.push('', 'No matches: every entry count is 0 before and after balancing.');
  } else {
    const b = json.before.headTail;
    const a = json.after.headTail;
    const w = [26, 16, 16];
    out.push('', `Head / tail at t=${groupDigits(json.t)}`);
    out.push('  ' + row(['', 'before', 'after'], w));
    out.push('  ' + row(['head entries (count ≥ t)', groupDigits(b.headEntries), groupDigits(a.headEntries)], w));
    out.push('  ' + row(['head matches', groupDigits(b.headMatches), groupDigits(a.headMatches)], w));
    out.push('  ' + row(['tail entries (0 < count < t)', groupDigits(b.tailEntries), groupDigits(a.tailEntries)], w));
    out.push('  ' + row(['tail matches', groupDigits(b.tailMatches), groupDigits(a.tailMatches)], w));
    out.push('  ' + row(['total matches', groupDigits(b.totalMatches), groupDigits(a.totalMatches)], w));
    out.push('  ' + row(['tail share (t_to_p)', percent(json.before.tToP, 2), percent(json.after.tToP, 2)], w));

    out.push('', 'Thresholds on the pool that was balanced');
    const tw = [14, 14, 12, 18];
    out.push('  ' + row(['t', 'head entries', 't_to_p', 'Σ min(count, t)'], tw));
    for (const th of json.thresholds) {
      out.push('  ' + row([`${groupDigits(th.t)}${th.setT ? ' (set)' : ''}`, groupDigits(th.headEntries), percent(th.tToP, 2), groupDigits(th.cappedMatches)], tw));
    }

    for (const [label, list] of [['before', json.before.top], ['after', json.after.top]] as const) {
      out.push('', `Top ${list.length} entries ${label} balancing`);
      list.forEach((e, i) => {
        out.push(`  ${String(i + 1).padStart(2)}. ${groupDigits(e.count).padStart(14)}  ${quoteEntry(e.entry)}  #${e.id}`);
      });
    }

    out.push('', 'Entry counts (log2 buckets)');
    const hw = [22, 16, 16];
    out.push('  ' + row(['count', 'entries before', 'entries after'], hw));
    for (const bk of json.distribution.buckets) {
      const range = bk.min === bk.max ? groupDigits(bk.min) : `${groupDigits(bk.min)}–${groupDigits(bk.max)}`;
      out.push('  ' + row([range, groupDigits(bk.entriesBefore), groupDigits(bk.entriesAfter)], hw));
    }
  }

  out.push('', `Figures    ${json.figures.map((f) => f.svg).join(', ')} (and .png)`);
  return out.join('\n') + '\n';
}

function quoteEntry(s: string | undefined): string {
  if (s === undefined) return '(unnamed)';
  const q = JSON.stringify(s);
  return q.length > 48 ? q.slice(0, 46) + '…"' : q;
}

function percent(x: number, decimals: number): string {
  return `${(x * 100).toFixed(decimals)}%`;
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : '−'}${groupDigits(Math.abs(x), Number.isInteger(x) ? 0 : 1)}`;
}

/** 1234567.8 → "1,234,567.8"; locale-independent. */
export function groupDigits(x: number, decimals = 0): string {
  if (!Number.isFinite(x)) return String(x);
  const neg = x < 0;
  const fixed = Math.abs(x).toFixed(Number.isInteger(x) ? 0 : decimals);
  const [int, frac] = fixed.split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '-' : '') + grouped + (frac ? '.' + frac : '');
}

/** SI-style short label: 1500 → "1.5k", 2.5e9 → "2.5B". At most two decimals, trailing zeros dropped. */
export function formatSI(v: number): string {
  const units: Array<[number, string]> = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
  const a = Math.abs(v);
  for (const [size, unit] of units) {
    if (a >= size) return trimNumber(v / size) + unit;
  }
  return trimNumber(v);
}

function trimNumber(x: number): string {
  if (Math.abs(x) >= 1 || x === 0) return String(Number(x.toFixed(2)));
  return String(Number(x.toPrecision(2)));
}

// ---------------------------------------------------------------------------------------------------------
// Axes

export interface Tick { value: number; label: string; major: boolean }

/** "Nice" linear ticks from 0 covering [0, max]; returns the ticks and the axis end (the last tick). */
export function linearTicks(max: number, target = 6, integer = false): { ticks: Tick[]; end: number } {
  if (!(max > 0)) max = 1;
  let step = niceStep(max / target);
  if (integer && step < 1) step = 1;
  const n = Math.ceil(max / step - 1e-9);
  const ticks: Tick[] = [];
  for (let i = 0; i <= n; i++) {
    const value = Number((i * step).toPrecision(12));
    ticks.push({ value, label: formatSI(value), major: true });
  }
  return { ticks, end: ticks[ticks.length - 1].value };
}

function niceStep(raw: number): number {
  const exp = Math.floor(Math.log10(raw));
  const base = 10 ** exp;
  const f = raw / base;
  const m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return m * base;
}

/** The exponent k with 10^k ≤ v < 10^(k+1), exact at powers of ten. */
function log10Floor(v: number): number {
  let k = Math.floor(Math.log10(v));
  while (10 ** k > v) k--;
  while (10 ** (k + 1) <= v) k++;
  return k;
}

/**
 * Decade ticks for a log axis covering [lo, hi] (both > 0): the domain is widened to powers of ten;
 * major ticks at every 10^k (labelled), minor ticks at 2..9 × 10^k when the axis spans ≤ 8 decades.
 */
export function logTicks(lo: number, hi: number): { ticks: Tick[]; domain: [number, number] } {
  const a = log10Floor(lo);
  let b = log10Floor(hi);
  if (10 ** b < hi) b++;
  if (b === a) b++;
  const ticks: Tick[] = [];
  const minor = b - a <= 8;
  for (let k = a; k <= b; k++) {
    const p = Number((10 ** k).toPrecision(12));
    ticks.push({ value: p, label: formatSI(p), major: true });
    if (minor && k < b) for (let m = 2; m <= 9; m++) ticks.push({ value: Number((m * 10 ** k).toPrecision(12)), label: '', major: false });
  }
  return { ticks, domain: [Number((10 ** a).toPrecision(12)), Number((10 ** b).toPrecision(12))] };
}

// ---------------------------------------------------------------------------------------------------------
// SVG

const W = 900;
const H = 560;
const PLOT = { left: 88, right: W - 24, top: 66, bottom: H - 68 };
const FONT = 'DejaVu Sans, sans-serif';
/** Data is drawn this many pixels inside the frame, so lines at the ends of a domain stay visible. */
const INSET = 8;
/** Horizontal buckets for downsampling; each keeps ≤ 4 points (first, min, max, last), so ≤ 2,000 points per line. */
const DOWNSAMPLE_BUCKETS = 500;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function f1(x: number): string {
  const r = Math.round(x * 10) / 10;
  return Object.is(r, -0) ? '0' : String(r);
}

type Scale = (v: number) => number;

function linearScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

function logScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const l0 = Math.log10(d0);
  const k = (r1 - r0) / (Math.log10(d1) - l0);
  return (v) => r0 + (Math.log10(v) - l0) * k;
}

/**
 * Per-point loops here use plain arithmetic rather than Math.min/max/floor: inside Jest's vm context each
 * Math call costs ~100× what it does in plain Node, which made the 500k-entry test slow.
 *
 * Streaming M4 downsampling in screen space: points are pushed in x order; per horizontal bucket the
 * first, lowest, highest and last points are kept, which draws the same picture at pixel resolution.
 */
class Downsampler {
  private readonly out: string[] = [];
  private lastEmitted = '';
  private bucket = -1;
  private seq = 0;
  // First, lowest, highest and last point of the current bucket: sequence number, x, y (allocation-free).
  private fS = 0; private fX = 0; private fY = 0;
  private loS = 0; private loX = 0; private loY = 0;
  private hiS = 0; private hiX = 0; private hiY = 0;
  private lS = 0; private lX = 0; private lY = 0;

  constructor(private readonly x0: number, private readonly width: number, private readonly buckets = DOWNSAMPLE_BUCKETS) {}

  push(x: number, y: number): void {
    const v = ((x - this.x0) / this.width) * this.buckets;
    const b = v <= 0 ? 0 : v >= this.buckets - 1 ? this.buckets - 1 : v | 0;
    const s = this.seq++;
    if (b !== this.bucket) {
      this.flush();
      this.bucket = b;
      this.fS = this.loS = this.hiS = s;
      this.fX = this.loX = this.hiX = x;
      this.fY = this.loY = this.hiY = y;
    } else {
      if (y < this.loY) { this.loS = s; this.loX = x; this.loY = y; }
      if (y > this.hiY) { this.hiS = s; this.hiX = x; this.hiY = y; }
    }
    this.lS = s; this.lX = x; this.lY = y;
  }

  private flush(): void {
    if (this.bucket < 0) return;
    const pts: Array<[number, number, number]> = [
      [this.fS, this.fX, this.fY], [this.loS, this.loX, this.loY], [this.hiS, this.hiX, this.hiY], [this.lS, this.lX, this.lY],
    ];
    pts.sort((a, b) => a[0] - b[0]);
    let prevSeq = -1;
    for (const [seq, x, y] of pts) {
      if (seq === prevSeq) continue;
      prevSeq = seq;
      const p = `${f1(x)},${f1(y)}`;
      if (p !== this.lastEmitted) this.out.push(p);
      this.lastEmitted = p;
    }
    this.bucket = -1;
  }

  points(): string {
    this.flush();
    return this.out.join(' ');
  }
}

interface SeriesStyle { label: string; color: string; width: number; dash?: string; cls: string }

function polyline(points: string, s: SeriesStyle): string {
  const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
  return `<polyline class="series ${s.cls}" data-label="${esc(s.label)}" fill="none" stroke="${s.color}" stroke-width="${s.width}"${dash} stroke-linejoin="round" points="${points}"/>`;
}

function header(title: string, subtitle: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="30" text-anchor="middle" font-size="18" font-weight="bold" fill="#111111">${esc(title)}</text>`,
    `<text x="${W / 2}" y="50" text-anchor="middle" font-size="12" fill="#555555">${esc(subtitle)}</text>`,
  ];
}

function axisLabels(xLabel: string, yLabel: string): string[] {
  const cy = (PLOT.top + PLOT.bottom) / 2;
  return [
    `<text class="axis-label" x="${(PLOT.left + PLOT.right) / 2}" y="${H - 18}" text-anchor="middle" font-size="13" fill="#222222">${esc(xLabel)}</text>`,
    `<text class="axis-label" x="20" y="${cy}" text-anchor="middle" font-size="13" fill="#222222" transform="rotate(-90 20 ${cy})">${esc(yLabel)}</text>`,
  ];
}

/** Grid, ticks and tick labels for both axes, then the frame. */
function axes(xTicks: Tick[], xs: Scale, yTicks: Tick[], ys: Scale): string[] {
  const out: string[] = ['<g class="grid" stroke="#e6e6e6" stroke-width="1">'];
  for (const t of xTicks) if (t.major) out.push(`<line x1="${f1(xs(t.value))}" y1="${PLOT.top}" x2="${f1(xs(t.value))}" y2="${PLOT.bottom}"/>`);
  for (const t of yTicks) if (t.major) out.push(`<line x1="${PLOT.left}" y1="${f1(ys(t.value))}" x2="${PLOT.right}" y2="${f1(ys(t.value))}"/>`);
  out.push('</g>');
  out.push('<g class="ticks" stroke="#333333" stroke-width="1">');
  for (const t of xTicks) {
    const x = f1(xs(t.value));
    out.push(`<line class="tick tick-x${t.major ? '' : ' minor'}" data-value="${t.value}" x1="${x}" y1="${PLOT.bottom}" x2="${x}" y2="${PLOT.bottom + (t.major ? 6 : 3)}"/>`);
  }
  for (const t of yTicks) {
    const y = f1(ys(t.value));
    out.push(`<line class="tick tick-y${t.major ? '' : ' minor'}" data-value="${t.value}" x1="${PLOT.left - (t.major ? 6 : 3)}" y1="${y}" x2="${PLOT.left}" y2="${y}"/>`);
  }
  out.push('</g>');
  out.push('<g class="tick-labels" font-size="12" fill="#333333">');
  for (const t of xTicks) if (t.label) out.push(`<text class="tick-label-x" x="${f1(xs(t.value))}" y="${PLOT.bottom + 20}" text-anchor="middle">${esc(t.label)}</text>`);
  for (const t of yTicks) if (t.label) out.push(`<text class="tick-label-y" x="${PLOT.left - 10}" y="${f1(ys(t.value) + 4)}" text-anchor="end">${esc(t.label)}</text>`);
  out.push('</g>');
  out.push(`<rect class="frame" x="${PLOT.left}" y="${PLOT.top}" width="${PLOT.right - PLOT.left}" height="${PLOT.bottom - PLOT.top}" fill="none" stroke="#333333" stroke-width="1"/>`);
  return out;
}

/** Approximate advance width of DejaVu Sans text (slightly generous, so boxes never clip their labels). */
function textWidth(s: string, fontSize: number): number {
  let em = 0;
  for (const ch of s) {
    if ('iljI.,:;|!\''.includes(ch)) em += 0.3;
    else if (' ()[]ftr-'.includes(ch)) em += 0.4;
    else if ('mwMW'.includes(ch)) em += 0.9;
    else if (ch >= 'A' && ch <= 'Z') em += 0.72;
    else em += 0.63;
  }
  return em * fontSize;
}

function legend(items: SeriesStyle[], corner: 'top-left' | 'top-right'): string[] {
  const rowH = 20;
  const swatch = 30;
  const textW = Math.max(...items.map((s) => textWidth(s.label, 12)));
  const w = Math.ceil(12 + swatch + 8 + textW + 12);
  const h = items.length * rowH + 12;
  const x = corner === 'top-left' ? PLOT.left + 12 : PLOT.right - 12 - w;
  const y = PLOT.top + 12;
  const out = [`<g class="legend">`, `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="#ffffff" fill-opacity="0.92" stroke="#bbbbbb" stroke-width="1"/>`];
  items.forEach((s, i) => {
    const cy = y + 6 + rowH * i + rowH / 2;
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    out.push(`<line x1="${x + 12}" y1="${cy}" x2="${x + 12 + swatch}" y2="${cy}" stroke="${s.color}" stroke-width="${Math.max(2, s.width)}"${dash}/>`);
    out.push(`<text class="legend-label" x="${x + 12 + swatch + 8}" y="${cy + 4}" font-size="12" fill="#222222">${esc(s.label)}</text>`);
  });
  out.push('</g>');
  return out;
}

function noMatchesFigure(title: string, subtitle: string, xLabel: string, yLabel: string): string {
  const cx = (PLOT.left + PLOT.right) / 2;
  const cy = (PLOT.top + PLOT.bottom) / 2;
  return [
    ...header(title, subtitle),
    `<rect class="frame" x="${PLOT.left}" y="${PLOT.top}" width="${PLOT.right - PLOT.left}" height="${PLOT.bottom - PLOT.top}" fill="#fafafa" stroke="#333333" stroke-width="1"/>`,
    `<text class="no-matches" x="${cx}" y="${cy - 6}" text-anchor="middle" font-size="22" fill="#444444">no matches</text>`,
    `<text x="${cx}" y="${cy + 20}" text-anchor="middle" font-size="13" fill="#666666">every entry count is 0 before and after balancing: nothing to plot</text>`,
    ...axisLabels(xLabel, yLabel),
    '</svg>',
  ].join('\n') + '\n';
}

const COMPARE_COLORS = ['#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/**
 * MetaCLIP's figure: entries with a non-zero count (before or after) sorted ascending by the count before
 * balancing (ties by id) on x; cumulative Σ count on y, uncapped, capped at t and at each compare
 * threshold, plus the curated set's counts accumulated in the same entry order.
 */
function cumulativeFigure(before: Float64Array, after: Float64Array, t: number, compare: number[], subtitle: string): string {
  const title = FIGURE_TITLES[FIGURE_CUMULATIVE];
  let n = 0;
  for (let e = 0; e < before.length; e++) if (before[e] > 0 || after[e] > 0) n++;
  const xLabel = `entry rank, ascending by count before balancing (only the ${groupDigits(n)} entries with count > 0)`;
  const yLabel = 'cumulative matches (Σ count)';
  if (n === 0) return noMatchesFigure(title, subtitle, 'entry rank (only entries with count > 0)', yLabel);

  const order = new Uint32Array(n);
  for (let e = 0, i = 0; e < before.length; e++) if (before[e] > 0 || after[e] > 0) order[i++] = e;
  order.sort((a, b) => before[a] - before[b] || a - b);

  let totalBefore = 0;
  let totalAfter = 0;
  for (let i = 0; i < n; i++) {
    totalBefore += before[order[i]];
    totalAfter += after[order[i]];
  }
  const xt = linearTicks(n, 6, true);
  const yt = linearTicks(Math.max(totalBefore, totalAfter), 6);
  const xs = linearScale(0, xt.end, PLOT.left + INSET, PLOT.right - INSET);
  const ys = linearScale(0, yt.end, PLOT.bottom - INSET, PLOT.top + INSET);

  const series: Array<{ style: SeriesStyle; value: (e: number) => number }> = [
    { style: { label: 'uncapped (before balancing)', color: '#1f77b4', width: 2, cls: 'uncapped' }, value: (e) => before[e] },
    { style: { label: `capped at t=${groupDigits(t)} (this set)`, color: '#d62728', width: 2, cls: 'capped-t' }, value: (e) => (before[e] < t ? before[e] : t) },
    ...compare.map((tau, i) => ({
      style: { label: `capped at t=${groupDigits(tau)}`, color: COMPARE_COLORS[i % COMPARE_COLORS.length], width: 1.5, dash: '7 4', cls: 'capped-compare' },
      value: (e: number) => (before[e] < tau ? before[e] : tau),
    })),
    { style: { label: 'after balancing (curated set)', color: '#2ca02c', width: 2.5, dash: '2 3', cls: 'after' }, value: (e) => after[e] },
  ];

  const lines: string[] = [];
  for (const s of series) {
    const ds = new Downsampler(PLOT.left, PLOT.right - PLOT.left);
    let cum = 0;
    ds.push(xs(0), ys(0));
    for (let i = 0; i < n; i++) {
      cum += s.value(order[i]);
      ds.push(xs(i + 1), ys(cum));
    }
    lines.push(polyline(ds.points(), s.style));
  }

  return [
    ...header(title, subtitle),
    ...axes(xt.ticks, xs, yt.ticks, ys),
    '<g class="lines">',
    ...lines,
    '</g>',
    ...legend(series.map((s) => s.style), 'top-left'),
    ...axisLabels(xLabel, yLabel),
    '</svg>',
  ].join('\n') + '\n';
}

/** Non-zero counts sorted descending (rank 1 = most matched entry). */
function descending(counts: Float64Array): Float64Array {
  let n = 0;
  for (let e = 0; e < counts.length; e++) if (counts[e] > 0) n++;
  const out = new Float64Array(n);
  for (let e = 0, i = 0; e < counts.length; e++) if (counts[e] > 0) out[i++] = counts[e];
  return out.sort().reverse();
}

/** Count vs rank on log-log axes, before and after balancing, with a horizontal line at t. */
function rankFigure(before: Float64Array, after: Float64Array, t: number, subtitle: string): string {
  const title = FIGURE_TITLES[FIGURE_RANK];
  const xLabel = 'rank (1 = most matched entry; only entries with count > 0; log scale)';
  const yLabel = 'matches per entry (count, log scale)';
  const b = descending(before);
  const a = descending(after);
  if (b.length === 0 && a.length === 0) return noMatchesFigure(title, subtitle, xLabel, yLabel);

  const maxRank = Math.max(b.length, a.length);
  const maxCount = Math.max(b[0] ?? 0, a[0] ?? 0, t);
  const minCount = Math.min(b.length ? b[b.length - 1] : Infinity, a.length ? a[a.length - 1] : Infinity, t);
  const xt = logTicks(1, maxRank);
  const yt = logTicks(minCount, maxCount);
  const xs = logScale(xt.domain[0], xt.domain[1], PLOT.left + INSET, PLOT.right - INSET);
  const ys = logScale(yt.domain[0], yt.domain[1], PLOT.bottom - INSET, PLOT.top + INSET);

  const styles: SeriesStyle[] = [
    { label: `before balancing (${groupDigits(b.length)} entries)`, color: '#1f77b4', width: 2, cls: 'before' },
    { label: `after balancing (${groupDigits(a.length)} entries)`, color: '#2ca02c', width: 2, cls: 'after' },
  ];
  const lines: string[] = [];
  [b, a].forEach((values, i) => {
    if (values.length === 0) return;
    const ds = new Downsampler(PLOT.left, PLOT.right - PLOT.left);
    let prev = NaN;
    let y = NaN;
    for (let r = 0; r < values.length; r++) {
      if (values[r] !== prev) y = ys((prev = values[r])); // long runs of equal counts in the tail
      ds.push(xs(r + 1), y);
    }
    lines.push(polyline(ds.points(), styles[i]));
  });
  const tStyle: SeriesStyle = { label: `t = ${groupDigits(t)}`, color: '#d62728', width: 1.5, dash: '6 4', cls: 'threshold' };
  const ty = f1(ys(t));
  const tLine = `<line class="threshold" data-value="${t}" x1="${PLOT.left}" y1="${ty}" x2="${PLOT.right}" y2="${ty}" stroke="${tStyle.color}" stroke-width="${tStyle.width}" stroke-dasharray="${tStyle.dash}"/>`;

  return [
    ...header(title, subtitle),
    ...axes(xt.ticks, xs, yt.ticks, ys),
    tLine,
    '<g class="lines">',
    ...lines,
    '</g>',
    ...legend([...styles.filter((_, i) => [b, a][i].length > 0), tStyle], 'top-right'),
    ...axisLabels(xLabel, yLabel),
    '</svg>',
  ].join('\n') + '\n';
}
