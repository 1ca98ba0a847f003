/**
 * Truncation a JPEG decoder papers over (issue 11), generated here: a JPEG cut in half, the same with an
 * end-of-image marker appended, a progressive one cut + EOI, and a 64×64 JPEG whose SOF is patched to 9400×9400.
 * All are `truncated`; a clean JPEG and one with benign extra bytes before its EOI still go through.
 */
import sharp from 'sharp';
import { processImage } from '../curation/image';

const EOI = Buffer.from([0xff, 0xd9]);

/** A photo-like RGB test picture (gradients + texture: every MCU carries data). */
function picture(w: number, h: number): Buffer {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      raw[i] = (x * 255) / w;
      raw[i + 1] = (y * 255) / h;
      raw[i + 2] = ((x * 7) ^ (y * 13)) & 255;
    }
  }
  return raw;
}

async function jpeg(w: number, h: number, progressive = false): Promise<Buffer> {
  return sharp(picture(w, h), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90, progressive }).toBuffer();
}

/** The JPEG with its (first) SOF's height and width set to the given values. */
function patchSof(jpg: Buffer, width: number, height: number): Buffer {
  const b = Buffer.from(jpg);
  for (let i = 2; i + 4 <= b.length;) {
    const m = b[i + 1];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      b.writeUInt16BE(height, i + 5);
      b.writeUInt16BE(width, i + 7);
      return b;
    }
    i += 2 + b.readUInt16BE(i + 2);
  }
  throw new Error('no SOF');
}

describe('truncated JPEGs are rejected as truncated', () => {
  let full: Buffer;
  let progressive: Buffer;
  let small: Buffer;
  beforeAll(async () => {
    full = await jpeg(640, 480);
    progressive = await jpeg(640, 480, true);
    small = await jpeg(64, 64);
  });

  test('a clean JPEG is accepted', async () => {
    const r = await processImage(full, { imageSize: 256 });
    expect(r).toMatchObject({ ok: true, originalWidth: 640, originalHeight: 480 });
  });

  test.each([
    ['cut in half', () => full.subarray(0, full.length >> 1)],
    ['cut in half + FF D9', () => Buffer.concat([full.subarray(0, full.length >> 1), EOI])],
    ['cut at 90% + FF D9', () => Buffer.concat([full.subarray(0, Math.floor(full.length * 0.9)), EOI])],
    ['progressive, cut in half + FF D9', () => Buffer.concat([progressive.subarray(0, progressive.length >> 1), EOI])],
    ['64x64 data under a SOF patched to 9400x9400', () => patchSof(small, 9400, 9400)],
  ])('%s', async (_name, make) => {
    const r = await processImage(make(), { imageSize: 256 });
    expect(r).toMatchObject({ ok: false, reason: 'truncated' });
  });

  test('benign decoder warnings are still tolerated (extra bytes before the EOI)', async () => {
    const padded = Buffer.concat([full.subarray(0, full.length - 2), Buffer.from([0x00, 0x00, 0x00]), EOI]);
    const r = await processImage(padded, { imageSize: 256 });
    expect(r).toMatchObject({ ok: true, originalWidth: 640, originalHeight: 480 });
  });
});
