/**
 * `argmax` and `argmin`: integer results, no gradient, on the reduction kernels' layout
 * (`reduce.ts`).
 * @module
 */
import type { ArgReduceOp } from "../kernels/specs/reduce.ts";
import { bind1, definePrimitive } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { checkTensor, normAxis, rejectBool } from "./validate.ts";
import { launchReduce, reducedShape, type ReduceOptions, rejectEmpty } from "./reduce.ts";

/** Static parameters of argmax/argmin: one axis, or null to search the flattened input. */
interface ArgParams {
  readonly axis: number | null;
  readonly keepdims: boolean;
}

function argPrim(op: ArgReduceOp) {
  return definePrimitive<ArgParams>({
    name: op,
    forward: ([x], { axis, keepdims }) => {
      using flat = axis === null ? x.view([x.size]) : null;
      const shape = axis === null
        ? (keepdims ? x.shape.map(() => 1) : [])
        : reducedShape(x.shape, [axis], keepdims);
      const axes = axis === null ? [0] : [axis];
      return [launchReduce(op, flat ?? x, axes, { dtype: x.dtype }, { shape, dtype: "i32" })];
    },
    vjp: "none",
  });
}
const argPrims = { argmax: argPrim("argmax"), argmin: argPrim("argmin") };

function argReduce(op: ArgReduceOp, x: Tensor, axis: number | undefined, options: ReduceOptions) {
  checkTensor(op, "x", x);
  const a = axis === undefined ? null : normAxis(op, axis, x.rank);
  rejectBool(op, x);
  rejectEmpty(op, x, a === null ? x.shape.map((_, i) => i) : [a]);
  return bind1(argPrims[op], [x], { axis: a, keepdims: options.keepdims ?? false });
}

/**
 * Index of the largest element along `axis`, as i32; the first index on ties (also when
 * every value is `-inf` or the dtype's smallest integer). A NaN beats every number, so a row
 * holding NaN gives its first NaN's index, for argmin as well (NumPy). Without `axis`, the
 * index into the flattened input (NumPy). No gradient.
 *
 * Shapes: `x [..dims]` to `dims` without `axis` (`[]` without an axis; size-1 axes when
 * `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argmax, tensor } from "@longseq/tensor";
 * const x = tensor([[1, 9, 9], [4, 2, 0]]); // [2, 3]
 * assert.deepEqual(await argmax(x, 1).array(), [1, 0]); // [2], first index on ties
 * assert.equal(await argmax(x).array(), 1); // over the flattened tensor
 * ```
 */
export function argmax(x: Tensor, axis?: number, options: ReduceOptions = {}): Tensor {
  return argReduce("argmax", x, axis, options);
}

/**
 * Index of the smallest element along `axis`, as i32; see {@linkcode argmax}.
 * Shapes: `x [..dims]` to i32 `dims` without `axis` (`[]` without an axis).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argmin, tensor } from "@longseq/tensor";
 * assert.deepEqual(await argmin(tensor([[1, 9, 9], [4, 2, 0]]), 1).array(), [0, 2]);
 * ```
 */
export function argmin(x: Tensor, axis?: number, options: ReduceOptions = {}): Tensor {
  return argReduce("argmin", x, axis, options);
}
