import { ShardExtractor, extractCandidates } from '../../curation/extract';
import { CorruptInputError, ConfigError } from '../../curation/errors';
import { sharedLanguageIdentifier } from '../../curation/lid';
import { stat } from 'node:fs/promises';
import { localPath, openInput } from '../../storage/sources';
import type { Command } from '../args';
import { LineWriter } from '../output';

export const command: Command = {
  name: 'extract',
  summary: 'Extract image-text candidates from one WAT/WARC file as JSONL on stdout (spec §1)',
  usage: 'extract FILE [--lid on|off] [--langs en]',
  flags: {
    lid: { type: 'string', help: 'language filter with fastText lid.176: on keeps only texts in --langs', default: 'on' },
    langs: { type: 'list', help: 'languages kept when --lid on', default: 'en' },
    stats: { type: 'boolean', help: 'print extraction statistics as JSON on stderr' },
  },
  async run({ positional, flags }) {
    if (positional.length !== 1) throw new ConfigError('extract takes exactly one FILE (a path, file://, https:// or s3:// URI)');
    const lidMode = String(flags.lid);
    if (lidMode !== 'on' && lidMode !== 'off') throw new ConfigError(`--lid must be on or off, got ${JSON.stringify(lidMode)}`);
    const file = positional[0];
    const local = localPath(file);
    if (local !== null) {
      // A directory opens fine and fails on the first read (a bare EISDIR): say what is wrong before starting.
      const st = await stat(local).catch((err: NodeJS.ErrnoException) => {
        throw new ConfigError(`cannot open ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
      });
      if (st.isDirectory()) throw new ConfigError(`${file} is a directory: extract reads one WAT/WARC file (run it once per file)`);
    }
    const langs = flags.langs as string[];
    const lid = lidMode === 'on' ? await sharedLanguageIdentifier() : null;
    const extractor = new ShardExtractor({ lid, keepLanguages: lid ? new Set(langs) : null });
    const out = new LineWriter();
    let failure: Error | null = null;
    try {
      for await (const c of extractCandidates(await openInput(file), extractor)) {
        await out.line(JSON.stringify(lid ? { uuid: c.uuid, url: c.url, texts: c.texts, langs: c.langs } : { uuid: c.uuid, url: c.url, texts: c.texts }));
        if (out.isClosed) break;
      }
    } catch (err) {
      if (!(err instanceof CorruptInputError)) throw err;
      failure = err;
    }
    await out.flush();
    if (flags.stats) process.stderr.write(JSON.stringify(extractor.stats) + '\n');
    const bad = extractor.stats.badRecords;
    if (bad > 0) {
      // Skipped records are not an error (the exit code stays 0), but they are named with their reasons.
      const reasons = Object.entries(extractor.stats.badRecordReasons).map(([r, n]) => `${r}: ${n}`).join(', ');
      process.stderr.write(`curate extract: ${file}: ${bad} bad record${bad === 1 ? '' : 's'} skipped (${reasons})\n`);
    }
    if (failure) {
      // What was recoverable is on stdout; the classified reason goes to stderr with a distinct exit code.
      process.stderr.write(`curate extract: ${file}: corrupt input, ${failure.message}\n`);
      process.exitCode = 3;
    }
  },
};
