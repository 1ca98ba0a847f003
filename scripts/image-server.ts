/**
 * A loopback HTTP server for the generated samples' image URLs (DEFAULT_IMAGE_BASE in samples.ts): what
 * `npm start` downloads from, and what the image benchmark runs against. Every path maps to one of
 * `variants` generated pictures (so distinct URLs share pictures: exact duplicates for image dedup), served
 * at one of three JPEG qualities (different bytes, same picture: near duplicates); a few paths answer 404.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

export interface ImageServerOptions {
  port?: number;
  /** Distinct pictures. */
  variants?: number;
  width?: number;
  height?: number;
  /** Share of paths answering 404 (0..1). */
  missingShare?: number;
  /** Share of (other) paths answering 503 until `heal()` (0..1): transient failures for retry tests. */
  unavailableShare?: number;
  /**
   * Seeded per-pixel noise of up to ± this many levels on every channel (0, the default: none). Gives the
   * flat generated shapes a photo's entropy: at 1024×768 and noise 8 a quality-95 JPEG is ≈ 220 KB, not 24 KB.
   */
  noise?: number;
}

export interface ImageServer {
  port: number;
  baseUrl: string;
  /** From now on, the `unavailableShare` paths answer normally. */
  heal(): void;
  /** Requests served so far (all, or for one path). */
  requests(path?: string): number;
  close(): Promise<void>;
}

const QUALITIES = [95, 88, 80];

function pathHash(path: string): number {
  return createHash('sha1').update(path).digest().readUInt32BE(0);
}

/** One picture: a seeded arrangement of shapes on a gradient, different enough between seeds for pHash. */
function pictureSvg(seed: number, width: number, height: number): string {
  let s = seed * 2654435761 + 1;
  const next = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 4294967296);
  const hue = Math.floor(next() * 360);
  const shapes: string[] = [];
  for (let k = 0; k < 6; k++) {
    const x = Math.floor(next() * width);
    const y = Math.floor(next() * height);
    const r = Math.floor((0.08 + next() * 0.25) * Math.min(width, height));
    const colour = `hsl(${Math.floor(next() * 360)},${50 + Math.floor(next() * 40)}%,${30 + Math.floor(next() * 40)}%)`;
    shapes.push(k % 2 ? `<circle cx="${x}" cy="${y}" r="${r}" fill="${colour}"/>` : `<rect x="${x - r}" y="${y - r}" width="${2 * r}" height="${r}" fill="${colour}"/>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${hue},60%,80%)"/><stop offset="1" stop-color="hsl(${(hue + 120) % 360},60%,25%)"/></linearGradient></defs>
<rect width="${width}" height="${height}" fill="url(#g)"/>${shapes.join('')}</svg>`;
}

/** Adds seeded uniform noise in [-amplitude, amplitude] to every byte (clamped to 0..255). */
function addNoise(data: Buffer, seed: number, amplitude: number): void {
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = data[i] + Math.round(((s >>> 24) / 255) * 2 * amplitude - amplitude);
    data[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
}

export async function startImageServer(opts: ImageServerOptions = {}): Promise<ImageServer> {
  const variants = opts.variants ?? 64;
  const width = opts.width ?? 640;
  const height = opts.height ?? 480;
  const missingShare = opts.missingShare ?? 0.05;
  const noise = opts.noise ?? 0;
  const unavailableShare = opts.unavailableShare ?? 0;
  let healed = false;
  // Every (picture, quality) encoded once up front: serving is then a table lookup.
  const bodies: Buffer[][] = [];
  for (let v = 0; v < variants; v++) {
    const raw = await sharp(Buffer.from(pictureSvg(v, width, height))).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (noise > 0) addNoise(raw.data, v, noise);
    const row: Buffer[] = [];
    for (const quality of QUALITIES) {
      row.push(await sharp(raw.data, { raw: raw.info }).jpeg({ quality }).toBuffer());
    }
    bodies.push(row);
  }
  let served = 0;
  const perPath = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    served++;
    const path = (req.url ?? '/').split('?')[0];
    perPath.set(path, (perPath.get(path) ?? 0) + 1);
    const h = pathHash(path);
    if ((h % 1000) / 1000 < missingShare) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    if (!healed && (((h >>> 10) % 1000) / 1000) < unavailableShare) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('try later');
      return;
    }
    const body = bodies[h % variants][(h >>> 8) % QUALITIES.length];
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}/`,
    heal: () => {
      healed = true;
    },
    requests: (path?: string) => (path === undefined ? served : perPath.get(path) ?? 0),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
