/** Custom search attributes, registered on the dev server by `curate server start` (see scripts/commands/server.ts). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const RUN_ID = defineSearchAttributeKey('CurationRunId', SearchAttributeType.KEYWORD);
export const PHASE = defineSearchAttributeKey('CurationPhase', SearchAttributeType.KEYWORD);
export const SHARDS_DONE = defineSearchAttributeKey('CurationShardsDone', SearchAttributeType.INT);
export const SHARDS_FAILED = defineSearchAttributeKey('CurationShardsFailed', SearchAttributeType.INT);
/** Set by rebalance and plan workflows: the run whose stored outputs they reuse. */
export const SOURCE_RUN_ID = defineSearchAttributeKey('CurationSourceRunId', SearchAttributeType.KEYWORD);

/** `--search-attribute Name=Type` arguments for `temporal server start-dev`. */
export const SEARCH_ATTRIBUTE_FLAGS: Array<[string, string]> = [
  [RUN_ID.name, 'Keyword'],
  [PHASE.name, 'Keyword'],
  [SHARDS_DONE.name, 'Int'],
  [SHARDS_FAILED.name, 'Int'],
  [SOURCE_RUN_ID.name, 'Keyword'],
];

export const TASK_QUEUES = {
  orchestration: 'curation-orchestration',
  cpu: 'curation-cpu',
  io: 'curation-io',
} as const;
