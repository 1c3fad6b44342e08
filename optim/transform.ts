/**
 * Generic building blocks: `identity`, `scale`, `scaleByLearningRate` (constant or scheduled),
 * `addDecayedWeights` (with a mask), `trace` (momentum), and `applyUpdates`.
 * @module
 */
import { Tensor } from "../ops/tensor.ts";
import { add, mul } from "../ops/binary.ts";
import { zerosLike } from "../ops/creation.ts";
import { scope } from "../ops/scope.ts";
import { flattenTree as flattenPytree, leavesLike } from "../autodiff/pytree.ts";
import { checkLearningRate, checkNumber, rateAt } from "./validate.ts";
import {
  deviceOf,
  flattenLike,
  flattenTensors,
  flattenUpdates,
  unflattenLike,
} from "./param_trees.ts";
import {
  fresh,
  type GradientTransformation,
  initStep,
  nextStep,
  perLeaf,
  type Schedule,
  type StepCount,
  type Tree,
} from "./gradient_transformation.ts";

/** The state of a stateless transformation. */
export type EmptyState = Record<string, never>;

/**
 * Passes updates through unchanged (as new handles on the same storage).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const g = { w: tensor([1]) };
 * const [u] = optim.identity().update(g, {});
 * assert.deepEqual(await u.w.array(), [1]);
 * assert.notEqual(u.w, g.w); // a new handle on the same data
 * ```
 */
export function identity(): GradientTransformation<EmptyState> {
  return {
    init: () => ({}),
    update: <U>(updates: U): [U, EmptyState] => {
      const { leaves } = flattenUpdates("identity", updates);
      return [unflattenLike(updates, leaves.map(fresh)), {}];
    },
  };
}

/**
 * Multiplies every update by a constant `factor`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const [u] = optim.scale(-2).update({ w: tensor([1, 2]) }, {});
 * assert.deepEqual(await u.w.array(), [-2, -4]);
 * ```
 */
export function scale(factor: number): GradientTransformation<EmptyState> {
  checkNumber("scale", "factor", factor);
  return {
    init: () => ({}),
    update: <U>(updates: U): [U, EmptyState] =>
      scope(() => {
        const { leaves } = flattenUpdates("scale", updates);
        return [unflattenLike(updates, leaves.map((u) => mul(u, factor))), {}];
      }),
  };
}

/** State of {@linkcode scaleByLearningRate}: a step counter for schedules, empty otherwise. */
export type LearningRateState = StepCount | EmptyState;

/**
 * Multiplies updates by `-learningRate` (or `+learningRate` with `flipSign: false`). A schedule
 * is evaluated on the host at the 0-based count of updates applied so far (kept in the state),
 * so a step never reads the GPU back; a constant rate keeps no state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const t = optim.scaleByLearningRate(optim.linearWarmup(1, 10));
 * const params = { w: tensor([1]) };
 * const [u, s] = t.update({ w: tensor([3]) }, t.init(params));
 * assert.deepEqual(await u.w.array(), [-0]); // the warmup starts at 0
 * assert.equal(s.step, 1);
 * ```
 */
export function scaleByLearningRate(
  learningRate: number | Schedule,
  { flipSign = true }: { flipSign?: boolean } = {},
): GradientTransformation<LearningRateState> {
  const op = "scaleByLearningRate";
  const lr = checkLearningRate(op, learningRate);
  const sign = flipSign ? -1 : 1;
  return {
    init: (params) => typeof lr === "number" ? {} : initStep(deviceOf(params)),
    update: <U>(updates: U, state: LearningRateState): [U, LearningRateState] => {
      const { leaves } = flattenUpdates(op, updates);
      const counter = typeof lr === "number" ? null : checkStepState(op, state);
      const rate = sign * rateAt(op, lr, counter?.step ?? 0);
      return scope(() => {
        const out = leaves.map((u) => mul(u, rate));
        return [unflattenLike(updates, out), counter ? nextStep(counter) : {}];
      });
    },
  };
}

/** Checks that `state` holds a step counter and returns it. */
export function checkStepState(op: string, state: unknown): StepCount {
  const s = state as Partial<StepCount> | null;
  if (
    !s || !(s.count instanceof Tensor) || typeof s.step !== "number" || !Number.isInteger(s.step)
  ) {
    throw new TypeError(`${op}: the state has no step counter { count, step }; use init()`);
  }
  return s as StepCount;
}

/**
 * Which params a transformation applies to: a tree of booleans mirroring params, or a predicate
 * over each param's path (`layers[0].w`) and tensor. `false` leaves pass through unchanged.
 */
export type Mask = MaskTree | ((path: string, param: Tensor) => boolean);

/** A tree of booleans mirroring params (`null`/`undefined` where params have none). */
export type MaskTree =
  | boolean
  | null
  | undefined
  | readonly MaskTree[]
  | { readonly [key: string]: MaskTree };

/** The mask's boolean for each tensor of `ref` (all true without a mask). */
export function maskValues(op: string, mask: Mask | undefined, ref: Tree): boolean[] {
  const { leaves, paths } = flattenTensors(op, "params", ref);
  if (mask === undefined) return leaves.map(() => true);
  if (typeof mask === "function") return leaves.map((t, i) => Boolean(mask(paths[i], t)));
  const [all, def] = flattenPytree(ref);
  const bools = leavesLike(op, def, mask, "mask");
  const out: boolean[] = [];
  all.forEach((r, i) => {
    if (!(r instanceof Tensor)) return;
    if (typeof bools[i] !== "boolean") {
      throw new TypeError(
        `${op}: mask at "${paths[out.length]}" must be a boolean, got ${typeof bools[i]}`,
      );
    }
    out.push(bools[i] as boolean);
  });
  return out;
}

/**
 * Adds `weightDecay * param` to each update (decoupled weight decay, as in AdamW). Needs
 * `params` in `update`. Leaves masked out pass through unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, tensor } from "@longseq/tensor";
 * const params = { w: tensor([[1, 2]]), b: tensor([1]) };
 * const t = optim.addDecayedWeights(0.1, (_path, p) => p.rank >= 2); // no decay on biases
 * const [u] = t.update({ w: tensor([[0, 0]]), b: tensor([0]) }, {}, params);
 * assert.ok(await allClose(u.w, [[0.1, 0.2]]));
 * assert.deepEqual(await u.b.array(), [0]);
 * ```
 */
export function addDecayedWeights(
  weightDecay: number,
  mask?: Mask,
): GradientTransformation<EmptyState> {
  const op = "addDecayedWeights";
  checkNumber(op, "weight decay", weightDecay, { min: 0 });
  return {
    init: () => ({}),
    update: <U>(updates: U, _state: EmptyState, params?: Tree): [U, EmptyState] => {
      if (params === undefined) throw new TypeError(`${op}: update needs params`);
      const { leaves, params: ps } = flattenUpdates(op, updates, params);
      const on = maskValues(op, mask, params);
      return scope(() => {
        const [out] = perLeaf(leaves, 1, (u, i) => [
          on[i] && weightDecay !== 0 ? add(u, mul(ps![i], weightDecay)) : fresh(u),
        ]);
        return [unflattenLike(updates, out), {}];
      });
    },
  };
}

/** State of {@linkcode trace}: the momentum buffer, mirroring params. */
export interface TraceState {
  /** Running `g + decay * trace`, one tensor per param. */
  readonly trace: Tree;
}

/**
 * Momentum: `trace = g + decay * trace`; the update is `trace`, or `g + decay * trace` with
 * `nesterov`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, tensor } from "@longseq/tensor";
 * const t = optim.trace(0.9);
 * const s0 = t.init({ w: tensor([0]) });
 * const [u, s1] = t.update({ w: tensor([1]) }, s0);
 * assert.deepEqual(await u.w.array(), [1]);
 * const [u2] = t.update({ w: tensor([1]) }, s1);
 * assert.ok(await allClose(u2.w, [1.9])); // 1 + 0.9 * 1
 * ```
 */
export function trace(
  decay: number,
  { nesterov = false }: { nesterov?: boolean } = {},
): GradientTransformation<TraceState> {
  const op = "trace";
  checkNumber(op, "decay", decay, { min: 0, max: 1 });
  return {
    init: (params) =>
      scope(() => {
        const { leaves } = flattenTensors(op, "params", params);
        return { trace: unflattenLike(params, leaves.map(zerosLike)) };
      }),
    update: <U>(updates: U, state: TraceState): [U, TraceState] => {
      const { leaves } = flattenUpdates(op, updates);
      const prev = flattenLike(op, "state.trace", state?.trace, updates, {
        refName: "updates",
        sameShape: true,
      }) as Tensor[];
      return scope(() => {
        const [next, out] = perLeaf(leaves, 2, (g, i) => {
          const t = add(g, mul(prev[i], decay));
          return [t, nesterov ? add(g, mul(t, decay)) : fresh(t)];
        });
        return [unflattenLike(updates, out), { trace: unflattenLike(updates, next) }];
      });
    },
  };
}

/**
 * Applies updates: returns new params `params + updates` (the inputs are untouched).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const p = optim.applyUpdates({ w: tensor([1, 2]) }, { w: tensor([0.5, -1]) });
 * assert.deepEqual(await p.w.array(), [1.5, 1]);
 * ```
 */
export function applyUpdates<P>(params: P, updates: Tree): P {
  const op = "applyUpdates";
  const { leaves } = flattenTensors(op, "params", params);
  const us = flattenLike(op, "updates", updates, params, { sameShape: true }) as Tensor[];
  return scope(() => unflattenLike(params, leaves.map((p, i) => add(p, us[i]))));
}
