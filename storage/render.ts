/**
 * SVG → PNG through sharp (libvips + librsvg). libvips maps one SVG user unit to one pixel at 72 dpi, so
 * the default density of 144 dpi renders at twice the SVG's pixel size and text stays crisp. The output has no alpha channel (the
 * figures paint their own white background) and no timestamp chunk: the same SVG gives the same bytes
 * with the same sharp/libvips build (checked by test/datacard.test.ts).
 */
import sharp from 'sharp';

export interface RenderOptions {
  /** Rasterisation density in dpi; 72 = 1 px per SVG unit. Default 144 (2×). */
  density?: number;
}

export async function svgToPng(svg: string, options: RenderOptions = {}): Promise<Buffer> {
  const density = options.density ?? 144;
  return sharp(Buffer.from(svg, 'utf8'), { density })
    .flatten({ background: '#ffffff' })
    .png({ compressionLevel: 9, adaptiveFiltering: true })
    .toBuffer();
}
