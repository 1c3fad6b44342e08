/**
 * Reductions: the primitives `sum`, `max`, `min` (with VJP rules) and the compositions `mean`
 * and `variance`. `argmax` and `argmin` live in `arg_reduce.ts`, softmax and logsumexp in
 * `softmax.ts`.
 *
 * Kernels reduce a contiguous `[outer, n, inner]` layout over `n`. When the reduced axes form
 * one block of the shape (ignoring size-1 axes) the input is read in place; otherwise the
 * reduced axes are first moved last by a transposed copy.
 * @module
 */
import type { DType } from "../kernels/dtype.ts";
import type { ReduceLayout, ReduceOp, ReduceSpec } from "../kernels/specs/reduce.ts";
import { contiguousStrides } from "../kernels/strided.ts";
import { bind1, definePrimitive, launch1, type Primitive } from "./primitive.ts";
import { fmt, sizeOf, type Tensor } from "./tensor.ts";
import { checkTensor, normAxes, rejectBool } from "./validate.ts";
import { runElementwise } from "./elementwise.ts";
import { broadcastTo, reshape } from "./shape.ts";
import { cast, div, mul, sub } from "./binary.ts";
import { equal } from "./compare.ts";
import { square } from "./unary.ts";

/** Options of the reductions. */
export interface ReduceOptions {
  /** Keep the reduced axes as size-1 axes, so the result broadcasts against the input. */
  keepdims?: boolean;
}

/** Static parameters of the reduce primitives: sorted, normalised axes. */
interface ReduceParams {
  readonly axes: readonly number[];
  readonly keepdims: boolean;
}

/** Number of elements each output of a reduction over `axes` combines. */
export function reducedCount(shape: readonly number[], axes: readonly number[]): number {
  return sizeOf(axes.map((a) => shape[a]));
}

/** Throws a RangeError when a reduction that has no identity would reduce nothing. */
export function rejectEmpty(op: string, x: Tensor, axes: readonly number[]): void {
  if (reducedCount(x.shape, axes) === 0) {
    throw new RangeError(
      `${op}: cannot reduce ${fmt(x.shape)} over empty axes [${axes.join(",")}]; ` +
        "the result of reducing no elements is undefined",
    );
  }
}

/** `shape` with the reduced `axes` set to 1 (keepdims) or removed. */
export function reducedShape(
  shape: readonly number[],
  axes: readonly number[],
  keepdims: boolean,
): number[] {
  return keepdims
    ? shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : shape.filter((_, i) => !axes.includes(i));
}

/**
 * A contiguous copy of `x` with its axes permuted. It runs the copy kernel directly rather
 * than the `transpose` op, so nothing is recorded for autodiff inside a primitive's forward.
 */
export function permuted(x: Tensor, perm: readonly number[]): Tensor {
  const c = contiguousStrides(x.shape);
  const strides = perm.map((p) => c[p]);
  const shape = perm.map((p) => x.shape[p]);
  return runElementwise("copy", [{ tensor: x, strides }], shape, x.dtype);
}

/** How to lay `shape` out for a reduction over `axes`: a permutation (or none) and the layout. */
function plan(shape: readonly number[], axes: readonly number[]) {
  const red = new Set(axes);
  // Size-1 axes do not change the memory order, so only the others decide the blocks.
  const blocks: { reduced: boolean; size: number }[] = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const last = blocks[blocks.length - 1];
    if (last && last.reduced === red.has(i)) last.size *= d;
    else blocks.push({ reduced: red.has(i), size: d });
  });
  const at = blocks.findIndex((b) => b.reduced);
  if (blocks.filter((b) => b.reduced).length <= 1) {
    const n = at < 0 ? 1 : blocks[at].size;
    const before = at < 0 ? blocks : blocks.slice(0, at);
    const layout: ReduceLayout = {
      outer: sizeOf(before.map((b) => b.size)),
      n,
      inner: at < 0 ? 1 : sizeOf(blocks.slice(at + 1).map((b) => b.size)),
    };
    return { perm: null as number[] | null, layout };
  }
  return movedLast(shape, axes);
}

/** The permutation moving `axes` last, and the resulting `[kept, reduced, 1]` layout. */
function movedLast(shape: readonly number[], axes: readonly number[]) {
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const layout: ReduceLayout = {
    outer: sizeOf(kept.map((i) => shape[i])),
    n: reducedCount(shape, axes),
    inner: 1,
  };
  return { perm: [...kept, ...axes] as number[] | null, layout };
}

/**
 * Runs reduction kernel `kernel` (`sum`, `max`, `min`, `argmax`, `argmin`) on `x` laid out for
 * `axes`, moving the axes last by a transposed copy when they are not one block.
 */
export function launchReduce(
  kernel: string,
  x: Tensor,
  axes: readonly number[],
  spec: Omit<ReduceSpec, "layout" | "outDtype"> & { outDtype?: DType },
  output: { shape: readonly number[]; dtype: DType },
): Tensor {
  const { perm, layout } = plan(x.shape, axes);
  using moved = perm ? permuted(x, perm) : null;
  return launch1(kernel, [moved ?? x], { ...spec, layout }, output);
}

function reducePrim(
  op: ReduceOp,
  vjp: Primitive<ReduceParams>["vjp"],
  saves?: Primitive<ReduceParams>["saves"],
) {
  return definePrimitive<ReduceParams>({
    name: op,
    saves,
    forward: ([x], { axes, keepdims }) => {
      const outDtype: DType = x.dtype === "bool" ? "i32" : x.dtype;
      const shape = reducedShape(x.shape, axes, keepdims);
      return [launchReduce(op, x, axes, { dtype: x.dtype, outDtype }, { shape, dtype: outDtype })];
    },
    vjp,
  });
}

// The cotangent of every input element is that of the output it was summed into.
const sumPrim = reducePrim("sum", ([g], { inputs: [x], params: { axes } }) => {
  using gk = reshape(g, reducedShape(x.shape, axes, true));
  return [broadcastTo(gk, x.shape)];
}, { inputs: [], outputs: [] });

// JAX convention: the cotangent goes to the elements equal to the result, shared equally.
const extremeVjp: Primitive<ReduceParams>["vjp"] = ([g], { inputs: [x], outputs, params }) => {
  const keep = reducedShape(x.shape, params.axes, true);
  using yk = reshape(outputs[0], keep);
  using gk = reshape(g, keep);
  using hit = equal(x, yk);
  using mask = cast(hit, "f32");
  using count = sum(mask, params.axes, { keepdims: true });
  using share = div(gk, count);
  return [mul(mask, share)];
};
const maxPrim = reducePrim("max", extremeVjp);
const minPrim = reducePrim("min", extremeVjp);

function validate(op: string, x: unknown, axes: number | readonly number[] | undefined) {
  checkTensor(op, "x", x);
  return normAxes(op, axes, x.rank);
}

/**
 * Sum over `axes` (default: all). f32, i32 and u32 keep their dtype (integers wrap on
 * overflow); bool counts the true elements as i32. A sum over no elements is 0. The gradient
 * broadcasts the cotangent back over the reduced axes.
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sum, tensor } from "@longseq/tensor";
 * const x = tensor([[1, 2, 3], [4, 5, 6]]); // [2, 3]
 * assert.equal(await sum(x).array(), 21); // [] (0-d)
 * assert.deepEqual(await sum(x, -1, { keepdims: true }).array(), [[6], [15]]); // [2, 1]
 * ```
 */
export function sum(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const ax = validate("sum", x, axes);
  return bind1(sumPrim, [x], { axes: ax, keepdims: options.keepdims ?? false });
}

function extreme(
  op: "max" | "min",
  prim: Primitive<ReduceParams>,
  x: Tensor,
  axes: number | readonly number[] | undefined,
  options: ReduceOptions,
): Tensor {
  const ax = validate(op, x, axes);
  rejectBool(op, x);
  rejectEmpty(op, x, ax);
  return bind1(prim, [x], { axes: ax, keepdims: options.keepdims ?? false });
}

/**
 * Largest element over `axes` (default: all), keeping the dtype. NaN propagates. Reducing an
 * empty axis throws a RangeError; bool inputs a TypeError. The gradient goes to the elements
 * equal to the maximum, divided equally among ties.
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { max, tensor } from "@longseq/tensor";
 * assert.deepEqual(await max(tensor([[1, 5], [7, 2]]), 1).array(), [5, 7]);
 * ```
 */
export function max(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  return extreme("max", maxPrim, x, axes, options);
}

/**
 * Smallest element over `axes` (default: all); see {@linkcode max} for dtypes, NaN, empty
 * axes and the gradient.
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { min, tensor } from "@longseq/tensor";
 * assert.deepEqual(await min(tensor([[1, 5], [7, 2]]), 0).array(), [1, 2]);
 * ```
 */
export function min(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  return extreme("min", minPrim, x, axes, options);
}

/**
 * Validates a float reduction and returns its axes and an f32 version of `x` (f16 too: the
 * composition runs in f32 and {@linkcode asInputFloat} rounds its result once).
 */
export function floatInput(
  op: string,
  x: Tensor,
  axes: number | readonly number[] | undefined,
): { ax: number[]; xf: Tensor } {
  const ax = validate(op, x, axes);
  rejectBool(op, x);
  rejectEmpty(op, x, ax);
  return { ax, xf: x.dtype === "f32" ? x : cast(x, "f32") };
}

/** `y` (computed in f32) cast to f16 when `x` is f16, consuming `y`; otherwise `y` itself. */
export function asInputFloat(x: Tensor, y: Tensor): Tensor {
  if (x.dtype !== "f16") return y;
  using wide = y;
  return cast(wide, "f16");
}

/**
 * Arithmetic mean over `axes` (default: all), as f32 (integers are summed in f32). An empty
 * axis throws a RangeError rather than returning NaN. A composition of `sum` and `div`.
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mean, tensor } from "@longseq/tensor";
 * assert.deepEqual(await mean(tensor([[1, 2], [3, 6]]), 0).array(), [2, 4]);
 * ```
 */
export function mean(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const { ax, xf } = floatInput("mean", x, axes);
  using s = sum(xf, ax, options);
  if (xf !== x) xf.dispose();
  return asInputFloat(x, div(s, reducedCount(x.shape, ax)));
}

/**
 * Population variance (`ddof = 0`) over `axes` (default: all), as f32: the mean of squared
 * deviations from the mean, computed in two passes for accuracy. A composition.
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, variance } from "@longseq/tensor";
 * assert.equal(await variance(tensor([1, 2, 3, 4])).array(), 1.25);
 * ```
 */
export function variance(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const { ax, xf } = floatInput("variance", x, axes);
  using m = mean(xf, ax, { keepdims: true });
  using d = sub(xf, m);
  if (xf !== x) xf.dispose();
  using d2 = square(d);
  return asInputFloat(x, mean(d2, ax, options));
}
