/**
 * Dynamic loss scaling for half-precision training (Micikevicius et al. 2018, "Mixed Precision
 * Training"): the loss is multiplied by a scale before differentiation so small f16 gradients
 * do not flush to zero; the wrapper divides the gradients back, skips any step whose gradients
 * hold an inf or NaN (the scale was too large) and halves the scale, and doubles it after a run
 * of finite steps. Everything stays on the device: the skip is a `where`, never a readback.
 * @module
 */
import { Tensor } from "../ops/tensor.ts";
import { add, cast, div, maximum, minimum, mul } from "../ops/binary.ts";
import { equal, greaterEqual, logicalNot, where } from "../ops/compare.ts";
import { full } from "../ops/creation.ts";
import { sum } from "../ops/reduce.ts";
import { scope } from "../ops/scope.ts";
import { flattenTree, unflattenTree } from "../autodiff/pytree.ts";
import { deviceOf, flattenUpdates, unflattenLike } from "./param_trees.ts";
import type { GradientTransformation, Tree } from "./gradient_transformation.ts";
import { checkNumber } from "./validate.ts";

/** Options of {@linkcode dynamicLossScale}. */
export interface LossScaleOptions {
  /** The first scale (default 2^15, as PyTorch's GradScaler and apex). */
  readonly initScale?: number;
  /** Finite steps in a row after which the scale grows (default 2000). */
  readonly growthInterval?: number;
  /** Factor the scale grows by (default 2). */
  readonly growthFactor?: number;
  /** Factor the scale shrinks by after a non-finite step (default 0.5). */
  readonly backoffFactor?: number;
  /** The smallest scale (default 1). */
  readonly minScale?: number;
  /** The largest scale (default 2^24). */
  readonly maxScale?: number;
}

/** State of {@linkcode dynamicLossScale}: the inner optimizer's and the scale's. */
export interface LossScaleState<S> {
  /** The wrapped optimizer's state (unchanged by skipped steps, except host step mirrors). */
  readonly inner: S;
  /** The loss scale, an `f32` scalar tensor. */
  readonly scale: Tensor;
  /** Finite steps since the scale last changed, an `i32` scalar tensor. */
  readonly goodSteps: Tensor;
  /** Steps skipped so far for non-finite gradients, an `i32` scalar tensor. */
  readonly skipped: Tensor;
}

/**
 * Wraps an optimizer with dynamic loss scaling. Multiply the loss by the state's scale before
 * taking gradients ({@linkcode scaleLoss}); `update` takes those scaled gradients, divides them
 * by the scale, and:
 * - if every gradient is finite, runs `inner` on them, and after `growthInterval` such steps in
 *   a row multiplies the scale by `growthFactor` (at most `maxScale`);
 * - otherwise returns zero updates, keeps the inner state's tensors as they were, and multiplies
 *   the scale by `backoffFactor` (at least `minScale`).
 *
 * The choice happens on the device, so no step waits for a readback. The host step mirrors of
 * the inner state (`step` of its counters, read by schedules and bias corrections) still count
 * skipped steps, as PyTorch's schedulers do; its `count` tensors do not, and
 * {@linkcode restoreSteps} rebuilds the mirrors from them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const opt = optim.dynamicLossScale(optim.sgd(1), { initScale: 4 });
 * const params = { w: tensor([1]) };
 * const s0 = opt.init(params);
 * const [u, s1] = opt.update({ w: tensor([8]) }, s0, params); // d(4 * loss)/dw = 8
 * assert.deepEqual(await u.w.array(), [-2]); // sgd on the unscaled gradient 2
 * const [skip, s2] = opt.update({ w: tensor([Infinity]) }, s1, params);
 * assert.deepEqual(await skip.w.array(), [0]);
 * assert.equal(await s2.scale.array(), 2); // halved
 * ```
 */
export function dynamicLossScale<S>(
  inner: GradientTransformation<S>,
  options: LossScaleOptions = {},
): GradientTransformation<LossScaleState<S>> {
  const op = "dynamicLossScale";
  const {
    initScale = 2 ** 15,
    growthInterval = 2000,
    growthFactor = 2,
    backoffFactor = 0.5,
    minScale = 1,
    maxScale = 2 ** 24,
  } = options;
  checkNumber(op, "initScale", initScale, { min: 0, exclusiveMin: true });
  checkNumber(op, "growthInterval", growthInterval, { min: 1, integer: true });
  checkNumber(op, "growthFactor", growthFactor, { min: 1 });
  checkNumber(op, "backoffFactor", backoffFactor, { min: 0, max: 1, exclusiveMin: true });
  checkNumber(op, "minScale", minScale, { min: 0, exclusiveMin: true });
  checkNumber(op, "maxScale", maxScale, { min: minScale });
  return {
    init(params: Tree): LossScaleState<S> {
      const device = deviceOf(params);
      return {
        inner: inner.init(params),
        scale: full([], initScale, { device }),
        goodSteps: full([], 0, { dtype: "i32", device }),
        skipped: full([], 0, { dtype: "i32", device }),
      };
    },
    update<U>(updates: U, state: LossScaleState<S>, params?: Tree): [U, LossScaleState<S>] {
      const { leaves } = flattenUpdates(op, updates);
      return scope(() => {
        const unscaled = leaves.map((g) => div(g, state.scale));
        const ok = allFinite(unscaled, state.scale);
        const [innerUpdates, nextInner] = inner.update(
          unflattenLike(updates, unscaled),
          state.inner,
          params,
        );
        // Each tensor is freed as soon as its successor exists, so the step holds about one
        // extra copy of the params at a time rather than every intermediate until the end.
        for (const g of unscaled) g.dispose();
        const { leaves: proposed } = flattenUpdates(op, innerUpdates);
        const out = proposed.map((u) => {
          using proposal = u;
          return where(ok, proposal, 0);
        });
        const good = add(state.goodSteps, 1);
        const grow = greaterEqual(good, growthInterval);
        const grown = where(grow, minimum(mul(state.scale, growthFactor), maxScale), state.scale);
        const next: LossScaleState<S> = {
          inner: keepUnless(ok, nextInner, state.inner),
          scale: where(ok, grown, maximum(mul(state.scale, backoffFactor), minScale)),
          goodSteps: where(ok, where(grow, 0, good), 0),
          skipped: add(state.skipped, cast(logicalNot(ok), "i32")),
        };
        return [unflattenLike(updates, out), next];
      });
    },
  };
}

/**
 * The loss multiplied by the state's current scale: differentiate this, then pass the
 * gradients to the {@linkcode dynamicLossScale} optimizer's `update`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const state = optim.dynamicLossScale(optim.sgd(1), { initScale: 8 }).init({ w: tensor([1]) });
 * assert.equal(await optim.scaleLoss(tensor(0.5), state).array(), 4);
 * ```
 */
export function scaleLoss(loss: Tensor, state: LossScaleState<unknown>): Tensor {
  return mul(loss, state.scale);
}

/** A `bool` scalar: whether every element of every tensor is finite. */
function allFinite(leaves: readonly Tensor[], like: Tensor): Tensor {
  // 0 * x is 0 for finite x and NaN for inf or NaN, so one sum per leaf finds any of them.
  let total = full([], 0, { device: like.device });
  for (const g of leaves) total = add(total, sum(mul(cast(g, "f32"), 0)));
  return equal(total, 0);
}

/** `next` where `ok`, else `prev`, leaf by leaf for tensors; other leaves come from `next`. */
function keepUnless<S>(ok: Tensor, next: S, prev: S): S {
  const [a, def] = flattenTree(next);
  const [b] = flattenTree(prev);
  if (a.length !== b.length) {
    throw new Error("dynamicLossScale: the inner optimizer changed its state's structure");
  }
  return unflattenTree<S>(
    def,
    a.map((x, i) => {
      const old = b[i];
      if (!(x instanceof Tensor && old instanceof Tensor)) return x;
      using proposal = x;
      return where(ok, proposal, old);
    }),
  );
}
