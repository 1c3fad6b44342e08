/**
 * Training progress for the examples: a one-line progress bar redrawn in place on a terminal
 * (plain lines when output is not a terminal or `CI=true`), and a JSON-lines metrics log.
 * @module
 */

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
  /** Clock in milliseconds (default `performance.now`), for tests. */
  now?: () => number;
}

/** Formats seconds as `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Formats a rate compactly: `950`, `12.3k`, `4.56M`. */
export function formatRate(x: number): string {
  if (!Number.isFinite(x)) return "-";
  if (x >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e3) return `${(x / 1e3).toPrecision(3)}k`;
  return x.toPrecision(3);
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
 * A progress bar: `label [#####-----] 120/500 loss 2.314 tok/s 12.3k 0:41 eta 2:10`.
 * On a terminal it redraws one line with `\r` (at most ten times a second, and always on the
 * last step); otherwise it prints a plain line every `every` steps and on the last one.
 *
 * @example
 * ```ts
 * const lines: string[] = [];
 * const bar = new ProgressBar({ total: 2, tty: false, write: (s) => lines.push(s) });
 * bar.update(1, { loss: 2.5, tokens: 64 });
 * bar.update(2, { loss: 2.0, tokens: 64 });
 * bar.done();
 * console.log(lines.length); // 2
 * ```
 */
export class ProgressBar {
  readonly #o: Required<Omit<ProgressOptions, "label">> & { label: string };
  readonly #t0: number;
  #tokens = 0;
  #lastDraw = -Infinity;
  #lineOpen = false;
  #line = "";

  constructor(options: ProgressOptions) {
    const enc = new TextEncoder();
    this.#o = {
      start: 0,
      label: "",
      write: (s) => Deno.stdout.writeSync(enc.encode(s)),
      tty: defaultTty(),
      every: Math.max(1, Math.round((options.total - (options.start ?? 0)) / 20)),
      width: 24,
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
      this.#line = this.format(step, info);
      this.#o.write(`\r${this.#line}\x1b[K`);
      this.#lineOpen = true;
    } else if (last || step === start + 1 || (step - start) % every === 0) {
      this.#o.write(`${this.format(step, info)}\n`);
    }
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

  /** Seconds since the bar was created. */
  get elapsed(): number {
    return (this.#o.now() - this.#t0) / 1000;
  }

  /** Tokens per second since the bar was created. */
  get tokensPerSecond(): number {
    return this.#tokens / Math.max(this.elapsed, 1e-9);
  }

  /** The text of the bar at `step` (without control characters). */
  format(step: number, info: StepInfo = {}): string {
    const { total, start, width, label, tty } = this.#o;
    const frac = total > 0 ? Math.min(1, Math.max(0, step / total)) : 1;
    const parts: string[] = [];
    if (label) parts.push(label);
    if (tty) parts.push(`[${"#".repeat(Math.round(frac * width)).padEnd(width, "-")}]`);
    parts.push(`${String(step).padStart(String(total).length)}/${total}`);
    if (info.loss !== undefined) parts.push(`loss ${info.loss.toFixed(4)}`);
    for (const [k, v] of Object.entries(info.extra ?? {})) {
      parts.push(`${k} ${typeof v === "number" ? Number(v.toPrecision(4)) : v}`);
    }
    const elapsed = this.elapsed;
    if (this.#tokens > 0) parts.push(`tok/s ${formatRate(this.tokensPerSecond)}`);
    const done = step - start;
    const eta = done > 0 ? (elapsed / done) * (total - step) : NaN;
    parts.push(formatDuration(elapsed), `eta ${formatDuration(eta)}`);
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
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * using log = new MetricsLog(path);
 * log.log({ step: 1, loss: 2.5 });
 * console.log(readMetrics(path)); // [{ step: 1, loss: 2.5 }]
 * ```
 */
export class MetricsLog {
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
 * last line (from a crash mid-write) are skipped.
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
