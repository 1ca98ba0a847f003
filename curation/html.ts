/**
 * `<img>` extraction from raw HTML, like a browser (HTML5) parser sees it: case-insensitive tags,
 * unquoted attributes, entities decoded, first of duplicate attributes wins, nothing inside
 * <script>/<style>/comments, `<image>` treated as `<img>` outside SVG/MathML.
 */
import { Parser } from 'htmlparser2';

export interface ImgTag {
  /** Attributes in document order (names lower-cased). */
  attrs: Array<[string, string]>;
}

const WANTED = new Set(['src', 'alt', 'title', 'data-image-title']);

/** Calls `onImg` for every img element in document order. */
export function scanImgTags(html: string, onImg: (img: ImgTag) => void): void {
  let foreignDepth = 0;
  const parser = new Parser(
    {
      onopentag(name, attribs) {
        if (name === 'svg' || name === 'math') foreignDepth++;
        if (name === 'img' || (name === 'image' && foreignDepth === 0)) {
          const attrs: Array<[string, string]> = [];
          for (const key in attribs) if (WANTED.has(key)) attrs.push([key, attribs[key]]);
          onImg({ attrs });
        }
      },
      onclosetag(name) {
        if ((name === 'svg' || name === 'math') && foreignDepth > 0) foreignDepth--;
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(html);
  parser.end();
}

const BOM_UTF8 = [0xef, 0xbb, 0xbf];
const META_CHARSET = /<meta[^>]*?charset\s*=\s*["']?\s*([^\s"'\/>;]+)/i;

/** The page's character encoding: BOM, else a <meta> charset in the first 1024 bytes, else UTF-8. */
export function sniffCharset(body: Buffer): string {
  if (body[0] === BOM_UTF8[0] && body[1] === BOM_UTF8[1] && body[2] === BOM_UTF8[2]) return 'utf-8';
  if ((body[0] === 0xfe && body[1] === 0xff) || (body[0] === 0xff && body[1] === 0xfe)) return body[0] === 0xfe ? 'utf-16be' : 'utf-16le';
  const m = META_CHARSET.exec(body.subarray(0, 1024).toString('latin1'));
  if (!m) return 'utf-8';
  const label = m[1].toLowerCase();
  if (label.startsWith('utf-16')) return 'utf-8'; // HTML: a meta utf-16 declaration means utf-8
  try {
    new TextDecoder(label);
    return label;
  } catch {
    return 'utf-8';
  }
}

/** Decodes a page, dropping undecodable bytes (as the reference's `errors="ignore"` does). */
export function decodeHtml(body: Buffer): string {
  const charset = sniffCharset(body);
  try {
    return new TextDecoder(charset, { fatal: true, ignoreBOM: false }).decode(body);
  } catch {
    return new TextDecoder(charset, { fatal: false }).decode(body).replace(/\uFFFD/g, '');
  }
}
