/**
 * Comparisons, logical ops, `where` and `clip`. Comparisons and logical ops return `bool` and
 * have no gradient; `where` routes the cotangent to the chosen branch.
 * @module
 */
import { promoteTypes } from "../kernels/dtype.ts";
import { bind1, definePrimitive } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { runElementwise } from "./elementwise.ts";
import { sameDevice } from "./validate.ts";
import { broadcastShapes } from "./broadcast.ts";
import {
  applyBinary,
  cast,
  maximum,
  minimum,
  pair,
  scalarLike,
  type TensorLike,
} from "./binary.ts";
import { zerosLike } from "./creation.ts";

/** A binary op over tensors or numbers. */
export type BinaryFn = (a: TensorLike, b: TensorLike) => Tensor;

/** A broadcasting op with a bool result and no gradient (comparisons, logical and/or). */
function boolBinary(name: string) {
  const prim = definePrimitive<undefined>({
    name,
    forward: ([a, b]) => [
      runElementwise(name, [a, b], broadcastShapes(name, a.shape, b.shape), "bool"),
    ],
    vjp: "none",
  });
  return (a: TensorLike, b: TensorLike): Tensor => applyBinary(prim, a, b, { allowBool: true });
}

/**
 * `a == b` elementwise, as bool (NaN equals nothing).
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { equal, tensor } from "@longseq/tensor";
 * assert.deepEqual(await equal(tensor([1, 2, NaN]), 2).array(), [false, true, false]);
 * assert.deepEqual(await equal(tensor([[1], [2]]), tensor([1, 2])).array(), [
 *   [true, false],
 *   [false, true],
 * ]);
 * ```
 */
export const equal: BinaryFn = boolBinary("equal");
/**
 * `a != b` elementwise, as bool (NaN differs from everything).
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notEqual, tensor } from "@longseq/tensor";
 * assert.deepEqual(await notEqual(tensor([1, 2, NaN]), 2).array(), [true, false, true]);
 * ```
 */
export const notEqual: BinaryFn = boolBinary("notEqual");
/**
 * `a < b` elementwise, as bool (false where either is NaN).
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { less, tensor } from "@longseq/tensor";
 * assert.deepEqual(await less(tensor([1, 2, 3]), 2).array(), [true, false, false]);
 * ```
 */
export const less: BinaryFn = boolBinary("less");
/**
 * `a <= b` elementwise, as bool (false where either is NaN).
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lessEqual, tensor } from "@longseq/tensor";
 * assert.deepEqual(await lessEqual(tensor([1, 2, 3]), 2).array(), [true, true, false]);
 * ```
 */
export const lessEqual: BinaryFn = boolBinary("lessEqual");
/**
 * `a > b` elementwise, as bool (false where either is NaN).
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { greater, tensor } from "@longseq/tensor";
 * assert.deepEqual(await greater(tensor([1, 2, NaN]), 1).array(), [false, true, false]);
 * ```
 */
export const greater: BinaryFn = boolBinary("greater");
/**
 * `a >= b` elementwise, as bool (false where either is NaN).
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { greaterEqual, tensor } from "@longseq/tensor";
 * assert.deepEqual(await greaterEqual(tensor([1, 2, 3]), tensor([2])).array(), [false, true, true]);
 * ```
 */
export const greaterEqual: BinaryFn = boolBinary("greaterEqual");

/**
 * Elementwise logical and (non-zero is true), as bool.
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logicalAnd, tensor } from "@longseq/tensor";
 * const y = logicalAnd(tensor([true, true, false]), tensor([2, 0, 1]));
 * assert.deepEqual(await y.array(), [true, false, false]);
 * ```
 */
export const logicalAnd: BinaryFn = boolBinary("logicalAnd");
/**
 * Elementwise logical or (non-zero is true), as bool.
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logicalOr, tensor } from "@longseq/tensor";
 * const y = logicalOr(tensor([true, false, false]), tensor([0, 3, 0]));
 * assert.deepEqual(await y.array(), [true, true, false]);
 * ```
 */
export const logicalOr: BinaryFn = boolBinary("logicalOr");

const notPrim = definePrimitive<undefined>({
  name: "logicalNot",
  forward: ([a]) => [
    runElementwise("logicalNot", [a], a.shape, "bool"),
  ],
  vjp: "none",
});

/**
 * Elementwise logical not (zero becomes true), as bool.
 *
 * `x`: any shape; the result has `x`'s shape, in `bool`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logicalNot, tensor } from "@longseq/tensor";
 * assert.deepEqual(await logicalNot(tensor([0, 2, -1])).array(), [true, false, false]);
 * ```
 */
export function logicalNot(x: Tensor): Tensor {
  return bind1(notPrim, [x], undefined);
}

const wherePrim = definePrimitive<undefined>({
  name: "where",
  saves: { inputs: [0], outputs: [] },
  forward: ([c, a, b]) => [
    runElementwise(
      "where",
      [c, a, b],
      broadcastShapes("where", c.shape, a.shape, b.shape),
      a.dtype,
    ),
  ],
  vjp: ([g], ctx) => {
    const [c] = ctx.inputs;
    using z = zerosLike(g);
    return [null, where(c, g, z), where(c, z, g)];
  },
});

/**
 * Picks `a` where `cond` is non-zero, else `b`, with broadcasting over all three.
 *
 * `cond`, `a`, `b`: broadcastable shapes (`a` or `b` may be a JS number); the result has the
 * broadcast shape and the promoted dtype of `a` and `b`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, where } from "@longseq/tensor";
 * assert.deepEqual(await where(tensor([true, false]), 1, tensor([5, 6])).array(), [1, 6]);
 * const cond = tensor([[true], [false]]); // [2, 1] with [2] -> [2, 2]
 * assert.deepEqual(await where(cond, tensor([1, 2]), 0).array(), [[1, 2], [0, 0]]);
 * ```
 */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [ta, tb, made] = pair("where", a, b, 1);
  try {
    broadcastShapes("where", cond.shape, ta.shape, tb.shape);
    sameDevice("where", [cond, ta, tb]);
    const dtype = promoteTypes(ta.dtype, tb.dtype);
    const ca = ta.dtype === dtype ? ta : (made[made.length] = cast(ta, dtype));
    const cb = tb.dtype === dtype ? tb : (made[made.length] = cast(tb, dtype));
    return bind1(wherePrim, [cond, ca, cb], undefined);
  } finally {
    for (const t of made) t.dispose();
  }
}

/**
 * Limits values to `[lo, hi]` (either bound may be omitted with `undefined`).
 *
 * `x`: any shape; `lo` and `hi` numbers or tensors that broadcast against it. The result has
 * the broadcast shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clip, tensor } from "@longseq/tensor";
 * assert.deepEqual(await clip(tensor([-2, 0.5, 3]), 0, 1).array(), [0, 0.5, 1]);
 * assert.deepEqual(await clip(tensor([-2, 3]), undefined, 1).array(), [-2, 1]);
 * ```
 */
export function clip(x: Tensor, lo?: TensorLike, hi?: TensorLike): Tensor {
  if (typeof lo === "number" && typeof hi === "number" && lo > hi) {
    throw new RangeError(`clip: lower bound ${lo} exceeds upper bound ${hi}`);
  }
  const low = lo === undefined ? x : maximum(x, lo);
  if (hi === undefined) return low === x ? cast(x, x.dtype) : low;
  const out = minimum(low, hi);
  if (low !== x) low.dispose();
  return out;
}

export { scalarLike };
