/**
 * The JPEG fast path of processImage (libjpeg-turbo through koffi: DCT-scaled decode, area resize, encode) against
 * the sharp path it short-cuts: same geometry, same pHash up to a few bits, pixels within 40 dB PSNR, and damaged
 * JPEGs still classified by the sharp path. Plus the area resize against a direct 2-D definition.
 */
import sharp from 'sharp';
import { hammingDistance, jpegDecodeScale, planResize, processImage, resizeArea, setJpegFastPath, validateImageOptions, type ImageOptions } from '../curation/image';
import { turboJpeg, turboJpegLibraryPath } from '../curation/turbojpeg';

/** A deterministic photo-like picture: smooth colour fields, edges and mild noise. */
function photoPixels(width: number, height: number, seed: number, channels = 3): Buffer {
  let s = seed * 7919 + 17;
  const rnd = () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  const fx = 10 + rnd() * 40;
  const fy = 10 + rnd() * 40;
  const cx = rnd() * width;
  const cy = rnd() * height;
  const r = (0.2 + rnd() * 0.3) * Math.min(width, height);
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      for (let c = 0; c < channels; c++) {
        const v = 128 + 90 * Math.sin(x / (fx + c * 7)) * Math.cos(y / (fy + c * 5)) + (inside ? 40 - c * 30 : 0) + (rnd() * 8 - 4);
        data[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return data;
}

async function photoJpeg(width: number, height: number, seed: number, opts: { channels?: 1 | 3; quality?: number; progressive?: boolean } = {}): Promise<Buffer> {
  const channels = opts.channels ?? 3;
  const img = sharp(photoPixels(width, height, seed, channels), { raw: { width, height, channels } });
  return (channels === 1 ? img.toColourspace('b-w') : img)
    .jpeg({ quality: opts.quality ?? 90, progressive: opts.progressive ?? false })
    .toBuffer();
}

/** Pixels as stored: a greyscale JPEG as one channel (sharp's raw output would expand it to RGB). */
async function decodeRaw(jpeg: Buffer, grey = false): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const img = sharp(jpeg);
  const { data, info } = await (grey ? img.toColourspace('b-w') : img).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function psnr(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / a.length));
}

/**
 * What OpenCV's pipeline computes (img2dataset): the full decode (by libvips, independent of TurboJPEG), area
 * resize (resizeArea, checked against the 2-D definition above), crop, white border; not encoded.
 */
async function areaReference(input: Buffer, opts: Partial<ImageOptions>, grey: boolean): Promise<Buffer> {
  const o = validateImageOptions(opts);
  const full = await decodeRaw(input, grey);
  const plan = planResize(full.width, full.height, o);
  let px = full.data;
  let w = full.width;
  let h = full.height;
  const ch = full.channels;
  if (plan.resize) {
    px = resizeArea(px, w, h, ch, plan.resize.width, plan.resize.height);
    w = plan.resize.width;
    h = plan.resize.height;
  }
  if (plan.crop) {
    const c = plan.crop;
    const cut = Buffer.alloc(c.width * c.height * ch);
    for (let y = 0; y < c.height; y++) px.copy(cut, y * c.width * ch, ((c.top + y) * w + c.left) * ch, ((c.top + y) * w + c.left + c.width) * ch);
    px = cut;
    w = c.width;
    h = c.height;
  }
  if (plan.pad) {
    const p = plan.pad;
    const W = w + p.left + p.right;
    const out = Buffer.alloc(W * (h + p.top + p.bottom) * ch, 255);
    for (let y = 0; y < h; y++) px.copy(out, ((p.top + y) * W + p.left) * ch, y * w * ch, (y + 1) * w * ch);
    px = out;
  }
  return px;
}

async function bothPaths(input: Buffer, opts: Partial<ImageOptions>) {
  setJpegFastPath(true);
  const fast = await processImage(input, opts);
  setJpegFastPath(false);
  try {
    const slow = await processImage(input, opts);
    return { fast, slow };
  } finally {
    setJpegFastPath(true);
  }
}

const onLinuxPrebuild = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64');

describe('TurboJPEG availability', () => {
  (onLinuxPrebuild ? it : it.skip)('loads the prebuilt libturbojpeg through koffi (the fast path is not silently off)', () => {
    expect(turboJpegLibraryPath()).toMatch(/libturbojpeg\.so\.0$/);
    expect(turboJpeg()).not.toBeNull();
  });
});

describe('TurboJPEG in a second module instance', () => {
  (onLinuxPrebuild ? it : it.skip)('loads again in the same process (koffi types are process-wide: a named struct defined twice threw and turned the fast path off)', () => {
    for (let k = 0; k < 2; k++) {
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fresh = require('../curation/turbojpeg') as typeof import('../curation/turbojpeg');
        expect(fresh.turboJpeg()).not.toBeNull();
      });
    }
  });
});

describe('jpegDecodeScale', () => {
  it('picks an exact DCT reduction, else the largest leaving at least 2× to area-resize', () => {
    expect(jpegDecodeScale(1024, 768, 256, 192)).toBe(4); // exact
    expect(jpegDecodeScale(2048, 1536, 256, 192)).toBe(8); // exact
    expect(jpegDecodeScale(1000, 750, 256, 192)).toBe(1); // 1/2 would leave 500 < 2 × 256
    expect(jpegDecodeScale(1100, 825, 256, 192)).toBe(2); // 550 ≥ 512, 413 ≥ 384
    expect(jpegDecodeScale(2100, 1400, 256, 171)).toBe(4); // 1/8 would leave a 263 → 256 resample
    expect(jpegDecodeScale(300, 200, 256, 171)).toBe(1);
    expect(jpegDecodeScale(4000, 100, 256, 6)).toBe(4); // 1/8: 500 < 512
    expect(jpegDecodeScale(1025, 769, 256, 192)).toBe(2); // ceil(1025 / 4) = 257: not exact
  });
});

describe('resizeArea', () => {
  /** Direct 2-D definition: each output pixel is the mean of the source area it covers (fractional overlaps). */
  function reference(src: Uint8Array, w: number, h: number, ch: number, tw: number, th: number): Buffer {
    const out = Buffer.alloc(tw * th * ch);
    const sx = w / tw;
    const sy = h / th;
    for (let oy = 0; oy < th; oy++) {
      for (let ox = 0; ox < tw; ox++) {
        for (let c = 0; c < ch; c++) {
          let sum = 0;
          for (let y = Math.floor(oy * sy); y < Math.min(h, Math.ceil((oy + 1) * sy)); y++) {
            const wy = Math.min((oy + 1) * sy, y + 1) - Math.max(oy * sy, y);
            for (let x = Math.floor(ox * sx); x < Math.min(w, Math.ceil((ox + 1) * sx)); x++) {
              const wx = Math.min((ox + 1) * sx, x + 1) - Math.max(ox * sx, x);
              sum += src[(y * w + x) * ch + c] * wx * wy;
            }
          }
          out[(oy * tw + ox) * ch + c] = Math.round(sum / (sx * sy));
        }
      }
    }
    return out;
  }

  it.each([
    [64, 48, 3, 16, 12],
    [100, 75, 3, 37, 28],
    [257, 193, 3, 256, 192],
    [50, 30, 1, 7, 5],
    [40, 40, 3, 40, 40],
  ])('%ix%i×%i → %ix%i equals the area definition within rounding', (w, h, ch, tw, th) => {
    const src = photoPixels(w, h, w + h, ch);
    const got = resizeArea(src, w, h, ch, tw, th);
    const want = reference(src, w, h, ch, tw, th);
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    expect(got.length).toBe(tw * th * ch);
    expect(maxDiff).toBeLessThanOrEqual(1); // float accumulation order only
  });

  it('keeps a flat picture flat and rejects enlargements', () => {
    const flat = Buffer.alloc(90 * 60 * 3, 77);
    expect([...new Set(resizeArea(flat, 90, 60, 3, 31, 17))]).toEqual([77]);
    expect(() => resizeArea(flat, 90, 60, 3, 91, 60)).toThrow(/reductions/);
  });
});

(onLinuxPrebuild ? describe : describe.skip)('processImage: JPEG fast path against the sharp path', () => {
  const cases: Array<[string, number, number, Partial<ImageOptions>, { channels?: 1 | 3; quality?: number; progressive?: boolean }]> = [
    ['1024x768 border (exact 1/4 decode)', 1024, 768, {}, {}],
    ['1100x825 border (1/2 decode + area)', 1100, 825, {}, { quality: 95 }],
    ['1000x750 border (full decode + area)', 1000, 750, {}, { quality: 95 }],
    ['2100x1400 border (1/4 decode + area)', 2100, 1400, {}, { quality: 80 }],
    ['640x1136 keep_ratio', 640, 1136, { resizeMode: 'keep_ratio' }, {}],
    ['800x533 center_crop', 800, 533, { resizeMode: 'center_crop' }, {}],
    ['777x555 keep_ratio_largest 384', 777, 555, { resizeMode: 'keep_ratio_largest', imageSize: 384 }, {}],
    ['greyscale 900x600 border', 900, 600, {}, { channels: 1 }],
    ['progressive 1200x900 border', 1200, 900, {}, { progressive: true }],
    ['300x200 mode no', 300, 200, { resizeMode: 'no' }, {}],
    ['1024x768 border, webp output', 1024, 768, { encodeFormat: 'webp', encodeQuality: 95 }, {}],
  ];
  it.each(cases)('%s: same geometry and hash, at least as close to OpenCV-style area as the sharp path', async (_name, w, h, opts, make) => {
    const input = await photoJpeg(w, h, w * 3 + h, make);
    expect((await sharp(input).metadata()).channels).toBe(make.channels ?? 3);
    const { fast, slow } = await bothPaths(input, opts);
    expect(fast.ok && slow.ok).toBe(true);
    if (!fast.ok || !slow.ok) return;
    expect([fast.width, fast.height, fast.ext, fast.sha256, fast.originalWidth, fast.originalHeight])
      .toEqual([slow.width, slow.height, slow.ext, slow.sha256, slow.originalWidth, slow.originalHeight]);
    expect(hammingDistance(fast.phash, slow.phash)).toBeLessThanOrEqual(4);
    // A greyscale input stays one channel on the fast path (img2dataset's output); the sharp path writes RGB.
    const grey = make.channels === 1;
    expect((await sharp(fast.bytes).metadata()).channels).toBe(grey ? 1 : 3);
    const a = await decodeRaw(fast.bytes, grey);
    const b = await decodeRaw(slow.bytes, grey);
    expect([a.width, a.height, a.channels]).toEqual([b.width, b.height, b.channels]);
    const reference = await areaReference(input, opts, grey);
    const fastDb = psnr(a.data, reference);
    const sharpDb = psnr(b.data, reference);
    expect(fastDb).toBeGreaterThanOrEqual(Math.min(40, sharpDb - 1));
    expect(psnr(a.data, b.data)).toBeGreaterThanOrEqual(36);
  });

  it('leaves damaged JPEGs to the sharp path: a cut scan is still "truncated", garbage after SOI a decode error', async () => {
    const input = await photoJpeg(1024, 768, 5);
    const cut = Buffer.concat([input.subarray(0, Math.floor(input.length * 0.6)), Buffer.from([0xff, 0xd9])]);
    const r = await processImage(cut);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe('truncated');
    const junk = Buffer.concat([input.subarray(0, 2), Buffer.alloc(4000, 0x5a)]);
    const j = await processImage(junk);
    expect(j.ok).toBe(false);
    if (!j.ok) expect(['decode_error', 'truncated', 'not_image']).toContain(j.reason);
  });

  it('decodes the same bytes to the same output every time (deterministic, handles reused across calls)', async () => {
    const input = await photoJpeg(1024, 768, 9);
    const runs = await Promise.all(Array.from({ length: 6 }, () => processImage(input)));
    const digests = new Set(runs.map((r) => (r.ok ? r.bytes.toString('base64') : r.reason)));
    expect(digests.size).toBe(1);
  });
});
