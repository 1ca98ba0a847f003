import { createInterface } from 'node:readline';
import { ConfigError } from '../../curation/errors';
import { Matcher } from '../../curation/matcher';
import { loadMetadataFile } from '../../curation/metadata';
import type { Command } from '../args';
import { LineWriter } from '../output';

export const command: Command = {
  name: 'match',
  summary: 'Add "entry_ids" (case-sensitive substring matches, spec §2) to each JSONL object read on stdin',
  usage: 'match --metadata M.json < in.jsonl > out.jsonl',
  flags: {
    metadata: { type: 'string', help: 'metadata JSON: an array of strings (e.g. MetaCLIP metadata.json)' },
  },
  async run({ flags }) {
    if (typeof flags.metadata !== 'string') throw new ConfigError('match needs --metadata M.json (a JSON array of strings)');
    const matcher = new Matcher(loadMetadataFile(flags.metadata));
    const out = new LineWriter();
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line);
      } catch (err) {
        throw new ConfigError(`stdin line ${lineNo}: not a JSON object (${(err as Error).message})`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || typeof obj.text !== 'string') {
        throw new ConfigError(`stdin line ${lineNo}: expected a JSON object with a string "text" field`);
      }
      obj.entry_ids = matcher.match(obj.text);
      await out.line(JSON.stringify(obj));
      if (out.isClosed) break;
    }
    await out.flush();
  },
};
