/**
 * One shard, end to end in memory: WAT/WARC bytes → candidates → matched (uuid, text) rows + entry counts.
 * Rows keep every language (with its detected language) so a later run can change the language policy
 * without re-parsing; counts only count texts in the kept languages.
 */
import { addCounts, type EntryCounts } from './balance';
import { extractCandidateBatches, type ExtractStats, ShardExtractor } from './extract';
import type { Matcher } from './matcher';

export interface CandidateRow {
  uuid: string;
  url: string;
  /** The text's attribute: alt, title or data-image-title. */
  key: string;
  text: string;
  lang: string | null;
  entry_ids: number[];
}

export interface ShardMatchStats extends ExtractStats {
  matchedTexts: number;
  unmatchedTexts: number;
  /** Matched texts in the kept languages (the ones counted for balancing). */
  countedTexts: number;
  /** (text, entry) matches counted. */
  matches: number;
}

export interface ShardOutput {
  rows: CandidateRow[];
  counts: EntryCounts;
  stats: ShardMatchStats;
}

export interface ShardProgress {
  records: number;
  rows: number;
}

export async function matchShard(
  input: AsyncIterable<Buffer>,
  extractor: ShardExtractor,
  matcher: Matcher,
  keepLanguages: ReadonlySet<string> | null,
  onProgress?: (p: ShardProgress) => void,
): Promise<ShardOutput> {
  const rows: CandidateRow[] = [];
  const counts: EntryCounts = new Map();
  let matchedTexts = 0;
  let unmatchedTexts = 0;
  let countedTexts = 0;
  let matches = 0;
  let lastReport = 0;
  for await (const batch of extractCandidateBatches(input, extractor)) {
    for (const cand of batch) {
      for (let i = 0; i < cand.texts.length; i++) {
        const [key, text] = cand.texts[i];
        const ids = matcher.match(text);
        if (ids.length === 0) {
          unmatchedTexts++;
          continue;
        }
        matchedTexts++;
        const lang = cand.langs[i];
        rows.push({ uuid: cand.uuid, url: cand.url, key, text, lang, entry_ids: ids });
        if (keepLanguages === null || (lang !== null && keepLanguages.has(lang))) {
          countedTexts++;
          matches += ids.length;
          addCounts(counts, ids);
        }
      }
    }
    if (onProgress && extractor.stats.records - lastReport >= 1000) {
      lastReport = extractor.stats.records;
      onProgress({ records: extractor.stats.records, rows: rows.length });
    }
  }
  onProgress?.({ records: extractor.stats.records, rows: rows.length });
  return { rows, counts, stats: { ...extractor.stats, matchedTexts, unmatchedTexts, countedTexts, matches } };
}
