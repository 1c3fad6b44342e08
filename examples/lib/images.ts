/**
 * Image grids for the examples: grayscale images tiled into one PNG (zlib by fflate) or SVG
 * (sampled digits).
 * @module
 */
import { zlibSync } from "fflate";
import { escapeXml } from "../../train/plot.ts";

/** Options of {@linkcode imageGridPng} and {@linkcode imageGridSvg}. */
export interface GridOptions {
  /** Rows of images in the grid. */
  rows: number;
  /** Columns of images in the grid. */
  cols: number;
  /** Image height in pixels. */
  h: number;
  /** Image width in pixels. */
  w: number;
  /** Pixels of gray border between images (default 1). */
  pad?: number;
  /** Screen pixels per image pixel in the SVG (default 3). */
  scale?: number;
}

let crcTable: Uint32Array | null = null;
function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes 8-bit grayscale pixels (`[height, width]` row-major, 0 black .. 255 white) as PNG.
 *
 * @example
 * ```ts
 * const png = encodeGrayPng(new Uint8Array([0, 255, 255, 0]), 2, 2);
 * console.log(png.subarray(1, 4)); // "PNG" as bytes: Uint8Array [80, 78, 71]
 * ```
 */
export function encodeGrayPng(pixels: Uint8Array, width: number, height: number): Uint8Array {
  if (pixels.length !== width * height) {
    throw new RangeError(`encodeGrayPng: ${pixels.length} pixels do not fill ${width}x${height}`);
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit, grayscale, deflate, no filter, no interlace
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) {
    raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlibSync(raw)),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** Lays images out in a grid of gray pixels; returns the pixels and their size. */
function gridPixels(images: readonly ArrayLike<number>[], o: GridOptions) {
  const { rows, cols, h, w, pad = 1 } = o;
  for (const [k, v] of Object.entries({ rows, cols, h, w })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`imageGrid: ${k} must be a positive integer, got ${v}`);
    }
  }
  const width = cols * w + (cols + 1) * pad;
  const height = rows * h + (rows + 1) * pad;
  const px = new Uint8Array(width * height).fill(128);
  images.slice(0, rows * cols).forEach((img, i) => {
    if (img.length !== h * w) {
      throw new RangeError(`imageGrid: image ${i} has ${img.length} values, expected ${h}x${w}`);
    }
    const ox = pad + (i % cols) * (w + pad);
    const oy = pad + Math.floor(i / cols) * (h + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = img[y * w + x];
        px[(oy + y) * width + ox + x] = Math.round(
          255 * Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)),
        );
      }
    }
  });
  return { px, width, height };
}

/**
 * A PNG of up to `rows × cols` grayscale images (each `h × w` values in `[0, 1]`, row-major,
 * 1 = white), separated by gray lines; missing cells stay gray.
 *
 * @example
 * ```ts
 * const png = imageGridPng([new Array(4).fill(1)], { rows: 1, cols: 2, h: 2, w: 2 });
 * console.log(png.length > 40); // true
 * ```
 */
export function imageGridPng(
  images: readonly ArrayLike<number>[],
  options: GridOptions,
): Uint8Array {
  const { px, width, height } = gridPixels(images, options);
  return encodeGrayPng(px, width, height);
}

/**
 * The same grid as {@linkcode imageGridPng}, as an SVG document embedding the PNG (scaled up
 * `scale` times without smoothing), with an optional title.
 *
 * @example
 * ```ts
 * const svg = imageGridSvg([new Array(784).fill(0.5)], { rows: 1, cols: 1, h: 28, w: 28 });
 * console.log(svg.includes("data:image/png;base64,")); // true
 * ```
 */
export function imageGridSvg(
  images: readonly ArrayLike<number>[],
  options: GridOptions & { title?: string },
): string {
  const { px, width, height } = gridPixels(images, options);
  const png = encodeGrayPng(px, width, height);
  let bin = "";
  for (let i = 0; i < png.length; i += 0x8000) {
    bin += String.fromCharCode(...png.subarray(i, i + 0x8000));
  }
  const s = options.scale ?? 3;
  const top = options.title ? 28 : 0;
  const W = width * s;
  const H = height * s + top;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    options.title
      ? `<text x="${W / 2}" y="19" text-anchor="middle" font-size="15">${
        escapeXml(options.title)
      }</text>`
      : "",
    `<image x="0" y="${top}" width="${W}" height="${
      height * s
    }" style="image-rendering:pixelated" href="data:image/png;base64,${btoa(bin)}"/>`,
    `</svg>`,
  ].filter(Boolean).join("\n") + "\n";
}
