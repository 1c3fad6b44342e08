/**
 * The {@linkcode train} options that the shared training flags (`trainingFlags`) determine.
 * @module
 */
import * as optim from "../optim/mod.ts";
import type { TrainOptions } from "./loop.ts";
import { runFiles } from "./run_files.ts";
import type { TrainingFlagValues } from "./cli.ts";

/** The {@linkcode train} options {@linkcode trainOptionsFromFlags} fills in. */
export type FlagTrainOptions = Pick<
  TrainOptions<unknown, unknown>,
  | "outDir"
  | "steps"
  | "seed"
  | "optimizer"
  | "checkpointEvery"
  | "logEvery"
  | "resume"
  | "config"
  | "evalEvery"
  | "lossScale"
>;

/**
 * The {@linkcode train} options that follow from the shared training flags: Adam with linear
 * warm-up (after clipping at global norm 1 when `clip`, as the `--lr` help says), output folder,
 * cadences, resume (`auto`: the run's own checkpoint), the config stored in checkpoints, and
 * dynamic loss scaling with `--precision f16`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags, trainingFlags } from "@longseq/tensor/train";
 * const spec = trainingFlags({ steps: 100, batch: 8, lr: 1e-3, clip: true, out: "runs/x", evalBatches: 2 });
 * const f = parseFlags("usage: x [flags]", spec, ["--resume"]);
 * const o = trainOptionsFromFlags(f, { example: "x", model: { width: 8 }, clip: true });
 * assert.equal(o.resume, "runs/x/checkpoint.safetensors");
 * assert.equal(o.steps, 100);
 * ```
 */
export function trainOptionsFromFlags(
  f: TrainingFlagValues,
  o: { example: string; model: unknown; clip: boolean },
): FlagTrainOptions {
  const adam = optim.adam(optim.warmupThen(Math.max(1, f.warmup), optim.constant(f.lr)));
  return {
    outDir: f.out,
    steps: f.steps,
    seed: f.seed + 2,
    optimizer: o.clip ? optim.chain(optim.clipByGlobalNorm(1), adam) : adam,
    checkpointEvery: f.checkpointEvery,
    logEvery: f.logEvery || undefined,
    resume: f.resume === "auto" ? runFiles(f.out).checkpoint : f.resume || undefined,
    config: { example: o.example, model: o.model, flags: f },
    evalEvery: f.evalEvery,
    lossScale: f.precision === "f16",
  };
}
