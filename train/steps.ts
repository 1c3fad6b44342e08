/**
 * Small pieces of a training run: disposing a tree of tensors, the PRNG key of a step, and a
 * one-line summary of what a `train` call did.
 * @module
 */
import { random } from "../ops/random.ts";
import type { Tensor } from "../ops/tensor.ts";
import type { TrainResult } from "./loop.ts";

/** Disposes every tensor in a tree (the library's `disposeTree`, re-exported for training code). */
export { disposeTree } from "../autodiff/pytree.ts";

/**
 * The PRNG key of training step `step`: `foldIn(key(seed), step)`, pure in `(seed, step)` so a
 * resumed run draws the same keys as an uninterrupted one. Like every key, it needs no
 * dispose.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stepKey } from "@longseq/tensor/train";
 * using a = stepKey(0, 7);
 * using b = stepKey(0, 7);
 * assert.deepEqual(await a.array(), await b.array());
 * ```
 */
export function stepKey(seed: number, step: number): Tensor {
  return random.foldIn(random.key(seed), step);
}

/**
 * One line about how much a `train` call did: `100 steps in 41.2 s`, or after a
 * resume the steps and seconds of this call and the totals apart:
 * `35 steps in 12.3 s (step 100 in all, 41.2 s)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runSummary } from "@longseq/tensor/train";
 * const r = { step: 100, startStep: 65, stepsRun: 35, seconds: 12.34, totalSeconds: 41.2 };
 * assert.equal(runSummary(r), "35 steps in 12.3 s (step 100 in all, 41.2 s)");
 * assert.equal(runSummary({ ...r, startStep: 0, stepsRun: 100 }), "100 steps in 12.3 s");
 * ```
 */
export function runSummary(
  r: Pick<TrainResult<unknown>, "step" | "startStep" | "stepsRun" | "seconds" | "totalSeconds">,
): string {
  const steps = `${r.stepsRun} step${r.stepsRun === 1 ? "" : "s"}`;
  const line = `${steps} in ${r.seconds.toFixed(1)} s`;
  return r.startStep > 0 ? `${line} (step ${r.step} in all, ${r.totalSeconds.toFixed(1)} s)` : line;
}
