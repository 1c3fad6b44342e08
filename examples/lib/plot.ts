/**
 * Small plotting helpers for the examples: a line chart as SVG (loss curves) and a grid of
 * grayscale images as PNG or SVG (sampled digits). No dependencies beyond fflate's zlib.
 * @module
 */
import { zlibSync } from "fflate";

/** One line of a chart. */
export interface Series {
  /** Name shown in the legend. */
  name: string;
  /** `[x, y]` points in drawing order; non-finite values break the line. */
  points: readonly (readonly [number, number])[];
  /** CSS colour (default: from a fixed palette). */
  color?: string;
}

/** Options of {@linkcode lineChartSvg}. */
export interface ChartOptions {
  /** Title above the chart. */
  title?: string;
  /** Label under the x axis. */
  xLabel?: string;
  /** Label beside the y axis. */
  yLabel?: string;
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels (default 400). */
  height?: number;
  /** Logarithmic y axis (positive values only; default false). */
  logY?: boolean;
}

const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
];

/** Escapes text for SVG/XML content and attributes. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Evenly spaced "nice" tick values (steps of 1, 2 or 5 × 10^k) covering `[lo, hi]`. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(4)));
}

/** Extent of finite values, widened when empty or flat. */
function extent(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return [0, 1];
  if (lo === hi) return lo === 0 ? [-1, 1] : [lo - Math.abs(lo) * 0.1, hi + Math.abs(hi) * 0.1];
  return [lo, hi];
}

/**
 * Draws series as lines on shared axes, with ticks, grid lines, axis labels and a legend, and
 * returns the SVG document as a string.
 *
 * @example
 * ```ts
 * const svg = lineChartSvg(
 *   [{ name: "train", points: [[1, 2.5], [2, 1.9], [3, 1.4]] }],
 *   { title: "Loss", xLabel: "step", yLabel: "loss" },
 * );
 * console.log(svg.startsWith("<svg")); // true
 * ```
 */
export function lineChartSvg(series: readonly Series[], options: ChartOptions = {}): string {
  const { title = "", xLabel = "", yLabel = "", width = 640, height = 400, logY = false } = options;
  const ok = (x: number, y: number) => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
  const pts = series.flatMap((s) => s.points.filter(([x, y]) => ok(x, y)));
  const [x0, x1] = extent(pts.map((p) => p[0]));
  const tf = (y: number) => (logY ? Math.log10(y) : y);
  let [y0, y1] = extent(pts.map((p) => tf(p[1])));
  let yTicks: number[];
  if (logY) {
    const within = (v: number) => Math.log10(v) >= y0 - 1e-9 && Math.log10(v) <= y1 + 1e-9;
    const decades: number[] = [];
    for (let k = Math.floor(y0); k <= Math.ceil(y1); k++) decades.push(10 ** k);
    const fine = decades.flatMap((d) => [d, 2 * d, 5 * d]).filter(within);
    yTicks = fine.length > 10
      ? decades.filter(within)
      : fine.length >= 3
      ? fine
      : niceTicks(10 ** y0, 10 ** y1, 8);
    yTicks = yTicks.filter((v) => v > 0);
  } else {
    const step = niceTicks(y0, y1)[1] - niceTicks(y0, y1)[0] || 1;
    [y0, y1] = [Math.floor(y0 / step + 1e-9) * step, Math.ceil(y1 / step - 1e-9) * step];
    yTicks = niceTicks(y0, y1);
  }
  const xTicks = niceTicks(x0, x1, Math.max(2, Math.floor(width / 110)));
  const m = { left: 64, right: 16, top: title ? 36 : 16, bottom: xLabel ? 52 : 36 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0 || 1)) * pw;
  const sy = (y: number) => m.top + ph - ((tf(y) - y0) / (y1 - y0 || 1)) * ph;
  const n = (v: number) => Number(v.toFixed(2));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (title) {
    out.push(
      `<text x="${n(width / 2)}" y="22" text-anchor="middle" font-size="15">${
        escapeXml(title)
      }</text>`,
    );
  }
  out.push(`<g stroke="#e5e5e5">`);
  for (const v of yTicks) {
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${n(sy(v))}" y2="${n(sy(v))}"/>`);
  }
  for (const v of xTicks) {
    out.push(`<line x1="${n(sx(v))}" x2="${n(sx(v))}" y1="${m.top}" y2="${m.top + ph}"/>`);
  }
  out.push(`</g>`, `<g fill="#333">`);
  for (const v of yTicks) {
    out.push(
      `<text x="${m.left - 6}" y="${n(sy(v) + 4)}" text-anchor="end">${
        escapeXml(formatTick(v))
      }</text>`,
    );
  }
  for (const v of xTicks) {
    out.push(
      `<text x="${n(sx(v))}" y="${m.top + ph + 16}" text-anchor="middle">${
        escapeXml(formatTick(v))
      }</text>`,
    );
  }
  out.push(`</g>`);
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
  );
  if (xLabel) {
    out.push(
      `<text x="${n(m.left + pw / 2)}" y="${height - 10}" text-anchor="middle">${
        escapeXml(xLabel)
      }</text>`,
    );
  }
  if (yLabel) {
    const cy = n(m.top + ph / 2);
    out.push(
      `<text x="14" y="${cy}" text-anchor="middle" transform="rotate(-90 14 ${cy})">${
        escapeXml(yLabel)
      }</text>`,
    );
  }
  series.forEach((s, i) => {
    let d = "";
    let pen = false;
    for (const [x, y] of s.points) {
      if (!ok(x, y)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${n(sx(x))} ${n(sy(y))}`;
      pen = true;
    }
    const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length]);
    if (d) out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
  });
  if (series.length) {
    const lw = 28 + 7 * Math.max(...series.map((s) => s.name.length));
    const lx = m.left + pw - lw - 8;
    out.push(
      `<g><rect x="${lx}" y="${m.top + 8}" width="${lw}" height="${
        series.length * 18 + 8
      }" fill="white" fill-opacity="0.85" stroke="#999"/>`,
    );
    series.forEach((s, i) => {
      const y = m.top + 22 + i * 18;
      const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length]);
      out.push(
        `<line x1="${lx + 6}" x2="${lx + 22}" y1="${y - 4}" y2="${
          y - 4
        }" stroke="${color}" stroke-width="2"/>`,
      );
      out.push(`<text x="${lx + 26}" y="${y}">${escapeXml(s.name)}</text>`);
    });
    out.push(`</g>`);
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

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
