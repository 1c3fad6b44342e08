/**
 * Activation functions: `silu`, `leakyRelu` and `elu` are compositions (their gradients come
 * from their parts); `softplus` is a primitive with its own kernel entry
 * (the backends' `softplus` entries), written in the overflow-free form `max(x, 0) + log1p(exp(-|x|))`
 * with the exact gradient `sigmoid(x)` (a composition would get the kink of `|x|` at 0 wrong).
 * @module
 */
import { isFloat } from "../kernels/dtype.ts";
import type { Tensor } from "./tensor.ts";
import { cast, mul } from "./binary.ts";
import { greater, greaterEqual, where } from "./compare.ts";
import { sigmoid } from "./unary.ts";
import { defineUnary } from "./unary_def.ts";
import { expm1 } from "./transcendental.ts";
import { scope } from "./scope.ts";

/**
 * `log(1 + e^x)`, computed as `max(x, 0) + log1p(exp(-|x|))`: no overflow for large `x`, no
 * underflow to 0 before it must. Gradient `sigmoid(x)`.
 *
 * Shapes: `x [...]` to `[...]` f32.
 *
 * @example
 * ```ts
 * import { assertAllClose, softplus, tensor } from "@longseq/tensor";
 * await assertAllClose(softplus(tensor([0, 100, -100])), [Math.LN2, 100, 3.720076e-44]);
 * ```
 */
export const softplus: (x: Tensor) => Tensor = defineUnary("softplus", {
  floatOnly: true,
  saves: { inputs: [0], outputs: [] },
  vjp: ([g], c) => {
    using s = sigmoid(c.inputs[0]);
    return [mul(g, s)];
  },
}).fn;

const asFloat = (x: Tensor) => (isFloat(x.dtype) ? x : cast(x, "f32"));

/**
 * Sigmoid linear unit (swish), `x * sigmoid(x)`. A composition.
 *
 * Shapes: `x [...]` to `[...]` f32.
 *
 * @example
 * ```ts
 * import { assertAllClose, silu, tensor } from "@longseq/tensor";
 * await assertAllClose(silu(tensor([0, 1, -1])), [0, 0.7310586, -0.2689414]);
 * ```
 */
export function silu(x: Tensor): Tensor {
  return scope(() => {
    const xf = asFloat(x);
    return mul(xf, sigmoid(xf));
  });
}

/**
 * Leaky rectifier: `x` where `x >= 0`, else `negativeSlope * x` (default slope 0.01, as JAX
 * and PyTorch). A composition; the gradient at 0 is 1.
 *
 * Shapes: `x [...]` to `[...]` f32.
 *
 * @example
 * ```ts
 * import { assertAllClose, leakyRelu, tensor } from "@longseq/tensor";
 * await assertAllClose(leakyRelu(tensor([-2, 3]), 0.1), [-0.2, 3]);
 * ```
 */
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  if (typeof negativeSlope !== "number" || !Number.isFinite(negativeSlope)) {
    throw new TypeError(`leakyRelu: negativeSlope must be a finite number, got ${negativeSlope}`);
  }
  return scope(() => {
    const xf = asFloat(x);
    return where(greaterEqual(xf, 0), xf, mul(xf, negativeSlope));
  });
}

/**
 * Exponential linear unit: `x` where `x > 0`, else `alpha * (e^x - 1)` (default `alpha` 1).
 * A composition (the exponential is evaluated only on the non-positive side, so large inputs
 * give no inf in the gradient).
 *
 * Shapes: `x [...]` to `[...]` f32.
 *
 * @example
 * ```ts
 * import { assertAllClose, elu, tensor } from "@longseq/tensor";
 * await assertAllClose(elu(tensor([-1, 0, 2])), [Math.exp(-1) - 1, 0, 2]);
 * ```
 */
export function elu(x: Tensor, alpha = 1): Tensor {
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) {
    throw new TypeError(`elu: alpha must be a finite number, got ${alpha}`);
  }
  return scope(() => {
    const xf = asFloat(x);
    const pos = greater(xf, 0);
    const neg = mul(expm1(where(pos, 0, xf)), alpha);
    return where(pos, xf, neg);
  });
}
