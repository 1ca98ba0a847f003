import { createHash } from 'node:crypto';
import { createDeflate, crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { ConfigError } from '../curation/errors';
import {
  DEFAULT_IMAGE_OPTIONS,
  FLAT_HASH,
  hammingDistance,
  perceptualHash,
  phashFromPixels,
  planResize,
  processImage,
  RAW_CONTENT_MAX_PIXELS,
  validateImageOptions,
  type ImageOptions,
  type ProcessedImage,
  type ProcessedImageOk,
  type ResizeMode,
} from '../curation/image';

// ------------------------------------------------------------------------------------------- fixtures

type RGB = { r: number; g: number; b: number };
const RED: RGB = { r: 255, g: 0, b: 0 };

function solid(width: number, height: number, c: RGB = RED): Sharp {
  return sharp({ create: { width, height, channels: 3, background: c } });
}

/** A deterministic photo-like picture (gradient, overlapping shapes, mild noise) drawn from `seed`. */
async function photo(width: number, height: number, seed: number): Promise<Buffer> {
  let s = seed * 7919 + 17;
  const rnd = () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  const col = () => `rgb(${Math.floor(rnd() * 256)},${Math.floor(rnd() * 256)},${Math.floor(rnd() * 256)})`;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`
    + `<defs><linearGradient id="g" x1="0" y1="0" x2="${rnd().toFixed(2)}" y2="1"><stop offset="0" stop-color="${col()}"/>`
    + `<stop offset="1" stop-color="${col()}"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/>`;
  for (let i = 0; i < 14; i++) {
    const x = rnd() * width;
    const y = rnd() * height;
    const r = (0.05 + rnd() * 0.25) * Math.min(width, height);
    svg += i % 2
      ? `<circle cx="${x}" cy="${y}" r="${r}" fill="${col()}" fill-opacity="0.8"/>`
      : `<rect x="${x - r}" y="${y - r / 2}" width="${2 * r}" height="${r}" fill="${col()}" fill-opacity="0.8"/>`;
  }
  svg += '</svg>';
  const { data, info } = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    data[i] = Math.max(0, Math.min(255, data[i] + ((s >> 16) % 9) - 4));
  }
  return sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function ihdr(width: number, height: number, bitDepth: number, colourType: number): Buffer {
  const h = Buffer.alloc(13);
  h.writeUInt32BE(width, 0);
  h.writeUInt32BE(height, 4);
  h[8] = bitDepth;
  h[9] = colourType;
  return pngChunk('IHDR', h);
}

/** A valid 1-bit greyscale PNG of `side`² black pixels, deflated row by row (30000² is ≈ 110 kB on disk). */
async function solidPngBomb(side: number): Promise<Buffer> {
  const row = Buffer.alloc(1 + Math.ceil(side / 8)); // filter byte 0 + zero bits
  const rows = 1000;
  const block = Buffer.concat(Array.from({ length: rows }, () => row));
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise<void>((resolve, reject) => {
    deflate.on('end', resolve);
    deflate.on('error', reject);
  });
  for (let y = 0; y < side; y += rows) {
    const n = Math.min(rows, side - y);
    if (!deflate.write(n === rows ? block : block.subarray(0, n * row.length))) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  return Buffer.concat([PNG_SIG, ihdr(side, side, 1, 0), pngChunk('IDAT', Buffer.concat(parts)), pngChunk('IEND', Buffer.alloc(0))]);
}

async function rawOf(b: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(b).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function pixel(r: { data: Buffer; width: number; channels: number }, x: number, y: number): number[] {
  const i = (y * r.width + x) * r.channels;
  return Array.from(r.data.subarray(i, i + Math.min(3, r.channels)));
}

function ok(r: ProcessedImage): ProcessedImageOk {
  if (!r.ok) throw new Error(`expected success, got ${r.reason}: ${r.detail}`);
  return r;
}

function near(a: number[], b: number[], tol: number): boolean {
  return a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tol);
}

// ---------------------------------------------------------------------------------------------- tests

describe('validateImageOptions', () => {
  test('defaults are img2dataset 1.47.0 download() defaults plus the guards', () => {
    const o = validateImageOptions();
    expect(o).toEqual({
      resizeMode: 'border', imageSize: 256, resizeOnlyIfBigger: false,
      upscaleInterpolation: 'lanczos', downscaleInterpolation: 'area',
      encodeFormat: 'jpg', encodeQuality: 95, skipReencode: false,
      minImageSize: 0, maxImageArea: Infinity, maxAspectRatio: Infinity,
      maxPixels: 89_478_485, autoOrient: true,
    });
    expect(DEFAULT_IMAGE_OPTIONS).toEqual(o);
  });

  test('png takes a compression level and defaults to 1; webp and jpg keep 95', () => {
    expect(validateImageOptions({ encodeFormat: 'png' }).encodeQuality).toBe(1);
    expect(validateImageOptions({ encodeFormat: 'webp' }).encodeQuality).toBe(95);
    expect(validateImageOptions({ encodeFormat: 'png', encodeQuality: 9 }).encodeQuality).toBe(9);
    expect(validateImageOptions({ encodeQuality: undefined }).encodeQuality).toBe(95);
  });

  test.each<[Partial<ImageOptions> | Record<string, unknown>, RegExp]>([
    [{ resizeMode: 'stretch' as ResizeMode }, /resizeMode must be one of no, border/],
    [{ imageSize: 0 }, /imageSize must be an integer from 1/],
    [{ imageSize: 12.5 }, /imageSize/],
    [{ encodeFormat: 'gif' as 'jpg' }, /encodeFormat must be one of jpg, webp, png/],
    [{ encodeFormat: 'png', encodeQuality: 95 }, /for png, encodeQuality is the compression level .* 0 to 9; got 95/],
    [{ encodeQuality: 0 }, /for jpg, encodeQuality must be an integer from 1 to 100/],
    [{ encodeQuality: 101 }, /for jpg/],
    [{ downscaleInterpolation: 'box' as 'area' }, /downscaleInterpolation must be one of nearest, linear/],
    [{ minImageSize: -1 }, /minImageSize/],
    [{ maxImageArea: 0 }, /maxImageArea must be a positive number/],
    [{ maxAspectRatio: 0.5 }, /maxAspectRatio must be a number ≥ 1/],
    [{ maxPixels: 0 }, /maxPixels must be a positive integer/],
    [{ autoOrient: 'yes' as unknown as boolean }, /autoOrient must be true or false/],
    [{ image_size: 256 }, /unknown image option "image_size"/],
  ])('rejects %j', (o, message) => {
    expect(() => validateImageOptions(o as Partial<ImageOptions>)).toThrow(ConfigError);
    expect(() => validateImageOptions(o as Partial<ImageOptions>)).toThrow(message);
  });

  test('processImage throws ConfigError for bad options (not a classified image failure)', async () => {
    await expect(processImage(Buffer.from('x'), { imageSize: -3 })).rejects.toThrow(ConfigError);
  });
});

describe('planResize (img2dataset geometry)', () => {
  const plan = (w: number, h: number, resizeMode: ResizeMode, resizeOnlyIfBigger = false, imageSize = 256) => {
    const p = planResize(w, h, { ...DEFAULT_IMAGE_OPTIONS, resizeMode, resizeOnlyIfBigger, imageSize });
    return [p.width, p.height];
  };

  test.each<[number, number, ResizeMode, boolean, [number, number]]>([
    // landscape, portrait, small; without and with resizeOnlyIfBigger
    [1024, 768, 'no', false, [1024, 768]],
    [1024, 768, 'border', false, [256, 256]],
    [1024, 768, 'keep_ratio', false, [341, 256]],
    [1024, 768, 'keep_ratio_largest', false, [256, 192]],
    [1024, 768, 'center_crop', false, [256, 256]],
    [300, 600, 'border', false, [256, 256]],
    [300, 600, 'keep_ratio', false, [256, 512]],
    [300, 600, 'keep_ratio_largest', false, [128, 256]],
    [300, 600, 'center_crop', false, [256, 256]],
    [100, 50, 'border', false, [256, 256]],
    [100, 50, 'keep_ratio', false, [512, 256]],
    [100, 50, 'keep_ratio_largest', false, [256, 128]],
    [100, 50, 'center_crop', false, [256, 256]],
    [100, 50, 'border', true, [100, 50]],
    [100, 50, 'keep_ratio', true, [100, 50]],
    [100, 50, 'keep_ratio_largest', true, [100, 50]],
    [100, 50, 'center_crop', true, [100, 50]],
    [1024, 768, 'border', true, [256, 256]],
    [1024, 768, 'keep_ratio', true, [341, 256]],
    // only-if-bigger looks at the governing side: the smallest for keep_ratio/center_crop, the largest otherwise
    [300, 200, 'keep_ratio', true, [300, 200]],
    [300, 200, 'center_crop', true, [300, 200]],
    [300, 200, 'keep_ratio_largest', true, [256, 171]],
    [300, 200, 'border', true, [256, 256]],
    // exactly imageSize on the governing side is "not bigger": nothing at all happens (no crop, no pad)
    [256, 400, 'center_crop', true, [256, 400]],
    [256, 400, 'center_crop', false, [256, 256]],
    // extreme aspect ratios keep at least one pixel
    [10000, 3, 'keep_ratio_largest', false, [256, 1]],
  ])('%i x %i %s onlyIfBigger=%s -> %j', (w, h, mode, rob, expected) => {
    expect(plan(w, h, mode, rob)).toEqual(expected);
  });

  test("sides are rounded like Python's round(): halves to even", () => {
    // 512x5 at 256: 5 * 0.5 = 2.5 -> 2 (Math.round would give 3); 512x7: 3.5 -> 4
    expect(plan(512, 5, 'keep_ratio_largest')).toEqual([256, 2]);
    expect(plan(512, 7, 'keep_ratio_largest')).toEqual([256, 4]);
  });

  test('border padding puts the odd pixel after; center_crop offsets are floored; interpolation follows the direction', () => {
    const p = planResize(1024, 765, { ...DEFAULT_IMAGE_OPTIONS });
    expect(p.resize).toEqual({ width: 256, height: 191, interpolation: 'area' });
    expect(p.pad).toEqual({ top: 32, bottom: 33, left: 0, right: 0 });
    const c = planResize(901, 300, { ...DEFAULT_IMAGE_OPTIONS, resizeMode: 'center_crop' });
    expect(c.resize).toEqual({ width: 769, height: 256, interpolation: 'area' });
    expect(c.crop).toEqual({ left: 256, top: 0, width: 256, height: 256 });
    expect(planResize(100, 50, { ...DEFAULT_IMAGE_OPTIONS }).resize?.interpolation).toBe('lanczos');
  });
});

describe('processImage: resize modes', () => {
  let landscape: Buffer;
  let portrait: Buffer;
  let small: Buffer;
  beforeAll(async () => {
    landscape = await photo(1024, 768, 1);
    portrait = await photo(300, 600, 2);
    small = await photo(100, 50, 3);
  });

  const modes: ResizeMode[] = ['no', 'border', 'keep_ratio', 'keep_ratio_largest', 'center_crop'];
  test.each(modes)('%s gives the planned size for landscape, portrait and small images', async (mode) => {
    for (const [input, w, h] of [[() => landscape, 1024, 768], [() => portrait, 300, 600], [() => small, 100, 50]] as const) {
      for (const resizeOnlyIfBigger of [false, true]) {
        const opts = { resizeMode: mode, resizeOnlyIfBigger };
        const r = ok(await processImage(input(), opts));
        const expected = planResize(w, h, validateImageOptions(opts));
        expect([r.width, r.height]).toEqual([expected.width, expected.height]);
        expect([r.originalWidth, r.originalHeight]).toEqual([w, h]);
        const m = await sharp(r.bytes).metadata();
        expect([m.format, m.width, m.height]).toEqual(['jpeg', r.width, r.height]);
      }
    }
  });

  test('border pads a landscape image to a white square, 32 rows above and 33 below', async () => {
    const input = await solid(1024, 765).png().toBuffer();
    const r = ok(await processImage(input, { encodeFormat: 'png' }));
    expect([r.width, r.height]).toEqual([256, 256]);
    const px = await rawOf(r.bytes);
    for (const x of [0, 128, 255]) {
      expect(pixel(px, x, 0)).toEqual([255, 255, 255]);
      expect(pixel(px, x, 31)).toEqual([255, 255, 255]);
      expect(pixel(px, x, 32)).toEqual([255, 0, 0]);
      expect(pixel(px, x, 222)).toEqual([255, 0, 0]);
      expect(pixel(px, x, 223)).toEqual([255, 255, 255]);
      expect(pixel(px, x, 255)).toEqual([255, 255, 255]);
    }
  });

  test('border pads a portrait image left and right', async () => {
    const input = await solid(300, 600, { r: 0, g: 0, b: 255 }).png().toBuffer();
    const px = await rawOf(ok(await processImage(input, { encodeFormat: 'png' })).bytes);
    expect(pixel(px, 63, 100)).toEqual([255, 255, 255]);
    expect(pixel(px, 64, 100)).toEqual([0, 0, 255]);
    expect(pixel(px, 191, 100)).toEqual([0, 0, 255]);
    expect(pixel(px, 192, 100)).toEqual([255, 255, 255]);
  });

  test('center_crop is square and keeps the centre', async () => {
    // three 300-wide bands red | green | blue -> scaled to 768x256 -> the centre 256 columns are the green band
    const bands = await sharp({ create: { width: 900, height: 300, channels: 3, background: RED } })
      .composite([
        { input: await solid(300, 300, { r: 0, g: 255, b: 0 }).png().toBuffer(), left: 300, top: 0 },
        { input: await solid(300, 300, { r: 0, g: 0, b: 255 }).png().toBuffer(), left: 600, top: 0 },
      ])
      .png()
      .toBuffer();
    const r = ok(await processImage(bands, { resizeMode: 'center_crop', encodeFormat: 'png' }));
    expect([r.width, r.height]).toEqual([256, 256]);
    const px = await rawOf(r.bytes);
    for (const [x, y] of [[2, 2], [128, 128], [253, 253]]) expect(near(pixel(px, x, y), [0, 255, 0], 8)).toBe(true);
  });

  test('keep_ratio_largest on a portrait, keep_ratio upscaling a small image', async () => {
    const a = ok(await processImage(portrait, { resizeMode: 'keep_ratio_largest' }));
    expect([a.width, a.height]).toEqual([128, 256]);
    const b = ok(await processImage(small, { resizeMode: 'keep_ratio', imageSize: 64 }));
    expect([b.width, b.height]).toEqual([128, 64]);
  });
});

describe('processImage: decoding details', () => {
  test('EXIF orientation is applied by default; autoOrient=false keeps the stored geometry (img2dataset)', async () => {
    const rotated = await solid(60, 40).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const a = ok(await processImage(rotated, { resizeMode: 'no' }));
    expect([a.originalWidth, a.originalHeight, a.width, a.height]).toEqual([40, 60, 40, 60]);
    const b = ok(await processImage(rotated, { resizeMode: 'no', autoOrient: false }));
    expect([b.originalWidth, b.originalHeight, b.width, b.height]).toEqual([60, 40, 60, 40]);
    const c = ok(await processImage(rotated, { resizeMode: 'keep_ratio_largest', imageSize: 30 }));
    expect([c.width, c.height]).toEqual([20, 30]);
  });

  test('alpha is composited over white for jpg (and for png: img2dataset drops alpha for every format)', async () => {
    const rgba = (alpha: number) => sharp({ create: { width: 40, height: 40, channels: 4, background: { r: 0, g: 0, b: 0, alpha } } }).png().toBuffer();
    const clear = await rawOf(ok(await processImage(await rgba(0), { resizeMode: 'no' })).bytes);
    expect(near(pixel(clear, 20, 20), [255, 255, 255], 2)).toBe(true);
    const half = ok(await processImage(await rgba(0.5), { resizeMode: 'no', encodeFormat: 'png' }));
    const halfPx = await rawOf(half.bytes);
    expect(halfPx.channels).toBe(3);
    expect(near(pixel(halfPx, 20, 20), [127, 127, 127], 2)).toBe(true);
  });

  test('an animated GIF gives its first frame', async () => {
    const frame = (c: RGB) => solid(40, 30, c).png().toBuffer();
    const gif = await sharp([await frame(RED), await frame({ r: 0, g: 0, b: 255 })], { join: { animated: true } }).gif().toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const r = ok(await processImage(gif, { resizeMode: 'no', encodeFormat: 'png' }));
    expect([r.originalWidth, r.originalHeight, r.inputFormat]).toEqual([40, 30, 'gif']);
    expect(near(pixel(await rawOf(r.bytes), 20, 15), [255, 0, 0], 10)).toBe(true);
  });

  test('sha256 is over the input bytes (img2dataset compute_hash)', async () => {
    const input = await photo(200, 150, 4);
    const r = ok(await processImage(input));
    expect(r.sha256).toBe(createHash('sha256').update(input).digest('hex'));
    expect(r.inputFormat).toBe('jpeg');
  });

  test('skipReencode keeps the input bytes when nothing would change them', async () => {
    const input = await photo(120, 90, 5);
    const kept = ok(await processImage(input, { skipReencode: true, resizeMode: 'no' }));
    expect(kept.reencoded).toBe(false);
    expect(kept.bytes.equals(input)).toBe(true);
    const kept2 = ok(await processImage(input, { skipReencode: true, resizeOnlyIfBigger: true }));
    expect(kept2.bytes.equals(input)).toBe(true);
    // a resize, another format or the default (skipReencode off) re-encode
    expect(ok(await processImage(input, { skipReencode: true })).reencoded).toBe(true);
    expect(ok(await processImage(input, { skipReencode: true, resizeMode: 'no', encodeFormat: 'webp' })).reencoded).toBe(true);
    expect(ok(await processImage(input, { resizeMode: 'no' })).reencoded).toBe(true);
  });
});

describe('processImage: encoding', () => {
  let input: Buffer;
  beforeAll(async () => {
    input = await photo(640, 480, 6);
  });

  test('each format has its magic bytes and extension', async () => {
    const jpg = ok(await processImage(input, { encodeFormat: 'jpg' }));
    expect(jpg.ext).toBe('jpg');
    expect([...jpg.bytes.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    const png = ok(await processImage(input, { encodeFormat: 'png' }));
    expect(png.ext).toBe('png');
    expect(png.bytes.subarray(0, 8).equals(PNG_SIG)).toBe(true);
    const webp = ok(await processImage(input, { encodeFormat: 'webp' }));
    expect(webp.ext).toBe('webp');
    expect(webp.bytes.subarray(0, 4).toString('latin1')).toBe('RIFF');
    expect(webp.bytes.subarray(8, 12).toString('latin1')).toBe('WEBP');
    for (const r of [jpg, png, webp]) expect([r.width, r.height]).toEqual([256, 256]);
  });

  test('quality changes the size: jpg and webp quality, png compression level', async () => {
    const size = async (o: Partial<ImageOptions>) => ok(await processImage(input, o)).bytes.length;
    expect(await size({ encodeQuality: 30 })).toBeLessThan(await size({ encodeQuality: 95 }));
    expect(await size({ encodeFormat: 'webp', encodeQuality: 30 })).toBeLessThan(await size({ encodeFormat: 'webp', encodeQuality: 95 }));
    expect(await size({ encodeFormat: 'png', encodeQuality: 9 })).toBeLessThan(await size({ encodeFormat: 'png', encodeQuality: 0 }));
  });

  test('webp quality above 100 is lossless (OpenCV semantics)', async () => {
    const src = await solid(64, 64, { r: 12, g: 200, b: 77 }).png().toBuffer();
    const r = ok(await processImage(src, { resizeMode: 'no', encodeFormat: 'webp', encodeQuality: 101 }));
    expect(pixel(await rawOf(r.bytes), 10, 10)).toEqual([12, 200, 77]);
  });

  test('output is deterministic: same bytes and hashes twice, every format', async () => {
    for (const encodeFormat of ['jpg', 'webp', 'png'] as const) {
      const a = ok(await processImage(input, { encodeFormat }));
      const b = ok(await processImage(Buffer.from(input), { encodeFormat }));
      expect(a.bytes.equals(b.bytes)).toBe(true);
      expect(a.phash).toBe(b.phash);
      expect(a.sha256).toBe(b.sha256);
    }
  });
});

describe('processImage: filters (on the original size, img2dataset order)', () => {
  test('minImageSize: the smallest side must reach it', async () => {
    const img = await solid(300, 100).png().toBuffer();
    const r = await processImage(img, { minImageSize: 101 });
    expect(r).toMatchObject({ ok: false, reason: 'too_small' });
    expect(!r.ok && r.detail).toMatch(/^image too small: 300x100/);
    expect((await processImage(img, { minImageSize: 100 })).ok).toBe(true);
  });

  test('maxImageArea: width x height above it is rejected', async () => {
    const img = await solid(300, 100).png().toBuffer();
    expect(await processImage(img, { maxImageArea: 29_999 })).toMatchObject({ ok: false, reason: 'too_large_area' });
    expect((await processImage(img, { maxImageArea: 30_000 })).ok).toBe(true);
  });

  test('maxAspectRatio: largest / smallest side above it is rejected, either orientation', async () => {
    const wide = await solid(300, 100).png().toBuffer();
    const tall = await solid(100, 300).png().toBuffer();
    expect(await processImage(wide, { maxAspectRatio: 2.9 })).toMatchObject({ ok: false, reason: 'bad_aspect_ratio' });
    expect(await processImage(tall, { maxAspectRatio: 2.9 })).toMatchObject({ ok: false, reason: 'bad_aspect_ratio' });
    expect((await processImage(wide, { maxAspectRatio: 3 })).ok).toBe(true);
  });

  test('the too-small check comes first, as in img2dataset', async () => {
    const img = await solid(300, 10).png().toBuffer();
    expect(await processImage(img, { minImageSize: 20, maxAspectRatio: 2, maxImageArea: 10 })).toMatchObject({ reason: 'too_small' });
    expect(await processImage(img, { maxAspectRatio: 2, maxImageArea: 10 })).toMatchObject({ reason: 'too_large_area' });
  });
});

describe('processImage: decompression bombs are refused from the header', () => {
  test('a real, valid 30000x30000 PNG (≈110 kB) is too_many_pixels without being decoded', async () => {
    const bomb = await solidPngBomb(30000);
    expect(bomb.length).toBeLessThan(1_000_000);
    const rss = process.memoryUsage().rss;
    const t = Date.now();
    const r = await processImage(bomb);
    expect(Date.now() - t).toBeLessThan(1000);
    expect(r).toMatchObject({ ok: false, reason: 'too_many_pixels' });
    expect(!r.ok && r.detail).toMatch(/30000x30000 = 900000000 pixels > maxPixels 89478485/);
    // Decoding would need ≥ 900 MB for even one byte per pixel.
    expect(process.memoryUsage().rss - rss).toBeLessThan(200e6);
  });

  test('a tiny crafted PNG header declaring 30000x30000', async () => {
    const crafted = Buffer.concat([PNG_SIG, ihdr(30000, 30000, 8, 2), pngChunk('IDAT', deflateSync(Buffer.alloc(64))), pngChunk('IEND', Buffer.alloc(0))]);
    expect(crafted.length).toBeLessThan(200);
    expect(await processImage(crafted)).toMatchObject({ ok: false, reason: 'too_many_pixels' });
  });

  test('a small JPEG whose frame header is patched to 60000x60000', async () => {
    const jpg = await solid(16, 16).jpeg().toBuffer();
    let sof = -1;
    for (let i = 2; i + 9 < jpg.length; i++) {
      if (jpg[i] === 0xff && (jpg[i + 1] === 0xc0 || jpg[i + 1] === 0xc2)) {
        sof = i;
        break;
      }
    }
    expect(sof).toBeGreaterThan(0);
    const patched = Buffer.from(jpg);
    patched.writeUInt16BE(60000, sof + 5); // height
    patched.writeUInt16BE(60000, sof + 7); // width
    expect(await processImage(patched)).toMatchObject({ ok: false, reason: 'too_many_pixels' });
  });

  test('maxPixels is configurable, and counts the declared (first-frame) size', async () => {
    const img = await solid(2000, 1000).png().toBuffer();
    expect(await processImage(img, { maxPixels: 1_999_999 })).toMatchObject({ ok: false, reason: 'too_many_pixels' });
    expect((await processImage(img, { maxPixels: 2_000_000 })).ok).toBe(true);
  });
});

describe('processImage: bad bytes are classified, never thrown', () => {
  let jpg: Buffer;
  let png: Buffer;
  beforeAll(async () => {
    jpg = await photo(400, 300, 7);
    png = await sharp(jpg).png().toBuffer();
  });

  test('truncated JPEG and PNG are truncated', async () => {
    for (const cut of [0.9, 0.5, 0.1]) {
      expect(await processImage(jpg.subarray(0, Math.floor(jpg.length * cut)))).toMatchObject({ ok: false, reason: 'truncated' });
      expect(await processImage(png.subarray(0, Math.floor(png.length * cut)))).toMatchObject({ ok: false, reason: 'truncated' });
    }
    // a JPEG missing only its end-of-image marker
    expect(await processImage(jpg.subarray(0, jpg.length - 2))).toMatchObject({ ok: false, reason: 'truncated' });
  });

  test('a PNG with corrupt compressed data is a decode_error', async () => {
    const bad = Buffer.from(png);
    const idat = bad.indexOf('IDAT', 8, 'latin1');
    for (let i = idat + 4 + 10; i < idat + 4 + 60; i++) bad[i] ^= 0x5a;
    const r = await processImage(bad);
    expect(r).toMatchObject({ ok: false, reason: 'decode_error' });
  });

  test.each<[string, string, Buffer]>([
    ['empty', 'not_image', Buffer.alloc(0)],
    ['garbage', 'not_image', Buffer.from('\x00\x13\x37 definitely not an image \xff\xfe', 'latin1')],
    ['HTML', 'not_image', Buffer.from('<!DOCTYPE html><html><head><title>404</title></head><body><svg width="9" height="9"></svg>Not found</body></html>')],
    ['JSON', 'not_image', Buffer.from('{"error":"forbidden"}')],
    ['SVG', 'unsupported_format', Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>')],
    ['BMP', 'unsupported_format', Buffer.concat([Buffer.from('BM', 'latin1'), Buffer.alloc(12), Buffer.from([40, 0, 0, 0]), Buffer.alloc(40)])],
    ['JPEG magic only', 'truncated', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00])],
    ['PNG signature only', 'truncated', PNG_SIG],
  ])('%s -> %s', async (_name, reason, bytes) => {
    const r = await processImage(bytes);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(reason);
    expect(!r.ok && r.detail.length).toBeGreaterThan(0);
  });

  test('random damage to valid files never throws', async () => {
    let s = 42;
    const rnd = (n: number) => {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      return s % n;
    };
    for (const src of [jpg, png]) {
      for (let k = 0; k < 25; k++) {
        const b = Buffer.from(src.subarray(0, 1 + rnd(src.length)));
        for (let j = 0; j < 1 + rnd(8); j++) b[rnd(b.length)] = rnd(256);
        const r = await processImage(b);
        if (!r.ok) expect(['truncated', 'decode_error', 'not_image', 'too_many_pixels', 'unsupported_format']).toContain(r.reason);
      }
    }
  });
});

describe('perceptual hash', () => {
  let a: Buffer;
  let b: Buffer;
  beforeAll(async () => {
    a = await photo(800, 600, 11);
    b = await photo(800, 600, 12);
  });

  test('is 16 hex digits and identical for the same image', async () => {
    const h1 = ok(await processImage(a)).phash;
    expect(h1).toMatch(/^[0-9a-f]{16}$/);
    expect(ok(await processImage(Buffer.from(a))).phash).toBe(h1);
    expect(await perceptualHash(a)).toBe(await perceptualHash(a));
  });

  test('solid and nearly solid images hash to the DC bit only; a low-contrast picture keeps its hash', async () => {
    const base = solid(300, 200, { r: 64, g: 128, b: 192 });
    expect(await perceptualHash(await base.clone().png().toBuffer())).toBe(FLAT_HASH);
    expect(FLAT_HASH).toBe('8000000000000000');
    // 16-bit rounding and lossy coding leave sub-level noise that must not make up a hash
    expect(ok(await processImage(await base.clone().toColourspace('rgb16').png().toBuffer())).phash).toBe(FLAT_HASH);
    expect(ok(await processImage(await base.clone().webp({ quality: 50 }).toBuffer())).phash).toBe(FLAT_HASH);
    const faint = await sharp(a).linear(0.03, 120).jpeg().toBuffer();
    expect(hammingDistance(ok(await processImage(faint)).phash, ok(await processImage(a)).phash)).toBeLessThanOrEqual(4);
  });

  test('re-encoded, resized and slightly brightened copies are near; another picture is far', async () => {
    const h = ok(await processImage(a)).phash;
    const copies = {
      reencoded: await sharp(a).jpeg({ quality: 60 }).toBuffer(),
      webp: await sharp(a).webp({ quality: 50 }).toBuffer(),
      half: await sharp(a).resize(400, 300).jpeg().toBuffer(),
      upscaled: await sharp(a).resize(1200, 900).png().toBuffer(),
      brighter: await sharp(a).linear(1, 12).jpeg().toBuffer(),
      contrast: await sharp(a).linear(1.1, -10).jpeg().toBuffer(),
    };
    for (const [name, copy] of Object.entries(copies)) {
      const d = hammingDistance(h, ok(await processImage(copy)).phash);
      expect({ name, d, near: d <= 4 }).toEqual({ name, d, near: true });
    }
    const other = hammingDistance(h, ok(await processImage(b)).phash);
    expect(other).toBeGreaterThan(20);
  });

  test('the hash does not depend much on the resize mode (padding excluded) and matches perceptualHash', async () => {
    const whole = await perceptualHash(a);
    for (const resizeMode of ['border', 'keep_ratio', 'keep_ratio_largest', 'no'] as const) {
      expect(hammingDistance(whole, ok(await processImage(a, { resizeMode })).phash)).toBeLessThanOrEqual(4);
    }
  });

  test('a large output (mode no, above RAW_CONTENT_MAX_PIXELS) streams the encode and hashes a reduced copy', async () => {
    const big = await sharp(a).resize(2100, 2100, { fit: 'fill' }).jpeg().toBuffer();
    const r = ok(await processImage(big, { resizeMode: 'no' }));
    expect(2100 * 2100).toBeGreaterThan(RAW_CONTENT_MAX_PIXELS);
    expect([r.width, r.height]).toEqual([2100, 2100]);
    expect(hammingDistance(r.phash, ok(await processImage(big)).phash)).toBeLessThanOrEqual(4);
  });

  test('perceptualHash accepts a sharp pipeline without consuming it', async () => {
    const p = sharp(a);
    const h = await perceptualHash(p);
    expect(hammingDistance(h, await perceptualHash(a))).toBeLessThanOrEqual(2);
    expect((await p.metadata()).width).toBe(800);
  });

  test('phashFromPixels: grey and RGB agree on grey pictures; bad buffers throw', () => {
    const w = 64;
    const h = 48;
    const grey = new Uint8Array(w * h);
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = (x * 4 + ((y * 7) % 50)) & 255;
        grey[y * w + x] = v;
        rgb.fill(v, (y * w + x) * 3, (y * w + x) * 3 + 3);
      }
    }
    expect(phashFromPixels(grey, w, h, 1)).toBe(phashFromPixels(rgb, w, h, 3));
    expect(() => phashFromPixels(grey, w, h, 3)).toThrow();
  });
});

describe('hammingDistance', () => {
  test('counts differing bits', () => {
    expect(hammingDistance('0000000000000000', '0000000000000000')).toBe(0);
    expect(hammingDistance('0000000000000000', 'ffffffffffffffff')).toBe(64);
    expect(hammingDistance('8000000000000000', '0000000000000001')).toBe(2);
    expect(hammingDistance('00000000000000f0', '0000000000000010')).toBe(3);
    expect(hammingDistance('ABCDEF0123456789', 'abcdef0123456789')).toBe(0);
    expect(hammingDistance('a', '5')).toBe(4);
  });

  test('rejects hashes of different lengths or non-hex', () => {
    expect(() => hammingDistance('00', '000')).toThrow(/length/);
    expect(() => hammingDistance('zz', '00')).toThrow(/hex/);
  });
});
