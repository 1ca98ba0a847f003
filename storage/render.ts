/**
 * SVG → PNG through sharp (libvips + librsvg). The default density of 144 dpi renders at twice the SVG's
 * pixel size (SVG user units are 96 dpi), so text stays crisp. The output has no alpha channel (the
 * figures paint their own white background) and no timestamp chunk: the same SVG gives the same bytes
 * with the same sharp/libvips build (checked by test/datacard.test.ts).
 */
import sharp from 'sharp';

export interface RenderOptions {
  /** Rasterisation density in dpi; 96 = 1 px per SVG unit. Default 144 (2×). */
  density?: number;
}

export async function svgToPng(svg: string, options: RenderOptions = {}): Promise<Buffer> {
  const density = options.density ?? 144;
  return sharp(Buffer.from(svg, 'utf8'), { density })
    .flatten({ background: '#ffffff' })
    .png({ compressionLevel: 9, adaptiveFiltering: true })
    .toBuffer();
}
