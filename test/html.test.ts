/**
 * The <img> scanner against htmlparser2 (a general, well-tested HTML parser) as an oracle: on hand-written
 * tricky markup and on every HTML page of the shared real archives and of the generated samples.
 */
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Parser } from 'htmlparser2';
import { decodeHtml, scanImgTags } from '../curation/html';
import { parseHttpResponse } from '../curation/http';
import { readWarcRecords } from '../curation/warc';
import { generateSamples } from '../scripts/samples';

const WANTED = new Set(['src', 'alt', 'title', 'data-image-title']);

function viaHtmlparser2(html: string): Array<Array<[string, string]>> {
  const out: Array<Array<[string, string]>> = [];
  let foreign = 0;
  const p = new Parser({
    onopentag(name, attribs) {
      if (name === 'svg' || name === 'math') foreign++;
      if (name === 'img' || (name === 'image' && foreign === 0)) out.push(Object.entries(attribs).filter(([k]) => WANTED.has(k)));
    },
    onclosetag(name) {
      if ((name === 'svg' || name === 'math') && foreign > 0) foreign--;
    },
  }, { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true });
  p.write(html);
  p.end();
  return out;
}

function viaScanner(html: string): Array<Array<[string, string]>> {
  const out: Array<Array<[string, string]>> = [];
  scanImgTags(html, (img) => out.push(img.attrs));
  return out;
}

describe('scanImgTags', () => {
  test.each([
    ['<IMG SRC=a.png ALT="x">', [[['src', 'a.png'], ['alt', 'x']]]],
    ['<img alt=\'a > b\' src="c.png">', [[['alt', 'a > b'], ['src', 'c.png']]]],
    ['<img src=a.png alt=x/>', [[['src', 'a.png'], ['alt', 'x/']]]],
    ['<img src="a.png" alt>', [[['src', 'a.png'], ['alt', '']]]],
    ['<img src="a" src="b" ALT="1" alt="2">', [[['src', 'a'], ['alt', '1']]]],
    ['<img alt="caf&eacute; &amp; &copy=x &notit; &#x41;&#66;">', [[['alt', 'café & &copy=x &notit; AB']]]],
    ['<script>"<img src=no>"</script><img src=yes>', [[['src', 'yes']]]],
    ['<SCRIPT type=x>a</script ><img src=yes>', [[['src', 'yes']]]],
    ['<!-- <img src=no> --><img src=yes>', [[['src', 'yes']]]],
    ['<!--> <img src=yes>', [[['src', 'yes']]]],
    ['<title><img src=no></title><textarea><img src=no></textarea><img src=yes>', [[['src', 'yes']]]],
    ['<svg><image src=no></image><title><img src=in-svg-title></title></svg><image src=yes>', [[['src', 'in-svg-title']], [['src', 'yes']]]],
    ['<a title="x>y"><img src=yes></a>', [[['src', 'yes']]]],
    ['a < b <img src=yes> c <3', [[['src', 'yes']]]],
    ['<img\nsrc="multi\nline"\nalt="a\r\nb">', [[['src', 'multi\nline'], ['alt', 'a\r\nb']]]],
    ['<!doctype html><?xml x?><![CDATA[<img src=no>]]><img src=yes>', [[['src', 'yes']]]], // bogus comment ends at the first >
    ['<img src="unterminated', []], // eof-in-tag: HTML5 drops the tag (issue 11)
    ['<img src=ok alt=fine><img src=b.png alt="left open', [[['src', 'ok'], ['alt', 'fine']]]],
    ['<img src=b.png', []],
    ['<img src=b.png /', []],
    ['<img src=b.png alt=', []],
    ['<img', []],
    ['<img src=b.png>', [[['src', 'b.png']]]],
  ])('%j', (html, expected) => {
    expect(viaScanner(html)).toEqual(expected);
  });

  async function pagesOf(file: string): Promise<string[]> {
    const pages: string[] = [];
    for await (const rec of readWarcRecords(createReadStream(file))) {
      if (rec.type !== 'response' || !rec.block) continue;
      const http = parseHttpResponse(rec.block, 1 << 26);
      if (http) pages.push(decodeHtml(http.body));
    }
    return pages;
  }

  const archives = path.resolve(__dirname, '..', '..', 'shared', 'data', 'web-archives');
  const realFiles = existsSync(archives)
    ? ['cc', 'web'].flatMap((d) => readdirSync(path.join(archives, d)).filter((f) => /\.warc(\.gz)?$/.test(f)).map((f) => path.join(archives, d, f)))
    : [];
  if (realFiles.length === 0) console.warn('../shared not found: the scanner is compared with htmlparser2 on generated pages only');

  test('agrees with htmlparser2 on every page of the real archives and the generated samples', async () => {
    const samples = await generateSamples({ outDir: mkdtempSync(path.join(tmpdir(), 'html-')), shards: 2, seed: 11, formats: ['warc'] });
    let pages = 0;
    let imgs = 0;
    for (const file of [...realFiles, ...samples.files]) {
      for (const html of await pagesOf(file)) {
        const ours = viaScanner(html);
        expect({ file, imgs: ours }).toEqual({ file, imgs: viaHtmlparser2(html) });
        pages++;
        imgs += ours.length;
      }
    }
    expect(pages).toBeGreaterThan(50);
    expect(imgs).toBeGreaterThan(1000);
  });
});
