/** MetaCLIP metadata: a JSON array of strings; the entry id is the index in the array. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors';

/** Parses and validates metadata JSON (the official `metadata.json` form). */
export function parseMetadata(json: string, source = 'metadata'): string[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message}); expected a JSON array of strings like MetaCLIP's metadata.json`);
  }
  if (!Array.isArray(data)) throw new ConfigError(`${source}: expected a JSON array of strings, got ${data === null ? 'null' : typeof data}`);
  for (let i = 0; i < data.length; i++) {
    if (typeof data[i] !== 'string') throw new ConfigError(`${source}: entry ${i} is ${JSON.stringify(data[i])}, not a string`);
  }
  if (data.length === 0) throw new ConfigError(`${source}: the metadata is empty`);
  return data as string[];
}

export function loadMetadataFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read metadata ${path}: ${(err as Error).message}`);
  }
  return parseMetadata(text, path);
}

/** sha256 of the canonical JSON of the entries: identifies the metadata a run matched against. */
export function metadataHash(entries: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
}
