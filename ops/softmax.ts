/**
 * Softmax, log-softmax and logsumexp, all max-shifted so large logits cannot overflow.
 * `softmax` and `logSoftmax` are fused primitives (one kernel reads each row and writes the
 * result) with their own VJP rules; `logsumexp` is a composition of reductions.
 * @module
 */
import type { SoftmaxSpec } from "../kernels/specs/reduce.ts";
import { isFloat } from "../kernels/dtype.ts";
import { bind1, definePrimitive, launch1, type Primitive } from "./primitive.ts";
import { sizeOf, type Tensor } from "./tensor.ts";
import { checkTensor, normAxis, rejectBool } from "./validate.ts";
import { add, cast, mul, sub } from "./binary.ts";
import { equal, less, where } from "./compare.ts";
import { abs, exp, log } from "./unary.ts";
import { reshape } from "./shape.ts";
import { asInputFloat, floatInput, max, reducedShape, type ReduceOptions, sum } from "./reduce.ts";

/** Static parameter of the softmax primitives: the normalised axis. */
interface SoftmaxParams {
  readonly axis: number;
}

/**
 * Runs the fused kernel (`softmax` or `logSoftmax`) on an f32 or f16 tensor along `axis`
 * (f16 is normalised in f32 and rounded once).
 */
function fused(kernel: string, x: Tensor, axis: number): Tensor {
  const spec: SoftmaxSpec = {
    outer: sizeOf(x.shape.slice(0, axis)),
    n: x.shape[axis],
    inner: sizeOf(x.shape.slice(axis + 1)),
    dtype: x.dtype,
  };
  return launch1(kernel, [x], spec, { shape: x.shape, dtype: x.dtype });
}

// dx = y * (g - sum(g * y)), the Jacobian of softmax applied to g.
const softmaxPrim = definePrimitive<SoftmaxParams>({
  name: "softmax",
  saves: { inputs: [], outputs: [0] },
  forward: ([x], { axis }) => [fused("softmax", x, axis)],
  vjp: ([g], { outputs: [y], params: { axis } }) => {
    using gy = mul(g, y);
    using s = sum(gy, axis, { keepdims: true });
    using d = sub(g, s);
    return [mul(y, d)];
  },
});

// dx = g - softmax(x) * sum(g), with softmax(x) = exp(y).
const logSoftmaxPrim = definePrimitive<SoftmaxParams>({
  name: "logSoftmax",
  saves: { inputs: [], outputs: [0] },
  forward: ([x], { axis }) => [fused("logSoftmax", x, axis)],
  vjp: ([g], { outputs: [y], params: { axis } }) => {
    using s = sum(g, axis, { keepdims: true });
    using p = exp(y);
    using ps = mul(p, s);
    return [sub(g, ps)];
  },
});

function applySoftmax(op: string, prim: Primitive<SoftmaxParams>, x: Tensor, axis: number) {
  checkTensor(op, "x", x);
  const a = normAxis(op, axis, x.rank);
  rejectBool(op, x);
  if (!isFloat(x.dtype)) {
    using xf = cast(x, "f32");
    return xf.size === 0 ? cast(xf, "f32") : bind1(prim, [xf], { axis: a });
  }
  // An empty tensor has nothing to normalise: return an (empty) copy.
  return x.size === 0 ? cast(x, x.dtype) : bind1(prim, [x], { axis: a });
}

/**
 * `exp(x) / sum(exp(x))` along `axis` (default the last), computed as
 * `exp(x - max) / sum(exp(x - max))` so large logits do not overflow. Integer inputs become
 * f32; bool inputs throw a TypeError. A fused primitive with its own VJP rule
 * (`dx = y * (g - sum(g * y))`). A slice of only `-inf` (fully masked) gives zeros and a zero
 * gradient, not NaN.
 *
 * Shapes: `x [..dims]` to the same shape, f32; slices along `axis` sum to 1.
 *
 * @example
 * ```ts
 * import { assertAllClose, softmax, tensor } from "@longseq/tensor";
 * const p = softmax(tensor([[1, 2, 3], [1000, 1000, 1000]])); // [2, 3], rows sum to 1
 * await assertAllClose(p, [[0.0900306, 0.2447285, 0.6652410], [1 / 3, 1 / 3, 1 / 3]]);
 * ```
 */
export function softmax(x: Tensor, axis: number = -1): Tensor {
  return applySoftmax("softmax", softmaxPrim, x, axis);
}

/**
 * `x - logsumexp(x)` along `axis` (default the last), max-shifted so it is finite for large
 * logits. Integer inputs become f32; bool inputs throw a TypeError. A fused primitive with its
 * own VJP rule (`dx = g - softmax(x) * sum(g)`). A slice of only `-inf` gives `-inf` (and
 * passes the cotangent through unchanged), not NaN.
 *
 * Shapes: `x [..dims]` to the same shape, f32.
 *
 * @example
 * ```ts
 * import { assertAllClose, logSoftmax, tensor } from "@longseq/tensor";
 * const lp = logSoftmax(tensor([0, 0]));
 * await assertAllClose(lp, [-Math.LN2, -Math.LN2]);
 * ```
 */
export function logSoftmax(x: Tensor, axis: number = -1): Tensor {
  return applySoftmax("logSoftmax", logSoftmaxPrim, x, axis);
}

/**
 * `log(sum(exp(x)))` over `axes` (default: all), as f32, computed as
 * `m + log(sum(exp(x - m)))` with `m` the maximum (or 0 where the maximum is infinite, so rows
 * of `-inf` give `-inf` and rows holding `+inf` give `+inf`). An empty axis throws a
 * RangeError. A composition of `max`, `exp`, `sum` and `log`; its gradient is the softmax,
 * and 0 for rows of only `-inf` (fully masked rows never bring NaN into a backward pass).
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import { assertAllClose, logsumexp, tensor } from "@longseq/tensor";
 * await assertAllClose(logsumexp(tensor([1000, 1000])), 1000 + Math.LN2); // no overflow
 * ```
 */
export function logsumexp(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const { ax, xf } = floatInput("logsumexp", x, axes);
  using m = max(xf, ax, { keepdims: true });
  using am = abs(m);
  using finite = less(am, Infinity);
  using shift = where(finite, m, 0);
  using d = sub(xf, shift);
  if (xf !== x) xf.dispose();
  using e = exp(d);
  using s = sum(e, ax, { keepdims: true });
  // Rows of only -inf have s = 0: log(0) = -inf is the right value, but its gradient 1/s
  // would meet a zero cotangent as 0 * inf = NaN. Take the log of 1 there instead and put the
  // -inf back after it ("double where"), so such rows get a zero gradient.
  using empty = equal(m, -Infinity);
  using safe = where(empty, 1, s);
  using l = log(safe);
  using lse = add(l, shift);
  using out = where(empty, -Infinity, lse);
  return asInputFloat(x, reshape(out, reducedShape(x.shape, ax, options.keepdims ?? false)));
}
