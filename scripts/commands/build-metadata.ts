import { ConfigError } from '../../curation/errors';
import { buildWordnetMetadata, defaultMetadataPath, metadataHash, writeMetadataFile } from '../../curation/metadata';
import type { Command } from '../args';

export const command: Command = {
  name: 'build-metadata',
  summary: "Build the WordNet stand-in metadata (NLTK synset names + 0..99) used when no --metadata is given",
  usage: 'build-metadata [--out PATH]',
  flags: {
    out: { type: 'string', help: 'where to write the JSON array of entries (default: <repo>/.data/metadata/wordnet.json)' },
  },
  async run({ positional, flags }) {
    if (positional.length > 0) throw new ConfigError(`build-metadata takes no positional arguments (got ${positional.join(' ')}); use --out PATH`);
    const out = typeof flags.out === 'string' ? flags.out : defaultMetadataPath();
    const entries = buildWordnetMetadata();
    writeMetadataFile(out, entries);
    console.log(`wrote ${entries.length} metadata entries to ${out}`);
    console.log(`sha256 ${metadataHash(entries)}`);
    console.log("(a stand-in for MetaCLIP's official 500k-entry metadata.json; pass --metadata metadata.json to use that one)");
  },
};
