/**
 * A dependency-free line chart as SVG, used for the loss curve of a training run.
 * @module
 */

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

/**
 * Escapes text for SVG/XML content and attributes (`& < > " '` as numeric references).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeXml } from "@longseq/tensor/train";
 * assert.equal(escapeXml("a<b & 'c'"), "a&#60;b &#38; &#39;c&#39;");
 * ```
 */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Evenly spaced "nice" tick values (steps of 1, 2 or 5 × 10^k) covering `[lo, hi]`, about
 * `count` of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { niceTicks } from "@longseq/tensor/train";
 * assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
 * ```
 */
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
 * import assert from "node:assert/strict";
 * import { lineChartSvg } from "@longseq/tensor/train";
 * const svg = lineChartSvg(
 *   [{ name: "train", points: [[1, 2.5], [2, 1.9], [3, 1.4]] }],
 *   { title: "Loss", xLabel: "step", yLabel: "loss" },
 * );
 * assert.ok(svg.startsWith("<svg") && svg.includes("Loss"));
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
