/**
 * Training progress: a one-line progress bar redrawn in place on a terminal and cut to its width
 * (plain lines when output is not a terminal or `CI=true`), figures with a fixed number of
 * decimals per metric, and a JSON-lines metrics log.
 * @module
 */
import {
  fitLine,
  formatDuration,
  formatFigure,
  formatFigures,
  formatRate,
  terminalColumns,
} from "./format.ts";

/** Per-step figures shown by {@linkcode ProgressBar.update}. */
export interface StepInfo {
  /** Training loss of the step. */
  loss?: number;
  /** Tokens processed by this step (for tokens per second). */
  tokens?: number;
  /** Any other short figures, shown as `key value`. */
  extra?: Record<string, number | string>;
}

/** Options of {@linkcode ProgressBar}. */
export interface ProgressOptions {
  /** Last step number (the bar is full at `total`). */
  total: number;
  /** Step the run starts from (a resumed run; default 0). Rates count from here. */
  start?: number;
  /** Text before the bar. */
  label?: string;
  /** Where text goes (default: stdout). */
  write?: (text: string) => void;
  /** Whether to redraw in place (default: stdout is a terminal and `CI` is not `true`). */
  tty?: boolean;
  /** In plain mode, print every `every` steps (default: about 20 lines per run). */
  every?: number;
  /** Columns of the bar itself (default 24). */
  width?: number;
  /**
   * Terminal columns: a redrawn line is cut to one less than this so it never wraps (a
   * wrapped line cannot be redrawn in place). A number, or a function asked at each redraw
   * (the terminal may be resized); default: `Deno.consoleSize()` of stdout, no cut when that
   * fails (not a terminal). Plain lines are never cut.
   */
  columns?: number | (() => number | undefined);
  /** Decimals of each figure by name (default `DEFAULT_DECIMALS` of `train/format.ts`, then 4). */
  decimals?: Readonly<Record<string, number>>;
  /** Seconds spent before `start` (a resumed run), added to the elapsed time shown. */
  startSeconds?: number;
  /** Clock in milliseconds (default `performance.now`), for tests. */
  now?: () => number;
}

function defaultTty(): boolean {
  try {
    if (Deno.env.get("CI") === "true") return false;
  } catch {
    // Without env permission, assume no CI.
  }
  return Deno.stdout.isTerminal();
}

/**
 * A progress bar: `label [#####-----] 120/500 loss 2.3140 tok/s 12.3k 0:41 eta 2:10`.
 * On a terminal it redraws one line with `\r` (at most ten times a second, and always on the
 * last step), fitted to the terminal's width so it never wraps (without the bar graphic when
 * the whole line does not fit, then cut); otherwise it prints a plain line
 * every `every` steps and on the last one. Figures have a fixed number of decimals per name
 * ({@linkcode formatFigure}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressBar } from "@longseq/tensor/train";
 * const lines: string[] = [];
 * const bar = new ProgressBar({ total: 2, tty: false, write: (s) => lines.push(s) });
 * bar.update(1, { loss: 2.5, tokens: 64, extra: { acc: 0.5 } });
 * bar.update(2, { loss: 2.0, tokens: 64, extra: { acc: 0.75 } });
 * bar.done();
 * assert.equal(lines.length, 2);
 * assert.match(lines[1], /^2\/2 loss 2\.0000 acc 0\.7500 /);
 *
 * // A 20-column terminal: one line of 19 characters, redrawn in place, the figures first.
 * const out: string[] = [];
 * const narrow = new ProgressBar({ total: 2, tty: true, columns: 20, write: (s) => out.push(s) });
 * narrow.update(2, { loss: 2.0 });
 * assert.equal(out[0], "\r2/2 loss 2.0000 0:0\x1b[K");
 * ```
 */
export class ProgressBar {
  readonly #o: Required<ProgressOptions>;
  readonly #t0: number;
  #tokens = 0;
  #lastDraw = -Infinity;
  #lineOpen = false;
  #line = "";

  /** A bar for steps up to `options.total`; nothing is written until the first update. */
  constructor(options: ProgressOptions) {
    const enc = new TextEncoder();
    this.#o = {
      start: 0,
      label: "",
      write: (s) => Deno.stdout.writeSync(enc.encode(s)),
      tty: defaultTty(),
      every: Math.max(1, Math.round((options.total - (options.start ?? 0)) / 20)),
      width: 24,
      columns: terminalColumns,
      decimals: {},
      startSeconds: 0,
      now: () => performance.now(),
      ...options,
    };
    this.#t0 = this.#o.now();
  }

  /** Records that step `step` (1-based, up to `total`) finished, and redraws if due. */
  update(step: number, info: StepInfo = {}): void {
    this.#tokens += info.tokens ?? 0;
    const { total, start, tty, every, now } = this.#o;
    const last = step >= total;
    if (tty) {
      const t = now();
      if (!last && t - this.#lastDraw < 100) return;
      this.#lastDraw = t;
      this.#line = this.#fit(step, info);
      this.#o.write(`\r${this.#line}\x1b[K`);
      this.#lineOpen = true;
    } else if (last || step === start + 1 || (step - start) % every === 0) {
      this.#o.write(`${this.format(step, info)}\n`);
    }
  }

  /**
   * The redrawn line at the terminal's width: whole when it fits, else without the bar
   * graphic (the figures matter more), cut to the width if still too long.
   */
  #fit(step: number, info: StepInfo): string {
    const columns = this.#columns();
    const line = this.format(step, info);
    if (columns === undefined || [...line].length < columns) return line;
    return fitLine(this.format(step, info, false), columns);
  }

  /** The terminal width now, if known. */
  #columns(): number | undefined {
    const c = this.#o.columns;
    return typeof c === "function" ? c() : c;
  }

  /** Prints a message on its own line without breaking the bar (which is redrawn after it). */
  log(message: string): void {
    if (this.#lineOpen) this.#o.write(`\r\x1b[K${message}\n${this.#line}`);
    else this.#o.write(`${message}\n`);
  }

  /** Ends the bar's line (call once after the last update). */
  done(): void {
    if (this.#lineOpen) this.#o.write("\n");
    this.#lineOpen = false;
  }

  /** Seconds since the bar was created (not counting `startSeconds`). */
  get elapsed(): number {
    return (this.#o.now() - this.#t0) / 1000;
  }

  /** Tokens per second since the bar was created. */
  get tokensPerSecond(): number {
    return this.#tokens / Math.max(this.elapsed, 1e-9);
  }

  /**
   * The text of the bar at `step` (without control characters); `bar` draws the `[###---]`
   * graphic (default: on a terminal).
   */
  format(step: number, info: StepInfo = {}, bar: boolean = this.#o.tty): string {
    const { total, start, width, label, decimals, startSeconds } = this.#o;
    const frac = total > 0 ? Math.min(1, Math.max(0, step / total)) : 1;
    const parts: string[] = [];
    if (label) parts.push(label);
    if (bar) parts.push(`[${"#".repeat(Math.round(frac * width)).padEnd(width, "-")}]`);
    parts.push(`${String(step).padStart(String(total).length)}/${total}`);
    if (info.loss !== undefined) parts.push(`loss ${formatFigure("loss", info.loss, decimals)}`);
    const extra = formatFigures(info.extra ?? {}, decimals);
    if (extra) parts.push(extra);
    const elapsed = this.elapsed;
    if (this.#tokens > 0) parts.push(`tok/s ${formatRate(this.tokensPerSecond)}`);
    const done = step - start;
    const eta = done > 0 ? (elapsed / done) * (total - step) : NaN;
    parts.push(formatDuration(startSeconds + elapsed), `eta ${formatDuration(eta)}`);
    return parts.join(" ");
  }
}

/**
 * Appends one JSON object per line to a file (created if missing), e.g.
 * `{"step":10,"loss":2.31,"time":4.2}`; each `log` is written and flushed before it returns, so
 * a crash loses nothing already logged. Non-finite numbers are written as strings.
 *
 * @example
 * ```ts
 * import { MetricsLog, readMetrics } from "@longseq/tensor/train";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * import assert from "node:assert/strict";
 * {
 *   using log = new MetricsLog(path);
 *   log.log({ step: 1, loss: 2.5 });
 * }
 * assert.deepEqual(readMetrics(path), [{ step: 1, loss: 2.5 }]);
 * await Deno.remove(path);
 * ```
 */
export class MetricsLog {
  /** The file appended to. */
  readonly path: string;
  #file: Deno.FsFile | null;
  readonly #enc = new TextEncoder();

  /** Opens `path` for appending; `truncate: true` starts it afresh. */
  constructor(path: string, options: { truncate?: boolean } = {}) {
    this.path = path;
    this.#file = Deno.openSync(path, {
      create: true,
      write: true,
      append: !options.truncate,
      truncate: !!options.truncate,
    });
  }

  /** Appends `record` as one line of JSON. */
  log(record: Record<string, unknown>): void {
    if (!this.#file) throw new TypeError(`MetricsLog: ${this.path} is closed`);
    const line = JSON.stringify(
      record,
      (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v),
    );
    const bytes = this.#enc.encode(line + "\n");
    for (let at = 0; at < bytes.length;) at += this.#file.writeSync(bytes.subarray(at));
  }

  /** Closes the file (safe to call twice). */
  close(): void {
    this.#file?.close();
    this.#file = null;
  }

  /** Closes the file at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Reads a JSON-lines metrics file written by {@linkcode MetricsLog}; blank lines and a torn
 * last line (from a crash mid-write) are skipped. A bad line elsewhere throws a SyntaxError
 * naming the file and line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readMetrics } from "@longseq/tensor/train";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await Deno.writeTextFile(path, '{"step":1,"loss":2}\n{"step":2,"lo');
 * assert.deepEqual(readMetrics(path), [{ step: 1, loss: 2 }]);
 * await Deno.remove(path);
 * ```
 */
export function readMetrics(path: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const lines = Deno.readTextFileSync(path).split("\n");
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      if (i < lines.length - 1 && lines.slice(i + 1).some((l) => l.trim())) {
        throw new SyntaxError(
          `readMetrics: ${path} line ${i + 1} is not JSON: ${(e as Error).message}`,
        );
      }
    }
  });
  return out;
}
