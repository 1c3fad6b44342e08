/**
 * Adafactor (Shazeer & Stern 2018, Algorithms 4 and 5), the Reformer's optimizer: second moments
 * factored into row and column running averages for params of rank >= 2, relative step sizes,
 * update clipping, and optional momentum and weight decay (as in trax).
 * @module
 */
import type { Tensor } from "../ops/tensor.ts";
import { add, div, maximum, mul, sub } from "../ops/binary.ts";
import { neg, rsqrt, sqrt, square } from "../ops/unary.ts";
import { full, zerosLike } from "../ops/creation.ts";
import { expandDims } from "../ops/shape.ts";
import { mean } from "../ops/reduce.ts";
import { scope } from "../ops/scope.ts";
import { checkStepState } from "./transform.ts";
import { checkLearningRate, checkNumber, rateAt } from "./validate.ts";
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

/** Options of {@linkcode adafactor} (defaults from the paper). */
export interface AdafactorOptions {
  /** Factor the second moments of params of rank >= 2 over their last two axes (default true). */
  factored?: boolean;
  /** Multiply the step size by `max(epsilon2, RMS(param))` (default true; needs params). */
  multiplyByParameterScale?: boolean;
  /** Exponent `c` of the second-moment decay `1 - t^-c` (default 0.8). */
  decayRate?: number;
  /** Update clipping threshold `d`: `u / max(1, RMS(u) / d)`; `null` disables (default 1). */
  clippingThreshold?: number | null;
  /** Momentum on the scaled update, in `[0, 1)` (default: none, the paper's `beta1 = 0`). */
  beta1?: number;
  /** Decoupled weight decay `param * weightDecay` subtracted each step (default 0; needs params). */
  weightDecay?: number;
  /** Added to the squared gradients (default 1e-30). */
  epsilon1?: number;
  /** Lower bound of the parameter scale (default 1e-3). */
  epsilon2?: number;
}

/**
 * State of {@linkcode adafactor}: a step counter and trees mirroring params. A factored param has
 * `vRow` (shape without the last axis) and `vCol` (shape without the second-to-last axis) and
 * `null` in `v`; an unfactored one has `v` (its own shape) and `null` in `vRow`/`vCol`. `m` is the
 * momentum buffer, or `null` without `beta1`.
 */
export interface AdafactorState extends StepCount {
  /** Row averages of squared gradients (factored params). */
  readonly vRow: Tree;
  /** Column averages of squared gradients (factored params). */
  readonly vCol: Tree;
  /** Full second moments (unfactored params). */
  readonly v: Tree;
  /** Momentum, or null when `beta1` is not set. */
  readonly m: Tree | null;
}

/**
 * Adafactor. Per param with gradient `G` at 1-based step `t`:
 * `β2 = 1 - t^-decayRate`; `R = β2 R + (1-β2) mean_{-1}(G^2 + ε1)`, `C = β2 C + (1-β2) mean_{-2}(G^2 + ε1)`,
 * `U = G / sqrt(R C / mean(R))` (factored, rank >= 2) or `V = β2 V + (1-β2)(G^2 + ε1)`,
 * `U = G / sqrt(V)` (rank < 2); `U = U / max(1, RMS(U) / d)`; the step size is `lr(step)` or, without
 * a learning rate, the relative `min(1e-2, 1/sqrt(t))`, times `max(ε2, RMS(param))` when
 * `multiplyByParameterScale`; then momentum `m = β1 m + (1-β1) step U` if `beta1` is set, and
 * `update = -(m or step U) - weightDecay * param`. Step-dependent numbers are computed on the
 * host; RMS values stay on the device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const opt = optim.adafactor(); // relative step sizes
 * const params = { w: tensor([[1, 2], [3, 4]]), b: tensor([0, 0]) };
 * const grads = { w: tensor([[1, 0], [0, 1]]), b: tensor([1, -1]) };
 * const [updates, state] = opt.update(grads, opt.init(params), params);
 * assert.deepEqual(updates.w.shape, [2, 2]);
 * assert.equal(state.step, 1);
 * ```
 */
export function adafactor(
  learningRate?: number | Schedule,
  options: AdafactorOptions = {},
): GradientTransformation<AdafactorState> {
  const op = "adafactor";
  const lr = learningRate === undefined ? null : checkLearningRate(op, learningRate);
  const {
    factored = true,
    multiplyByParameterScale = true,
    decayRate = 0.8,
    clippingThreshold = 1,
    beta1,
    weightDecay = 0,
    epsilon1 = 1e-30,
    epsilon2 = 1e-3,
  } = options;
  checkNumber(op, "decayRate", decayRate, { min: 0, exclusiveMin: true });
  if (clippingThreshold !== null) {
    checkNumber(op, "clippingThreshold", clippingThreshold, { min: 0, exclusiveMin: true });
  }
  if (beta1 !== undefined) checkNumber(op, "beta1", beta1, { min: 0, max: 1, exclusiveMax: true });
  checkNumber(op, "weightDecay", weightDecay, { min: 0 });
  checkNumber(op, "epsilon1", epsilon1, { min: 0 });
  checkNumber(op, "epsilon2", epsilon2, { min: 0 });
  const isFactored = (t: Tensor) => factored && t.rank >= 2;
  const needsParams = multiplyByParameterScale || weightDecay > 0;

  return {
    init: (params) =>
      scope(() => {
        const { leaves } = flattenTensors(op, "params", params);
        const tree = (f: (t: Tensor) => Tensor | null) => unflattenLike(params, leaves.map(f));
        const zeros = (shape: number[], t: Tensor) => full(shape, 0, { device: t.device });
        return {
          ...initStep(deviceOf(params)),
          vRow: tree((t) => isFactored(t) ? zeros(t.shape.slice(0, -1), t) : null),
          vCol: tree((t) =>
            isFactored(t) ? zeros([...t.shape.slice(0, -2), t.shape[t.rank - 1]], t) : null
          ),
          v: tree((t) => isFactored(t) ? null : zeros([...t.shape], t)),
          m: beta1 === undefined ? null : tree(zerosLike),
        };
      }),
    update: <U>(updates: U, state: AdafactorState, params?: Tree): [U, AdafactorState] => {
      if (needsParams && params === undefined) {
        throw new TypeError(
          `${op}: update needs params (for multiplyByParameterScale or weightDecay)`,
        );
      }
      const { leaves, params: ps } = flattenUpdates(op, updates, params);
      const counter = checkStepState(op, state);
      const like = { refName: "updates", allowNull: true };
      const vRow = flattenLike(op, "state.vRow", state.vRow, updates, like);
      const vCol = flattenLike(op, "state.vCol", state.vCol, updates, like);
      const v = flattenLike(op, "state.v", state.v, updates, like);
      const m = beta1 === undefined
        ? null
        : flattenLike(op, "state.m", state.m, updates, { refName: "updates", sameShape: true });
      leaves.forEach((g, i) => {
        const ok = isFactored(g)
          ? vRow[i]?.shape.join() === g.shape.slice(0, -1).join() &&
            vCol[i]?.shape.join() === [...g.shape.slice(0, -2), g.shape[g.rank - 1]].join()
          : v[i]?.shape.join() === g.shape.join();
        if (!ok) {
          throw new RangeError(
            `${op}: the state's second moments do not fit the update of shape ` +
              `[${g.shape.join(",")}] (leaf ${i}); the state must come from init on these params`,
          );
        }
      });
      const t = counter.step + 1;
      const mix = t ** -decayRate, decay = 1 - mix;
      const rate = lr === null ? Math.min(1e-2, 1 / Math.sqrt(t)) : rateAt(op, lr, counter.step);

      const ema = (old: Tensor, x: Tensor) => add(mul(old, decay), mul(x, mix));
      const rms = (x: Tensor) => sqrt(mean(square(x)));
      // One scope per leaf: a leaf's temporaries are freed before the next leaf starts.
      const [out, newRow, newCol, newV, newM] = perLeaf(leaves, 5, (g, i) => {
        const g2 = add(square(g), epsilon1);
        let u: Tensor, row = null, col = null, vFull = null;
        if (isFactored(g)) {
          const r = g.rank;
          row = ema(vRow[i]!, mean(g2, [r - 1]));
          col = ema(vCol[i]!, mean(g2, [r - 2]));
          const rowFactor = rsqrt(div(row, mean(row, [r - 2], { keepdims: true })));
          u = mul(mul(g, expandDims(rowFactor, r - 1)), expandDims(rsqrt(col), r - 2));
        } else {
          vFull = ema(v[i]!, g2);
          u = mul(g, rsqrt(vFull));
        }
        if (clippingThreshold !== null) {
          u = div(u, maximum(1, div(rms(u), clippingThreshold)));
        }
        let step = mul(u, rate);
        if (multiplyByParameterScale) step = mul(step, maximum(rms(ps![i]), epsilon2));
        if (m) step = add(mul(m[i]!, beta1!), mul(step, 1 - beta1!));
        const update = weightDecay > 0 ? sub(neg(step), mul(ps![i], weightDecay)) : neg(step);
        return [update, row, col, vFull, m ? step : null];
      });
      return [unflattenLike(updates, out), {
        ...nextStep(counter),
        vRow: unflattenLike(updates, newRow),
        vCol: unflattenLike(updates, newCol),
        v: unflattenLike(updates, newV),
        m: m ? unflattenLike(updates, newM) : null,
      }];
    },
  };
}
