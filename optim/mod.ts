/**
 * Optimizers as pure `{ init, update }` pairs composed with {@linkcode chain} (optax style):
 * `sgd`, `adam`, `adamw`, `adafactor`, `clipByGlobalNorm`, learning-rate schedules, the
 * building blocks they are made of, and `dynamicLossScale` for half-precision training.
 *
 * Memory: `update` never mutates or frees its inputs and returns only new tensor handles; run a
 * training step in `scope()`, return the new params and state from it, and dispose the old ones.
 * Step counts live in the state as an `i32` scalar tensor (`count`, for checkpoints) with a host
 * mirror (`step`), so schedules and bias corrections never read the GPU back; after loading a
 * checkpoint call {@linkcode restoreSteps}.
 *
 * Shapes: `grads`, `params` and the returned `updates` are pytrees of one structure with equal
 * leaf shapes (any shapes); per-parameter state (momentum, Adam's moments) mirrors them, except
 * Adafactor's, which for a param `[..., rows, cols]` keeps `[..., rows]` and `[..., cols]`
 * averages. Step counts are `[]` i32 scalars and schedules map a step number to a number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, scope, tensor } from "@longseq/tensor";
 * const opt = optim.chain(optim.clipByGlobalNorm(1), optim.adamw(optim.warmupThen(100, optim.cosineDecay(1e-3, 900))));
 * let params = { w: tensor([1, 2, 3]) };
 * let state = opt.init(params);
 * for (let i = 0; i < 3; i++) {
 *   const next = scope(() => {
 *     const grads = { w: tensor([0.1, -0.2, 0.3]) }; // from grad(loss) in practice
 *     const [updates, s] = opt.update(grads, state, params);
 *     return { params: optim.applyUpdates(params, updates), state: s };
 *   });
 *   params.w.dispose();
 *   ({ params, state } = next); // (dispose the old state's tensors too in real loops)
 * }
 * assert.equal(state[1][0].step, 3); // adamw's step counter
 * ```
 * @module
 */
export {
  type GradientTransformation,
  restoreSteps,
  type Schedule,
  type StateOf,
  type StepCount,
  type Tree,
} from "./gradient_transformation.ts";
export { type AnyTransformation, chain, type ChainState } from "./chain.ts";
export {
  addDecayedWeights,
  applyUpdates,
  type EmptyState,
  identity,
  type LearningRateState,
  type Mask,
  type MaskTree,
  scale,
  scaleByLearningRate,
  trace,
  type TraceState,
} from "./transform.ts";
export { sgd, type SgdOptions, type SgdState } from "./sgd.ts";
export {
  adam,
  type AdamChainState,
  type AdamOptions,
  type AdamState,
  adamw,
  type AdamWOptions,
  type AdamWState,
  scaleByAdam,
} from "./adam.ts";
export { adafactor, type AdafactorOptions, type AdafactorState } from "./adafactor.ts";
export { clipByGlobalNorm, globalNorm } from "./clip.ts";
export {
  dynamicLossScale,
  type LossScaleOptions,
  type LossScaleState,
  scaleLoss,
} from "./loss_scale.ts";
export {
  constant,
  cosineDecay,
  joinSchedules,
  linearSchedule,
  linearWarmup,
  rsqrtDecay,
  warmupThen,
} from "./schedules.ts";
