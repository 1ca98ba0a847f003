export { curation, shardBatch, progressQuery } from './curation';
export type { CurationProgress, Phase } from './curation';
