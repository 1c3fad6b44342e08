/**
 * The command line of the examples: a typed flag table with `--help`, errors that name the
 * flag (exit status 2), a `main` wrapper that prints errors without a stack trace (exit 1),
 * and the `--device` flag.
 * @module
 */
import { type DeviceName, init } from "../../mod.ts";

/** One command-line flag of an example. */
export interface FlagSpec {
  /** How the value is read. */
  type: "int" | "float" | "string" | "bool";
  /** Value when the flag is absent. */
  default: number | string | boolean;
  /** One line of help. */
  help: string;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
  /** Value of a string flag given bare (`--resume` alone); without it a value is required. */
  bare?: string;
}

/** The parsed values of a flag table. */
export type FlagValues<T extends Record<string, FlagSpec>> = {
  [K in keyof T]: T[K]["type"] extends "int" | "float" ? number
    : T[K]["type"] extends "bool" ? boolean
    : string;
};

/** `dModel` -> `d-model`, `dFF` -> `d-ff`, `nHashes` -> `n-hashes`. */
const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();

/** The `--help` text of a flag table. */
export function flagHelp(usage: string, spec: Record<string, FlagSpec>): string {
  const rows = Object.entries(spec).map(([k, f]) => {
    const arg = f.type === "bool" ? "" : f.bare !== undefined ? "[=VALUE]" : "=VALUE";
    const choices = f.choices ? ` (${f.choices.join(" | ")})` : "";
    const def = f.default === "" || f.default === false ? "" : ` [default: ${f.default}]`;
    return [`  --${kebab(k)}${arg}`, `${f.help}${choices}${def}`];
  });
  const w = Math.max(...rows.map(([a]) => a.length)) + 2;
  return `${usage}\n\nFlags:\n${rows.map(([a, b]) => a.padEnd(w) + b).join("\n")}\n` +
    `  ${"--help".padEnd(w - 2)}Show this help and exit.\n`;
}

/**
 * Parses `--name=value`, `--name value`, `--flag` and `--no-flag` (names in kebab-case or as
 * in `spec`) against a flag table. Throws a RangeError naming the flag on an unknown flag or a
 * bad value; the caller prints it. `--help` prints {@linkcode flagHelp} and exits 0.
 *
 * @example
 * ```ts
 * const spec = { steps: { type: "int", default: 10, help: "Training steps" } } as const;
 * const f = parseFlags("usage: train [flags]", spec, ["--steps=3"]);
 * console.log(f.steps); // 3
 * ```
 */
export function parseFlags<T extends Record<string, FlagSpec>>(
  usage: string,
  spec: T,
  args: readonly string[] = Deno.args,
): FlagValues<T> {
  const byName = new Map<string, string>();
  for (const k of Object.keys(spec)) byName.set(k, k).set(kebab(k), k).set(k.toLowerCase(), k);
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(spec)) out[k] = f.default;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") {
      console.log(flagHelp(usage, spec));
      Deno.exit(0);
    }
    const m = /^--(no-)?([A-Za-z][\w-]*)(?:=(.*))?$/s.exec(a);
    const key = m && byName.get(m[2]);
    if (!m || !key) throw usageError(`unknown argument ${a} (see --help)`);
    const f = spec[key];
    if (f.type === "bool") {
      if (m[3] !== undefined) throw usageError(`--${m[2]} takes no value`);
      out[key] = !m[1];
      continue;
    }
    if (m[1]) throw usageError(`--no-${m[2]} is not a switch`);
    let v = m[3];
    if (v === undefined) {
      const nextIsValue = i + 1 < args.length && !args[i + 1].startsWith("--");
      if (nextIsValue) v = args[++i];
      else if (f.bare !== undefined) v = f.bare;
      else throw usageError(`--${m[2]} needs a value`);
    }
    if (f.type === "string") {
      if (f.choices && !f.choices.includes(v)) {
        throw usageError(`--${m[2]} must be one of ${f.choices.join(", ")}, got ${v}`);
      }
      out[key] = v;
    } else {
      const n = Number(v);
      if (v.trim() === "" || !Number.isFinite(n) || (f.type === "int" && !Number.isInteger(n))) {
        throw usageError(
          `--${m[2]} must be ${f.type === "int" ? "an integer" : "a number"}, got ${v}`,
        );
      }
      out[key] = n;
    }
  }
  return out as FlagValues<T>;
}

/**
 * Runs an example's `main`, printing `name: message` (no stack trace) and exiting 1 on an
 * error, 2 on a bad flag (a RangeError thrown by {@linkcode parseFlags}, marked `usage`).
 */
export async function runMain(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    const err = e as Error & { usage?: boolean };
    console.error(`${name}: ${err?.message ?? String(e)}`);
    if (Deno.env.get("DEBUG")) console.error(err?.stack);
    Deno.exit(err?.usage ? 2 : 1);
  }
}

/** A RangeError for a bad command line (exit status 2 under {@linkcode runMain}). */
export function usageError(message: string): RangeError {
  return Object.assign(new RangeError(message), { usage: true });
}

/**
 * Initialises the backend named by a `--device` flag (`auto`, `cpu` or `webgpu`) and returns
 * the backend in use and a one-line description.
 */
export async function initDevice(device: string): Promise<{ backend: DeviceName; line: string }> {
  const r = await init({ backend: device === "auto" ? undefined : device as DeviceName });
  return { backend: r.backend, line: `device: ${r.backend} (${r.adapter})` };
}
