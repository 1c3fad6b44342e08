/**
 * Formatting for training logs: durations, rates, figures with a fixed number of decimals, and
 * fitting one line to the terminal's width.
 * @module
 */
/**
 * Formats seconds as `m:ss` or `h:mm:ss` (`--:--` when not a non-negative number).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "@longseq/tensor/train";
 * assert.equal(formatDuration(75), "1:15");
 * assert.equal(formatDuration(3725), "1:02:05");
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * Formats a rate with three significant digits: `950`, `12.3k`, `4.56M` (`-` when not finite).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatRate } from "@longseq/tensor/train";
 * assert.equal(formatRate(12345), "12.3k");
 * ```
 */
export function formatRate(x: number): string {
  if (!Number.isFinite(x)) return "-";
  if (x >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e3) return `${(x / 1e3).toPrecision(3)}k`;
  return x.toPrecision(3);
}

/**
 * Decimals used for a figure without an entry in `decimals`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_DECIMALS, formatFigure } from "@longseq/tensor/train";
 * assert.equal(formatFigure("loss", 1 / 3), (1 / 3).toFixed(DEFAULT_DECIMALS));
 * ```
 */
export const DEFAULT_DECIMALS = 4;

/**
 * Formats a figure with a fixed number of decimals, so a column keeps its width from line to
 * line: `decimals[name]` if given, else {@linkcode DEFAULT_DECIMALS}. Non-finite values are
 * written `NaN`, `inf` and `-inf`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatFigure } from "@longseq/tensor/train";
 * assert.equal(formatFigure("loss", 0.5), "0.5000");
 * assert.equal(formatFigure("acc", 1, { acc: 2 }), "1.00");
 * assert.equal(formatFigure("loss", Infinity), "inf");
 * ```
 */
export function formatFigure(
  name: string,
  value: number,
  decimals: Readonly<Record<string, number>> = {},
): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  const d = decimals[name] ?? DEFAULT_DECIMALS;
  return value.toFixed(Math.max(0, Math.min(20, Math.floor(d))));
}

/**
 * Formats named figures as `name value` pairs joined by spaces, each with
 * {@linkcode formatFigure}; strings are written as they are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatFigures } from "@longseq/tensor/train";
 * assert.equal(formatFigures({ evalAcc: 0.5, note: "ok" }), "evalAcc 0.5000 note ok");
 * ```
 */
export function formatFigures(
  figures: Readonly<Record<string, number | string>>,
  decimals: Readonly<Record<string, number>> = {},
): string {
  return Object.entries(figures)
    .map(([k, v]) => `${k} ${typeof v === "number" ? formatFigure(k, v, decimals) : v}`)
    .join(" ");
}

/**
 * Columns of the terminal on stdout (`Deno.consoleSize()`), or undefined when stdout is not a
 * terminal or cannot be asked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { terminalColumns } from "@longseq/tensor/train";
 * const columns = terminalColumns();
 * assert.ok(columns === undefined || columns >= 0);
 * ```
 */
export function terminalColumns(): number | undefined {
  try {
    return Deno.stdout.isTerminal() ? Deno.consoleSize().columns : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Cuts `line` to fit `columns` terminal columns without wrapping: at most `columns - 1`
 * characters (the last column would move the cursor on some terminals). Unchanged when
 * `columns` is undefined or not positive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitLine } from "@longseq/tensor/train";
 * assert.equal(fitLine("copy [####----] 12/50 loss 2.3000", 16), "copy [####----]");
 * assert.equal(fitLine("short", 80), "short");
 * ```
 */
export function fitLine(line: string, columns: number | undefined): string {
  if (columns === undefined || !(columns > 0)) return line;
  const chars = [...line];
  return chars.length < columns ? line : chars.slice(0, Math.max(0, columns - 1)).join("");
}
