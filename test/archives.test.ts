/**
 * Every file under ../shared/data/web-archives: real archives extract; malformed ones extract what is
 * recoverable or fail with a classified CorruptInputError — never hang, never crash.
 * Needs ../shared (skipped with a notice on a clone without it).
 */
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { WARCParser } from 'warcio';
import { CorruptInputError } from '../curation/errors';
import { extractCandidates, ShardExtractor } from '../curation/extract';
import { readWarcRecords } from '../curation/warc';

const ARCHIVES = path.resolve(__dirname, '..', '..', 'shared', 'data', 'web-archives');
const present = existsSync(ARCHIVES);
if (!present) console.warn(`skipping archive tests: ${ARCHIVES} not found (tests that need ../shared skip on a bare clone)`);

function files(sub: string): string[] {
  const dir = path.join(ARCHIVES, sub);
  return present && existsSync(dir) ? readdirSync(dir).sort().map((f) => path.join(sub, f)) : [];
}

async function runExtraction(rel: string) {
  const ex = new ShardExtractor();
  let candidates = 0;
  let error: Error | null = null;
  try {
    for await (const c of extractCandidates(createReadStream(path.join(ARCHIVES, rel)), ex)) candidates += c.texts.length > 0 ? 1 : 0;
  } catch (err) {
    error = err as Error;
  }
  return { candidates, error, stats: ex.stats };
}

async function warcioRecordCount(rel: string): Promise<number | null> {
  const quiet = jest.spyOn(console, 'warn').mockImplementation(() => undefined); // warcio warns about lenient input
  try {
    let n = 0;
    for await (const rec of new WARCParser(createReadStream(path.join(ARCHIVES, rel)))) {
      await rec.readFully(false);
      n++;
    }
    return n;
  } catch {
    return null;
  } finally {
    quiet.mockRestore();
  }
}

const d = present ? describe : describe.skip;

d('real archives (cc/, web/)', () => {
  test.each([...files('cc'), ...files('web')].filter((f) => /\.(warc|wat|wet)(\.gz)?$/.test(f)))('%s', async (rel) => {
    const { error, stats } = await runExtraction(rel);
    expect(error).toBeNull();
    // Our reader sees exactly the records warcio (an independent implementation) sees.
    const expected = await warcioRecordCount(rel);
    expect(expected).not.toBeNull();
    expect(stats.records).toBe(expected);
  });

  test('known content: the CC commoncrawl.org capture yields its alt texts', async () => {
    const ex = new ShardExtractor();
    const urls: string[] = [];
    for await (const c of extractCandidates(createReadStream(path.join(ARCHIVES, 'cc/jwarc__cc.warc.gz')), ex)) urls.push(c.url);
    expect(urls).toContain('https://commoncrawl.org/wp-content/uploads/2016/03/box-1.png');
    expect(urls.length).toBe(6);
  });

  test('WAT: the 2014 CC WAT yields its 4 IMG@/src links with alt', async () => {
    const ex = new ShardExtractor();
    const got = [];
    for await (const c of extractCandidates(createReadStream(path.join(ARCHIVES, 'cc/eugeneware-warc__CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wat')), ex)) got.push(c);
    expect(ex.stats.imgLinks).toBe(4);
    expect(got.flatMap((c) => c.texts.map((t) => t[0]))).toEqual(['alt', 'alt', 'alt', 'alt']);
  });
});

d('edge and malformed archives (edge/)', () => {
  test.each(files('edge'))('%s: extracts or fails with a classified error, within bounds', async (rel) => {
    const { error } = await runExtraction(rel);
    if (error) {
      expect(error).toBeInstanceOf(CorruptInputError);
      expect(error.message).toMatch(/^(gzip|not-warc|bad-header|truncated|garbage): /);
    }
  }, 20_000);

  test('a truncated gzip member (clipped.warc.gz) is reported as gzip corruption', async () => {
    const { error } = await runExtraction('edge/resiliparse__clipped.warc.gz');
    expect(error).toBeInstanceOf(CorruptInputError);
  });

  test('a whole-file gzip WARC is read like a per-record one', async () => {
    let n = 0;
    for await (const _ of readWarcRecords(createReadStream(path.join(ARCHIVES, 'edge/warcio__example-bad-non-chunked.warc.gz')))) n++;
    expect(n).toBe(6);
  });
});
