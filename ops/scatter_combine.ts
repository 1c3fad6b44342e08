/**
 * Scatters that combine by `set`, `max` or `min` (beside `scatterAdd` in `indexing.ts`), and
 * `scatter`, which picks one by name. Deterministic on every device: updates are applied in
 * increasing update (index) order, so with duplicate indices `set` keeps the last update in
 * that order (JAX leaves this unspecified; here it is defined). Indices follow the `take` rule
 * (negative from the end, then clamped). Each is a primitive with its own kernels
 * (`kernels/cpu/scatter_combine.ts`, `kernels/webgpu/scatter_combine.ts`).
 *
 * Gradients: `set` sends the cotangent of an overwritten element to the update that won it
 * (others get 0) and nothing to `x` there; `max` and `min` send it to every value equal to the
 * result (kept `x` element and winning updates), shared equally among ties, as JAX does.
 * @module
 */
import type { ScatterCombine } from "../kernels/specs/indexing.ts";
import { bind1, definePrimitive, launch1, type Primitive } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { axisSpec, checkAxisScatter, scatterAdd, take } from "./indexing.ts";
import { add, cast, div, mul } from "./binary.ts";
import { equal, where } from "./compare.ts";
import { arange, full, zerosLike } from "./creation.ts";
import { broadcastTo, reshape } from "./shape.ts";
import { scope } from "./scope.ts";

export type { ScatterCombine };

interface Params {
  axis: number;
}

const KERNEL: Readonly<Record<ScatterCombine, string>> = {
  set: "scatterSet",
  max: "scatterMax",
  min: "scatterMin",
};

function run(mode: ScatterCombine, [x, idx, upd]: readonly Tensor[], axis: number): Tensor {
  return launch1(KERNEL[mode], [x, idx, upd], axisSpec(x, idx, axis), x);
}

/**
 * For each update, whether it is the one `set` kept at its target (the last in index order),
 * found by scattering the update positions with `set` and reading them back. `like` gives the
 * target's shape and device (x itself is not kept for the pullback).
 */
function setWinners(like: Tensor, idx: Tensor, upd: Tensor, axis: number): Tensor {
  return scope(() => {
    const device = like.device;
    const posShape = upd.shape.map((d, i) => (i >= axis && i < axis + idx.rank ? d : 1));
    const pos = broadcastTo(
      reshape(arange(idx.size, undefined, 1, { device }), posShape),
      upd.shape,
    );
    const none = full(like.shape, -1, { dtype: "i32", device });
    const winner = bind1(PRIMS.set, [none, idx, pos], { axis });
    return equal(take(winner, idx, axis), pos);
  });
}

const setVjp: Primitive<Params>["vjp"] = ([g], { inputs: [, idx, upd], params: { axis } }) =>
  scope(() => {
    const zeros = full(upd.shape, 0, { dtype: g.dtype, device: g.device });
    const gx = bind1(PRIMS.set, [g, idx, zeros], { axis });
    const gu = where(setWinners(g, idx, upd, axis), take(g, idx, axis), 0);
    return [gx, null, gu];
  });

const extremeVjp: Primitive<Params>["vjp"] = (
  [g],
  { inputs: [x, idx, upd], outputs: [y], params: { axis } },
) =>
  scope(() => {
    const kept = cast(equal(x, y), "f32");
    const won = cast(equal(upd, take(y, idx, axis)), "f32");
    const count = add(kept, scatterAdd(zerosLike(kept), idx, won, axis));
    const share = div(g, count);
    return [mul(kept, share), null, mul(won, take(share, idx, axis))];
  });

const prim = (mode: ScatterCombine) =>
  definePrimitive<Params>({
    name: `scatter${mode[0].toUpperCase()}${mode.slice(1)}`,
    saves: mode === "set" ? { inputs: [1, 2], outputs: [] } : undefined,
    forward: (inputs, { axis }) => [run(mode, inputs, axis)],
    vjp: mode === "set" ? setVjp : extremeVjp,
  });

const PRIMS: Record<ScatterCombine, Primitive<Params>> = {
  set: prim("set"),
  max: prim("max"),
  min: prim("min"),
};

function apply(
  mode: ScatterCombine,
  x: Tensor,
  indices: Tensor,
  updates: Tensor,
  axis: number,
): Tensor {
  const a = checkAxisScatter(PRIMS[mode].name, x, indices, updates, axis, mode === "set");
  return bind1(PRIMS[mode], [x, indices, updates], { axis: a });
}

/**
 * Returns a copy of `x` with `updates` written at `indices` along `axis` (JAX
 * `x.at[idx].set(updates)` on an axis). With duplicate indices the last update in index order
 * wins, on every device. Shapes and the index rule are those of {@linkcode scatterAdd}. Any
 * dtype (bool included). Differentiable in `x` and `updates` (see the module doc).
 *
 * Shapes: `x [...pre, n, ...post]`, `indices I`, `updates [...pre, ...I, ...post]` to x's shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scatterSet, tensor, zeros } from "@longseq/tensor";
 * const out = scatterSet(zeros([4]), tensor(new Int32Array([1, 3, 1])), tensor([5, 6, 7]));
 * assert.deepEqual(await out.array(), [0, 7, 0, 6]);
 * ```
 */
export function scatterSet(x: Tensor, indices: Tensor, updates: Tensor, axis = 0): Tensor {
  return apply("set", x, indices, updates, axis);
}

/**
 * Returns a copy of `x` where each target holds the maximum of its value and the updates
 * scattered to it (JAX `x.at[idx].max(updates)`). NaN propagates. Not for bool. The gradient
 * goes to the values equal to the result, shared equally among ties.
 *
 * Shapes: `x [...pre, n, ...post]`, `indices I`, `updates [...pre, ...I, ...post]` to x's shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scatterMax, tensor } from "@longseq/tensor";
 * const out = scatterMax(tensor([1, 1, 1]), tensor(new Int32Array([0, 0, 2])), tensor([3, 5, -1]));
 * assert.deepEqual(await out.array(), [5, 1, 1]);
 * ```
 */
export function scatterMax(x: Tensor, indices: Tensor, updates: Tensor, axis = 0): Tensor {
  return apply("max", x, indices, updates, axis);
}

/**
 * Returns a copy of `x` where each target holds the minimum of its value and the updates
 * scattered to it (JAX `x.at[idx].min(updates)`). NaN propagates. Not for bool. The gradient
 * goes to the values equal to the result, shared equally among ties.
 *
 * Shapes: `x [...pre, n, ...post]`, `indices I`, `updates [...pre, ...I, ...post]` to x's shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scatterMin, tensor } from "@longseq/tensor";
 * const out = scatterMin(tensor([1, 1, 1]), tensor(new Int32Array([0, 0, 2])), tensor([3, 5, -1]));
 * assert.deepEqual(await out.array(), [1, 1, -1]);
 * ```
 */
export function scatterMin(x: Tensor, indices: Tensor, updates: Tensor, axis = 0): Tensor {
  return apply("min", x, indices, updates, axis);
}

/** How {@linkcode scatter} combines: `"add"` (accumulate), `"set"`, `"max"` or `"min"`. */
export type ScatterMode = "add" | ScatterCombine;

/**
 * Scatters `updates` into a copy of `x` at `indices` along `axis`, combining by `mode`:
 * `"add"` ({@linkcode scatterAdd}), `"set"` ({@linkcode scatterSet}), `"max"`
 * ({@linkcode scatterMax}) or `"min"` ({@linkcode scatterMin}).
 *
 * Shapes: `x [...pre, n, ...post]`, `indices I`, `updates [...pre, ...I, ...post]` to x's shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scatter, tensor } from "@longseq/tensor";
 * const x = tensor([[0, 0], [0, 0]]);
 * const out = scatter(x, tensor(new Int32Array([1])), tensor([[4], [5]]), { axis: 1, mode: "set" });
 * assert.deepEqual(await out.array(), [[0, 4], [0, 5]]);
 * ```
 */
export function scatter(
  x: Tensor,
  indices: Tensor,
  updates: Tensor,
  options: { axis?: number; mode?: ScatterMode } = {},
): Tensor {
  const { axis = 0, mode = "add" } = options;
  if (mode === "add") return scatterAdd(x, indices, updates, axis);
  if (mode !== "set" && mode !== "max" && mode !== "min") {
    throw new TypeError(
      `scatter: mode must be "add", "set", "max" or "min", got ${JSON.stringify(mode)}`,
    );
  }
  return apply(mode, x, indices, updates, axis);
}

/** The primitives of this file, for tests of their VJP rules. */
export const SCATTER_COMBINE_PRIMITIVES: Readonly<Record<ScatterCombine, Primitive<Params>>> =
  PRIMS;
