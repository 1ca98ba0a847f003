/**
 * The JS header reader must answer what libvips answers (sharp's metadata) whenever it answers at all, and
 * must answer for the plain JPEGs and PNGs that make up most of the web (otherwise it saves nothing).
 */
import { crc32, deflateSync } from 'node:zlib';
import fc from 'fast-check';
import sharp from 'sharp';
import { parseJpegHeader, parsePngHeader, type ImageHeaderFields } from '../curation/image-header';

interface Variant {
  name: string;
  bytes: Buffer;
  /** The reader is expected to answer (not defer to libvips). */
  answers: boolean;
}

function noise(width: number, height: number, channels: number, seed: number): Buffer {
  const b = Buffer.alloc(width * height * channels);
  let s = seed >>> 0;
  for (let i = 0; i < b.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = (s >>> 24) ^ ((i / channels / width) * 4);
  }
  return b;
}

const raw = (width: number, height: number, channels: 1 | 2 | 3 | 4, seed = 1) =>
  sharp(noise(width, height, channels, seed), { raw: { width, height, channels } });

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG assembled by hand: any colour type / depth, extra chunks before IDAT (PLTE first, then tRNS). */
function handPng(width: number, height: number, colourType: number, depth: number, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colourType;
  const samples = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType]!;
  const rowBytes = Math.ceil((width * samples * depth) / 8);
  const rows = Buffer.alloc((rowBytes + 1) * height, 0x11);
  for (let y = 0; y < height; y++) rows[y * (rowBytes + 1)] = 0;
  const chunks = [pngChunk('IHDR', ihdr), ...extra];
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks,
    pngChunk('IDAT', deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

async function variants(): Promise<Variant[]> {
  const v: Variant[] = [];
  for (const [w, h] of [[1, 1], [17, 9], [640, 480], [301, 1023]]) {
    v.push({ name: `jpeg ${w}x${h}`, bytes: await raw(w, h, 3).jpeg({ quality: 90 }).toBuffer(), answers: true });
    v.push({ name: `progressive jpeg ${w}x${h}`, bytes: await raw(w, h, 3).jpeg({ progressive: true }).toBuffer(), answers: true });
    v.push({ name: `png rgb ${w}x${h}`, bytes: await raw(w, h, 3).png().toBuffer(), answers: true });
    v.push({ name: `png rgba ${w}x${h}`, bytes: await raw(w, h, 4).png().toBuffer(), answers: true });
  }
  v.push({ name: 'jpeg grey', bytes: await raw(64, 48, 1).jpeg().toBuffer(), answers: true });
  v.push({ name: 'jpeg 4:4:4 q100', bytes: await raw(64, 48, 3).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer(), answers: true });
  v.push({ name: 'jpeg mozjpeg', bytes: await raw(64, 48, 3).jpeg({ mozjpeg: true }).toBuffer(), answers: true });
  for (let o = 1; o <= 8; o++) {
    v.push({ name: `jpeg exif orientation ${o}`, bytes: await raw(60, 40, 3).withMetadata({ orientation: o }).jpeg().toBuffer(), answers: true });
  }
  v.push({ name: 'jpeg with exif, no orientation', bytes: await raw(60, 40, 3).withExif({ IFD0: { Copyright: 'x' } }).jpeg().toBuffer(), answers: true });
  v.push({ name: 'jpeg cmyk', bytes: await raw(40, 30, 3).toColourspace('cmyk').jpeg().toBuffer(), answers: false });
  v.push({ name: 'png grey', bytes: await raw(50, 20, 1).png().toBuffer(), answers: true });
  v.push({ name: 'png grey+alpha', bytes: await raw(50, 20, 2).png().toBuffer(), answers: true });
  v.push({ name: 'png 16-bit', bytes: await raw(50, 20, 3).toColourspace('rgb16').png().toBuffer(), answers: true });
  v.push({ name: 'png interlaced', bytes: await raw(50, 20, 3).png({ progressive: true }).toBuffer(), answers: true });
  v.push({ name: 'png palette', bytes: await raw(50, 20, 3).png({ palette: true, colours: 16 }).toBuffer(), answers: true });
  v.push({ name: 'png palette + transparency', bytes: await raw(50, 20, 4).png({ palette: true, colours: 16 }).toBuffer(), answers: true });
  v.push({ name: 'png with exif orientation 6', bytes: await raw(50, 20, 3).withMetadata({ orientation: 6 }).png().toBuffer(), answers: false });
  const plte = pngChunk('PLTE', Buffer.from([0, 0, 0, 255, 255, 255]));
  v.push({ name: 'hand png grey + tRNS', bytes: handPng(9, 7, 0, 8, [pngChunk('tRNS', Buffer.from([0, 17]))]), answers: true });
  v.push({ name: 'hand png rgb + tRNS', bytes: handPng(9, 7, 2, 8, [pngChunk('tRNS', Buffer.from([0, 17, 0, 17, 0, 17]))]), answers: true });
  v.push({ name: 'hand png palette 1-bit + tRNS', bytes: handPng(9, 7, 3, 1, [plte, pngChunk('tRNS', Buffer.from([0]))]), answers: true });
  v.push({ name: 'hand png palette 1-bit', bytes: handPng(9, 7, 3, 1, [plte]), answers: true });
  v.push({ name: 'hand png grey 2-bit', bytes: handPng(9, 7, 0, 2), answers: true });
  return v;
}

async function libvipsHeader(b: Buffer): Promise<ImageHeaderFields | null> {
  try {
    const m = await sharp(b, { limitInputPixels: false, failOn: 'truncated' }).metadata();
    return { width: m.width, height: m.height, orientation: m.orientation ?? 1, hasAlpha: m.hasAlpha === true };
  } catch {
    return null;
  }
}

const parse = (b: Buffer) => (b[0] === 0xff ? parseJpegHeader(b) : parsePngHeader(b));

describe('JS image header reader', () => {
  let corpus: Variant[];
  beforeAll(async () => {
    corpus = await variants();
  });

  test('answers for plain JPEG and PNG, defers the rest, and agrees with libvips field by field', async () => {
    for (const v of corpus) {
      const ours = parse(v.bytes);
      const theirs = await libvipsHeader(v.bytes);
      expect({ name: v.name, answers: ours !== null }).toEqual({ name: v.name, answers: v.answers });
      expect(theirs).not.toBeNull();
      if (ours) expect({ name: v.name, ...ours }).toEqual({ name: v.name, ...theirs });
    }
  });

  test('orientation 6 swaps nothing itself (the header keeps the stored size) and is read from the Exif APP1', () => {
    const v = corpus.find((x) => x.name === 'jpeg exif orientation 6')!;
    expect(parseJpegHeader(v.bytes)).toEqual({ width: 60, height: 40, orientation: 6, hasAlpha: false });
  });

  test('a bad IHDR CRC, a missing frame header and junk before the first marker are deferred to libvips', async () => {
    const png = Buffer.from(corpus.find((x) => x.name === 'png rgb 17x9')!.bytes);
    png[29] ^= 0xff;
    expect(parsePngHeader(png)).toBeNull();
    expect(parseJpegHeader(Buffer.from([0xff, 0xd8, 0xff, 0xd9]))).toBeNull();
    const jpeg = Buffer.from(corpus.find((x) => x.name === 'jpeg 17x9')!.bytes);
    expect(parseJpegHeader(Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0x00, 0x00]), jpeg.subarray(2)]))).toBeNull();
  });

  test('damaged and truncated files: whenever both answer, they agree', async () => {
    const seeds = corpus.filter((v) => v.answers && v.bytes.length < 20_000);
    let bothAnswered = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: seeds.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.nat(), { nil: undefined }),
        async (which, edits, cut) => {
          const b = Buffer.from(seeds[which].bytes);
          // Damage the header region, where the reader looks.
          for (const [at, value] of edits) b[at % Math.min(b.length, 400)] = value;
          const input = cut === undefined ? b : b.subarray(0, cut % b.length);
          const ours = parse(input);
          if (!ours) return;
          const theirs = await libvipsHeader(input);
          if (!theirs) return; // libvips refuses; the decode that follows classifies it
          bothAnswered++;
          expect(ours).toEqual(theirs);
        },
      ),
      { numRuns: 400, seed: 20261202 },
    );
    expect(bothAnswered).toBeGreaterThan(100);
  });
});
