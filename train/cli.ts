/**
 * The command line of a training script: a typed flag table with `--help`, errors that name
 * the flag (exit status 2), a `main` wrapper that prints errors without a stack trace (exit 1),
 * the `--device` flag, and the flags every training run shares.
 * @module
 */
import type { DeviceName } from "../kernels/device.ts";
import { init } from "../ops/device.ts";

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
  /** Smallest allowed value of a number flag (inclusive). */
  min?: number;
  /** Largest allowed value of a number flag (inclusive). */
  max?: number;
  /** A float flag must be greater than this (an exclusive lower bound, e.g. 0 for `--lr`). */
  above?: number;
}

/** The parsed values of a flag table. */
export type FlagValues<T extends Record<string, FlagSpec>> = {
  [K in keyof T]: T[K]["type"] extends "int" | "float" ? number
    : T[K]["type"] extends "bool" ? boolean
    : string;
};

/** `dModel` -> `d-model`, `dFF` -> `d-ff`, `nHashes` -> `n-hashes`. */
const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();

/**
 * The `--help` text of a flag table: the usage line, then one line per flag (kebab-case name,
 * help, allowed values or range, default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flagHelp } from "@longseq/tensor/train";
 * const spec = { dModel: { type: "int", default: 64, min: 1, help: "Model width" } } as const;
 * assert.match(flagHelp("usage: x [flags]", spec), /--d-model=VALUE +Model width \(>= 1\) \[default: 64\]/);
 * ```
 */
export function flagHelp(usage: string, spec: Record<string, FlagSpec>): string {
  const rows = Object.entries(spec).map(([k, f]) => {
    const arg = f.type === "bool" ? "" : f.bare !== undefined ? "[=VALUE]" : "=VALUE";
    const choices = f.choices ? ` (${f.choices.join(" | ")})` : rangeText(f);
    const def = f.default === "" || f.default === false ? "" : ` [default: ${f.default}]`;
    return [`  --${kebab(k)}${arg}`, `${f.help}${choices}${def}`];
  });
  const w = Math.max(...rows.map(([a]) => a.length)) + 2;
  return `${usage}\n\nFlags:\n${rows.map(([a, b]) => a.padEnd(w) + b).join("\n")}\n` +
    `  ${"--help".padEnd(w - 2)}Show this help and exit.\n`;
}

/** The allowed range of a number flag, for `--help`: ` (>= 1)`, ` (0..1)`, ` (> 0)` or "". */
function rangeText(f: FlagSpec): string {
  if (f.min !== undefined && f.max !== undefined) return ` (${f.min}..${f.max})`;
  if (f.min !== undefined) return ` (>= ${f.min})`;
  if (f.max !== undefined) return ` (<= ${f.max})`;
  return f.above !== undefined ? ` (> ${f.above})` : "";
}

/** Why a number is out of a flag's range, or null. */
function rangeProblem(f: FlagSpec, n: number): string | null {
  const outside = (f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max) ||
    (f.above !== undefined && !(n > f.above));
  if (!outside) return null;
  const r = rangeText(f).slice(2, -1);
  return f.min !== undefined && f.max !== undefined ? `in ${r}` : r;
}

/**
 * Parses `--name=value`, `--name value`, `--flag` and `--no-flag` (names in kebab-case or as
 * in `spec`) against a flag table. Throws a RangeError naming the flag on an unknown flag or a
 * bad value (not a number, not a safe integer, outside `min` / `max` / `above`, not one of the
 * `choices`); the caller prints it. `--help` prints {@linkcode flagHelp} and exits 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "@longseq/tensor/train";
 * const spec = { steps: { type: "int", default: 10, min: 1, help: "Training steps" } } as const;
 * const f = parseFlags("usage: train [flags]", spec, ["--steps=3"]);
 * assert.equal(f.steps, 3);
 * assert.throws(() => parseFlags("usage", spec, ["--steps=0"]), /--steps must be >= 1, got 0/);
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
      if (
        v.trim() === "" || !Number.isFinite(n) || (f.type === "int" && !Number.isSafeInteger(n))
      ) {
        throw usageError(
          `--${m[2]} must be ${f.type === "int" ? "an integer" : "a number"}, got ${v}`,
        );
      }
      const why = rangeProblem(f, n);
      if (why) throw usageError(`--${m[2]} must be ${why}, got ${v}`);
      out[key] = n;
    }
  }
  return out as FlagValues<T>;
}

/**
 * Runs a script's `main`, printing `name: message` (no stack trace; set `DEBUG` for it) and
 * exiting 1 on an error, 2 on a bad flag (a RangeError thrown by {@linkcode parseFlags}, marked
 * `usage`). Returns normally when `main` succeeds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runMain } from "@longseq/tensor/train";
 * let ran = false;
 * await runMain("demo", async () => {
 *   ran = true;
 * });
 * assert.ok(ran);
 * ```
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

/**
 * A RangeError for a bad command line (exit status 2 under {@linkcode runMain}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { usageError } from "@longseq/tensor/train";
 * const e = usageError("--len must be even");
 * assert.ok(e instanceof RangeError && Reflect.get(e, "usage") === true);
 * ```
 */
export function usageError(message: string): RangeError {
  return Object.assign(new RangeError(message), { usage: true });
}

/**
 * Initialises the backend named by a `--device` flag (`auto`, `cpu`, `webgpu` or
 * `cpu-reference`) and returns the backend in use and a one-line description.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initDevice } from "@longseq/tensor/train";
 * const { backend, line } = await initDevice("cpu-reference");
 * assert.equal(backend, "cpu-reference");
 * assert.match(line, /^device: cpu-reference /);
 * ```
 */
export async function initDevice(device: string): Promise<{ backend: DeviceName; line: string }> {
  const r = await init({ backend: device === "auto" ? undefined : device as DeviceName });
  return { backend: r.backend, line: `device: ${r.backend} (${r.adapter})` };
}

/** Per-example defaults of {@linkcode trainingFlags}. */
export interface TrainingDefaults {
  /** Default of `--steps`. */
  steps: number;
  /** Default of `--batch`. */
  batch: number;
  /** Default of `--lr`. */
  lr: number;
  /** Whether the optimizer clips the gradient at global norm 1 (stated in the `--lr` help). */
  clip: boolean;
  /** Default of `--out`. */
  out: string;
  /** Default of `--eval-batches`. */
  evalBatches: number;
}

/** The flags of {@linkcode trainingFlags}, whose help line an example may reword. */
export type TrainingFlag =
  | "batch"
  | "seed"
  | "out"
  | "evalEvery"
  | "evalBatches";

/**
 * The flag table every training example shares (steps, batch, learning rate and warm-up,
 * seed, device, output folder, resume, checkpoint, logging and evaluation cadence), in the
 * order `--help` lists them; spread it into an example's own table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "@longseq/tensor/train";
 * const FLAGS = {
 *   layers: { type: "int", default: 2, help: "Layers" },
 *   ...trainingFlags({ steps: 100, batch: 8, lr: 1e-3, clip: false, out: "runs/x", evalBatches: 4 }),
 * } as const;
 * const f = parseFlags("usage: x [flags]", FLAGS, ["--steps=3"]);
 * assert.deepEqual([f.steps, f.out, f.resume], [3, "runs/x", ""]);
 * ```
 */
export function trainingFlags(
  d: TrainingDefaults,
  help: Partial<Record<TrainingFlag, string>> = {},
): TrainingFlagTable {
  return {
    steps: { type: "int", default: d.steps, min: 1, help: "Training steps" },
    batch: { type: "int", default: d.batch, min: 1, help: help.batch ?? "Sequences per step" },
    lr: {
      type: "float",
      default: d.lr,
      above: 0,
      help: `Peak learning rate (Adam${d.clip ? ", clipped at norm 1" : ""})`,
    },
    warmup: { type: "int", default: 50, min: 0, help: "Linear warm-up steps" },
    seed: {
      type: "int",
      default: 0,
      help: help.seed ?? "Seed of the init, the data and the LSH rotations",
    },
    device: {
      type: "string",
      default: "auto",
      choices: ["auto", "cpu", "webgpu", "cpu-reference"],
      help: "Backend (auto: see init)",
    },
    precision: {
      type: "string",
      default: "f32",
      choices: ["f32", "f16"],
      help: "Layer-stack precision (f16: mixed precision with dynamic loss scaling)",
    },
    out: {
      type: "string",
      default: d.out,
      help: help.out ?? "Folder for checkpoint, metrics, plot",
    },
    resume: {
      type: "string",
      default: "",
      bare: "auto",
      help: "Resume from a checkpoint (bare: OUT/checkpoint.safetensors)",
    },
    checkpointEvery: {
      type: "int",
      default: 100,
      min: 0,
      help: "Checkpoint every N steps (0: end only)",
    },
    logEvery: {
      type: "int",
      default: 0,
      min: 0,
      help: "Read metrics back every N steps (0: auto)",
    },
    evalEvery: {
      type: "int",
      default: 100,
      min: 0,
      help: help.evalEvery ?? "Evaluate every N steps (0: at the end only)",
    },
    evalBatches: {
      type: "int",
      default: d.evalBatches,
      min: 1,
      help: help.evalBatches ?? "Held-out batches per evaluation",
    },
  } as const;
}

/** A {@linkcode FlagSpec} whose value is read as `T`. */
export type TypedFlagSpec<T extends FlagSpec["type"]> = FlagSpec & { readonly type: T };

/** The flag table {@linkcode trainingFlags} returns. */
export type TrainingFlagTable = {
  /** `--steps`: the step to stop after. */
  readonly steps: TypedFlagSpec<"int">;
  /** `--batch`: sequences per step. */
  readonly batch: TypedFlagSpec<"int">;
  /** `--lr`: the peak learning rate. */
  readonly lr: TypedFlagSpec<"float">;
  /** `--warmup`: linear warm-up steps. */
  readonly warmup: TypedFlagSpec<"int">;
  /** `--seed`: the run's seed. */
  readonly seed: TypedFlagSpec<"int">;
  /** `--device`: `auto`, `cpu`, `webgpu` or `cpu-reference`. */
  readonly device: TypedFlagSpec<"string">;
  /** `--precision`: `f32`, or `f16` (mixed precision with dynamic loss scaling). */
  readonly precision: TypedFlagSpec<"string">;
  /** `--out`: the run's folder. */
  readonly out: TypedFlagSpec<"string">;
  /** `--resume`: a checkpoint path, `auto` when bare, "" for a fresh start. */
  readonly resume: TypedFlagSpec<"string">;
  /** `--checkpoint-every`: steps between checkpoints (0: at the end only). */
  readonly checkpointEvery: TypedFlagSpec<"int">;
  /** `--log-every`: steps between metric readbacks (0: automatic). */
  readonly logEvery: TypedFlagSpec<"int">;
  /** `--eval-every`: steps between evaluations (0: at the end only). */
  readonly evalEvery: TypedFlagSpec<"int">;
  /** `--eval-batches`: held-out batches per evaluation. */
  readonly evalBatches: TypedFlagSpec<"int">;
};

/** The values of the {@linkcode trainingFlags} part of a flag table. */
export type TrainingFlagValues = FlagValues<TrainingFlagTable>;
