/**
 * Deterministic, Common Crawl–like sample shards for demos and tests.
 *
 * For each shard it writes what Common Crawl publishes for one segment file:
 * - `<name>.warc.gz`: one gzip member per record (as CC ships them): a `warcinfo` record, then per
 *   fetched page a `request`, a `response` (HTTP status line + headers + payload) and a `metadata`
 *   record. Payloads come stored in the ways real archives hold them: plain with Content-Length,
 *   decoded by the crawler with the original codings kept as `X-Crawler-Content-Encoding` /
 *   `X-Crawler-Transfer-Encoding` headers (what CC does since 2018), and, as older crawls kept them,
 *   still chunked and/or gzip-compressed. A few pages are ISO-8859-1, a few start with a BOM; a few
 *   responses are redirects, 404 pages with an image, or a PDF.
 * - `<name>.warc.wat.gz`: the WAT derived from that WARC: one `metadata` record per WARC record
 *   (`Content-Type: application/json`, one-line JSON `{"Container":…,"Envelope":…}`) whose
 *   `Envelope → Payload-Metadata → HTTP-Response-Metadata → HTML-Metadata → Links` lists the page's
 *   links in document order (`A@/href`, `IMG@/src` with `url`/`alt`/`title`, `IMG@/longdesc`,
 *   `INPUT@/src`), attribute values entity-decoded with whitespace kept, as CC's ia-web-commons
 *   writes them. One deviation: `data-image-title` is added to `IMG@/src` links when the tag has it
 *   (CC's extractor only emits alt and title; MetaCLIP's reads all three keys).
 *
 * Pages carry what the extractor has to get right: `<img>` with relative/absolute/protocol-relative/
 * query-only/fragment `src`, entities in attributes (&amp; &eacute; &#39; &quot; &nbsp; &#x…;), upper-
 * and mixed-case tags and attribute names, unquoted and single-quoted values, attributes spread over
 * several lines, duplicate attributes (the first wins), alt/title/data-image-title in every order and
 * combination, empty and whitespace-only alts, `<img>` without src, `src=""`, a `data:` placeholder,
 * an unresolvable `//[broken` reference, repeated images and texts within a page, a file and across
 * files, Dog/DOG/dog, keyword spam, texts in German, French, Spanish, Japanese, Chinese and Russian,
 * and `<img>` inside `<script>`, comments and escaped text (which must yield nothing: their URLs all
 * contain `never-extracted`).
 *
 * Every page lives under the image base (`--image-base`, default http://127.0.0.1:8777/img/) as
 * `<base><site host>/<section>/<slug>.html`, so every resolved image URL is under that base too
 * (except the `data:` placeholders), and a loopback server can answer for all of them.
 *
 * Determinism: all choices come from a seeded PRNG (xoshiro128**, seeded by SHA-256 of the seed), one
 * stream per shard, so the same seed gives byte-identical files (with the same Node/zlib), and shard i
 * does not depend on how many shards are generated. Nothing reads the clock.
 *
 * The generator also computes, independently of curation/extract.ts, the candidates the spec (§1) says
 * each file yields with the language filter off: `expected[path]`.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TextKey } from '../curation/extract';
import {
  CONTENT_LENGTH, gzipMember, headerLines, serializeRecord, sha1Base32, warcFieldsBlock, warcinfo, type WarcField, type WarcFieldSpec,
} from './warc-writer';

export const DEFAULT_IMAGE_BASE = 'http://127.0.0.1:8777/img/';
export const DEFAULT_SEED = 'metaclip';
export const DEFAULT_SHARDS = 2;
export const DEFAULT_PAGES = 40;
/** Every `<img>` hidden in a script, a comment or escaped text has this in its URL. */
export const NEVER_EXTRACTED = 'never-extracted';

export type SampleFormat = 'warc' | 'wat';

export interface SampleOptions {
  outDir: string;
  /** Number of shards (each is one .warc.gz and/or one .warc.wat.gz). */
  shards?: number;
  /** Fetched pages per shard (a few of them are redirects, 404s or PDFs). */
  pages?: number;
  seed?: string | number;
  /** Absolute http(s) URL every page and image lives under. */
  imageBase?: string;
  formats?: readonly SampleFormat[];
}

/** A candidate as spec §1 defines it, with the language filter off. */
export interface ExpectedCandidate {
  uuid: string;
  url: string;
  texts: Array<[TextKey, string]>;
}

export interface SampleFile {
  path: string;
  format: SampleFormat;
  shard: number;
  bytes: number;
  records: number;
  pages: number;
  /** `<img>` elements a browser would see (not counting script/comment ones). */
  imgTags: number;
  expected: ExpectedCandidate[];
}

export interface SamplesResult {
  /** Written files, shard by shard (WARC before WAT). */
  files: string[];
  details: SampleFile[];
  /** Expected candidates per written path (lid off), in file order. */
  expected: Record<string, ExpectedCandidate[]>;
}

// ------------------------------------------------------------------------------------------------
// PRNG

/** xoshiro128** seeded from SHA-256 of a string: small, fast, and identical on every platform. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: string) {
    const h = createHash('sha256').update(seed).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** An independent stream for a sub-task. */
  fork(label: string): Rng {
    return new Rng(`${this.seed}/${label}`);
  }

  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  float(): number {
    return this.u32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Picks by weight from [value, weight] pairs. */
  weighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
    let total = 0;
    for (const [, w] of items) total += w;
    let x = this.float() * total;
    for (const [v, w] of items) {
      x -= w;
      if (x < 0) return v;
    }
    return items[items.length - 1][0];
  }

  hex(n: number): string {
    let s = '';
    while (s.length < n) s += this.u32().toString(16).padStart(8, '0');
    return s.slice(0, n);
  }

  uuid(): string {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[this.int(4)]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// ------------------------------------------------------------------------------------------------
// Vocabulary

type Lang = 'en' | 'de' | 'fr' | 'es' | 'ja' | 'zh' | 'ru';
type Theme = 'pets' | 'travel' | 'food' | 'shop' | 'news';
type Style = 'modern' | 'wordpress' | 'shop' | 'legacy';

interface Site {
  host: string;
  name: string;
  lang: Lang;
  theme: Theme;
  style: Style;
  charset: 'utf-8' | 'iso-8859-1';
  sections: string[];
}

const SITES: readonly Site[] = [
  { host: 'www.happy-paws.example', name: 'Happy Paws', lang: 'en', theme: 'pets', style: 'modern', charset: 'utf-8', sections: ['blog', 'dogs', 'cats'] },
  { host: 'travelnotes.example', name: 'Travel Notes', lang: 'en', theme: 'travel', style: 'wordpress', charset: 'utf-8', sections: ['2023', 'destinations', 'photos'] },
  { host: 'kitchen-stories.example', name: 'Kitchen Stories', lang: 'en', theme: 'food', style: 'wordpress', charset: 'utf-8', sections: ['recipes', 'blog'] },
  { host: 'shop.homegoods.example', name: 'HomeGoods', lang: 'en', theme: 'shop', style: 'shop', charset: 'utf-8', sections: ['products', 'category'] },
  { host: 'members.oldweb.example', name: "Bob's Home Page", lang: 'en', theme: 'pets', style: 'legacy', charset: 'utf-8', sections: ['~bob', 'pics'] },
  { host: 'news-daily.example', name: 'News Daily', lang: 'en', theme: 'news', style: 'modern', charset: 'utf-8', sections: ['world', 'local', 'sports'] },
  { host: 'www.hundeforum.example', name: 'Hundeforum', lang: 'de', theme: 'pets', style: 'legacy', charset: 'iso-8859-1', sections: ['forum', 'galerie'] },
  { host: 'cuisine-facile.example', name: 'Cuisine Facile', lang: 'fr', theme: 'food', style: 'modern', charset: 'iso-8859-1', sections: ['recettes', 'blog'] },
  { host: 'viajes-y-playas.example', name: 'Viajes y Playas', lang: 'es', theme: 'travel', style: 'wordpress', charset: 'utf-8', sections: ['destinos', 'blog'] },
  { host: 'shashin.example', name: '写真日記', lang: 'ja', theme: 'travel', style: 'modern', charset: 'utf-8', sections: ['nikki', 'photo'] },
  { host: 'lvyou.example', name: '旅游天地', lang: 'zh', theme: 'travel', style: 'shop', charset: 'utf-8', sections: ['jingdian', 'tupian'] },
  { host: 'puteshestviya.example', name: 'Путешествия', lang: 'ru', theme: 'travel', style: 'modern', charset: 'utf-8', sections: ['blog', 'foto'] },
];

const NOUNS: Record<Theme, readonly string[]> = {
  pets: ['dog', 'cat', 'puppy', 'kitten', 'golden retriever', 'labrador retriever', 'german shepherd', 'beagle', 'poodle',
    'parrot', 'rabbit', 'hamster', 'goldfish', 'horse', 'collar', 'leash', 'bird', 'turtle', 'pony', 'dog food'],
  travel: ['beach', 'mountain', 'sunset', 'lake', 'river', 'bridge', 'city', 'street', 'cathedral', 'museum', 'market',
    'hotel', 'swimming pool', 'island', 'waterfall', 'harbor', 'skyline', 'sailboat', 'tent', 'kayak', 'forest', 'castle'],
  food: ['pizza', 'cake', 'bread', 'coffee', 'espresso', 'cappuccino', 'pasta', 'sushi', 'hamburger', 'cupcake', 'pancake',
    'muffin', 'salad', 'soup', 'sandwich', 'chocolate', 'ice cream', 'cheese', 'wine', 'tomato', 'lemon', 'breakfast'],
  shop: ['lamp', 'sofa', 'chair', 'table', 'pillow', 'rug', 'vase', 'candle', 'bookshelf', 'umbrella', 'backpack', 'jacket',
    'jeans', 'sunglasses', 'necklace', 'watch', 'shoe', 'dress', 'shirt', 'hat', 'mug', 'teapot'],
  news: ['city', 'street', 'police', 'doctor', 'school', 'football', 'team', 'crowd', 'building', 'fire', 'car', 'train',
    'bus', 'airplane', 'stadium', 'hospital', 'bridge', 'flood', 'election', 'market'],
};

const ADJECTIVES = ['red', 'blue', 'green', 'black', 'white', 'brown', 'small', 'big', 'old', 'new', 'beautiful', 'happy',
  'cute', 'little', 'wooden', 'vintage', 'modern', 'fresh', 'golden', 'tiny'];
const PLACES = ['park', 'garden', 'kitchen', 'street', 'forest', 'beach', 'snow', 'city', 'table', 'window', 'grass'];
const PEOPLE = ['Anna Schmidt', 'John Miller', 'Maria Garcia', 'Kenji Sato', 'Olga Petrova', 'Luc Martin', 'Priya Patel'];

/** Texts whose HTML form needs entities (or shows them off). */
const ENTITY_TEXTS = ['Fish & Chips', 'Salt & pepper shakers', 'Café au lait', "Children's books", '"Sunset" by the lake',
  'Rock & roll guitar', "Grandma's apple pie", 'Crème brûlée — a classic dessert', 'Mac & cheese', 'Tom & Jerry mug'];

/** Proper nouns in their usual case (the WordNet stand-in only has them in lower case). */
const PROPER_TEXTS = ['New York skyline at night', 'Eiffel Tower in Paris', 'London bus', 'Golden Gate Bridge at sunset',
  'Mount Fuji in winter', 'Christmas tree in New York'];

const FOREIGN: Record<Exclude<Lang, 'en'>, readonly string[]> = {
  de: ['Ein brauner Hund im Park', 'Katze auf dem Sofa', 'Sonnenuntergang am Strand', 'Frisches Brot vom Bäcker',
    'Unser Hund Bello im Schnee', 'Wanderung in den Alpen', 'Schwarzwälder Kirschtorte', 'Straße in München bei Nacht',
    'Welpe spielt mit dem Ball', 'Größe und Gewicht des Hundes'],
  fr: ['Un chat noir sur le canapé', 'Coucher de soleil sur la plage', 'Croissants et café au lait', 'La tour Eiffel à Paris',
    'Tarte aux pommes maison', 'Chiot qui joue dans le jardin', 'Crème brûlée à la vanille', 'Bœuf bourguignon traditionnel'],
  es: ['Perro jugando en la playa', 'Atardecer en Málaga', 'Paella de mariscos', 'Niños en el parque',
    'Montañas nevadas en invierno', 'Gato durmiendo al sol', 'Vista de la catedral de Sevilla'],
  ja: ['公園で遊ぶ犬', '富士山と桜', '東京の夜景', '寿司の盛り合わせ', '窓辺で寝ている猫', '京都の紅葉'],
  zh: ['海滩上的日落', '北京的长城', '一只可爱的小狗', '红烧肉和米饭', '上海外滩夜景', '桂林山水'],
  ru: ['Собака в парке', 'Закат на море', 'Красная площадь в Москве', 'Кошка спит на диване', 'Зимний лес', 'Озеро Байкал летом'],
};

const TITLES = ['Click to enlarge', 'View larger image', 'Photo: {name}', '{N} ({name})', 'Image {k} of {m}', '{site}',
  '{N}', '{adj} {n}'];

const EXTENSIONS = ['jpg', 'jpg', 'jpg', 'jpeg', 'png', 'webp', 'gif', 'JPG'];

/** The fixed 1x1 GIF Common Crawl pages use as lazy-loading placeholders. */
const DATA_GIF = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7';

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function slugify(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'image';
}

function fill(template: string, rng: Rng, ctx: { theme: Theme; site: Site; noun?: string }): string {
  const nouns = NOUNS[ctx.theme];
  const n = ctx.noun ?? rng.pick(nouns);
  return template
    .replace(/\{n\}/g, () => n)
    .replace(/\{N\}/g, () => cap(n))
    .replace(/\{NUP\}/g, () => n.toUpperCase())
    .replace(/\{n2\}/g, () => rng.pick(nouns))
    .replace(/\{n3\}/g, () => rng.pick(nouns))
    .replace(/\{adj\}/g, () => rng.pick(ADJECTIVES))
    .replace(/\{Adj\}/g, () => cap(rng.pick(ADJECTIVES)))
    .replace(/\{place\}/g, () => rng.pick(PLACES))
    .replace(/\{name\}/g, () => rng.pick(PEOPLE))
    .replace(/\{num\}/g, () => String(rng.range(2, 99)))
    .replace(/\{k\}/g, () => String(rng.range(1, 9)))
    .replace(/\{m\}/g, () => String(rng.range(10, 40)))
    .replace(/\{year\}/g, () => String(rng.range(2015, 2024)))
    .replace(/\{d4\}/g, () => String(rng.range(1000, 9999)))
    .replace(/\{d5\}/g, () => String(rng.range(10000, 99999)))
    .replace(/\{site\}/g, () => ctx.site.name);
}

const EN_TEMPLATES: ReadonlyArray<readonly [string, number]> = [
  ['{n}', 6], ['{N}', 5], ['{NUP}', 2], ['a {adj} {n}', 6], ['A {adj} {n} in the {place}', 8], ['{N} on the {place}', 5],
  ['{N} and {n2}', 4], ['{N}, {n2} and {n3}.', 3], ['Photo of a {n} by {name}', 3], ['Close-up of a {adj} {n}', 3],
  ['Top {num} {n} photos of {year}', 2], ['{N} | {site}', 3], ['{Adj} {n} - {site}', 2], ['Our {n} at sunset', 2],
  ['{N} #{num}', 2], ['IMG_{d4}', 3], ['DSC{d5}.JPG', 1], ['Buy {adj} {n} online, free shipping!', 1],
  ['CHEAP {NUP} BEST PRICE!!!', 1], ['{n} {n} {n2} best {n} cheap {n2} {n} sale {n} {n2} {n}', 1], ['{num}', 1],
  ['What is the best {n}? Read our guide: {adj} {n} vs. {n2}', 1],
];

/** An alt text for a page of `site`: mostly its language, sometimes another. */
function altText(rng: Rng, site: Site, theme: Theme): string {
  const lang: Lang = site.lang !== 'en'
    ? (rng.chance(0.75) ? site.lang : 'en')
    : (rng.chance(0.06) ? rng.pick(['de', 'fr', 'es', 'ja', 'zh', 'ru'] as const) : 'en');
  if (lang !== 'en') {
    const pool = FOREIGN[lang];
    // Latin-1 pages can hold any text (non-Latin-1 characters become character references),
    // but keep them mostly to their own language.
    return rng.pick(pool);
  }
  const r = rng.float();
  if (r < 0.05) return rng.pick(ENTITY_TEXTS);
  if (r < 0.08) return rng.pick(PROPER_TEXTS);
  return fill(rng.weighted(EN_TEMPLATES), rng, { theme, site });
}

// ------------------------------------------------------------------------------------------------
// Image base and URL forms

interface Base {
  /** Normalised base, ending in '/'. */
  href: string;
  scheme: string;
  authority: string;
  /** Path of the base, starting and ending with '/'. */
  path: string;
}

export function parseImageBase(imageBase: string): Base {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#\s[\]]+)(\/[^?#\s]*)?$/.exec(imageBase);
  if (!m || !/^https?$/i.test(m[1])) {
    throw new Error(`--image-base must be an absolute http(s) URL without query or fragment, like ${DEFAULT_IMAGE_BASE}; got ${JSON.stringify(imageBase)}`);
  }
  const scheme = m[1].toLowerCase();
  let path = m[3] ?? '/';
  if (!path.endsWith('/')) path += '/';
  if (path.includes('//') || /(^|\/)\.\.?(\/|$)/.test(path)) {
    throw new Error(`--image-base path must not contain empty, '.' or '..' segments: ${JSON.stringify(imageBase)}`);
  }
  return { href: `${scheme}://${m[2]}${path}`, scheme, authority: m[2], path };
}

type SrcForm = 'relative' | 'dot' | 'parent' | 'parent2' | 'root' | 'protocol' | 'absolute' | 'query' | 'fragment' | 'fragmentOnly';

interface PageLoc {
  url: string;
  /** Directory of the page URL, ending in '/'. */
  dir: string;
  /** `<base><host>/` */
  siteRoot: string;
  host: string;
}

/** A `src` reference and what Python's urljoin(page, ref) gives for it (worked out by hand, not by url.ts). */
function srcRef(form: SrcForm, file: string, page: PageLoc, base: Base, rng: Rng): { ref: string; target: string } {
  const origin = `${base.scheme}://${base.authority}`;
  switch (form) {
    case 'relative':
      return { ref: file, target: page.dir + file };
    case 'dot':
      return { ref: `./thumbs/${file}`, target: `${page.dir}thumbs/${file}` };
    case 'parent':
      return { ref: `../media/${file}`, target: `${page.siteRoot}media/${file}` };
    case 'parent2':
      return { ref: `../../shared/${file}`, target: `${base.href}shared/${file}` };
    case 'root': {
      const ref = `${base.path}${page.host}/uploads/${rng.range(2016, 2024)}/${String(rng.range(1, 12)).padStart(2, '0')}/${file}`;
      return { ref, target: origin + ref };
    }
    case 'protocol': {
      const ref = `//${base.authority}${base.path}cdn/${file}`;
      return { ref, target: `${base.scheme}:${ref}` };
    }
    case 'absolute':
      return { ref: `${base.href}cdn/${file}`, target: `${base.href}cdn/${file}` };
    case 'query': {
      const q = `action=thumb&file=${file.replace(/[?#&]/g, '')}&w=${rng.pick([150, 300, 640])}`;
      return { ref: `?${q}`, target: `${page.url}?${q}` };
    }
    case 'fragment': {
      const clean = file.replace(/[?#].*$/, '');
      return { ref: `${clean}#main`, target: `${page.dir}${clean}#main` };
    }
    case 'fragmentOnly':
      return { ref: '#gallery', target: `${page.url}#gallery` };
  }
}

const SRC_FORMS: ReadonlyArray<readonly [SrcForm, number]> = [
  ['relative', 14], ['dot', 5], ['parent', 10], ['parent2', 3], ['root', 14], ['protocol', 6], ['absolute', 10],
  ['query', 2], ['fragment', 3], ['fragmentOnly', 1],
];

function imageFile(rng: Rng, text: string): string {
  const stem = slugify(text.replace(/[^\x20-\x7e]/g, ' ')).slice(0, 40);
  const ext = rng.pick(EXTENSIONS);
  const r = rng.float();
  if (r < 0.08) return `${stem}-${rng.range(1, 999)}.${ext}?v=${rng.range(1, 9)}`;
  if (r < 0.12) return `${stem}%20(${rng.range(1, 9)}).${ext}`;
  if (r < 0.14) return `M\u00fcller-H\u00fctte-${rng.range(1, 99)}.${ext}`; // non-ASCII path, kept as is by urljoin
  if (r < 0.2) return `${stem}-${rng.range(100, 2048)}x${rng.range(100, 2048)}.${ext}`;
  return `${stem}-${rng.range(1, 999)}.${ext}`;
}

// ------------------------------------------------------------------------------------------------
// HTML model

interface Attr {
  name: string;
  /** Decoded value; null for a bare attribute (`<img alt>`). */
  value: string | null;
}

interface ImgSpec {
  attrs: Attr[];
  /** urljoin(page, src) for a src that is non-empty after stripping; null when it cannot be resolved. */
  target: string | null;
}

interface WatLink {
  [key: string]: string;
}

type AttrQuote = '"' | "'" | '';
type EntityStyle = 'minimal' | 'named' | 'numeric';

const NAMED: Record<string, string> = {
  '\u00e9': '&eacute;', '\u00e8': '&egrave;', '\u00ea': '&ecirc;', '\u00e0': '&agrave;', '\u00e7': '&ccedil;',
  '\u00fc': '&uuml;', '\u00f6': '&ouml;', '\u00e4': '&auml;', '\u00df': '&szlig;', '\u00f1': '&ntilde;',
  '\u00e1': '&aacute;', '\u00f3': '&oacute;', '\u00ed': '&iacute;', '\u00fb': '&ucirc;', '\u0153': '&oelig;',
  '\u00a0': '&nbsp;', '\u2014': '&mdash;', "'": '&#39;',
};

/** Writes an attribute value so that an HTML parser decodes it back to `value`. */
function encodeAttr(value: string, quote: AttrQuote, style: EntityStyle, rng: Rng): string {
  let out = '';
  for (const ch of value) {
    if (ch === '&') out += rng.chance(0.15) ? '&#38;' : '&amp;';
    else if (ch === '"' && quote === '"') out += rng.chance(0.5) ? '&quot;' : '&#34;';
    else if (ch === "'" && quote === "'") out += '&#39;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '\u00a0') out += '&nbsp;';
    else if (style === 'named' && NAMED[ch]) out += NAMED[ch];
    else if (style === 'numeric' && ch.codePointAt(0)! > 0x7e) {
      const cp = ch.codePointAt(0)!;
      out += rng.chance(0.5) ? `&#${cp};` : `&#x${cp.toString(16).toUpperCase()};`;
    } else out += ch;
  }
  return out;
}

/** Escapes text content. */
function escText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const UNQUOTED_OK = /^[A-Za-z0-9._\/:-]+$/;

interface PageModel {
  loc: PageLoc;
  site: Site;
  kind: 'html' | 'redirect' | 'notfound' | 'pdf';
  status: number;
  reason: string;
  contentType: string;
  body: Buffer;
  title: string;
  /** Visible img elements in document order. */
  imgs: ImgSpec[];
  /** WAT `Links`, in the order CC's parser emits them. */
  watLinks: WatLink[];
  watHead: Record<string, unknown>;
  location?: string;
}

class PageBuilder {
  private parts: string[] = [];
  readonly imgs: ImgSpec[] = [];
  readonly watLinks: WatLink[] = [];
  private anchors: Array<{ href: string; text: string }> = [];
  readonly upper: boolean;
  readonly style: EntityStyle;

  constructor(readonly rng: Rng, readonly site: Site, readonly loc: PageLoc, readonly base: Base) {
    this.upper = site.style === 'legacy';
    this.style = rng.pick(['minimal', 'minimal', 'named', 'numeric'] as const);
  }

  raw(s: string): void {
    this.parts.push(s);
  }

  text(s: string): void {
    this.parts.push(escText(s));
  }

  aOpen(href: string): void {
    this.parts.push(this.upper ? `<A HREF="${href}">` : `<a href="${href}">`);
    this.anchors.push({ href, text: '' });
  }

  aText(s: string): void {
    this.text(s);
    const top = this.anchors[this.anchors.length - 1];
    if (top) top.text += s;
  }

  /** Closes an anchor; CC's parser adds the A@/href link at the close tag (after the images inside it). */
  aClose(): void {
    this.parts.push(this.upper ? '</A>' : '</a>');
    const a = this.anchors.pop();
    if (!a) return;
    const link: WatLink = { path: 'A@/href', url: a.href };
    const t = a.text.trim().replace(/\s+/g, ' ');
    if (t) link.text = t;
    this.watLinks.push(link);
  }

  a(href: string, text: string): void {
    this.aOpen(href);
    this.aText(text);
    this.aClose();
  }

  /**
   * Renders an <img>. `attrs` in document order (names as they should appear, any case); decoded values.
   * Rendering choices (quotes, entities, line breaks, case) are the builder's.
   */
  img(attrs: Array<[string, string | null]>, target: string | null, opts: { multiline?: boolean; selfClose?: boolean } = {}): void {
    const rng = this.rng;
    const upperTag = this.upper || rng.chance(0.04);
    let s = upperTag ? (rng.chance(0.8) ? '<IMG' : '<Img') : '<img';
    const multiline = opts.multiline ?? rng.chance(0.12);
    for (const [name, value] of attrs) {
      const sep = multiline ? `\n${' '.repeat(rng.range(2, 8))}` : ' ';
      const attrName = upperTag || rng.chance(0.03) ? name.toUpperCase() : name;
      if (value === null) {
        s += `${sep}${attrName}`;
        continue;
      }
      let quote: AttrQuote = '"';
      if ((this.upper && UNQUOTED_OK.test(value) && rng.chance(0.7)) || (UNQUOTED_OK.test(value) && rng.chance(0.08))) quote = '';
      else if (rng.chance(this.upper ? 0.2 : 0.07)) quote = "'";
      s += `${sep}${attrName}=${quote}${encodeAttr(value, quote, this.style, rng)}${quote}`;
    }
    const selfClose = opts.selfClose ?? (!this.upper && rng.chance(0.4));
    s += selfClose ? ' />' : '>';
    this.parts.push(s);
    this.register(attrs, target);
  }

  /** An <img> written verbatim; `attrs` are its attributes as a parser decodes them, in document order. */
  rawImg(html: string, attrs: Array<[string, string | null]>, target: string | null): void {
    this.parts.push(html);
    this.register(attrs, target);
  }

  private register(attrs: Array<[string, string | null]>, target: string | null): void {
    const spec: ImgSpec = { attrs: attrs.map(([name, value]) => ({ name: name.toLowerCase(), value })), target };
    this.imgs.push(spec);
    // The WAT link CC writes for it: IMG@/src when the tag has a src attribute (first occurrence wins).
    const first = firstValues(spec.attrs);
    const src = first.get('src');
    if (src !== undefined && src !== null) {
      const link: WatLink = { path: 'IMG@/src', url: src };
      for (const key of ['alt', 'title', 'data-image-title']) {
        const v = first.get(key);
        if (v !== undefined && v !== null) link[key] = v;
      }
      this.watLinks.push(link);
    }
    const longdesc = first.get('longdesc');
    if (longdesc) this.watLinks.push({ path: 'IMG@/longdesc', url: longdesc });
  }

  /** An <input type=image>: an image link, but not an <img> (yields nothing). */
  inputImage(src: string, alt: string): void {
    this.parts.push(`<input type="image" src="${encodeAttr(src, '"', 'minimal', this.rng)}" alt="${encodeAttr(alt, '"', 'minimal', this.rng)}">`);
    this.watLinks.push({ path: 'INPUT@/src', url: src });
  }

  html(): string {
    return this.parts.join('');
  }
}

/** First value of each attribute name (HTML parsers keep the first of duplicates). */
function firstValues(attrs: readonly Attr[]): Map<string, string | null> {
  const m = new Map<string, string | null>();
  for (const a of attrs) if (!m.has(a.name)) m.set(a.name, a.value);
  return m;
}

// ------------------------------------------------------------------------------------------------
// Shared images (repeated across pages and files)

interface SharedImage {
  file: string;
  target: string;
  texts: string[];
}

interface World {
  base: Base;
  stock: SharedImage[];
  social: SharedImage[];
}

function makeWorld(seed: string, base: Base): World {
  const rng = new Rng(`${seed}/world`);
  const stock: SharedImage[] = [];
  for (let i = 0; i < 30; i++) {
    const theme = rng.pick(['pets', 'travel', 'food', 'shop', 'news'] as const);
    const site = SITES[0];
    const noun = rng.pick(NOUNS[theme]);
    const t1 = fill(rng.pick(['A {adj} {n}', '{N}', '{N} in the {place}', '{adj} {n}']), rng, { theme, site, noun });
    const t2 = fill(rng.pick(['{N}', 'Stock photo: {n}', '{N} close-up']), rng, { theme, site, noun });
    const file = `stock/${slugify(t1)}-${rng.range(1000, 9999)}.jpg`;
    stock.push({ file, target: `${base.href}cdn/${file}`, texts: [t1, t2] });
  }
  const social = ['Facebook', 'Twitter', 'Instagram', 'Pinterest', 'RSS feed'].map((name) => {
    const file = `social/${slugify(name)}.png`;
    return { file, target: `${base.href}cdn/${file}`, texts: [name, `Follow us on ${name}`] };
  });
  return { base, stock, social };
}

/** A reference to a shared image under <base>cdn/: absolute, protocol-relative or root-relative. */
function sharedRef(img: SharedImage, base: Base, rng: Rng): string {
  const r = rng.int(3);
  if (r === 0) return img.target;
  if (r === 1) return `//${base.authority}${base.path}cdn/${img.file}`;
  return `${base.path}cdn/${img.file}`;
}

// ------------------------------------------------------------------------------------------------
// Pages

function pageLoc(base: Base, site: Site, section: string, slug: string): PageLoc {
  const siteRoot = `${base.href}${site.host}/`;
  const dir = `${siteRoot}${section}/`;
  return { url: `${dir}${slug}.html`, dir, siteRoot, host: site.host };
}

function paragraph(rng: Rng, site: Site): string {
  if (site.lang !== 'en') {
    const pool = FOREIGN[site.lang];
    return Array.from({ length: rng.range(2, 5) }, () => `${rng.pick(pool)}.`).join(' ');
  }
  const n = NOUNS[site.theme];
  const sentences = [
    () => `We spent the afternoon with our ${rng.pick(n)} and a ${rng.pick(ADJECTIVES)} ${rng.pick(n)}.`,
    () => `The ${rng.pick(n)} was ${rng.pick(ADJECTIVES)}, and the ${rng.pick(n)} even more so.`,
    () => `If you like ${rng.pick(n)}s, this ${rng.pick(PLACES)} is the place to be.`,
    () => `Read more about the ${rng.pick(n)} in our previous post.`,
    () => `Prices start at $${rng.range(5, 500)}.${rng.range(10, 99)} & shipping is free.`,
  ];
  return Array.from({ length: rng.range(2, 6) }, () => rng.pick(sentences)()).join(' ');
}

/** A visible content image with a mix of text attributes; returns nothing, renders into b. */
function contentImg(b: PageBuilder, world: World, opts: { forceText?: string } = {}): void {
  const { rng, site, loc, base } = b;
  const theme = site.theme;
  // Shared stock image (repeats across pages and files).
  if (!opts.forceText && rng.chance(0.18)) {
    const img = rng.pick(world.stock);
    const text = rng.chance(0.8) ? img.texts[0] : img.texts[1];
    const attrs: Array<[string, string | null]> = [['src', sharedRef(img, base, rng)], ['alt', text]];
    if (rng.chance(0.3)) attrs.push(['title', img.texts[1]]);
    b.img(attrs, img.target);
    return;
  }
  const text = opts.forceText ?? altText(rng, site, theme);
  const form = rng.weighted(SRC_FORMS);
  const file = imageFile(rng, text);
  const { ref, target } = srcRef(form, file, loc, base, rng);

  // The text attributes, in a random combination and order.
  const combo = rng.weighted([
    ['alt', 50], ['alt+title', 14], ['title+alt', 5], ['alt+dit', 7], ['dit+alt+title', 3], ['title', 4], ['dit', 3],
    ['emptyalt', 5], ['blankalt', 2], ['barealt', 1], ['none', 3], ['dupalt', 2], ['alt=title', 2],
  ] as const);
  const title = fill(rng.pick(TITLES), rng, { theme, site });
  const dit = rng.chance(0.5) ? slugify(text.replace(/[^\x20-\x7e]/g, ' ')) || 'image' : text;
  const pad = (s: string): string => {
    if (!rng.chance(0.12)) return s;
    const pads = [' ', '  ', '\n', '\n  ', '\t', '\u00a0'];
    return `${rng.pick(pads)}${s}${rng.pick(pads)}`;
  };
  const multiline = (s: string): string => {
    // An attribute value written over two lines (the line break is part of the value).
    const i = s.indexOf(' ', Math.floor(s.length / 2));
    return i > 0 && rng.chance(0.1) ? `${s.slice(0, i)}\n${' '.repeat(rng.range(4, 10))}${s.slice(i + 1)}` : s;
  };
  const alt = pad(multiline(text));
  let srcValue = ref;
  if (rng.chance(0.04)) srcValue = `${rng.pick([' ', '  ', '\n', '\n    '])}${ref}${rng.pick(['\n', '\t', ''])}`;

  const extra: Array<[string, string | null]> = [];
  if (b.site.style === 'wordpress') {
    extra.push(['loading', 'lazy'], ['width', String(rng.range(300, 1200))], ['height', String(rng.range(200, 900))],
      ['class', `wp-image-${rng.range(100, 9999)}`]);
  } else if (rng.chance(0.4)) {
    extra.push(['width', String(rng.range(80, 800))]);
  }
  let texts: Array<[string, string | null]>;
  switch (combo) {
    case 'alt': texts = [['alt', alt]]; break;
    case 'alt+title': texts = [['alt', alt], ['title', title]]; break;
    case 'title+alt': texts = [['title', title], ['alt', alt]]; break;
    case 'alt+dit': texts = [['alt', alt], ['data-image-title', dit]]; break;
    case 'dit+alt+title': texts = [['data-image-title', dit], ['alt', alt], ['title', title]]; break;
    case 'title': texts = [['title', title]]; break;
    case 'dit': texts = [['data-image-title', dit]]; break;
    case 'emptyalt': texts = [['alt', '']]; break;
    case 'blankalt': texts = [['alt', '   ']]; break;
    case 'barealt': texts = [['alt', null]]; break;
    case 'none': texts = []; break;
    case 'dupalt': texts = [['alt', alt], ['alt', fill('{N}', rng, { theme, site })]]; break;
    case 'alt=title': texts = [['alt', alt], ['title', alt]]; break;
  }
  const attrs: Array<[string, string | null]> = [];
  const srcFirst = rng.chance(0.7);
  if (srcFirst) attrs.push(['src', srcValue]);
  attrs.push(...texts);
  if (!srcFirst) attrs.push(['src', srcValue]);
  const at = rng.int(attrs.length + 1);
  attrs.splice(at, 0, ...extra);
  if (rng.chance(0.03)) attrs.push(['longdesc', `${loc.dir}desc/${slugify(text) || 'image'}.html`]);
  b.img(attrs, target);
  // Sometimes the same picture again on the page: same text (a per-file duplicate) or a new one.
  if (rng.chance(0.08)) {
    const again: Array<[string, string | null]> = rng.chance(0.5) ? [['src', ref], ['alt', text]] : [['src', ref], ['alt', fill('{N}', rng, { theme, site })]];
    b.img(again, target);
  }
}

/** <img> elements a browser never sees: inside scripts, comments and escaped text. */
function hiddenImgs(b: PageBuilder): void {
  const { rng, site, base } = b;
  const text = altText(rng, site, site.theme);
  const url = `${base.path}${site.host}/${NEVER_EXTRACTED}/${slugify(text) || 'x'}.jpg`;
  const which = rng.int(5);
  if (which === 0) {
    b.raw(`\n<script>\n  var banner = '<img src="${url}" alt="${text.replace(/'/g, '')}">';\n  document.getElementById("ad").innerHTML = banner;\n</script>\n`);
  } else if (which === 1) {
    b.raw(`\n<!-- old header: <img src="${url}" alt="${escText(text)}"> -->\n`);
  } else if (which === 2) {
    b.raw(`\n<!--[if lt IE 9]><IMG SRC="${url}" ALT="Please upgrade your browser"><![endif]-->\n`);
  } else if (which === 3) {
    b.raw(`\n<script type="text/template" id="card-tpl">\n  <div class="card"><img src="${url}" alt="{{ title }}"></div>\n</script>\n`);
  } else {
    b.raw(`\n<pre><code>&lt;img src="${url}" alt="${escText(text)}"&gt;</code></pre>\n`);
  }
}

/**
 * One block per shard with every extraction edge case, written verbatim so that tests can look for them
 * whatever the seed. Image files are named `edge-*`.
 */
function edgeCases(b: PageBuilder): void {
  const { loc, base } = b;
  const D = loc.dir;
  const root = `${base.path}${loc.host}/uploads/edge-root.png`;
  const origin = `${base.scheme}://${base.authority}`;
  const proto = `//${base.authority}${base.path}cdn/edge-protocol.webp`;
  b.raw('\n<section class="edge-cases">\n');
  b.rawImg('<IMG SRC=../media/edge-upper.jpg ALT=DOG>', [['src', '../media/edge-upper.jpg'], ['alt', 'DOG']], `${loc.siteRoot}media/edge-upper.jpg`);
  b.rawImg(`<img src="${root}" alt="Dog">`, [['src', root], ['alt', 'Dog']], origin + root);
  b.rawImg(`<img src="${proto}" alt="dog">`, [['src', proto], ['alt', 'dog']], `${base.scheme}:${proto}`);
  b.rawImg('<img src="?edge=query&amp;w=300" alt="Fish &amp; Chips">', [['src', '?edge=query&w=300'], ['alt', 'Fish & Chips']], `${loc.url}?edge=query&w=300`);
  b.rawImg('<img src="edge-fragment.jpg#frag" alt="Caf&eacute; au lait" title="Children&#39;s books">',
    [['src', 'edge-fragment.jpg#frag'], ['alt', 'Caf\u00e9 au lait'], ['title', "Children's books"]], `${D}edge-fragment.jpg#frag`);
  b.rawImg('<img src="#edge" alt="&quot;Sunset&quot; by the lake &#x2014; &#8220;quoted&#8221;">',
    [['src', '#edge'], ['alt', '"Sunset" by the lake \u2014 \u201cquoted\u201d']], `${loc.url}#edge`);
  b.rawImg('<img\n  src="edge-multiline.jpg"\n  alt="A golden retriever\n      playing in the snow"\n  data-image-title="golden-retriever-snow">',
    [['src', 'edge-multiline.jpg'], ['alt', 'A golden retriever\n      playing in the snow'], ['data-image-title', 'golden-retriever-snow']], `${D}edge-multiline.jpg`);
  b.rawImg('<img data-image-title="edge dit" title="title first" alt="alt second" src=edge-order.jpg>',
    [['data-image-title', 'edge dit'], ['title', 'title first'], ['alt', 'alt second'], ['src', 'edge-order.jpg']], `${D}edge-order.jpg`);
  b.rawImg('<img src="edge-empty-alt.jpg" alt="">', [['src', 'edge-empty-alt.jpg'], ['alt', '']], `${D}edge-empty-alt.jpg`);
  b.rawImg('<img src="edge-bare-alt.jpg" alt>', [['src', 'edge-bare-alt.jpg'], ['alt', null]], `${D}edge-bare-alt.jpg`);
  b.rawImg('<img src="edge-blank-alt.jpg" alt="  \n ">', [['src', 'edge-blank-alt.jpg'], ['alt', '  \n ']], `${D}edge-blank-alt.jpg`);
  b.rawImg('<img src="edge-repeat.jpg" alt="cat">', [['src', 'edge-repeat.jpg'], ['alt', 'cat']], `${D}edge-repeat.jpg`);
  b.rawImg('<img src="edge-repeat.jpg" alt="cat" title="cat">', [['src', 'edge-repeat.jpg'], ['alt', 'cat'], ['title', 'cat']], `${D}edge-repeat.jpg`);
  b.rawImg('<img src="./edge-repeat.jpg" alt="kitten">', [['src', './edge-repeat.jpg'], ['alt', 'kitten']], `${D}edge-repeat.jpg`);
  b.rawImg('<img src="edge-dupattr.jpg" alt="first alt" alt="second alt">',
    [['src', 'edge-dupattr.jpg'], ['alt', 'first alt'], ['alt', 'second alt']], `${D}edge-dupattr.jpg`);
  b.rawImg('<img alt="no source">', [['alt', 'no source']], null);
  b.rawImg('<img src="" alt="empty source">', [['src', ''], ['alt', 'empty source']], null);
  b.rawImg('<img src="//[broken/edge.gif" alt="broken reference">', [['src', '//[broken/edge.gif'], ['alt', 'broken reference']], null);
  b.rawImg(`<img src="${DATA_GIF}" alt="lazy placeholder">`, [['src', DATA_GIF], ['alt', 'lazy placeholder']], DATA_GIF);
  b.rawImg('<img src="  edge-padded.jpg\n" alt="  beach&nbsp;">', [['src', '  edge-padded.jpg\n'], ['alt', '  beach\u00a0']], `${D}edge-padded.jpg`);
  b.rawImg("<Img Src='edge-mixed.gif' Alt='mixed case'>", [['src', 'edge-mixed.gif'], ['alt', 'mixed case']], `${D}edge-mixed.gif`);
  b.raw(`\n<script>document.write('<img src="${base.path}${NEVER_EXTRACTED}/edge-script.jpg" alt="script">');</script>\n`);
  b.raw(`<!-- <img src="${NEVER_EXTRACTED}/edge-comment.jpg" alt="comment"> -->\n`);
  b.raw(`<p>Markup: &lt;img src="${NEVER_EXTRACTED}/edge-escaped.jpg" alt="escaped"&gt;</p>\n`);
  b.inputImage('edge-input.png', 'search');
  const foreign: Array<[string, string, string]> = [
    ['de', 'Ein Hund im Schnee', 'Ein Hund im Schnee'],
    ['fr', 'Un chat noir sur le canap&eacute;', 'Un chat noir sur le canap\u00e9'],
    ['es', 'Perro en la playa', 'Perro en la playa'],
    ['ja', '雪の中の犬', '雪の中の犬'],
    ['zh', '海滩上的狗', '海滩上的狗'],
    ['ru', 'Собака на пляже', 'Собака на пляже'],
  ];
  for (const [lang, html, text] of foreign) {
    b.rawImg(`<img src="edge-${lang}.jpg" alt="${html}" lang="${lang}">`, [['src', `edge-${lang}.jpg`], ['alt', text], ['lang', lang]], `${D}edge-${lang}.jpg`);
  }
  b.raw('</section>\n');
}

function htmlPage(rng: Rng, world: World, site: Site, loc: PageLoc, title: string, opts: { bom: boolean; edge?: boolean }): PageModel {
  const base = world.base;
  const b = new PageBuilder(rng, site, loc, base);
  const L = b.upper;
  const metaCharset = site.charset === 'utf-8'
    ? (rng.chance(0.7) ? '<meta charset="utf-8">' : '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">')
    : '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">';
  const description = `${title} - ${site.name}`;
  if (L) {
    b.raw(`<HTML>\n<HEAD>\n${metaCharset.toUpperCase().replace('UTF-8', 'utf-8').replace('ISO-8859-1', 'iso-8859-1')}\n<TITLE>${escText(title)}</TITLE>\n</HEAD>\n<BODY BGCOLOR=#FFFFFF TEXT=#000000>\n<CENTER>`);
  } else {
    b.raw(`<!DOCTYPE html>\n<html lang="${site.lang}">\n<head>\n${metaCharset}\n<title>${escText(title)} | ${escText(site.name)}</title>\n`);
    b.raw(`<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="description" content="${encodeAttr(description, '"', 'minimal', rng)}">\n`);
    b.raw(`<link rel="stylesheet" href="/static/css/site.css">\n<link rel="icon" href="/favicon.ico">\n<script src="/static/js/app.js"></script>\n</head>\n<body>\n<header>\n`);
  }
  // Site logo: on every page of the site (a per-file duplicate from the second page on).
  const logoFile = `${slugify(site.host)}-logo.png`;
  b.aOpen('/');
  b.img([['src', `${base.path}${site.host}/static/${logoFile}`], ['alt', `${site.name} logo`]], `${base.href}${site.host}/static/${logoFile}`, { multiline: false });
  b.aClose();
  if (!L) {
    b.raw('\n<nav>');
    for (const s of site.sections) b.a(`/${s}/`, cap(s));
    b.raw('</nav>\n</header>\n<main>\n<article>\n');
  }
  b.raw(L ? `<H1>${escText(title)}</H1></CENTER>\n` : `<h1>${escText(title)}</h1>\n`);
  if (rng.chance(0.5)) hiddenImgs(b);
  if (opts.edge) edgeCases(b);

  const blocks = rng.range(2, 6);
  for (let i = 0; i < blocks; i++) {
    b.raw(L ? '<P>' : '<p>');
    b.text(paragraph(rng, site));
    b.raw(L ? '\n' : '</p>\n');
    const kind = site.style === 'shop' ? 'product' : site.style === 'legacy' ? 'table' : rng.weighted([['figure', 5], ['gallery', 2], ['plain', 3]] as const);
    if (kind === 'figure') {
      b.raw('<figure class="wp-block-image">');
      contentImg(b, world);
      if (rng.chance(0.6)) b.raw(`<figcaption>${escText(altText(rng, site, site.theme))}</figcaption>`);
      b.raw('</figure>\n');
    } else if (kind === 'gallery') {
      b.raw('<div class="gallery">\n');
      const n = rng.range(3, 8);
      for (let k = 1; k <= n; k++) {
        b.aOpen(`${loc.url}#photo-${k}`);
        // Thumbnails often carry just a number: those match the metadata's "0".."99".
        contentImg(b, world, rng.chance(0.3) ? { forceText: String(k) } : {});
        b.aClose();
        b.raw('\n');
      }
      b.raw('</div>\n');
    } else if (kind === 'product') {
      const n = rng.range(2, 6);
      b.raw('<ul class="products">\n');
      for (let k = 0; k < n; k++) {
        b.raw('<li class="product">');
        b.aOpen(`/${site.sections[0]}/item-${rng.range(1000, 99999)}.html`);
        contentImg(b, world);
        b.aText(fill('{Adj} {n}', rng, { theme: site.theme, site }));
        b.aClose();
        b.raw(`<span class="price">$${rng.range(5, 300)}.99</span></li>\n`);
      }
      b.raw('</ul>\n');
    } else if (kind === 'table') {
      b.raw('<TABLE BORDER=0 CELLPADDING=4>\n<TR>');
      const n = rng.range(2, 5);
      for (let k = 0; k < n; k++) {
        b.raw('<TD>');
        contentImg(b, world);
        b.raw('</TD>');
      }
      b.raw('</TR>\n</TABLE>\n');
    } else {
      contentImg(b, world);
      b.raw('\n');
    }
  }
  // Lazy loading: a data: placeholder in src (a real, if useless, candidate) or no src at all.
  if (rng.chance(0.12)) {
    const text = altText(rng, site, site.theme);
    b.img([['src', DATA_GIF], ['data-src', `/${slugify(text) || 'lazy'}.jpg`], ['alt', text]], DATA_GIF);
  }
  if (rng.chance(0.12)) b.img([['data-src', `${loc.dir}lazy-${rng.range(1, 99)}.jpg`], ['alt', altText(rng, site, site.theme)]], null);
  // src="" (the WAT path resolves it to the page itself; the WARC path skips it).
  if (rng.chance(0.05)) b.img([['src', ''], ['alt', altText(rng, site, site.theme)]], null);
  // A reference urljoin cannot resolve.
  if (rng.chance(0.05)) b.img([['src', '//[broken/pixel.gif'], ['alt', altText(rng, site, site.theme)]], null);
  // Tracking pixel without text.
  if (rng.chance(0.3)) {
    const px = `${base.href}cdn/px.gif?u=${rng.hex(8)}`;
    b.img([['src', px], ['width', '1'], ['height', '1'], ['alt', '']], px);
  }
  if (rng.chance(0.3)) hiddenImgs(b);

  if (!L) {
    b.raw('</article>\n<aside>\n');
    // An old-fashioned ad: upper case, unquoted.
    if (rng.chance(0.4)) {
      const n = rng.pick(NOUNS[site.theme]).toUpperCase();
      const click = `http://ads.example/click?id=${rng.range(1, 999)}`;
      const banner = `${base.href}cdn/ads/banner-${rng.range(1, 5)}.gif`;
      b.raw(`<A HREF="${click}">`);
      b.img([['src', banner], ['alt', `CHEAP ${n}`], ['border', '0']], banner);
      b.raw('</A>');
      b.watLinks.push({ path: 'A@/href', url: click });
    }
    b.raw('<form action="/search">');
    b.inputImage('/static/img/search.png', 'Search');
    b.raw('</form>\n</aside>\n</main>\n<footer>\n');
    for (const s of world.social) {
      if (!rng.chance(0.6)) continue;
      b.aOpen(`https://${slugify(s.texts[0])}.example/${slugify(site.name)}`);
      b.img([['src', sharedRef(s, base, rng)], ['alt', s.texts[0]], ['title', s.texts[1]]], s.target, { multiline: false });
      b.aClose();
    }
    b.raw(`\n<p>&copy; ${rng.range(2005, 2024)} ${escText(site.name)}</p>\n</footer>\n</body>\n</html>\n`);
  } else {
    b.raw(`<HR>\n<CENTER><FONT SIZE=-1>Visitors: ${rng.range(100, 99999)}</FONT></CENTER>\n</BODY>\n</HTML>\n`);
  }

  const html = b.html();
  const body = encodeBody(html, site.charset, opts.bom);
  return {
    loc, site, kind: 'html', status: 200, reason: 'OK',
    contentType: site.charset === 'utf-8' ? 'text/html; charset=UTF-8' : 'text/html; charset=ISO-8859-1',
    body, title, imgs: b.imgs, watLinks: b.watLinks,
    watHead: {
      Title: L ? title : `${title} | ${site.name}`,
      ...(L ? {} : {
        Metas: [{ name: 'viewport', content: 'width=device-width, initial-scale=1' }, { name: 'description', content: description }],
        Link: [{ path: 'LINK@/href', url: '/static/css/site.css', rel: 'stylesheet' }, { path: 'LINK@/href', url: '/favicon.ico', rel: 'icon' }],
        Scripts: [{ path: 'SCRIPT@/src', url: '/static/js/app.js' }],
      }),
    },
  };
}

/** Encodes a page; characters the charset cannot hold become numeric character references. */
function encodeBody(html: string, charset: 'utf-8' | 'iso-8859-1', bom: boolean): Buffer {
  if (charset === 'utf-8') {
    const b = Buffer.from(html, 'utf8');
    return bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]) : b;
  }
  let out = '';
  for (const ch of html) {
    const cp = ch.codePointAt(0)!;
    out += cp > 0xff || (cp >= 0x80 && cp < 0xa0) ? `&#${cp};` : ch;
  }
  return Buffer.from(out, 'latin1');
}

function makePages(rng: Rng, world: World, count: number): PageModel[] {
  const pages: PageModel[] = [];
  const used = new Set<string>();
  const edgeAt = rng.int(count);
  for (let i = 0; i < count; i++) {
    const edge = i === edgeAt;
    // The edge-case block goes on an English UTF-8 page with modern markup.
    const site = edge ? rng.pick(SITES.filter((s) => s.lang === 'en' && s.style !== 'legacy')) : rng.pick(SITES);
    const section = rng.pick(site.sections);
    const titleText = site.lang === 'en' ? fill(rng.pick(['{N} and {n2}', 'Our {adj} {n}', 'Top {num} {n} ideas', 'A day at the {place}']), rng, { theme: site.theme, site }) : rng.pick(FOREIGN[site.lang]);
    let slug = `${slugify(titleText.replace(/[^\x20-\x7e]/g, ' ')) || 'page'}-${rng.range(1, 9999)}`;
    while (used.has(`${site.host}/${section}/${slug}`)) slug += `-${rng.range(1, 9)}`;
    used.add(`${site.host}/${section}/${slug}`);
    const loc = pageLoc(world.base, site, section, slug);
    const kind = edge ? 'html' : rng.weighted([['html', 92], ['redirect', 3], ['notfound', 3], ['pdf', 2]] as const);
    if (kind === 'html') {
      pages.push(htmlPage(rng, world, site, loc, titleText, { bom: site.charset === 'utf-8' && rng.chance(0.05), edge }));
    } else if (kind === 'redirect') {
      const to = `${loc.url.replace(/\.html$/, '')}/`;
      const body = Buffer.from(`<html><head><title>301 Moved Permanently</title></head><body><h1>Moved Permanently</h1><p>The document has moved <a href="${to}">here</a>.</p></body></html>\n`);
      pages.push({
        loc, site, kind, status: 301, reason: 'Moved Permanently', contentType: 'text/html; charset=iso-8859-1', body,
        title: '301 Moved Permanently', imgs: [], watLinks: [{ path: 'A@/href', url: to, text: 'here' }],
        watHead: { Title: '301 Moved Permanently' }, location: to,
      });
    } else if (kind === 'notfound') {
      const b = new PageBuilder(rng, site, loc, world.base);
      b.raw('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Page not found</title></head><body>\n<h1>404</h1>\n');
      const file = `404-${rng.pick(['dog', 'cat', 'robot'])}.png`;
      b.img([['src', `/${world.base.path.slice(1)}${site.host}/static/${file}`], ['alt', 'Page not found - sad puppy']], `${world.base.href}${site.host}/static/${file}`);
      b.raw('\n<p>Sorry, this page does not exist. ');
      b.a('/', 'Back to the home page');
      b.raw('</p>\n</body></html>\n');
      pages.push({
        loc, site, kind, status: 404, reason: 'Not Found', contentType: 'text/html; charset=utf-8', body: Buffer.from(b.html()),
        title: 'Page not found', imgs: b.imgs, watLinks: b.watLinks, watHead: { Title: 'Page not found' },
      });
    } else {
      const bin = Buffer.alloc(rng.range(200, 600));
      for (let k = 0; k < bin.length; k++) bin[k] = rng.int(256);
      const body = Buffer.concat([Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\nstream\n', 'latin1'), bin, Buffer.from('\nendstream\n%%EOF\n')]);
      const pdfLoc = { ...loc, url: loc.url.replace(/\.html$/, '.pdf') };
      pages.push({ loc: pdfLoc, site, kind, status: 200, reason: 'OK', contentType: 'application/pdf', body, title: '', imgs: [], watLinks: [], watHead: {} });
    }
  }
  return pages;
}

// ------------------------------------------------------------------------------------------------
// Expected candidates (spec §1, written from the spec, not from curation/extract.ts)

const TEXT_KEY_ORDER: readonly TextKey[] = ['alt', 'title', 'data-image-title'];

class ExpectedFile {
  private readonly seen = new Map<string, Set<string>>();
  readonly candidates: ExpectedCandidate[] = [];

  emit(url: string, texts: Array<[TextKey, string]>): void {
    const uuid = createHash('sha224').update(url, 'utf8').digest('hex').slice(0, 24);
    let seen = this.seen.get(uuid);
    if (!seen) {
      seen = new Set();
      this.seen.set(uuid, seen);
    }
    const kept: Array<[TextKey, string]> = [];
    for (const [key, text] of texts) {
      if (seen.has(text)) continue;
      seen.add(text);
      kept.push([key, text]);
    }
    if (kept.length > 0) this.candidates.push({ uuid, url, texts: kept });
  }

  /** WARC path: attributes in document order (first of duplicates), strip then drop \n \r, empty skipped. */
  fromWarcPage(page: PageModel): void {
    for (const img of page.imgs) {
      let url: string | null = null;
      const texts: Array<[TextKey, string]> = [];
      for (const [name, value] of firstValues(img.attrs)) {
        if (name !== 'src' && !TEXT_KEY_ORDER.includes(name as TextKey)) continue;
        const v = (value ?? '').trim().replace(/[\n\r]/g, '');
        if (v.length === 0) continue;
        if (name === 'src') url = img.target;
        else texts.push([name as TextKey, v]);
      }
      if (url !== null) this.emit(url, texts);
    }
  }

  /** WAT path: IMG@/src links; url joined against the page; texts in key priority, \n \r → space, stripped. */
  fromWatPage(page: PageModel): void {
    for (const img of page.imgs) {
      const first = firstValues(img.attrs);
      const src = first.get('src');
      if (src === undefined || src === null) continue;
      // Python's urlsplit drops leading spaces/controls and every \t \r \n; an empty reference is the page.
      const stripped = src.replace(/^[\x00-\x20]+/, '').replace(/[\t\r\n]/g, '');
      const url = stripped === '' ? page.loc.url : img.target;
      if (url === null) continue;
      const texts: Array<[TextKey, string]> = [];
      for (const key of TEXT_KEY_ORDER) {
        const v = first.get(key);
        if (v === undefined || v === null) continue;
        const t = v.replace(/[\n\r]/g, ' ').trim();
        if (t.length > 0) texts.push([key, t]);
      }
      this.emit(url, texts);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// WARC / WAT writing

function isoDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

interface Member {
  offset: number;
  gz: Buffer;
  inflated: number;
}

/** Collects records, each compressed as its own gzip member, with the offset of each member. */
class GzipRecordWriter {
  readonly members: Member[] = [];
  private size = 0;

  add(fields: readonly WarcFieldSpec[], block: Buffer): { headers: Array<[string, string]>; headerBytes: number; member: Member } {
    const rec = serializeRecord(fields, block);
    const gz = gzipMember(rec.bytes);
    const member = { offset: this.size, gz, inflated: rec.bytes.length };
    this.members.push(member);
    this.size += gz.length;
    return { headers: rec.fields, headerBytes: rec.header.length, member };
  }

  bytes(): Buffer {
    return Buffer.concat(this.members.map((m) => m.gz));
  }
}

function chunked(body: Buffer, rng: Rng): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos < body.length) {
    const n = Math.min(body.length - pos, rng.range(256, 4096));
    const size = rng.chance(0.3) ? n.toString(16).toUpperCase() : n.toString(16);
    const ext = rng.chance(0.05) ? ';ext=1' : '';
    parts.push(Buffer.from(`${size}${ext}\r\n`), body.subarray(pos, pos + n), Buffer.from('\r\n'));
    pos += n;
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

type Storage = 'plain' | 'crawler-gzip' | 'crawler-chunked' | 'crawler-both' | 'chunked' | 'gzip' | 'chunked-gzip';

const STORAGE: ReadonlyArray<readonly [Storage, number]> = [
  ['plain', 30], ['crawler-gzip', 25], ['crawler-chunked', 10], ['crawler-both', 10], ['chunked', 10], ['gzip', 8], ['chunked-gzip', 7],
];

interface HttpResponse {
  block: Buffer;
  headers: Array<[string, string]>;
  headerBytes: number;
  entity: Buffer;
}

function httpResponse(page: PageModel, rng: Rng, dateMs: number): HttpResponse {
  const storage: Storage = page.kind === 'pdf' ? 'plain' : rng.weighted(STORAGE);
  const headers: Array<[string, string]> = [
    ['Date', httpDate(dateMs)],
    ['Server', rng.pick(['nginx', 'Apache/2.4.57 (Debian)', 'cloudflare', 'Microsoft-IIS/10.0', 'LiteSpeed'])],
    ['Content-Type', page.contentType],
  ];
  if (page.location) headers.push(['Location', page.location]);
  if (rng.chance(0.5)) headers.push(['Cache-Control', rng.pick(['max-age=600', 'no-cache', 'public, max-age=86400'])]);
  if (rng.chance(0.4)) headers.push(['Vary', 'Accept-Encoding']);
  if (rng.chance(0.3)) headers.push(['X-Powered-By', rng.pick(['PHP/8.1.2', 'Express', 'WordPress'])]);
  let entity: Buffer = page.body;
  switch (storage) {
    case 'plain':
      headers.push(['Content-Length', String(entity.length)]);
      break;
    case 'crawler-gzip': {
      const gzLen = gzipSync(page.body).length;
      headers.push(['X-Crawler-Content-Encoding', 'gzip'], ['X-Crawler-Content-Length', String(gzLen)], ['Content-Length', String(entity.length)]);
      break;
    }
    case 'crawler-chunked':
      headers.push(['X-Crawler-Transfer-Encoding', 'chunked'], ['Content-Length', String(entity.length)]);
      break;
    case 'crawler-both':
      headers.push(['X-Crawler-Content-Encoding', 'gzip'], ['X-Crawler-Transfer-Encoding', 'chunked'], ['Content-Length', String(entity.length)]);
      break;
    case 'chunked':
      entity = chunked(page.body, rng);
      headers.push(['Transfer-Encoding', 'chunked']);
      break;
    case 'gzip':
      entity = gzipSync(page.body);
      headers.push(['Content-Encoding', 'gzip'], ['Content-Length', String(entity.length)]);
      break;
    case 'chunked-gzip':
      entity = chunked(gzipSync(page.body), rng);
      headers.push(['Content-Encoding', 'gzip'], ['Transfer-Encoding', 'chunked']);
      break;
  }
  if (rng.chance(0.3)) headers.push(['Connection', 'close']);
  const head = Buffer.from(`HTTP/1.1 ${page.status} ${page.reason}\r\n${headerLines(headers)}\r\n`, 'latin1');
  return { block: Buffer.concat([head, entity]), headers, headerBytes: head.length, entity };
}

interface WarcRecordInfo {
  type: 'warcinfo' | 'request' | 'response' | 'metadata';
  id: string;
  headers: Array<[string, string]>;
  headerBytes: number;
  block: Buffer;
  member: Member;
  page?: PageModel;
  http?: HttpResponse;
  requestHeaders?: Array<[string, string]>;
  requestPath?: string;
  metadataFields?: Array<[string, string]>;
  warcinfoFields?: Array<[string, string]>;
}

interface BuiltWarc {
  name: string;
  bytes: Buffer;
  records: WarcRecordInfo[];
  expected: ExpectedCandidate[];
  pages: PageModel[];
}

const CRAWL = 'CC-MAIN-2024-22';
const CRAWL_START = Date.UTC(2024, 4, 17, 23, 31, 22);

function shardName(shard: number): string {
  const start = CRAWL_START + shard * 3 * 3600_000;
  const stamp = (ms: number) => isoDate(ms).replace(/[-:TZ]/g, '');
  return `CC-MAIN-${stamp(start)}-${stamp(start + 3 * 3600_000)}-${String(shard).padStart(5, '0')}`;
}

type RecordAbout = Pick<WarcRecordInfo, 'page' | 'http' | 'requestHeaders' | 'requestPath' | 'metadataFields' | 'warcinfoFields'>;

function buildWarc(rng: Rng, shard: number, pages: PageModel[], seed: string): BuiltWarc {
  const name = `${shardName(shard)}.warc.gz`;
  const w = new GzipRecordWriter();
  const records: WarcRecordInfo[] = [];
  const add = (type: WarcRecordInfo['type'], id: string, fields: readonly WarcFieldSpec[], block: Buffer, about: RecordAbout): void => {
    const { headers, headerBytes, member } = w.add(fields, block);
    records.push({ type, id, headers, headerBytes, block, member, ...about });
  };
  let clock = CRAWL_START + shard * 3 * 3600_000;
  const infoId = `<urn:uuid:${rng.uuid()}>`;
  const infoFields: Array<[string, string]> = [
    ['isPartOf', CRAWL],
    ['publisher', 'metaclip-temporal sample generator (synthetic data, not a Common Crawl release)'],
    ['description', `Synthetic Common Crawl-like segment, seed=${JSON.stringify(seed)}, shard ${shard}`],
    ['operator', 'metaclip-temporal'],
    ['hostname', `ip-10-0-${shard % 256}-${rng.range(1, 254)}.ec2.internal`],
    ['software', 'metaclip-temporal scripts/samples.ts'],
    ['robots', 'checked'],
    ['format', 'WARC File Format 1.0'],
    ['conformsTo', 'https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.0/'],
  ];
  const info = warcinfo({ date: isoDate(clock), filename: name, id: infoId, info: infoFields });
  add('warcinfo', infoId, info.fields, info.block, { warcinfoFields: infoFields });

  const expected = new ExpectedFile();
  for (const page of pages) {
    clock += rng.range(50, 4000);
    const date = isoDate(clock);
    const ip = `${rng.range(11, 223)}.${rng.range(0, 255)}.${rng.range(0, 255)}.${rng.range(1, 254)}`;
    const url = new URL(page.loc.url);
    const path = url.pathname + url.search;
    // The request, response and metadata records of a capture start with the same fields.
    const addCapture = (type: 'request' | 'response' | 'metadata', id: string, contentType: string, more: WarcField[], block: Buffer, about: RecordAbout): void => {
      add(type, id, [
        ['WARC-Type', type], ['WARC-Date', date], ['WARC-Record-ID', id], CONTENT_LENGTH, ['Content-Type', contentType], ['WARC-Warcinfo-ID', infoId],
        ...more,
      ], block, { page, ...about });
    };
    // request
    const reqHeaders: Array<[string, string]> = [
      ['User-Agent', 'SampleBot/1.0 (synthetic; metaclip-temporal)'],
      ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
      ['Accept-Language', 'en-US,en;q=0.5'],
      ['Accept-Encoding', 'br,gzip'],
      ['Host', url.host],
      ['Connection', 'Keep-Alive'],
    ];
    const reqBlock = Buffer.from(`GET ${path} HTTP/1.1\r\n${headerLines(reqHeaders)}\r\n`, 'latin1');
    const reqId = `<urn:uuid:${rng.uuid()}>`;
    addCapture('request', reqId, 'application/http; msgtype=request', [['WARC-IP-Address', ip], ['WARC-Target-URI', page.loc.url]], reqBlock,
      { requestHeaders: reqHeaders, requestPath: path });
    // response
    const http = httpResponse(page, rng, clock);
    const respId = `<urn:uuid:${rng.uuid()}>`;
    addCapture('response', respId, 'application/http; msgtype=response', [
      ['WARC-Concurrent-To', reqId], ['WARC-IP-Address', ip], ['WARC-Target-URI', page.loc.url], ['WARC-Payload-Digest', sha1Base32(page.body)],
      ['WARC-Block-Digest', sha1Base32(http.block)],
      ['WARC-Identified-Payload-Type', page.kind === 'pdf' ? 'application/pdf' : 'text/html'],
    ], http.block, { http });
    expected.fromWarcPage(page);
    // metadata
    const fields: Array<[string, string]> = [['fetchTimeMs', String(rng.range(20, 3000))]];
    if (page.kind !== 'pdf') fields.push(['charset-detected', page.site.charset === 'utf-8' ? 'UTF-8' : 'ISO-8859-1']);
    if (page.kind === 'html') {
      fields.push(['languages-cld2', JSON.stringify({ reliable: true, 'text-bytes': page.body.length, languages: [{ code: page.site.lang, 'text-covered': 0.97, score: 900.5 }] })]);
    }
    const metaId = `<urn:uuid:${rng.uuid()}>`;
    addCapture('metadata', metaId, 'application/warc-fields', [['WARC-Concurrent-To', respId], ['WARC-Target-URI', page.loc.url]], warcFieldsBlock(fields),
      { metadataFields: fields });
  }
  return { name, bytes: w.bytes(), records, expected: expected.candidates, pages };
}

function headerObject(headers: Array<[string, string]>): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, v] of headers) if (!(k in o)) o[k] = v;
  return o;
}

/** The WAT JSON for one WARC record (the shape of CC's ia-web-commons output). */
function watJson(rec: WarcRecordInfo, warcName: string): string {
  const m = rec.member;
  const container = {
    Filename: warcName,
    Compressed: true,
    Offset: String(m.offset),
    'Gzip-Metadata': {
      'Deflate-Length': String(m.gz.length - 18),
      'Header-Length': '10',
      'Footer-Length': '8',
      'Inflated-CRC': String(m.gz.readInt32LE(m.gz.length - 8)),
      'Inflated-Length': String(m.inflated),
    },
  };
  let payload: Record<string, unknown>;
  if (rec.type === 'warcinfo') {
    payload = {
      'Actual-Content-Type': 'application/warc-fields',
      'WARC-Info-Metadata': headerObject(rec.warcinfoFields ?? []),
      'Actual-Content-Length': String(rec.block.length),
      'Trailing-Slop-Length': '0',
    };
  } else if (rec.type === 'request') {
    payload = {
      'Actual-Content-Type': 'application/http; msgtype=request',
      'HTTP-Request-Metadata': {
        'Request-Message': { Method: 'GET', Path: rec.requestPath, Version: 'HTTP/1.1' },
        'Headers-Length': String(rec.block.length),
        Headers: headerObject(rec.requestHeaders ?? []),
        'Entity-Length': '0',
        'Entity-Digest': sha1Base32(Buffer.alloc(0)),
        'Entity-Trailing-Slop-Length': '0',
      },
      'Actual-Content-Length': String(rec.block.length),
      'Trailing-Slop-Length': '4',
    };
  } else if (rec.type === 'response') {
    const page = rec.page as PageModel;
    const http = rec.http as HttpResponse;
    const resp: Record<string, unknown> = {
      'Response-Message': { Version: 'HTTP/1.1', Status: String(page.status), Reason: page.reason },
      'Headers-Length': String(http.headerBytes),
      Headers: headerObject(http.headers),
      'Entity-Length': String(http.entity.length),
      'Entity-Digest': sha1Base32(http.entity),
      'Entity-Trailing-Slop-Length': '0',
    };
    if (page.kind !== 'pdf') resp['HTML-Metadata'] = { Head: page.watHead, Links: page.watLinks };
    payload = {
      'Actual-Content-Type': 'application/http; msgtype=response',
      'HTTP-Response-Metadata': resp,
      'Actual-Content-Length': String(rec.block.length),
      'Trailing-Slop-Length': '4',
    };
  } else {
    payload = {
      'Actual-Content-Type': 'application/metadata-fields',
      'WARC-Metadata-Metadata': { 'Metadata-Records': (rec.metadataFields ?? []).map(([Name, Value]) => ({ Name, Value })) },
      'Actual-Content-Length': String(rec.block.length),
      'Trailing-Slop-Length': '0',
    };
  }
  const envelope = {
    Format: 'WARC',
    'WARC-Header-Length': String(rec.headerBytes),
    'Block-Digest': sha1Base32(rec.block),
    'Actual-Content-Length': String(rec.block.length),
    'WARC-Header-Metadata': headerObject(rec.headers),
    'Payload-Metadata': payload,
  };
  return JSON.stringify({ Container: container, Envelope: envelope });
}

interface BuiltWat {
  name: string;
  bytes: Buffer;
  records: number;
  /** Gzip members: [0] is the warcinfo, [k + 1] is derived from WARC record k. */
  members: Member[];
  expected: ExpectedCandidate[];
}

function buildWat(rng: Rng, shard: number, warc: BuiltWarc): BuiltWat {
  const name = `${shardName(shard)}.warc.wat.gz`;
  const w = new GzipRecordWriter();
  let clock = CRAWL_START + shard * 3 * 3600_000 + 6 * 3600_000;
  const fields: Array<[string, string]> = [
    ['Software-Info', 'metaclip-temporal scripts/samples.ts (synthetic, shaped like ia-web-commons WAT output)'],
    ['Extracted-Date', httpDate(clock)],
    ['ip', `10.0.${shard % 256}.${rng.range(1, 254)}`],
    ['hostname', `ip-10-0-${shard % 256}-${rng.range(1, 254)}.ec2.internal`],
    ['format', 'WARC File Format 1.0'],
    ['conformsTo', 'http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf'],
  ];
  const info = warcinfo({ date: isoDate(clock), filename: name, id: `<urn:uuid:${rng.uuid()}>`, info: fields });
  w.add(info.fields, info.block);
  const expected = new ExpectedFile();
  for (const rec of warc.records) {
    clock += rng.range(1, 50);
    const json = Buffer.from(watJson(rec, warc.name), 'utf8');
    const target = rec.type === 'warcinfo' ? warc.name : (rec.page as PageModel).loc.url;
    const warcDate = rec.headers.find(([k]) => k === 'WARC-Date')?.[1] ?? isoDate(clock);
    w.add([
      ['WARC-Type', 'metadata'], ['WARC-Target-URI', target], ['WARC-Date', warcDate],
      ['WARC-Record-ID', `<urn:uuid:${rng.uuid()}>`], ['WARC-Refers-To', rec.id], ['Content-Type', 'application/json'],
    ], json);
    if (rec.type === 'response' && rec.page && rec.page.kind !== 'pdf') expected.fromWatPage(rec.page);
  }
  return { name, bytes: w.bytes(), records: w.members.length, members: w.members, expected: expected.candidates };
}

// ------------------------------------------------------------------------------------------------
// Public API

function atomicWrite(path: string, data: Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function checkCount(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer from ${min} to ${max}, got ${v}`);
  return v;
}

interface Shard {
  warc: BuiltWarc;
  wat: BuiltWat;
}

/** Builds shard `index` in memory (pure: depends only on seed, index, pages and base). */
function buildShard(seed: string, index: number, pages: number, base: Base): Shard {
  const world = makeWorld(seed, base);
  const rng = new Rng(`${seed}/shard/${index}`);
  const models = makePages(rng.fork('pages'), world, pages);
  const warc = buildWarc(rng.fork('warc'), index, models, seed);
  const wat = buildWat(rng.fork('wat'), index, warc);
  return { warc, wat };
}

/** Writes `shards` sample shards into `outDir`; same options → byte-identical files. */
export async function generateSamples(opts: SampleOptions): Promise<SamplesResult> {
  const seed = String(opts.seed ?? DEFAULT_SEED);
  const shards = checkCount('shards', opts.shards ?? DEFAULT_SHARDS, 1, 100_000);
  const pages = checkCount('pages', opts.pages ?? DEFAULT_PAGES, 1, 1_000_000);
  const base = parseImageBase(opts.imageBase ?? DEFAULT_IMAGE_BASE);
  const formats = new Set(opts.formats ?? ['warc', 'wat']);
  if (formats.size === 0) throw new Error('formats must name at least one of warc, wat');
  for (const f of formats) if (f !== 'warc' && f !== 'wat') throw new Error(`unknown sample format ${JSON.stringify(f)} (warc, wat)`);
  mkdirSync(opts.outDir, { recursive: true });

  const result: SamplesResult = { files: [], details: [], expected: {} };
  for (let i = 0; i < shards; i++) {
    const { warc, wat } = buildShard(seed, i, pages, base);
    const imgTags = warc.pages.reduce((n, p) => n + p.imgs.length, 0);
    const outputs: Array<[SampleFormat, string, Buffer, number, ExpectedCandidate[]]> = [];
    if (formats.has('warc')) outputs.push(['warc', warc.name, warc.bytes, warc.records.length, warc.expected]);
    if (formats.has('wat')) outputs.push(['wat', wat.name, wat.bytes, wat.records, wat.expected]);
    for (const [format, name, bytes, records, expected] of outputs) {
      const path = join(opts.outDir, name);
      atomicWrite(path, bytes);
      result.files.push(path);
      result.expected[path] = expected;
      result.details.push({ path, format, shard: i, bytes: bytes.length, records, pages, imgTags, expected });
    }
    // Let other work run between shards (generation is synchronous per shard).
    await new Promise((resolve) => setImmediate(resolve));
  }
  return result;
}

export interface CorruptShardOptions {
  seed?: string | number;
  pages?: number;
  imageBase?: string;
  /** Fraction of the compressed bytes kept (the cut lands inside a response record's gzip member). */
  keep?: number;
}

export interface CorruptShard {
  path: string;
  bytes: number;
  /** Size of the intact file the truncated one was cut from. */
  originalBytes: number;
  /** Records whose gzip member is complete in the truncated file. */
  completeRecords: number;
  /** Candidates (lid off) of the complete records: what a reader can recover before the failure. */
  expectedBeforeFailure: ExpectedCandidate[];
}

/**
 * Writes a truncated gzip WARC (or WAT, when `path` ends in .wat.gz): a valid shard cut in the middle of
 * a response record's gzip member, so that readers see a gzip "unexpected end of file" after the
 * records before it. Synchronous: the file exists when it returns (awaiting the result also works).
 */
export function writeCorruptShard(path: string, opts: CorruptShardOptions = {}): CorruptShard {
  const seed = `${String(opts.seed ?? DEFAULT_SEED)}/corrupt`;
  const pages = checkCount('pages', opts.pages ?? 8, 2, 10_000);
  const base = parseImageBase(opts.imageBase ?? DEFAULT_IMAGE_BASE);
  const keep = opts.keep ?? 0.6;
  if (!(keep > 0 && keep < 1)) throw new Error(`keep must be between 0 and 1 (exclusive), got ${keep}`);
  const { warc, wat } = buildShard(seed, 0, pages, base);
  const isWat = /\.wat(\.gz)?$/.test(basename(path));
  const bytes = isWat ? wat.bytes : warc.bytes;
  // The gzip member of each WARC record in the chosen file (WAT member k + 1 is derived from WARC record k).
  const members = warc.records.map((r, k) => (isWat ? wat.members[k + 1] : r.member));
  // Cut inside the response member that starts closest to keep * size.
  const wantAt = Math.floor(bytes.length * keep);
  let cutRecord = -1;
  for (let k = 0; k < warc.records.length; k++) {
    if (warc.records[k].type !== 'response') continue;
    if (cutRecord < 0 || Math.abs(members[k].offset - wantAt) < Math.abs(members[cutRecord].offset - wantAt)) cutRecord = k;
  }
  const m = members[cutRecord];
  const cut = m.offset + Math.max(11, Math.floor(m.gz.length / 2));
  const truncated = bytes.subarray(0, cut);

  const expected = new ExpectedFile();
  for (let k = 0; k < cutRecord; k++) {
    const r = warc.records[k];
    if (r.type === 'response' && r.page && r.page.kind !== 'pdf') {
      if (isWat) expected.fromWatPage(r.page);
      else expected.fromWarcPage(r.page);
    }
  }
  atomicWrite(path, Buffer.from(truncated));
  return {
    path,
    bytes: truncated.length,
    originalBytes: bytes.length,
    completeRecords: isWat ? cutRecord + 1 : cutRecord, // the WAT has its warcinfo record first
    expectedBeforeFailure: expected.candidates,
  };
}
