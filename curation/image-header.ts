/**
 * Reading the header of a JPEG or PNG in JS, so that the common case needs no libvips call before the decode
 * (a sharp call costs ≈ 0.4 ms of fixed overhead here, about a tenth of an image's whole budget).
 *
 * It answers exactly what `sharp(input).metadata()` answers for the fields the image stage uses (size of
 * the first frame, EXIF orientation, alpha), or `null` whenever anything is unusual, and the caller then asks
 * libvips: a missing or malformed segment, a DNL height, an Exif block it does not fully understand, a PNG
 * with an eXIf chunk or a bad IHDR CRC, JPEG component counts other than 1 and 3. `null` is never a verdict on
 * the image, only "ask libvips"; the test suite checks agreement with sharp on a corpus of variants.
 */
import { crc32 } from 'node:zlib';

export interface ImageHeaderFields {
  width: number;
  height: number;
  /** EXIF orientation 1..8 (1 when there is none), as libvips reports it. */
  orientation: number;
  hasAlpha: boolean;
}

/** SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC). */
function isStartOfFrame(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/**
 * The Orientation tag of IFD0 in an Exif APP1 payload (starting after "Exif\0\0"): 1 when IFD0 has no such
 * tag, `null` when the block is not plainly well formed (libexif may be more lenient: let it decide).
 */
function exifOrientation(b: Buffer, start: number, end: number): number | null {
  if (end - start < 8) return null;
  const order = b.toString('latin1', start, start + 2);
  const le = order === 'II';
  if (!le && order !== 'MM') return null;
  const u16 = (at: number) => (le ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const u32 = (at: number) => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
  if (u16(start + 2) !== 42) return null;
  const ifd = start + u32(start + 4);
  if (ifd < start + 8 || ifd + 2 > end) return null;
  const entries = u16(ifd);
  if (ifd + 2 + entries * 12 > end) return null;
  let orientation = 1;
  let seen = false;
  for (let k = 0; k < entries; k++) {
    const e = ifd + 2 + k * 12;
    if (u16(e) !== 0x0112) continue;
    if (seen || u16(e + 2) !== 3 || u32(e + 4) !== 1) return null; // not one SHORT: let libexif interpret it
    const v = u16(e + 8);
    if (v < 1 || v > 8) return null;
    orientation = v;
    seen = true;
  }
  return orientation;
}

/** JPEG: the frame header's size; the last Exif APP1 before the scan gives the orientation (as libvips). */
export function parseJpegHeader(b: Buffer): ImageHeaderFields | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let i = 2;
  let frame: { width: number; height: number } | null = null;
  let orientation = 1;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return null;
    let m = b[i + 1];
    while (m === 0xff && i + 2 < b.length) m = b[++i + 1]; // fill bytes
    i += 2;
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) continue; // standalone markers
    if (m === 0xd8 || m === 0xd9 || m === 0x00) return null;
    if (i + 2 > b.length) return null;
    const len = b.readUInt16BE(i);
    const end = i + len;
    if (len < 2 || end > b.length) return null;
    if (m === 0xda) break; // start of scan: libjpeg's header reading stops here
    if (isStartOfFrame(m)) {
      if (frame || len < 8) return null;
      const height = b.readUInt16BE(i + 3);
      const width = b.readUInt16BE(i + 5);
      const components = b[i + 7];
      if (height === 0 || width === 0 || (components !== 1 && components !== 3) || len !== 8 + 3 * components) return null;
      frame = { width, height };
    } else if (m === 0xe1 && len >= 8 && b.toString('latin1', i + 2, i + 6) === 'Exif') {
      if (b[i + 6] !== 0 || b[i + 7] !== 0) return null;
      const o = exifOrientation(b, i + 8, end);
      if (o === null) return null;
      orientation = o;
    }
    i = end;
  }
  if (!frame || i + 4 > b.length) return null; // no frame, or nothing after the scan header: let libvips judge
  return { width: frame.width, height: frame.height, orientation, hasAlpha: false };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Bit depths the PNG specification allows per colour type. */
const PNG_DEPTHS: Readonly<Record<number, readonly number[]>> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/** PNG: IHDR's size; alpha from the colour type or a tRNS chunk (libspng's rule); no orientation. */
export function parsePngHeader(b: Buffer): ImageHeaderFields | null {
  if (b.length < 33 || !b.subarray(0, 8).equals(PNG_SIGNATURE)) return null;
  if (b.readUInt32BE(8) !== 13 || b.toString('latin1', 12, 16) !== 'IHDR') return null;
  if (crc32(b.subarray(12, 29)) !== b.readUInt32BE(29)) return null;
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  const depth = b[24];
  const colourType = b[25];
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) return null;
  if (!PNG_DEPTHS[colourType]?.includes(depth) || b[26] !== 0 || b[27] !== 0 || b[28] > 1) return null;
  let hasAlpha = colourType === 4 || colourType === 6;
  let i = 33;
  for (;;) {
    if (i + 8 > b.length) return null;
    const len = b.readUInt32BE(i);
    const type = b.toString('latin1', i + 4, i + 8);
    if (type === 'IDAT') break;
    if (type === 'eXIf' || type === 'IEND' || len > 0x7fffffff || i + 12 + len > b.length) return null;
    if (type === 'tRNS') hasAlpha = true;
    i += 12 + len;
  }
  return { width, height, orientation: 1, hasAlpha };
}
