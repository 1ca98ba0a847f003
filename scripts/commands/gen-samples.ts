import { ConfigError } from '../../curation/errors';
import type { Command } from '../args';
import {
  DEFAULT_IMAGE_BASE,
  DEFAULT_PAGES,
  DEFAULT_SEED,
  DEFAULT_SHARDS,
  generateSamples,
  parseImageBase,
  type SampleFormat,
} from '../samples';

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

export const command: Command = {
  name: 'gen-samples',
  summary: 'Write deterministic Common Crawl-like sample shards (.warc.gz + .warc.wat.gz) for demos and tests',
  usage: 'gen-samples --out DIR [--shards N] [--pages N] [--seed S] [--image-base URL] [--formats warc,wat]',
  flags: {
    out: { type: 'string', help: 'directory to write the shards into (created if missing)' },
    shards: { type: 'number', help: 'number of shards', default: DEFAULT_SHARDS },
    pages: { type: 'number', help: 'fetched pages per shard', default: DEFAULT_PAGES },
    seed: { type: 'string', help: 'PRNG seed: the same seed writes byte-identical files', default: DEFAULT_SEED },
    'image-base': { type: 'string', help: 'absolute URL every page and image lives under', default: DEFAULT_IMAGE_BASE },
    formats: { type: 'list', help: 'which files to write per shard', default: 'warc,wat' },
  },
  async run({ positional, flags }) {
    if (positional.length > 0) throw new ConfigError(`gen-samples takes no positional arguments (got ${positional.join(' ')}); use --out DIR`);
    if (typeof flags.out !== 'string' || flags.out === '') throw new ConfigError("gen-samples needs --out DIR. See 'npx curate gen-samples --help'.");
    const shards = flags.shards as number;
    const pages = flags.pages as number;
    if (!Number.isInteger(shards) || shards < 1) throw new ConfigError(`--shards must be a positive integer, got ${shards}`);
    if (!Number.isInteger(pages) || pages < 1) throw new ConfigError(`--pages must be a positive integer, got ${pages}`);
    const formats = flags.formats as string[];
    for (const f of formats) if (f !== 'warc' && f !== 'wat') throw new ConfigError(`--formats takes warc and/or wat, got ${JSON.stringify(f)}`);
    if (formats.length === 0) throw new ConfigError('--formats needs at least one of warc, wat');
    const imageBase = String(flags['image-base']);
    try {
      parseImageBase(imageBase);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    const result = await generateSamples({
      outDir: flags.out,
      shards,
      pages,
      seed: String(flags.seed),
      imageBase,
      formats: formats as SampleFormat[],
    });
    let bytes = 0;
    let candidates = 0;
    for (const d of result.details) {
      const texts = d.expected.reduce((n, c) => n + c.texts.length, 0);
      bytes += d.bytes;
      candidates += d.expected.length;
      console.log(`${d.path}  ${kib(d.bytes)}  ${d.records} records, ${d.pages} pages, ${d.imgTags} <img>, ${d.expected.length} candidates / ${texts} texts (language filter off)`);
    }
    console.log(`wrote ${result.files.length} files (${kib(bytes)}), ${candidates} expected candidates; images under ${imageBase}`);
  },
};
