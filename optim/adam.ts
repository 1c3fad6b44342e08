/**
 * Adam (Kingma & Ba 2015) with optax's bias correction, and AdamW (Loshchilov & Hutter 2019)
 * with decoupled weight decay.
 * @module
 */
import type { Tensor } from "../ops/tensor.ts";
import { add, div, mul } from "../ops/binary.ts";
import { sqrt, square } from "../ops/unary.ts";
import { zerosLike } from "../ops/creation.ts";
import { scope } from "../ops/scope.ts";
import { chain, type ChainState } from "./chain.ts";
import { addDecayedWeights, checkStepState, type Mask, scaleByLearningRate } from "./transform.ts";
import { checkLearningRate, checkNumber } from "./validate.ts";
import {
  deviceOf,
  flattenLike,
  flattenTensors,
  flattenUpdates,
  unflattenLike,
} from "./param_trees.ts";
import {
  type GradientTransformation,
  initStep,
  nextStep,
  perLeaf,
  type Schedule,
  type StepCount,
  type Tree,
} from "./gradient_transformation.ts";

/** Hyperparameters of {@linkcode scaleByAdam}. */
export interface AdamOptions {
  /** Decay of the first moment, in `[0, 1)` (default 0.9). */
  b1?: number;
  /** Decay of the second moment, in `[0, 1)` (default 0.999). */
  b2?: number;
  /** Added to `sqrt(v̂)` in the denominator (default 1e-8). */
  eps?: number;
}

/** State of {@linkcode scaleByAdam}: a step counter and the two moments, mirroring params. */
export interface AdamState extends StepCount {
  /** First moment (running mean of gradients), one tensor per param. */
  readonly mu: Tree;
  /** Second moment (running mean of squared gradients), one tensor per param. */
  readonly nu: Tree;
}

function checkAdam(op: string, { b1 = 0.9, b2 = 0.999, eps = 1e-8 }: AdamOptions) {
  checkNumber(op, "b1", b1, { min: 0, max: 1, exclusiveMax: true });
  checkNumber(op, "b2", b2, { min: 0, max: 1, exclusiveMax: true });
  checkNumber(op, "eps", eps, { min: 0 });
  return { b1, b2, eps };
}

/**
 * Rescales updates by Adam's moment estimates (no learning rate, no sign flip):
 * `mu = b1 mu + (1-b1) g`, `nu = b2 nu + (1-b2) g^2`, `u = mû / (sqrt(nû) + eps)` with
 * `mû = mu / (1 - b1^t)`, `nû = nu / (1 - b2^t)` and `t` the 1-based step (computed on the host).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, tensor } from "@longseq/tensor";
 * const t = optim.scaleByAdam();
 * const params = { w: tensor([1]) };
 * const [u] = t.update({ w: tensor([0.5]) }, t.init(params));
 * // The first step is sign(g) after bias correction (up to eps).
 * assert.ok(await allClose(u.w, [1], { rtol: 1e-6 }));
 * ```
 */
export function scaleByAdam(options: AdamOptions = {}): GradientTransformation<AdamState> {
  const op = "scaleByAdam";
  const { b1, b2, eps } = checkAdam(op, options);
  return {
    init: (params) =>
      scope(() => {
        const { leaves } = flattenTensors(op, "params", params);
        return {
          ...initStep(deviceOf(params)),
          mu: unflattenLike(params, leaves.map(zerosLike)),
          nu: unflattenLike(params, leaves.map(zerosLike)),
        };
      }),
    update: <U>(updates: U, state: AdamState): [U, AdamState] => {
      const { leaves } = flattenUpdates(op, updates);
      const counter = checkStepState(op, state);
      const like = { refName: "updates", sameShape: true };
      const mu = flattenLike(op, "state.mu", state.mu, updates, like) as Tensor[];
      const nu = flattenLike(op, "state.nu", state.nu, updates, like) as Tensor[];
      const t = counter.step + 1;
      const c1 = 1 / (1 - b1 ** t), c2 = 1 / (1 - b2 ** t);
      // One scope per leaf: a leaf's temporaries are freed before the next leaf starts.
      const [mu2, nu2, out] = perLeaf(leaves, 3, (g, i) => {
        const m = add(mul(mu[i], b1), mul(g, 1 - b1));
        const v = add(mul(nu[i], b2), mul(square(g), 1 - b2));
        return [m, v, div(mul(m, c1), add(sqrt(mul(v, c2)), eps))];
      });
      return [unflattenLike(updates, out), {
        ...nextStep(counter),
        mu: unflattenLike(updates, mu2),
        nu: unflattenLike(updates, nu2),
      }];
    },
  };
}

/** State of {@linkcode adam}. */
export type AdamChainState = ChainState<
  [GradientTransformation<AdamState>, ReturnType<typeof scaleByLearningRate>]
>;

/**
 * Adam: `chain(scaleByAdam(options), scaleByLearningRate(lr))`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, tensor } from "@longseq/tensor";
 * const opt = optim.adam(1e-3);
 * const params = { w: tensor([1, 2]) };
 * const [updates, state] = opt.update({ w: tensor([1, -1]) }, opt.init(params), params);
 * assert.ok(await allClose(updates.w, [-0.001, 0.001], { rtol: 1e-5 }));
 * assert.equal(state[0].step, 1);
 * ```
 */
export function adam(
  learningRate: number | Schedule,
  options: AdamOptions = {},
): GradientTransformation<AdamChainState> {
  const lr = checkLearningRate("adam", learningRate);
  checkAdam("adam", options);
  return chain(scaleByAdam(options), scaleByLearningRate(lr));
}

/** Options of {@linkcode adamw}. */
export interface AdamWOptions extends AdamOptions {
  /** Decoupled weight decay, multiplied by the learning rate (default 1e-4). */
  weightDecay?: number;
  /** Which params decay (default all); see {@linkcode Mask}. */
  mask?: Mask;
}

/** State of {@linkcode adamw}. */
export type AdamWState = ChainState<
  [
    GradientTransformation<AdamState>,
    ReturnType<typeof addDecayedWeights>,
    ReturnType<typeof scaleByLearningRate>,
  ]
>;

/**
 * AdamW: Adam with decoupled weight decay, `u = -lr (adam(g) + weightDecay * param)`, i.e.
 * `chain(scaleByAdam(options), addDecayedWeights(weightDecay, mask), scaleByLearningRate(lr))`.
 * Needs `params` in `update`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, tensor } from "@longseq/tensor";
 * const opt = optim.adamw(1e-3, { weightDecay: 0.01, mask: (_path, p) => p.rank >= 2 });
 * const params = { w: tensor([[1, 2]]), b: tensor([0]) };
 * const grads = { w: tensor([[1, 1]]), b: tensor([1]) };
 * const [updates] = opt.update(grads, opt.init(params), params);
 * // -lr * (adam step + weightDecay * w) on w; no decay on the bias.
 * assert.ok(await allClose(updates.w, [[-1e-3 * 1.01, -1e-3 * 1.02]], { rtol: 1e-5 }));
 * assert.ok(await allClose(updates.b, [-1e-3], { rtol: 1e-5 }));
 * ```
 */
export function adamw(
  learningRate: number | Schedule,
  { weightDecay = 1e-4, mask, ...options }: AdamWOptions = {},
): GradientTransformation<AdamWState> {
  const lr = checkLearningRate("adamw", learningRate);
  checkAdam("adamw", options);
  checkNumber("adamw", "weight decay", weightDecay, { min: 0 });
  return chain(scaleByAdam(options), addDecayedWeights(weightDecay, mask), scaleByLearningRate(lr));
}
