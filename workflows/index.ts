export { curation, shardBatch, progressQuery } from './curation';
export type { CurationProgress, Phase } from './curation';
export { bucketTasks } from './buckets';
export { rebalance, plan, rebalanceProgressQuery } from './rebalance';
export type { RebalanceProgress, RebalanceRequest, PlanWorkflowRequest } from './rebalance';
export { retryFailed } from './images';
export type { RetryFailedRequest, RetryFailedResult } from './images';
