/**
 * Image validation, resizing, encoding and perceptual hashing (Temporal-free core of the image stage).
 *
 * The semantics follow img2dataset 1.47.0's `Resizer` (resizer.py) with albumentations 1.4.24 (the newest
 * release its `albumentations<2` pin installs), so that a benchmark "with the same resize settings" does the
 * same work and yields the same output sizes:
 *
 * - `no`: the image is only re-encoded.
 * - `keep_ratio` / `center_crop`: when `resizeOnlyIfBigger` is off, or the SMALLEST side exceeds `imageSize`,
 *   scale so that the smallest side is `imageSize` (each side `max(1, round_half_even(side * scale))`, as
 *   albumentations' SmallestMaxSize); `center_crop` then cuts the centred `imageSize`² square at offset
 *   `floor((side - imageSize) / 2)`. With `resizeOnlyIfBigger` and a small image neither happens: the output
 *   keeps the original (possibly non-square) size, exactly as img2dataset.
 * - `border` / `keep_ratio_largest`: the same on the LARGEST side (LongestMaxSize); `border` then pads to an
 *   `imageSize`² square with white (255,255,255), `trunc(pad / 2)` before and the rest after (PadIfNeeded,
 *   position "center"). Again skipped entirely for small images under `resizeOnlyIfBigger`.
 * - Interpolation: `downscaleInterpolation` (default "area") when the governing side is larger than
 *   `imageSize`, else `upscaleInterpolation` (default "lanczos"). libvips has no area (box) kernel for
 *   arbitrary ratios; see `SHARP_KERNEL` for the mapping.
 * - Alpha is composited over white for every output format (img2dataset does so before anything else).
 * - Filters run on the original size, in img2dataset's order: smallest side < `minImageSize` ("image too
 *   small"), width·height > `maxImageArea` ("image area too large"), largest/smallest side >
 *   `maxAspectRatio` ("aspect ratio too large"). Here they run on the header's dimensions, before decoding.
 * - Encoding: jpg quality 95 by default (4:2:0, baseline, no Huffman optimisation: OpenCV's defaults); webp
 *   quality 1..100 (above 100 = lossless, as OpenCV); for png `encodeQuality` is the zlib compression level
 *   0..9 (img2dataset rejects anything else; when unset we use 1, OpenCV's own default).
 * - `sha256` is over the downloaded (input) bytes, as img2dataset's `compute_hash` column; the width and
 *   height are the output's, `originalWidth`/`originalHeight` the decoded image's before resizing.
 *
 * Deliberate differences, all in the direction of rejecting or fixing bad input:
 * - EXIF orientation is applied (`autoOrient`, default true). img2dataset does NOT apply it: OpenCV's
 *   `imdecode(..., IMREAD_UNCHANGED)` ignores the EXIF orientation. Set `autoOrient: false` for identical
 *   geometry.
 * - Truncated JPEG/PNG/GIF/WebP are rejected (`truncated`); OpenCV's libjpeg pads a truncated JPEG with grey
 *   and img2dataset keeps it. That includes a JPEG whose scan data ends before its declared size (cut with an
 *   end-of-image marker appended, or a SOF patched larger): libjpeg's "premature end of data segment" warning,
 *   caught by decoding JPEGs at libvips' `failOn: 'warning'` level. Other recoverable decoder warnings are
 *   tolerated (decoded again at `failOn: 'truncated'`).
 * - A decompression-bomb guard (`maxPixels`) on the header's dimensions, checked before any pixel is decoded
 *   (OpenCV's own limit is 2^30 pixels).
 * - Inputs are recognised by their magic bytes; only raster formats sharp's prebuilt libvips decodes are
 *   accepted (JPEG, PNG, GIF, WebP, TIFF, AVIF). SVG, BMP, ICO, HEIC, JPEG 2000, JPEG XL are
 *   `unsupported_format` (OpenCV would read BMP and JPEG 2000; SVG is never handed to librsvg), anything else
 *   (HTML, text, garbage) is `not_image`. Animated GIF/WebP: the first frame.
 *
 * Memory stays bounded: libvips streams the decode through the resize (sequential access, shrink-on-load);
 * the only full-frame buffer is the resized content (at most `RAW_CONTENT_MAX_PIXELS`; above that, e.g.
 * resize mode `no` on a large image, the encode streams and the pHash takes its own reduced decode).
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import type { KernelEnum, Metadata, Sharp } from 'sharp';
import { ConfigError } from './errors';
import { parseJpegHeader, parsePngHeader } from './image-header';
import { turboJpeg } from './turbojpeg';

export type ResizeMode = 'no' | 'border' | 'keep_ratio' | 'keep_ratio_largest' | 'center_crop';
export type EncodeFormat = 'jpg' | 'webp' | 'png';
/** img2dataset's interpolation names (OpenCV's). */
export type Interpolation = 'nearest' | 'linear' | 'bilinear' | 'cubic' | 'bicubic' | 'area' | 'lanczos' | 'lanczos4';
/** Input formats that are decoded. */
export type InputFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'avif';

export interface ImageOptions {
  resizeMode: ResizeMode;
  /** Target side in pixels. */
  imageSize: number;
  /** Resize (and crop/pad) only when the governing side is larger than `imageSize`. */
  resizeOnlyIfBigger: boolean;
  upscaleInterpolation: Interpolation;
  downscaleInterpolation: Interpolation;
  encodeFormat: EncodeFormat;
  /** jpg/webp: quality 1..100 (webp above 100: lossless); png: compression level 0..9. */
  encodeQuality: number;
  /** Keep the input bytes when nothing would change them: no resize, no alpha, no rotation, same format. */
  skipReencode: boolean;
  /** Reject when the smallest side is below this. */
  minImageSize: number;
  /** Reject when width·height is above this (may be Infinity). */
  maxImageArea: number;
  /** Reject when largest side / smallest side is above this (may be Infinity). */
  maxAspectRatio: number;
  /** Decompression-bomb guard: reject when the header declares more pixels than this (first frame). */
  maxPixels: number;
  /** Apply the EXIF orientation (img2dataset does not). */
  autoOrient: boolean;
}

/** PIL's `MAX_IMAGE_PIXELS` (≈ 9459²): a 4:3 photo up to 10922×8191. Decoded RGB at most ≈ 268 MB. */
export const DEFAULT_MAX_PIXELS = 89_478_485;
/** OpenCV's default `IMWRITE_PNG_COMPRESSION`, used when png is chosen without a compression level. */
export const DEFAULT_PNG_COMPRESSION = 1;

/** img2dataset's defaults (main.py `download`) plus this module's guards. */
export const DEFAULT_IMAGE_OPTIONS: Readonly<ImageOptions> = Object.freeze({
  resizeMode: 'border',
  imageSize: 256,
  resizeOnlyIfBigger: false,
  upscaleInterpolation: 'lanczos',
  downscaleInterpolation: 'area',
  encodeFormat: 'jpg',
  encodeQuality: 95,
  skipReencode: false,
  minImageSize: 0,
  maxImageArea: Infinity,
  maxAspectRatio: Infinity,
  maxPixels: DEFAULT_MAX_PIXELS,
  autoOrient: true,
});

export type ImageFailureReason =
  | 'not_image'          // not an image at all (HTML, text, empty, random bytes)
  | 'unsupported_format' // an image format we do not decode (SVG, BMP, ICO, HEIC, JPEG 2000, JPEG XL)
  | 'decode_error'       // recognised format, but the decoder fails
  | 'truncated'          // the data ends early
  | 'too_many_pixels'    // header declares more than maxPixels (never decoded)
  | 'too_small'          // img2dataset "image too small"
  | 'too_large_area'     // img2dataset "image area too large"
  | 'bad_aspect_ratio';  // img2dataset "aspect ratio too large"

export interface ProcessedImageOk {
  ok: true;
  /** The encoded output (the input itself when `reencoded` is false). */
  bytes: Buffer;
  ext: EncodeFormat;
  /** Output size. */
  width: number;
  height: number;
  /** Decoded size before resizing (after EXIF orientation when `autoOrient`). */
  originalWidth: number;
  originalHeight: number;
  inputFormat: InputFormat;
  /** Hex SHA-256 of the INPUT bytes (img2dataset's `compute_hash="sha256"` column). */
  sha256: string;
  /** 64-bit DCT perceptual hash of the output content (border padding excluded), 16 hex chars. */
  phash: string;
  /** False when `skipReencode` kept the input bytes. */
  reencoded: boolean;
}
export interface ProcessedImageFailure {
  ok: false;
  reason: ImageFailureReason;
  detail: string;
}
export type ProcessedImage = ProcessedImageOk | ProcessedImageFailure;

/** The geometry img2dataset would apply to an image of the given (original) size. */
export interface ResizePlan {
  /** Scale to this size first (absent: no resize). */
  resize?: { width: number; height: number; interpolation: Interpolation };
  /** Then cut this square (center_crop). */
  crop?: { left: number; top: number; width: number; height: number };
  /** Then pad with white to a square (border). */
  pad?: { top: number; bottom: number; left: number; right: number };
  /** Final output size. */
  width: number;
  height: number;
}

/**
 * OpenCV interpolation → libvips kernel. libvips has no area (box) kernel for arbitrary ratios; its resize
 * box-shrinks large ratios and applies the kernel to the rest. Measured against img2dataset's own output
 * (OpenCV INTER_AREA) on 1.3×–12× downscales, libvips "cubic" (Catmull-Rom) is the closest: 44–49 dB PSNR,
 * against 41–46 dB for "linear" and 41–45 dB for "lanczos3". "lanczos" (OpenCV's 8×8 Lanczos-4) maps to
 * libvips' largest, Lanczos-3.
 */
const SHARP_KERNEL: Record<Interpolation, keyof KernelEnum> = {
  nearest: 'nearest',
  linear: 'linear',
  bilinear: 'linear',
  cubic: 'cubic',
  bicubic: 'cubic',
  area: 'cubic',
  lanczos: 'lanczos3',
  lanczos4: 'lanczos3',
};

const RESIZE_MODES: readonly ResizeMode[] = ['no', 'border', 'keep_ratio', 'keep_ratio_largest', 'center_crop'];
const ENCODE_FORMATS: readonly EncodeFormat[] = ['jpg', 'webp', 'png'];
const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };
/** Above this many content pixels the encode streams instead of going through a raw buffer. */
export const RAW_CONTENT_MAX_PIXELS = 2048 * 2048;
/** The pHash of a large image is taken from a copy reduced to fit in this square. */
const PHASH_PREREDUCE = 256;

// ---------------------------------------------------------------------------------------------- options

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** Option objects returned by validateImageOptions (frozen): processImage does not check them again per image. */
const VALIDATED = new WeakSet<object>([DEFAULT_IMAGE_OPTIONS]);

/** Complete and check options; throws ConfigError naming the option. The result is frozen. */
export function validateImageOptions(o: Partial<ImageOptions> = {}): ImageOptions {
  if (o === null || typeof o !== 'object') throw new ConfigError('image options must be an object');
  const known = new Set(Object.keys(DEFAULT_IMAGE_OPTIONS));
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw new ConfigError(`unknown image option ${JSON.stringify(k)} (known: ${[...known].join(', ')})`);
  }
  const defined = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<ImageOptions>;
  const encodeFormat = defined.encodeFormat ?? DEFAULT_IMAGE_OPTIONS.encodeFormat;
  const r: ImageOptions = {
    ...DEFAULT_IMAGE_OPTIONS,
    encodeQuality: encodeFormat === 'png' ? DEFAULT_PNG_COMPRESSION : DEFAULT_IMAGE_OPTIONS.encodeQuality,
    ...defined,
  };
  if (!RESIZE_MODES.includes(r.resizeMode)) {
    throw new ConfigError(`resizeMode must be one of ${RESIZE_MODES.join(', ')}; got ${JSON.stringify(r.resizeMode)}`);
  }
  if (!isInt(r.imageSize) || r.imageSize < 1 || r.imageSize > 16384) {
    throw new ConfigError(`imageSize must be an integer from 1 to 16384; got ${String(r.imageSize)}`);
  }
  for (const k of ['resizeOnlyIfBigger', 'skipReencode', 'autoOrient'] as const) {
    if (typeof r[k] !== 'boolean') throw new ConfigError(`${k} must be true or false; got ${String(r[k])}`);
  }
  for (const k of ['upscaleInterpolation', 'downscaleInterpolation'] as const) {
    if (typeof r[k] !== 'string' || !(r[k] in SHARP_KERNEL)) {
      throw new ConfigError(`${k} must be one of ${Object.keys(SHARP_KERNEL).join(', ')}; got ${JSON.stringify(r[k])}`);
    }
  }
  if (!ENCODE_FORMATS.includes(r.encodeFormat)) {
    throw new ConfigError(`encodeFormat must be one of ${ENCODE_FORMATS.join(', ')}; got ${JSON.stringify(r.encodeFormat)}`);
  }
  const q = r.encodeQuality;
  if (r.encodeFormat === 'png') {
    if (!isInt(q) || q < 0 || q > 9) {
      throw new ConfigError(`for png, encodeQuality is the compression level and must be an integer from 0 to 9; got ${String(q)}`);
    }
  } else if (r.encodeFormat === 'jpg') {
    if (!isInt(q) || q < 1 || q > 100) throw new ConfigError(`for jpg, encodeQuality must be an integer from 1 to 100; got ${String(q)}`);
  } else if (!isInt(q) || q < 1) {
    throw new ConfigError(`for webp, encodeQuality must be an integer from 1 to 100 (above 100: lossless); got ${String(q)}`);
  }
  if (!isInt(r.minImageSize) || r.minImageSize < 0) {
    throw new ConfigError(`minImageSize must be a non-negative integer; got ${String(r.minImageSize)}`);
  }
  if (typeof r.maxImageArea !== 'number' || Number.isNaN(r.maxImageArea) || r.maxImageArea <= 0) {
    throw new ConfigError(`maxImageArea must be a positive number (or Infinity); got ${String(r.maxImageArea)}`);
  }
  if (typeof r.maxAspectRatio !== 'number' || Number.isNaN(r.maxAspectRatio) || r.maxAspectRatio < 1) {
    throw new ConfigError(`maxAspectRatio must be a number ≥ 1 (or Infinity); got ${String(r.maxAspectRatio)}`);
  }
  if (!isInt(r.maxPixels) || r.maxPixels < 1) {
    throw new ConfigError(`maxPixels must be a positive integer; got ${String(r.maxPixels)}`);
  }
  Object.freeze(r);
  VALIDATED.add(r);
  return r;
}

// --------------------------------------------------------------------------------------------- geometry

/** Python's round(): halves go to the even neighbour. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** img2dataset's geometry for an original `width`×`height` (see the module comment). */
export function planResize(
  width: number,
  height: number,
  o: Pick<ImageOptions, 'resizeMode' | 'imageSize' | 'resizeOnlyIfBigger' | 'upscaleInterpolation' | 'downscaleInterpolation'>,
): ResizePlan {
  const S = o.imageSize;
  const mode = o.resizeMode;
  if (mode === 'no') return { width, height };
  const bySmallest = mode === 'keep_ratio' || mode === 'center_crop';
  const side = bySmallest ? Math.min(width, height) : Math.max(width, height);
  const downscale = side > S;
  if (o.resizeOnlyIfBigger && !downscale) return { width, height };
  const scale = S / side;
  const w = Math.max(1, pyRound(width * scale));
  const h = Math.max(1, pyRound(height * scale));
  const plan: ResizePlan = { width: w, height: h };
  if (w !== width || h !== height) {
    plan.resize = { width: w, height: h, interpolation: downscale ? o.downscaleInterpolation : o.upscaleInterpolation };
  }
  if (mode === 'center_crop') {
    const cw = Math.min(S, w);
    const ch = Math.min(S, h);
    if (cw !== w || ch !== h) plan.crop = { left: Math.floor((w - cw) / 2), top: Math.floor((h - ch) / 2), width: cw, height: ch };
    plan.width = cw;
    plan.height = ch;
  } else if (mode === 'border') {
    const ph = Math.max(0, S - h);
    const pw = Math.max(0, S - w);
    if (ph > 0 || pw > 0) {
      const top = Math.trunc(ph / 2);
      const left = Math.trunc(pw / 2);
      plan.pad = { top, bottom: ph - top, left, right: pw - left };
    }
    plan.width = Math.max(S, w);
    plan.height = Math.max(S, h);
  }
  return plan;
}

// ----------------------------------------------------------------------------------------- recognition

type Sniffed = { kind: 'ok'; format: InputFormat } | { kind: 'unsupported'; format: string } | { kind: 'none'; detail: string };

function ascii(b: Buffer, start: number, end: number): string {
  return b.subarray(start, end).toString('latin1');
}

/** Recognise the container from its magic bytes (never from a Content-Type or a file name). */
export function sniffImageFormat(b: Buffer): Sniffed {
  if (b.length === 0) return { kind: 'none', detail: 'empty input' };
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return { kind: 'ok', format: 'jpeg' };
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return { kind: 'ok', format: 'png' };
  const h6 = ascii(b, 0, 6);
  if (h6 === 'GIF87a' || h6 === 'GIF89a') return { kind: 'ok', format: 'gif' };
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return { kind: 'ok', format: 'webp' };
  const h4 = ascii(b, 0, 4);
  if (h4 === 'II*\0' || h4 === 'MM\0*' || h4 === 'II+\0' || h4 === 'MM\0+') return { kind: 'ok', format: 'tiff' };
  if (b.length >= 12 && ascii(b, 4, 8) === 'ftyp') {
    const boxSize = Math.min(b.readUInt32BE(0), b.length, 4096);
    const brands: string[] = [ascii(b, 8, 12)];
    for (let i = 16; i + 4 <= boxSize; i += 4) brands.push(ascii(b, i, i + 4));
    if (brands.includes('avif') || brands.includes('avis')) return { kind: 'ok', format: 'avif' };
    if (brands.some((x) => ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(x))) {
      return { kind: 'unsupported', format: 'heic' };
    }
    return { kind: 'none', detail: `ISO media file (brand ${JSON.stringify(brands[0])}), not an image` };
  }
  if (b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d && b.readUInt32LE(14) >= 12 && b.readUInt32LE(14) <= 124) {
    return { kind: 'unsupported', format: 'bmp' };
  }
  if (b.length >= 6 && b.readUInt32BE(0) === 0x00000100 && b.readUInt16LE(4) > 0) return { kind: 'unsupported', format: 'ico' };
  if (b.length >= 12 && b.readUInt32BE(0) === 0x0000000c && ascii(b, 4, 8) === 'jP  ') return { kind: 'unsupported', format: 'jp2' };
  if (b.length >= 4 && b.readUInt32BE(0) === 0xff4fff51) return { kind: 'unsupported', format: 'j2k' };
  if ((b.length >= 2 && b[0] === 0xff && b[1] === 0x0a) || (b.length >= 12 && b.readUInt32BE(0) === 0x0000000c && ascii(b, 4, 8) === 'JXL ')) {
    return { kind: 'unsupported', format: 'jxl' };
  }
  if (h4 === '8BPS') return { kind: 'unsupported', format: 'psd' };
  // Markup: SVG is an image we do not rasterise; anything else starting with '<' is a page.
  const head = b.subarray(0, 4096).toString('latin1');
  const trimmed = head.replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart();
  if (trimmed.startsWith('<')) {
    const lower = trimmed.toLowerCase();
    if (/<svg[\s>]/.test(lower) && !/<html[\s>]|<body[\s>]|<!doctype html/.test(lower)) return { kind: 'unsupported', format: 'svg' };
    return { kind: 'none', detail: /<html|<!doctype html|<head|<body/.test(lower) ? 'markup (HTML), not an image' : 'markup, not an image' };
  }
  const hex = b.subarray(0, 8).toString('hex');
  return { kind: 'none', detail: `unrecognised leading bytes ${hex}` };
}

/** True when the container's own structure shows the data ends early. */
function structurallyTruncated(format: InputFormat, b: Buffer): boolean {
  if (format === 'png') {
    let i = 8;
    while (i + 8 <= b.length) {
      const len = b.readUInt32BE(i);
      const type = ascii(b, i + 4, i + 8);
      const end = i + 12 + len;
      if (end > b.length) return true;
      if (type === 'IEND') return false;
      i = end;
    }
    return true;
  }
  if (format === 'webp') return b.length >= 8 && b.readUInt32LE(4) + 8 > b.length;
  if (format === 'gif') return b.lastIndexOf(0x3b) < 0;
  if (format === 'jpeg') {
    let end = b.length;
    while (end > 2 && (b[end - 1] === 0x00 || b[end - 1] === 0x0a || b[end - 1] === 0x0d || b[end - 1] === 0x20)) end--;
    return !(b[end - 2] === 0xff && b[end - 1] === 0xd9);
  }
  return false;
}

const TRUNCATION_MESSAGE = /premature end|truncat|unexpected end|end of (file|stream|data|input)|out of data|not enough (data|bytes)|short read|incomplete/i;

function decodeFailure(err: unknown, format: InputFormat, input: Buffer): ProcessedImageFailure {
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
  if (/exceeds pixel limit/i.test(message)) return { ok: false, reason: 'too_many_pixels', detail: message };
  if (TRUNCATION_MESSAGE.test(message) || structurallyTruncated(format, input)) {
    return { ok: false, reason: 'truncated', detail: `${format}: ${message}` };
  }
  return { ok: false, reason: 'decode_error', detail: `${format}: ${message}` };
}

// ------------------------------------------------------------------------------------------- pipeline

interface Header {
  format: InputFormat;
  /** Stored (header) size of the first frame. */
  width: number;
  height: number;
  /** After EXIF orientation when applied. */
  orientedWidth: number;
  orientedHeight: number;
  rotates: boolean;
  hasAlpha: boolean;
}

/** The first frame's size, orientation and alpha: parsed in JS for plain JPEG and PNG, else from libvips. */
async function readHeader(input: Buffer, autoOrient: boolean): Promise<Header | ProcessedImageFailure> {
  const sniffed = sniffImageFormat(input);
  if (sniffed.kind === 'none') return { ok: false, reason: 'not_image', detail: sniffed.detail };
  if (sniffed.kind === 'unsupported') return { ok: false, reason: 'unsupported_format', detail: `${sniffed.format} is not decoded` };
  const format = sniffed.format;
  const quick = format === 'jpeg' ? parseJpegHeader(input) : format === 'png' ? parsePngHeader(input) : null;
  if (quick) return headerOf(format, quick.width, quick.height, quick.orientation, quick.hasAlpha, autoOrient);
  let meta: Metadata;
  try {
    // Header only; the pixel limit is ours, checked below with a clearer message.
    meta = await sharp(input, { limitInputPixels: false, failOn: 'truncated' }).metadata();
  } catch (err) {
    return decodeFailure(err, format, input);
  }
  const width = meta.width;
  const height = meta.pageHeight !== undefined && (meta.pages ?? 1) > 1 ? meta.pageHeight : meta.height;
  if (!(width > 0) || !(height > 0)) return { ok: false, reason: 'decode_error', detail: `${format}: no dimensions in the header` };
  return headerOf(format, width, height, meta.orientation ?? 1, meta.hasAlpha === true, autoOrient);
}

function headerOf(format: InputFormat, width: number, height: number, orientation: number, hasAlpha: boolean, autoOrient: boolean): Header {
  const rotates = autoOrient && orientation > 1;
  const swap = rotates && orientation >= 5;
  return { format, width, height, orientedWidth: swap ? height : width, orientedHeight: swap ? width : height, rotates, hasAlpha };
}

type FailOn = 'warning' | 'truncated';

function openPipeline(input: Buffer, maxPixels: number, autoOrient: boolean, hasAlpha: boolean, failOn: FailOn = 'truncated'): Sharp {
  // First frame only (pages: 1, sharp's default); sequential access so libvips streams the decode.
  let p = sharp(input, { failOn, limitInputPixels: maxPixels, autoOrient, sequentialRead: true, pages: 1 });
  if (hasAlpha) p = p.flatten({ background: WHITE });
  return p;
}

function encode(p: Sharp, o: ImageOptions): Sharp {
  switch (o.encodeFormat) {
    case 'jpg':
      return p.jpeg({ quality: o.encodeQuality, chromaSubsampling: '4:2:0', optimiseCoding: false, progressive: false, mozjpeg: false });
    case 'webp':
      return o.encodeQuality > 100 ? p.webp({ lossless: true }) : p.webp({ quality: o.encodeQuality });
    case 'png':
      return p.png({ compressionLevel: o.encodeQuality, adaptiveFiltering: false, palette: false });
  }
}

const SAME_FORMAT: Record<EncodeFormat, InputFormat> = { jpg: 'jpeg', webp: 'webp', png: 'png' };

/**
 * Border buffers are reused (returned after the encode that read them): an image would otherwise allocate
 * one more output-sized buffer, and external memory churn is what triggers the worker's full GCs.
 */
const PAD_POOL: Buffer[] = [];
const PAD_POOL_BYTES = 16 * 1024 * 1024;
let padPoolBytes = 0;

function releasePadBuffer(b: Buffer): void {
  if (padPoolBytes + b.length > PAD_POOL_BYTES) return;
  PAD_POOL.push(b);
  padPoolBytes += b.length;
}

/** 8-bit pixels (`channels` per pixel) inside a white border (what `extend` with a white background gives). */
function padWhite(data: Buffer, width: number, height: number, channels: number, pad: NonNullable<ResizePlan['pad']>): Buffer {
  const outW = width + pad.left + pad.right;
  const outH = height + pad.top + pad.bottom;
  const size = outW * outH * channels;
  let out: Buffer | undefined;
  for (let i = PAD_POOL.length - 1; i >= 0; i--) {
    if (PAD_POOL[i].length === size) {
      out = PAD_POOL[i];
      PAD_POOL[i] = PAD_POOL[PAD_POOL.length - 1];
      PAD_POOL.pop();
      padPoolBytes -= size;
      break;
    }
  }
  out ??= Buffer.allocUnsafe(size);
  const rowBytes = width * channels;
  const outRow = outW * channels;
  out.fill(255, 0, pad.top * outRow);
  for (let y = 0; y < height; y++) {
    const at = (pad.top + y) * outRow;
    if (pad.left) out.fill(255, at, at + pad.left * channels);
    data.copy(out, at + pad.left * channels, y * rowBytes, (y + 1) * rowBytes);
    if (pad.right) out.fill(255, at + (pad.left + width) * channels, at + outRow);
  }
  out.fill(255, (pad.top + height) * outRow, size);
  return out;
}

// ------------------------------------------------------------------------------------- JPEG fast path

let jpegFastPathEnabled = true;

/**
 * Turns the JPEG fast path (libjpeg-turbo DCT-scaled decode + area resize + libjpeg-turbo encode) on or off for
 * this thread; off, every image goes through sharp. For tests and benchmarks that compare the two paths.
 */
export function setJpegFastPath(enabled: boolean): void {
  jpegFastPathEnabled = enabled;
}

/**
 * The DCT-domain reduction for decoding a `width`×`height` JPEG that will be area-resized to `toWidth`×`toHeight`:
 * 8, 4 or 2 when that reduction lands exactly on the target size, else the largest that still leaves at least a
 * 2× area reduction on both sides, else 1. A reduced inverse DCT of an 8×8 block is close to the block's area
 * average at that scale, so "reduce in the DCT, then area-resize by ≥ 2×" gives what OpenCV's INTER_AREA on the
 * full decode gives, at a fraction of the cost (measured: 47–49 dB PSNR for 1024×768 → 256×192 at 1/4, and via
 * 1/2 + 2× area). A reduction that leaves a residual ratio just above 1 (e.g. 2100 → 263 → 256) resamples
 * instead of averaging and falls to about 37 dB, hence the 2× margin.
 */
export function jpegDecodeScale(width: number, height: number, toWidth: number, toHeight: number): 1 | 2 | 4 | 8 {
  for (const s of [8, 4, 2] as const) {
    if (Math.ceil(width / s) === toWidth && Math.ceil(height / s) === toHeight) return s;
  }
  for (const s of [8, 4, 2] as const) {
    if (Math.ceil(width / s) >= 2 * toWidth && Math.ceil(height / s) >= 2 * toHeight) return s;
  }
  return 1;
}

/** Area-resize weights by (source, destination) length, cached: a run's images come in a handful of sizes. */
const AREA_WEIGHTS = new Map<number, AreaWeights>();
function cachedAreaWeights(src: number, dst: number): AreaWeights {
  const key = src * 65536 + dst;
  let w = AREA_WEIGHTS.get(key);
  if (!w) {
    if (AREA_WEIGHTS.size >= 256) AREA_WEIGHTS.clear();
    w = areaWeights(src, dst);
    AREA_WEIGHTS.set(key, w);
  }
  return w;
}

let AREA_ROWS = new Float32Array(0);

/**
 * OpenCV's INTER_AREA for a reduction (each output pixel is the exact area-weighted mean of the source pixels
 * it covers, fractional at the edges), rounded to nearest; `channels` interleaved 8-bit samples per pixel.
 * Separable: a horizontal pass into float rows, then a vertical pass.
 */
export function resizeArea(src: Uint8Array, width: number, height: number, channels: number, toWidth: number, toHeight: number): Buffer {
  if (!(toWidth <= width && toHeight <= height && toWidth > 0 && toHeight > 0)) throw new Error('resizeArea: only reductions');
  const hw = cachedAreaWeights(width, toWidth);
  const vw = cachedAreaWeights(height, toHeight);
  const rowLen = toWidth * channels;
  if (AREA_ROWS.length < rowLen * height) AREA_ROWS = new Float32Array(rowLen * height);
  const rows = AREA_ROWS;
  for (let y = 0; y < height; y++) {
    const base = y * width * channels;
    const out = y * rowLen;
    for (let i = 0; i < toWidth; i++) {
      const n = hw.count[i];
      const at = hw.at[i];
      const p0 = base + hw.first[i] * channels;
      for (let c = 0; c < channels; c++) {
        let s = 0;
        for (let j = 0, p = p0 + c; j < n; j++, p += channels) s += src[p] * hw.weights[at + j];
        rows[out + i * channels + c] = s;
      }
    }
  }
  const dst = Buffer.allocUnsafe(rowLen * toHeight);
  for (let i = 0; i < toHeight; i++) {
    const j0 = vw.first[i];
    const n = vw.count[i];
    const at = vw.at[i];
    const out = i * rowLen;
    for (let x = 0; x < rowLen; x++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += rows[(j0 + j) * rowLen + x] * vw.weights[at + j];
      dst[out + x] = s + 0.5; // Uint8 store truncates; s is in [0, 255]
    }
  }
  return dst;
}

/**
 * A clean, plain JPEG through libjpeg-turbo: decoded at a DCT-domain reduction (jpegDecodeScale), area-resized
 * to the plan's size, cropped/padded, hashed, and (for jpg output) encoded by libjpeg-turbo with OpenCV's
 * settings. A greyscale JPEG stays greyscale, as in img2dataset (OpenCV decodes it to one channel and encodes
 * one); the sharp path writes it as RGB. Null when the image is not for this path, and the caller uses sharp: no TurboJPEG here, EXIF rotation,
 * a non-area interpolation (upscaling), CMYK/YCCK or 12-bit, a decode that fails or warns (truncation and other
 * damage are classified by the sharp path exactly as before), or a large output.
 */
async function renderJpegFast(
  input: Buffer, header: Header, plan: ResizePlan, o: ImageOptions, base: Omit<ProcessedImageOk, 'bytes' | 'width' | 'height' | 'phash' | 'reencoded'>,
): Promise<ProcessedImageOk | null> {
  const tj = jpegFastPathEnabled ? turboJpeg() : null;
  if (!tj || header.rotates || header.hasAlpha) return null;
  if (plan.resize && plan.resize.interpolation !== 'area') return null;
  const tw = plan.resize ? plan.resize.width : header.width;
  const th = plan.resize ? plan.resize.height : header.height;
  if (tw * th > RAW_CONTENT_MAX_PIXELS) return null;
  const scale = plan.resize ? jpegDecodeScale(header.width, header.height, tw, th) : 1;
  let decoded;
  try {
    decoded = await tj.decode(input, scale, o.maxPixels);
  } catch {
    return null;
  }
  // libjpeg's own header must agree with the one read in JS (the plan was made from it).
  if (decoded.warning !== null || decoded.width !== Math.ceil(header.width / scale) || decoded.height !== Math.ceil(header.height / scale)) return null;
  const ch = decoded.channels;
  let content: Buffer = decoded.data;
  let w = decoded.width;
  let h = decoded.height;
  if (w !== tw || h !== th) {
    content = resizeArea(content, w, h, ch, tw, th);
    w = tw;
    h = th;
  }
  if (plan.crop) {
    const { left, top, width, height } = plan.crop;
    const cut = Buffer.allocUnsafe(width * height * ch);
    for (let y = 0; y < height; y++) content.copy(cut, y * width * ch, ((top + y) * w + left) * ch, ((top + y) * w + left + width) * ch);
    content = cut;
    w = width;
    h = height;
  }
  const phash = phashFromPixels(content, w, h, ch);
  let pixels = content;
  let padded: Buffer | null = null;
  if (plan.pad) {
    padded = pixels = padWhite(content, w, h, ch, plan.pad);
    w += plan.pad.left + plan.pad.right;
    h += plan.pad.top + plan.pad.bottom;
  }
  let bytes: Buffer;
  if (o.encodeFormat === 'jpg') {
    bytes = await tj.encode(pixels, w, h, ch, o.encodeQuality);
  } else {
    bytes = (await encode(sharp(pixels, { raw: { width: w, height: h, channels: ch } }), o).toBuffer());
  }
  if (padded) releasePadBuffer(padded);
  return { ...base, bytes, width: w, height: h, phash, reencoded: true };
}

/**
 * Validate, filter, resize and encode one image. Never throws for bad bytes: every failure is returned
 * classified. Throws ConfigError for invalid options only.
 */
export async function processImage(input: Buffer, opts: Partial<ImageOptions> | ImageOptions = {}): Promise<ProcessedImage> {
  const o = VALIDATED.has(opts) ? (opts as ImageOptions) : validateImageOptions(opts);
  const header = await readHeader(input, o.autoOrient);
  if ('ok' in header) return header;
  const { format, width, height } = header;
  if (width * height > o.maxPixels) {
    return { ok: false, reason: 'too_many_pixels', detail: `${format} declares ${width}x${height} = ${width * height} pixels > maxPixels ${o.maxPixels}` };
  }
  const ow = header.orientedWidth;
  const oh = header.orientedHeight;
  const small = Math.min(ow, oh);
  if (small < o.minImageSize) {
    return { ok: false, reason: 'too_small', detail: `image too small: ${ow}x${oh}, smallest side < minImageSize ${o.minImageSize}` };
  }
  if (ow * oh > o.maxImageArea) {
    return { ok: false, reason: 'too_large_area', detail: `image area too large: ${ow}x${oh} = ${ow * oh} > maxImageArea ${o.maxImageArea}` };
  }
  const ratio = Math.max(ow, oh) / small;
  if (ratio > o.maxAspectRatio) {
    return { ok: false, reason: 'bad_aspect_ratio', detail: `aspect ratio too large: ${ow}x${oh} (${ratio.toFixed(3)}) > maxAspectRatio ${o.maxAspectRatio}` };
  }

  const plan = planResize(ow, oh, o);
  const sha256 = createHash('sha256').update(input).digest('hex');
  const base = { ok: true as const, ext: o.encodeFormat, originalWidth: ow, originalHeight: oh, inputFormat: format, sha256 };
  // A JPEG is decoded at libvips' 'warning' level: libjpeg pads a scan that hits a marker early with grey and
  // only warns ("premature end of data segment"), which is how a cut JPEG with FF D9 appended, or a SOF patched
  // larger than its scan data, decodes "fine" at the 'truncated' level. That warning is a truncation; any other
  // warning (extraneous bytes before a marker, ...) is tolerated as before by decoding again at 'truncated'. Clean
  // JPEGs decode once, as before (the level changes what aborts, not the work): see README, bench:images.
  const render = async (failOn: FailOn): Promise<ProcessedImage> => {
    const keepInput = o.skipReencode && !plan.resize && !plan.crop && !plan.pad && !header.hasAlpha && !header.rotates
      && SAME_FORMAT[o.encodeFormat] === format;
    if (keepInput) {
      // Still decoded in full (validates the bytes) for the hash.
      const phash = await hashPipeline(openPipeline(input, o.maxPixels, o.autoOrient, header.hasAlpha, failOn));
      return { ...base, bytes: input, width: ow, height: oh, phash, reencoded: false };
    }
    if (format === 'jpeg' && failOn === 'warning') {
      const fast = await renderJpegFast(input, header, plan, o, base);
      if (fast) return fast;
    }
    let p = openPipeline(input, o.maxPixels, o.autoOrient, header.hasAlpha, failOn);
    if (plan.resize) p = p.resize(plan.resize.width, plan.resize.height, { fit: 'fill', kernel: SHARP_KERNEL[plan.resize.interpolation] });
    if (plan.crop) p = p.extract(plan.crop);
    const contentW = plan.crop ? plan.crop.width : plan.resize ? plan.resize.width : ow;
    const contentH = plan.crop ? plan.crop.height : plan.resize ? plan.resize.height : oh;
    let bytes: Buffer;
    let phash: string;
    let outW: number;
    let outH: number;
    if (contentW * contentH <= RAW_CONTENT_MAX_PIXELS) {
      // One decode: the resized content as raw pixels feeds both the hash and the encoder.
      const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
      phash = phashFromPixels(data, info.width, info.height, info.channels);
      let q: Sharp;
      let padded: Buffer | null = null;
      if (plan.pad && info.channels === 3 && data.length === info.width * info.height * 3) {
        // RGB: the white border is added here (the same pixels as sharp's extend, without a libvips operation).
        const w = info.width + plan.pad.left + plan.pad.right;
        const h = info.height + plan.pad.top + plan.pad.bottom;
        padded = padWhite(data, info.width, info.height, 3, plan.pad);
        q = sharp(padded, { raw: { width: w, height: h, channels: 3 } });
      } else {
        q = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
        if (plan.pad) q = q.extend({ ...plan.pad, background: WHITE });
      }
      const out = await encode(q, o).toBuffer({ resolveWithObject: true });
      if (padded) releasePadBuffer(padded); // the encode is done with it
      bytes = out.data;
      outW = out.info.width;
      outH = out.info.height;
    } else {
      // Large output (mode "no" on a big image): stream the encode; hash a separately reduced decode.
      if (plan.pad) p = p.extend({ ...plan.pad, background: WHITE });
      const out = await encode(p, o).toBuffer({ resolveWithObject: true });
      bytes = out.data;
      outW = out.info.width;
      outH = out.info.height;
      phash = await hashPipeline(openPipeline(input, o.maxPixels, o.autoOrient, header.hasAlpha, failOn));
    }
    return { ...base, bytes, width: outW, height: outH, phash, reencoded: true };
  };
  const strict = format === 'jpeg';
  try {
    return await render(strict ? 'warning' : 'truncated');
  } catch (err) {
    if (!strict || isTruncationError(err)) return decodeFailure(err, format, input);
  }
  try {
    return await render('truncated');
  } catch (err) {
    return decodeFailure(err, format, input);
  }
}

/** A decoder error that says the data ends early (libjpeg's "premature end of data segment" among them). */
function isTruncationError(err: unknown): boolean {
  return TRUNCATION_MESSAGE.test(err instanceof Error ? err.message : String(err));
}

// ---------------------------------------------------------------------------------------------- pHash

const HASH_N = 32;
const HASH_K = 8;
/**
 * Largest AC coefficient (unnormalised DCT of 0..255 luma on 32×32) of a picture treated as flat: 64 is a
 * pattern of about ¼ luma level peak amplitude. Measured: a solid colour after 16-bit rounding or WebP coding
 * peaks at 36; a photo at 3 % contrast has AC terms up to ≈ 260.
 */
const FLAT_AC_THRESHOLD = 64;
/** The hash of a flat picture: only the DC term is above the median. */
export const FLAT_HASH = '8000000000000000';
/** cos(π·k·(2n+1) / 2N) for k < 8, n < 32. */
const DCT_COS: Float64Array = (() => {
  const t = new Float64Array(HASH_K * HASH_N);
  for (let k = 0; k < HASH_K; k++) for (let n = 0; n < HASH_N; n++) t[k * HASH_N + n] = Math.cos((Math.PI * k * (2 * n + 1)) / (2 * HASH_N));
  return t;
})();

/**
 * Box (area) weights mapping `src` samples onto HASH_N samples: output i is the sum over j < count[i] of
 * sample first[i] + j times weights[at[i] + j].
 */
interface AreaWeights {
  first: Int32Array;
  count: Int32Array;
  at: Int32Array;
  weights: Float64Array;
}

function areaWeights(src: number, dst: number): AreaWeights {
  const first = new Int32Array(dst);
  const count = new Int32Array(dst);
  const at = new Int32Array(dst);
  const all: number[] = [];
  const step = src / dst;
  for (let i = 0; i < dst; i++) {
    const lo = i * step;
    const hi = (i + 1) * step;
    const j0 = Math.floor(lo);
    const j1 = Math.min(src, Math.ceil(hi));
    first[i] = j0;
    count[i] = j1 - j0;
    at[i] = all.length;
    for (let j = j0; j < j1; j++) all.push((Math.min(hi, j + 1) - Math.max(lo, j)) / step);
  }
  return { first, count, at, weights: Float64Array.from(all) };
}

/** Weights by source length (cached with the resize's: the images of a run come in a handful of sizes). */
function hashWeights(src: number): AreaWeights {
  return cachedAreaWeights(src, HASH_N);
}

/** A reused scratch array of at least n doubles (phashFromPixels is synchronous: one user at a time). */
let SCRATCH = new Float64Array(256 * HASH_N);
function scratch(n: number): Float64Array {
  if (SCRATCH.length < n) SCRATCH = new Float64Array(n);
  return SCRATCH;
}

/**
 * The pHash of raw 8-bit pixels (1–4 channels, alpha ignored): luma with PIL's "L" integer weights
 * (0.299, 0.587, 0.114), exact area average down (or up) to 32×32, 2-D DCT-II, the 8×8 lowest frequencies
 * INCLUDING the DC term (as the Python `imagehash.phash`), bit = coefficient > median of those 64, row-major
 * (vertical frequency major), most significant bit first; a nearly uniform picture (every AC term below
 * `FLAT_AC_THRESHOLD`) is `FLAT_HASH`. Pure JS arithmetic: independent of libvips.
 */
export function phashFromPixels(data: Uint8Array, width: number, height: number, channels: number): string {
  if (!(width > 0 && height > 0) || data.length < width * height * channels) throw new Error('phashFromPixels: bad pixel buffer');
  const hw = hashWeights(width);
  const vw = hashWeights(height);
  // Horizontal pass: height × 32, luma computed as it is read (a sample shared by two outputs is computed twice,
  // to the same value).
  const rows = scratch(height * HASH_N);
  const hFirst = hw.first;
  const hCount = hw.count;
  const hAt = hw.at;
  const hW = hw.weights;
  const rgb = channels >= 3;
  for (let y = 0; y < height; y++) {
    const base = y * width * channels;
    const out = y * HASH_N;
    for (let i = 0; i < HASH_N; i++) {
      const n = hCount[i];
      const at = hAt[i];
      let p = base + hFirst[i] * channels;
      let s = 0;
      if (rgb) {
        for (let j = 0; j < n; j++, p += channels) {
          s += ((data[p] * 19595 + data[p + 1] * 38470 + data[p + 2] * 7471 + 0x8000) >>> 16) * hW[at + j];
        }
      } else {
        for (let j = 0; j < n; j++, p += channels) s += data[p] * hW[at + j];
      }
      rows[out + i] = s;
    }
  }
  // Vertical pass: 32 × 32.
  const px = new Float64Array(HASH_N * HASH_N);
  for (let i = 0; i < HASH_N; i++) {
    const j0 = vw.first[i];
    const n = vw.count[i];
    const at = vw.at[i];
    for (let x = 0; x < HASH_N; x++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += rows[(j0 + j) * HASH_N + x] * vw.weights[at + j];
      px[i * HASH_N + x] = s;
    }
  }
  return phashFromGrid(px);
}

function phashFromGrid(px: Float64Array): string {
  // DCT along rows (horizontal frequencies u < 8), then along columns (vertical frequencies v < 8).
  const tmp = new Float64Array(HASH_N * HASH_K);
  for (let y = 0; y < HASH_N; y++) {
    for (let u = 0; u < HASH_K; u++) {
      let s = 0;
      for (let x = 0; x < HASH_N; x++) s += px[y * HASH_N + x] * DCT_COS[u * HASH_N + x];
      tmp[y * HASH_K + u] = s;
    }
  }
  const coef = new Float64Array(HASH_K * HASH_K);
  for (let v = 0; v < HASH_K; v++) {
    for (let u = 0; u < HASH_K; u++) {
      let s = 0;
      for (let y = 0; y < HASH_N; y++) s += tmp[y * HASH_K + u] * DCT_COS[v * HASH_N + y];
      coef[v * HASH_K + u] = s;
    }
  }
  // A (nearly) uniform picture has only noise in its AC terms (rounding, dithering, codec ringing), which would
  // give it an arbitrary hash; all such pictures get the hash of a perfectly flat one instead.
  let maxAc = 0;
  for (let k = 1; k < coef.length; k++) maxAc = Math.max(maxAc, Math.abs(coef[k]));
  if (maxAc < FLAT_AC_THRESHOLD) return FLAT_HASH;
  const sorted = Array.from(coef).sort((a, b) => a - b);
  const median = (sorted[31] + sorted[32]) / 2;
  let hex = '';
  for (let nib = 0; nib < 16; nib++) {
    let v = 0;
    for (let b = 0; b < 4; b++) v = (v << 1) | (coef[nib * 4 + b] > median ? 1 : 0);
    hex += v.toString(16);
  }
  return hex;
}

/** Reduce (never enlarge) an opened pipeline to fit PHASH_PREREDUCE², then hash its pixels. */
async function hashPipeline(p: Sharp): Promise<string> {
  const { data, info } = await p
    .resize(PHASH_PREREDUCE, PHASH_PREREDUCE, { fit: 'inside', withoutEnlargement: true, kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return phashFromPixels(data, info.width, info.height, info.channels);
}

/**
 * The pHash of a whole image (see `phashFromPixels`), images larger than 256² first reduced by libvips to fit
 * 256² (so this matches `processImage`'s hash of a 256 `border`/`keep_ratio_largest` output up to encoding
 * loss). A Buffer is decoded like `processImage` does: first frame, EXIF orientation applied (unless
 * `autoOrient: false`), alpha over white, at most `maxPixels`. A sharp pipeline is cloned (not consumed) and
 * its output hashed as it is, alpha over white. Throws on undecodable input (`processImage` classifies).
 */
export async function perceptualHash(input: Buffer | Sharp, opts: { maxPixels?: number; autoOrient?: boolean } = {}): Promise<string> {
  if (Buffer.isBuffer(input)) {
    const p = sharp(input, {
      failOn: 'truncated', limitInputPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS, autoOrient: opts.autoOrient ?? true, pages: 1,
    });
    return hashPipeline(p.flatten({ background: WHITE }));
  }
  const { data, info } = await input.clone().flatten({ background: WHITE }).raw().toBuffer({ resolveWithObject: true });
  return hashPipeline(sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }));
}

const HEX64 = /^[0-9a-f]+$/i;

/** Number of differing bits between two equal-length hex hashes. */
export function hammingDistance(a: string, b: string): number {
  if (a.length !== b.length) throw new Error(`hammingDistance: hashes differ in length (${a.length} vs ${b.length})`);
  if (!HEX64.test(a) || !HEX64.test(b)) throw new Error('hammingDistance: hashes must be hex strings');
  let d = 0;
  for (let i = 0; i < a.length; i += 7) {
    let x = parseInt(a.slice(i, i + 7), 16) ^ parseInt(b.slice(i, i + 7), 16);
    while (x) {
      x &= x - 1;
      d++;
    }
  }
  return d;
}

// ------------------------------------------------------------------------------------------ sharp setup

/**
 * Process-wide sharp settings for an image worker: no libvips operation cache (every input is new, the
 * cache only holds memory) and one libvips thread per image (the worker runs several images at once, one
 * per libuv thread; sharp already defaults to 1 on glibc Linux). Call once at worker start.
 */
export function configureSharpForWorker(opts: { concurrency?: number; cache?: boolean } = {}): void {
  sharp.cache(opts.cache ?? false);
  sharp.concurrency(opts.concurrency ?? 1);
}
