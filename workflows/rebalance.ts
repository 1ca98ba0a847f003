/**
 * Re-running only the rebalance, and the size planner, on the stored outputs of an earlier run. They read
 * the run's balance input (deduped, pass-1 balanced and — once images exist — downloaded, image-deduped
 * pairs) and never fetch, parse, match or download anything: the only activities they schedule are
 * loadBalanceInput, planBucket, describeCounts, writePlan, balanceBucket and finalizeCuratedSet.
 */
import { defineQuery, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo, ApplicationFailure } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { CuratedSetSummary, PlanResult } from '../activities/types';
import { balanceSet, planPool, type Fanout } from './balance-set';
import { IO_OPTIONS } from './activity-options';
import { PHASE, RUN_ID, SOURCE_RUN_ID } from './search-attributes';

const io = proxyActivities<typeof activities>(IO_OPTIONS);

export interface RebalanceRequest {
  outRoot: string;
  /** The run whose stored pool is rebalanced. */
  runId: string;
  /** Id of this rebalance (search attribute CurationRunId; the source run is CurationSourceRunId). */
  rebalanceId: string;
  t?: number;
  targetSize?: number;
  seed: string;
  oneTextPerImage: boolean;
  maxConcurrent: number;
}

export type RebalancePhase = 'loading' | 'planning' | 'balancing' | 'datacard' | 'done';

export interface RebalanceProgress {
  rebalanceId: string;
  sourceRunId: string;
  phase: RebalancePhase;
  t?: number;
  targetSize?: number;
  plan?: PlanResult;
  buckets: number;
  bucketsDone: number;
  selected: number;
  curated?: CuratedSetSummary;
}

export const rebalanceProgressQuery = defineQuery<RebalanceProgress>('progress');

export async function rebalance(req: RebalanceRequest): Promise<RebalanceProgress> {
  if ((req.t === undefined) === (req.targetSize === undefined)) {
    throw ApplicationFailure.nonRetryable('rebalance needs exactly one of t or targetSize', 'ConfigError');
  }
  const progress: RebalanceProgress = {
    rebalanceId: req.rebalanceId, sourceRunId: req.runId, phase: 'loading', t: req.t, targetSize: req.targetSize, buckets: 0, bucketsDone: 0, selected: 0,
  };
  setHandler(rebalanceProgressQuery, () => progress);
  const setPhase = (phase: RebalancePhase) => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: PHASE, value: phase }]);
  };
  upsertSearchAttributes([{ key: RUN_ID, value: req.rebalanceId }, { key: SOURCE_RUN_ID, value: req.runId }]);
  setPhase('loading');
  const bi = await io.loadBalanceInput({ outRoot: req.outRoot, runId: req.runId });
  progress.buckets = bi.buckets;
  const fan: Fanout = { idPrefix: req.rebalanceId, childWindow: req.maxConcurrent, concurrency: 4 };

  let t = req.t;
  let tSource: Parameters<typeof balanceSet>[1]['tSource'] = { kind: 'given' };
  if (req.targetSize !== undefined) {
    setPhase('planning');
    const plan = await planPool(bi, { outRoot: req.outRoot, ts: [], targetSize: req.targetSize, oneTextPerImage: req.oneTextPerImage, seed: req.seed, planId: req.rebalanceId }, fan);
    progress.plan = plan;
    if (!plan.target || plan.target.t === null) {
      throw ApplicationFailure.nonRetryable(`cannot reach ${req.targetSize} pairs: ${plan.target?.note ?? 'no plan'}`, 'TargetUnreachable');
    }
    t = plan.target.t;
    tSource = { kind: 'target', targetSize: req.targetSize, plannedPairs: plan.target.expectedPairs ?? 0 };
  }
  progress.t = t;
  setPhase('balancing');
  progress.curated = await balanceSet(bi, {
    outRoot: req.outRoot, t: t!, seed: req.seed, oneTextPerImage: req.oneTextPerImage, tSource, workflowId: workflowInfo().workflowId,
  }, fan, (totals) => {
    progress.bucketsDone = totals.buckets;
    progress.selected = totals.selected;
    setPhase('datacard');
  });
  progress.selected = progress.curated.selected;
  setPhase('done');
  return progress;
}

export interface PlanWorkflowRequest {
  outRoot: string;
  runId: string;
  planId: string;
  ts: number[];
  targetSize?: number;
  seed: string;
  oneTextPerImage: boolean;
  maxConcurrent: number;
}

/** `curate plan`: the planner as its own (short) workflow, visible in the UI beside its run. */
export async function plan(req: PlanWorkflowRequest): Promise<PlanResult> {
  upsertSearchAttributes([{ key: RUN_ID, value: req.planId }, { key: SOURCE_RUN_ID, value: req.runId }, { key: PHASE, value: 'planning' }]);
  const bi = await io.loadBalanceInput({ outRoot: req.outRoot, runId: req.runId });
  const result = await planPool(bi, {
    outRoot: req.outRoot, ts: req.ts, targetSize: req.targetSize, oneTextPerImage: req.oneTextPerImage, seed: req.seed, planId: req.planId,
  }, { idPrefix: req.planId, childWindow: req.maxConcurrent, concurrency: 4 });
  upsertSearchAttributes([{ key: PHASE, value: 'done' }]);
  return result;
}
