/**
 * libjpeg-turbo's TurboJPEG 3 API, for the image stage's JPEG fast path: decoding straight to a reduced size
 * (DCT-domain scaling, 1/2, 1/4 or 1/8 at decode: the inverse DCT runs on the low-frequency coefficients only)
 * and encoding the output. The library is the `libturbojpeg.so.0` (3.1) that the npm package
 * `@julusian/jpeg-turbo` ships prebuilt for Linux; its own JS API has no scaling, so the C API is called through
 * koffi (FFI, prebuilt in its npm tarball). No compiler, no download at install time.
 *
 * `turboJpeg()` is null where the library is not available (no prebuilt for the platform, or it fails to load):
 * callers then use sharp for everything, as before. Handles are per thread (one per worker thread).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

// TurboJPEG 3 constants (turbojpeg.h).
const TJINIT_COMPRESS = 0;
const TJINIT_DECOMPRESS = 1;
const TJPARAM_STOPONWARNING = 0;
const TJPARAM_NOREALLOC = 2;
const TJPARAM_QUALITY = 3;
const TJPARAM_SUBSAMP = 4;
const TJPARAM_JPEGWIDTH = 5;
const TJPARAM_JPEGHEIGHT = 6;
const TJPARAM_PRECISION = 7;
const TJPARAM_COLORSPACE = 8;
const TJPARAM_OPTIMIZE = 11;
const TJPARAM_PROGRESSIVE = 12;
const TJPARAM_SCANLIMIT = 13;
const TJPARAM_LOSSLESS = 15;
const TJPARAM_MAXMEMORY = 23;
const TJPARAM_MAXPIXELS = 24;
const TJPF_RGB = 0;
const TJPF_GRAY = 6;
const TJSAMP_420 = 2;
const TJSAMP_GRAY = 3;
const TJCS_YCbCr = 1;
const TJCS_GRAY = 2;
const TJCS_RGB = 0;
const TJERR_WARNING = 0;

/** What the header of a JPEG says, as far as the fast path needs it. */
export interface JpegInfo {
  width: number;
  height: number;
  /** 3 (YCbCr or RGB: decoded to RGB) or 1 (greyscale); CMYK/YCCK are not handled here (null from readJpegInfo). */
  channels: 1 | 3;
}

export interface DecodedJpeg {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 3;
  /** The first libjpeg warning when the decode completed with one (e.g. "Premature end of JPEG file"). */
  warning: string | null;
}

export interface TurboJpeg {
  /** Header only; null when the header is unreadable or the image is not 8-bit lossy YCbCr/RGB/greyscale. */
  readJpegInfo(jpeg: Buffer): JpegInfo | null;
  /**
   * Decodes at 1/`scale` (scale 1, 2, 4 or 8; output ceil(side / scale)) on libuv's thread pool. Rejects on a
   * fatal error; a warning completes the decode and is returned in `warning`. `maxPixels` bounds the header's
   * (unscaled) size.
   */
  decode(jpeg: Buffer, scale: 1 | 2 | 4 | 8, maxPixels: number): Promise<DecodedJpeg>;
  /**
   * On libuv's thread pool: baseline JPEG, standard Huffman tables, 4:2:0 for RGB (greyscale stays greyscale),
   * OpenCV's imencode defaults.
   */
  encode(pixels: Buffer, width: number, height: number, channels: 1 | 3, quality: number): Promise<Buffer>;
}

type Call = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };
interface Native {
  tj3Init: Call;
  tj3Set: Call;
  tj3Get: Call;
  tj3DecompressHeader: Call;
  tj3SetScalingFactor: Call;
  tj3Decompress8: Call;
  tj3Compress8: Call;
  tj3JPEGBufSize: Call;
  tj3GetErrorStr: Call;
  tj3GetErrorCode: Call;
}

/** The prebuilt libturbojpeg of @julusian/jpeg-turbo for this platform, or null. */
export function turboJpegLibraryPath(): string | null {
  if (process.platform !== 'linux') return null; // other platforms' prebuilds link it statically into the addon
  let dir: string;
  try {
    dir = path.dirname(require.resolve('@julusian/jpeg-turbo/package.json'));
  } catch {
    return null;
  }
  const musl = typeof process.report?.getReport === 'function'
    && !(process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
  const lib = path.join(dir, 'prebuilds', `jpeg-turbo-linux-${process.arch}${musl ? '-musl' : ''}`, 'libturbojpeg.so.0');
  return fs.existsSync(lib) ? lib : null;
}

function bind(libPath: string): Native {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load(libPath);
  // Anonymous: koffi's named types live in the addon for the whole process, and a second module instance (a
  // test file after another in one jest worker) would fail on a duplicate name and silently lose the fast path.
  const scalingFactor = koffi.struct({ num: 'int', denom: 'int' });
  return {
    tj3Init: lib.func('void *tj3Init(int)'),
    tj3Set: lib.func('int tj3Set(void *, int, int)'),
    tj3Get: lib.func('int tj3Get(void *, int)'),
    tj3DecompressHeader: lib.func('int tj3DecompressHeader(void *, const uint8_t *, size_t)'),
    tj3SetScalingFactor: lib.func('tj3SetScalingFactor', 'int', ['void *', scalingFactor]),
    tj3Decompress8: lib.func('int tj3Decompress8(void *, const uint8_t *, size_t, uint8_t *, int, int)'),
    tj3Compress8: lib.func('int tj3Compress8(void *, const uint8_t *, int, int, int, int, _Inout_ uint8_t **, _Inout_ size_t *)'),
    tj3JPEGBufSize: lib.func('size_t tj3JPEGBufSize(int, int, int)'),
    tj3GetErrorStr: lib.func('const char *tj3GetErrorStr(void *)'),
    tj3GetErrorCode: lib.func('int tj3GetErrorCode(void *)'),
  } as unknown as Native;
}

/** Runs a koffi call on libuv's thread pool. */
function inPool(fn: Call, ...args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => fn.async(...args, (err: unknown, rc: number) => (err ? reject(err) : resolve(rc))));
}

class TurboJpegImpl implements TurboJpeg {
  /** For headers, read synchronously on the calling thread. */
  private readonly header: unknown;
  /** Idle handles: a handle serves one decode or encode at a time, and several run at once on the pool. */
  private readonly idleDecoders: unknown[] = [];
  private readonly idleEncoders: unknown[] = [];

  constructor(private readonly n: Native) {
    this.header = this.newDecoder();
  }

  private newDecoder(): unknown {
    const h = this.n.tj3Init(TJINIT_DECOMPRESS);
    if (!h) throw new Error('tj3Init failed');
    // A hostile progressive JPEG can ask for thousands of scans (CPU exhaustion): cap them, and the memory its
    // coefficient buffers may take (MB).
    this.n.tj3Set(h, TJPARAM_SCANLIMIT, 500);
    this.n.tj3Set(h, TJPARAM_MAXMEMORY, 1024);
    this.n.tj3Set(h, TJPARAM_STOPONWARNING, 0);
    return h;
  }

  private newEncoder(): unknown {
    const h = this.n.tj3Init(TJINIT_COMPRESS);
    if (!h) throw new Error('tj3Init failed');
    this.n.tj3Set(h, TJPARAM_NOREALLOC, 1);
    this.n.tj3Set(h, TJPARAM_OPTIMIZE, 0);
    this.n.tj3Set(h, TJPARAM_PROGRESSIVE, 0);
    return h;
  }

  private infoOf(h: unknown, jpeg: Buffer): JpegInfo | null {
    const n = this.n;
    if (n.tj3DecompressHeader(h, jpeg, jpeg.length) !== 0) return null;
    if (n.tj3Get(h, TJPARAM_PRECISION) !== 8 || n.tj3Get(h, TJPARAM_LOSSLESS) !== 0) return null;
    const cs = n.tj3Get(h, TJPARAM_COLORSPACE);
    const channels = cs === TJCS_GRAY ? 1 : cs === TJCS_YCbCr || cs === TJCS_RGB ? 3 : 0;
    if (channels === 0) return null;
    return {
      width: n.tj3Get(h, TJPARAM_JPEGWIDTH) as number,
      height: n.tj3Get(h, TJPARAM_JPEGHEIGHT) as number,
      channels,
    };
  }

  readJpegInfo(jpeg: Buffer): JpegInfo | null {
    return this.infoOf(this.header, jpeg);
  }

  async decode(jpeg: Buffer, scale: 1 | 2 | 4 | 8, maxPixels: number): Promise<DecodedJpeg> {
    const n = this.n;
    const h = this.idleDecoders.pop() ?? this.newDecoder();
    try {
      const info = this.infoOf(h, jpeg);
      if (!info) throw new Error(`turbojpeg: ${this.error(h)}`);
      n.tj3Set(h, TJPARAM_MAXPIXELS, Math.min(maxPixels, 0x7fffffff));
      if (n.tj3SetScalingFactor(h, { num: 1, denom: scale }) !== 0) throw new Error(`turbojpeg: ${this.error(h)}`);
      const width = Math.ceil(info.width / scale);
      const height = Math.ceil(info.height / scale);
      const data = Buffer.allocUnsafe(width * height * info.channels);
      const rc = await inPool(n.tj3Decompress8, h, jpeg, jpeg.length, data, 0, info.channels === 1 ? TJPF_GRAY : TJPF_RGB);
      let warning: string | null = null;
      if (rc !== 0) {
        const message = this.error(h);
        if (n.tj3GetErrorCode(h) !== TJERR_WARNING) throw new Error(`turbojpeg: ${message}`);
        warning = message;
      }
      return { data, width, height, channels: info.channels, warning };
    } finally {
      this.idleDecoders.push(h);
    }
  }

  async encode(pixels: Buffer, width: number, height: number, channels: 1 | 3, quality: number): Promise<Buffer> {
    const n = this.n;
    const h = this.idleEncoders.pop() ?? this.newEncoder();
    try {
      const subsamp = channels === 1 ? TJSAMP_GRAY : TJSAMP_420;
      n.tj3Set(h, TJPARAM_QUALITY, quality);
      n.tj3Set(h, TJPARAM_SUBSAMP, subsamp);
      const out = Buffer.allocUnsafe(n.tj3JPEGBufSize(width, height, subsamp) as number);
      const size = [out.length];
      const rc = await inPool(n.tj3Compress8, h, pixels, width, 0, height, channels === 1 ? TJPF_GRAY : TJPF_RGB, [out], size);
      if (rc !== 0) throw new Error(`turbojpeg encode: ${this.error(h)}`);
      return Buffer.from(out.subarray(0, size[0])); // a right-sized copy: the bound is several times the output
    } finally {
      this.idleEncoders.push(h);
    }
  }

  private error(h: unknown): string {
    return String(this.n.tj3GetErrorStr(h) ?? 'unknown error').trim();
  }
}

let cached: TurboJpeg | null | undefined;

/** This thread's TurboJPEG, or null where unavailable (or disabled with CURATE_TURBOJPEG=0). */
export function turboJpeg(): TurboJpeg | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.env.CURATE_TURBOJPEG === '0') return cached;
  const lib = turboJpegLibraryPath();
  if (!lib) return cached;
  try {
    cached = new TurboJpegImpl(bind(lib));
  } catch (err) {
    // Not fatal (sharp does every image then, more slowly), but never silent: outputs differ slightly by path.
    process.emitWarning(`JPEG fast path off: ${lib} did not load through koffi (${err instanceof Error ? err.message : String(err)}); images go through sharp`);
    cached = null;
  }
  return cached;
}
