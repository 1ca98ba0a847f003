/** The Grafana dashboard of deploy/: its PromQL expressions and the metric names they use. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const DASHBOARD = path.resolve(__dirname, '..', '..', 'deploy', 'grafana', 'dashboards', 'curation.json');

export function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

/** Series names (curate_* and temporal_*) in PromQL expressions. */
export function metricNames(exprs: string[]): string[] {
  return [...new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:curate|temporal)_[a-z0-9_]+)/g)].map((m) => m[1])))];
}
