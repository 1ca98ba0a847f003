/**
 * Workflow histories as replay fixtures: binary protobuf (`temporal.api.history.v1.History`), one file per
 * execution. Binary, not proto JSON: the SDK's JSON reader fails in this install (two protobufjs copies).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';

// scripts/ from the sources (jest), dist/scripts/ when built: the project root is the first with a package.json.
const ROOT = [path.resolve(__dirname, '..'), path.resolve(__dirname, '..', '..')].find((d) => existsSync(path.join(d, 'package.json')))!;
export const HISTORY_FIXTURES = path.join(ROOT, 'test', 'fixtures', 'histories');

type History = temporal.api.history.v1.IHistory;

export function writeHistoryFixture(dir: string, name: string, history: History): string {
  const file = path.join(dir, `${name}.history.pb`);
  writeFileSync(file, temporal.api.history.v1.History.encode(history).finish());
  return file;
}

export function readHistoryFixtures(dir: string): Array<{ name: string; workflowId: string; history: temporal.api.history.v1.History }> {
  return readdirSync(dir).filter((f) => f.endsWith('.history.pb')).sort().map((f) => ({
    name: f.replace(/\.history\.pb$/, ''),
    workflowId: f.replace(/\.history\.pb$/, ''),
    history: temporal.api.history.v1.History.decode(readFileSync(path.join(dir, f))),
  }));
}
