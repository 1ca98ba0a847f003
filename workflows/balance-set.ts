/**
 * The final balance of a stored pool into a curated set, and the size planner. Shared by the curation
 * workflow (its pass 2) and the rebalance/plan workflows, so a rebalance with the run's own t and seed
 * reproduces the run's curated set exactly.
 */
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { BalanceInput, BalanceTotals, CuratedSetSummary, PlanResult } from '../activities/types';
import { curatedSetId, layout } from '../curation/layout';
import { SUB_UNIT_THRESHOLDS, addPlanRows, bracketTarget, fineGrid, interpolateT, logGrid, type PlanRow } from '../curation/planner';
import { addBalanceTotals, emptyBalanceTotals, runBucketPhase } from './buckets';
import { IO_OPTIONS } from './activity-options';

const io = proxyActivities<typeof activities>(IO_OPTIONS);

export interface Fanout {
  /** Prefix of child workflow ids (unique per owning workflow). */
  idPrefix: string;
  childWindow: number;
  concurrency: number;
  heartbeatTimeoutSeconds?: number;
}

/** Expected size, matches and head/tail per t over a pool, one pass over its buckets. */
async function planRows(outRoot: string, bi: BalanceInput, ts: number[], oneTextPerImage: boolean, seed: string, fan: Fanout, label: string): Promise<PlanRow[]> {
  const results = await runBucketPhase({
    idPrefix: `${fan.idPrefix}/${label}`, outRoot, runId: bi.runId, inputs: bi.parts, buckets: bi.buckets,
    spec: { op: 'plan', params: { countsKey: bi.counts.key, metadataEntries: bi.metadataEntries, ts, oneTextPerImage, seed } },
    childWindow: fan.childWindow, concurrency: fan.concurrency, heartbeatTimeoutSeconds: fan.heartbeatTimeoutSeconds,
    summary: `plan (${label}) over ${ts.length} thresholds`,
  });
  return results.reduce((acc, r) => addPlanRows(acc, r.plan ?? []), [] as PlanRow[]);
}

export interface PlanRequest {
  outRoot: string;
  ts: number[];
  targetSize?: number;
  oneTextPerImage: boolean;
  seed: string;
  planId: string;
}

/**
 * The planner: expected sizes for the requested t (plus a coarse log grid when a target is given), and for a
 * target size the t that reaches it: bracket on the coarse grid, then a fine integer grid inside the bracket.
 */
export async function planPool(bi: BalanceInput, req: PlanRequest, fan: Fanout): Promise<PlanResult> {
  const coarse = req.targetSize !== undefined ? [...SUB_UNIT_THRESHOLDS, ...logGrid(1, bi.counts.maxCount + 1, 40)] : [];
  const ts = [...new Set([...req.ts, ...coarse])].sort((a, b) => a - b);
  let rows = ts.length ? await planRows(req.outRoot, bi, ts, req.oneTextPerImage, req.seed, fan, 'grid') : [];
  let target: PlanResult['target'];
  if (req.targetSize !== undefined) {
    const b = bracketTarget(rows, req.targetSize);
    if (b.kind === 'exact') {
      target = { size: req.targetSize, t: b.t, expectedPairs: rows.find((r) => r.t === b.t)!.expectedPairs, note: 'exact' };
    } else if (b.kind === 'below') {
      target = { size: req.targetSize, t: null, expectedPairs: null, note: `below the smallest planned size (${b.min.expectedPairs.toFixed(1)} pairs at t=${b.min.t})` };
    } else if (b.kind === 'above') {
      target = { size: req.targetSize, t: null, expectedPairs: null, note: `above the pool: even keeping everything gives ${b.max.expectedPairs.toFixed(0)} pairs` };
    } else {
      const fine = fineGrid(b.lo.t, b.hi.t, 40).filter((t) => !ts.includes(t));
      const fineRows = fine.length ? await planRows(req.outRoot, bi, fine, req.oneTextPerImage, req.seed, fan, 'refine') : [];
      rows = [...rows, ...fineRows].sort((x, y) => x.t - y.t);
      const inner = bracketTarget(rows, req.targetSize);
      const t = inner.kind === 'exact' ? inner.t : inner.kind === 'between' ? interpolateT(inner.lo, inner.hi, req.targetSize) : b.hi.t;
      let at = rows.find((r) => r.t === t);
      if (!at) {
        // The interpolated t was not on a grid: one more pass gives its exact expected size.
        const [row] = await planRows(req.outRoot, bi, [t], req.oneTextPerImage, req.seed, fan, 'solve');
        rows = [...rows, row].sort((x, y) => x.t - y.t);
        at = row;
      }
      target = { size: req.targetSize, t, expectedPairs: at.expectedPairs, note: 'solved: coarse log grid, fine grid, interpolation' };
    }
  }
  const described = await io.describeCounts({ outRoot: req.outRoot, runId: bi.runId, countsKey: bi.counts.key, metadataEntries: bi.metadataEntries, ts: rows.map((r) => r.t) });
  const table = rows.map((r, q) => {
    const h = described.headTail[q];
    return { ...r, headEntries: h.headEntries, tailEntries: h.tailEntries, headMatches: h.headMatches, tailMatches: h.tailMatches, tailShare: h.tailShare };
  });
  return io.writePlan({
    outRoot: req.outRoot, runId: bi.runId,
    plan: { runId: bi.runId, planId: req.planId, stage: bi.stage, oneTextPerImage: req.oneTextPerImage, seed: req.seed, pairs: bi.pairs, rows: table, target },
  });
}

export interface BalanceSetRequest {
  outRoot: string;
  t: number;
  seed: string;
  oneTextPerImage: boolean;
  tSource: { kind: 'given' } | { kind: 'target'; targetSize: number; plannedPairs: number };
  workflowId: string;
}

/** Pass 2 (the final balance) of a stored pool into curated/<setId>/, then its datacard and manifest. */
export async function balanceSet(bi: BalanceInput, req: BalanceSetRequest, fan: Fanout, onProgress?: (p: BalanceTotals & { buckets: number }) => void): Promise<CuratedSetSummary> {
  const setId = curatedSetId(req.t, req.seed, req.oneTextPerImage);
  const results = await runBucketPhase({
    idPrefix: `${fan.idPrefix}/final`, outRoot: req.outRoot, runId: bi.runId, inputs: bi.parts, buckets: bi.buckets,
    spec: {
      op: 'balance',
      params: {
        countsKey: bi.counts.key, metadataEntries: bi.metadataEntries, t: req.t, seed: req.seed, stream: 'final',
        oneTextPerImage: req.oneTextPerImage, outDir: layout.curatedDir(bi.runId, setId),
      },
    },
    childWindow: fan.childWindow, concurrency: fan.concurrency, heartbeatTimeoutSeconds: fan.heartbeatTimeoutSeconds,
    summary: `final balance t=${req.t} seed=${req.seed}`,
  });
  const totals = results.reduce((s, r) => addBalanceTotals(s, r.balance ?? emptyBalanceTotals()), emptyBalanceTotals());
  onProgress?.({ ...totals, buckets: bi.buckets });
  return io.finalizeCuratedSet({
    outRoot: req.outRoot, runId: bi.runId, setId, t: req.t, seed: req.seed, oneTextPerImage: req.oneTextPerImage,
    tSource: req.tSource, balanceInput: bi, workflowId: req.workflowId,
  });
}
