/**
 * Elementwise unary ops: for each, its dtype rule and VJP rule; the kernels are the entries of
 * the same name in the backends' elementwise tables. Float-only ops cast integer inputs to
 * `f32` first (NumPy style).
 *
 * Special values follow the CPU reference (JS `Math`, i.e. IEEE/NumPy) on both backends: NaN
 * propagates, signed zeros and infinities come out as on the CPU (a property test checks every
 * op). Deliberate differences on WebGPU: transcendental ops agree within a few ULP rather than
 * bitwise; a subnormal result may be flushed to zero and a subnormal input gives no accuracy
 * guarantee (WGSL allows both); `sin`/`cos` are accurate only for moderate arguments (|x| up to
 * about 1e4); `erf` is an approximation with absolute error up to 1.5e-7.
 * @module
 */
import { bind1, definePrimitive, type Primitive, SAVES } from "./primitive.ts";
import { defineUnary, type UnaryEntry } from "./unary_def.ts";
import type { Tensor } from "./tensor.ts";
import { add, div, mul, scalarLike, sub } from "./binary.ts";
import { runElementwise } from "./elementwise.ts";

const x0 = (c: { inputs: readonly Tensor[] }) => c.inputs[0];
const y0 = (c: { outputs: readonly Tensor[] }) => c.outputs[0];

/**
 * relu's backward as one kernel: `dy` where `x > 0`, else 0 (even for a NaN or infinite
 * `dy`, as JAX's select). Its own VJP passes the cotangent through the same mask.
 */
const reluGrad: Primitive<undefined> = definePrimitive<undefined>({
  name: "reluGrad",
  saves: SAVES.input,
  forward: ([x, dy]) => [runElementwise("reluGrad", [x, dy], dy.shape, dy.dtype)],
  vjp: ([ct], c) => [null, bind1(reluGrad, [x0(c), ct], undefined)],
});

const DEFS = {
  neg: { saves: SAVES.nothing, floatOnly: false, vjp: ([g]) => [neg(g)] },
  abs: {
    saves: SAVES.input,
    floatOnly: false,
    vjp: ([g], c) => [mul(g, sign(x0(c)))],
  },
  sign: { saves: SAVES.nothing, floatOnly: false, vjp: () => [null] },
  exp: {
    saves: SAVES.output,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, y0(c))],
  },
  log: {
    saves: SAVES.input,
    floatOnly: true,
    vjp: ([g], c) => [div(g, x0(c))],
  },
  log1p: {
    saves: SAVES.input,
    floatOnly: true,
    vjp: ([g], c) => [div(g, add(x0(c), 1))],
  },
  sqrt: {
    saves: SAVES.output,
    floatOnly: true,
    vjp: ([g], c) => [div(g, mul(y0(c), 2))],
  },
  rsqrt: {
    saves: SAVES.output,
    floatOnly: true,
    // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
    vjp: ([g], c) => [mul(g, mul(mul(y0(c), square(y0(c))), -0.5))],
  },
  square: {
    saves: SAVES.input,
    floatOnly: false,
    vjp: ([g], c) => [mul(g, mul(x0(c), 2))],
  },
  tanh: {
    saves: SAVES.output,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, sub(1, square(y0(c))))],
  },
  sigmoid: {
    saves: SAVES.output,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, mul(y0(c), sub(1, y0(c))))],
  },
  relu: {
    saves: SAVES.input,
    floatOnly: false,
    vjp: ([g], c) => [bind1(reluGrad, [x0(c), g], undefined)],
  },
  erf: {
    saves: SAVES.input,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, mul(exp(neg(square(x0(c)))), 2 / Math.sqrt(Math.PI)))],
  },
  sin: {
    saves: SAVES.input,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, cos(x0(c)))],
  },
  cos: {
    saves: SAVES.input,
    floatOnly: true,
    vjp: ([g], c) => [neg(mul(g, sin(x0(c))))],
  },
} satisfies Record<string, UnaryEntry>;

/** Names of the unary primitives. */
export type UnaryName = keyof typeof DEFS;

const FNS = Object.fromEntries(
  Object.entries(DEFS).map(([name, def]) => [name, defineUnary(name, def).fn]),
) as Record<UnaryName, (x: Tensor) => Tensor>;

/** Applies a unary primitive by name, validating the dtype. */
export function unary(name: UnaryName, x: Tensor): Tensor {
  return FNS[name](x);
}

/**
 * `-x` elementwise.
 *
 * `x`: any shape; the result has `x`'s shape and dtype (bool is rejected).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { neg, tensor } from "@longseq/tensor";
 * assert.deepEqual(await neg(tensor([1, -2])).array(), [-1, 2]);
 * ```
 */
export const neg = (x: Tensor): Tensor => unary("neg", x);
/**
 * `|x|` elementwise.
 *
 * `x`: any shape; the result has `x`'s shape and dtype (bool is rejected).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { abs, tensor } from "@longseq/tensor";
 * assert.deepEqual(await abs(tensor([-3, 0, 2])).array(), [3, 0, 2]);
 * ```
 */
export const abs = (x: Tensor): Tensor => unary("abs", x);
/**
 * Sign of `x` (-1, 0 or 1; `sign(-0)` is -0 and `sign(NaN)` is NaN).
 *
 * `x`: any shape; the result has `x`'s shape and dtype (bool is rejected).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sign, tensor } from "@longseq/tensor";
 * assert.deepEqual(await sign(tensor([-3, 0, 2, NaN])).array(), [-1, 0, 1, NaN]);
 * ```
 */
export const sign = (x: Tensor): Tensor => unary("sign", x);
/**
 * `e^x` elementwise.
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, exp, tensor } from "@longseq/tensor";
 * await assertAllClose(exp(tensor([0, 1, -Infinity])), [1, Math.E, 0]);
 * ```
 */
export const exp = (x: Tensor): Tensor => unary("exp", x);
/**
 * Natural logarithm (`log(0)` is -inf, negative inputs give NaN).
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, log, tensor } from "@longseq/tensor";
 * await assertAllClose(log(tensor([1, Math.E, 0])), [0, 1, -Infinity]);
 * ```
 */
export const log = (x: Tensor): Tensor => unary("log", x);
/**
 * `log(1 + x)`, accurate near 0; `log1p(inf)` is inf, `log1p(-1)` is -inf.
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, log1p, tensor } from "@longseq/tensor";
 * await assertAllClose(log1p(tensor([0, 1e-7, -1])), [0, 1e-7, -Infinity], { rtol: 1e-5 });
 * ```
 */
export const log1p = (x: Tensor): Tensor => unary("log1p", x);
/**
 * Square root (negative inputs give NaN).
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sqrt, tensor } from "@longseq/tensor";
 * assert.deepEqual(await sqrt(tensor([4, 0, 2.25])).array(), [2, 0, 1.5]);
 * ```
 */
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
/**
 * `1 / sqrt(x)`.
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, rsqrt, tensor } from "@longseq/tensor";
 * await assertAllClose(rsqrt(tensor([4, 0.25])), [0.5, 2]);
 * ```
 */
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
/**
 * `x * x`.
 *
 * `x`: any shape; the result has `x`'s shape and dtype (bool is rejected).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { square, tensor } from "@longseq/tensor";
 * assert.deepEqual(await square(tensor([-3, 2], { dtype: "i32" })).array(), [9, 4]);
 * ```
 */
export const square = (x: Tensor): Tensor => unary("square", x);
/**
 * Hyperbolic tangent.
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, tanh, tensor } from "@longseq/tensor";
 * await assertAllClose(tanh(tensor([0, 1, -Infinity])), [0, Math.tanh(1), -1]);
 * ```
 */
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
/**
 * Logistic sigmoid `1 / (1 + e^-x)`, stable for large |x|.
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, sigmoid, tensor } from "@longseq/tensor";
 * await assertAllClose(sigmoid(tensor([0, 100, -100])), [0.5, 1, 0]);
 * ```
 */
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
/**
 * `max(x, 0)`.
 *
 * `x`: any shape; the result has `x`'s shape and dtype (bool is rejected).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { relu, tensor } from "@longseq/tensor";
 * assert.deepEqual(await relu(tensor([-1, 0, 2])).array(), [0, 0, 2]);
 * ```
 */
export const relu = (x: Tensor): Tensor => unary("relu", x);
/**
 * The error function (on WebGPU an approximation, absolute error below 1.5e-7).
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, erf, tensor } from "@longseq/tensor";
 * await assertAllClose(erf(tensor([0, 1, -Infinity])), [0, 0.8427008, -1]);
 * ```
 */
export const erf = (x: Tensor): Tensor => unary("erf", x);
/**
 * Sine (on WebGPU accurate for |x| up to about 1e4).
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, sin, tensor } from "@longseq/tensor";
 * await assertAllClose(sin(tensor([0, Math.PI / 2])), [0, 1]);
 * ```
 */
export const sin = (x: Tensor): Tensor => unary("sin", x);
/**
 * Cosine (on WebGPU accurate for |x| up to about 1e4).
 *
 * `x`: any shape; the result has `x`'s shape and an `f32` dtype (integers are cast to `f32` first).
 *
 * @example
 * ```ts
 * import { assertAllClose, cos, tensor } from "@longseq/tensor";
 * await assertAllClose(cos(tensor([0, Math.PI])), [1, -1]);
 * ```
 */
export const cos = (x: Tensor): Tensor => unary("cos", x);

export { scalarLike };
