/**
 * More elementwise math: `expm1`, `log2`, `tan` and `atan`, each a primitive with its own
 * kernel entry (`TRANSCENDENTAL_KERNELS`) and VJP rule. Integer inputs are cast to f32 first.
 * @module
 */
import type { Tensor } from "./tensor.ts";
import type { ScalarOp } from "./kernel.ts";
import { add, div, mul } from "./binary.ts";
import { square } from "./unary.ts";
import { defineUnary } from "./unary_def.ts";

// expm1: a Taylor polynomial near 0 (error below 2e-8 relative for |x| < 0.35), where
// exp(x) - 1 would cancel; elsewhere exp(x) - 1 loses at most a few ulps.
const EXPM1_WGSL = `
fn expm1_(x: f32) -> f32 {
  if (abs(x) < 0.35) {
    return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 +
      x * (1.0 / 720.0 + x * (1.0 / 5040.0)))))));
  }
  return exp(x) - 1.0;
}`;

/** The kernel entries of this file (CPU reference and WGSL expression per op), for porting. */
export const TRANSCENDENTAL_KERNELS: Readonly<
  Record<"expm1" | "log2" | "tan" | "atan", ScalarOp>
> = {
  expm1: { cpu: Math.expm1, wgsl: "expm1_(a)", helpers: EXPM1_WGSL },
  log2: { cpu: Math.log2, wgsl: "log2(a)" },
  tan: { cpu: Math.tan, wgsl: "tan(a)" },
  atan: { cpu: Math.atan, wgsl: "atan(a)" },
};

const X = { inputs: [0], outputs: [] }, Y = { inputs: [], outputs: [0] };
const K = TRANSCENDENTAL_KERNELS;

/**
 * `e^x - 1`, accurate for small `|x|` where `exp(x) - 1` loses digits. Gradient `e^x`.
 *
 * Shapes: `x [...]` to `[...]` f32.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expm1, tensor } from "@longseq/tensor";
 * const [small, one] = await expm1(tensor([1e-7, 1])).data();
 * assert.ok(Math.abs(small - 1e-7) < 1e-13 && Math.abs(one - (Math.E - 1)) < 1e-6);
 * ```
 */
export const expm1: (x: Tensor) => Tensor = defineUnary("expm1", {
  ...K.expm1,
  floatOnly: true,
  saves: Y,
  vjp: ([g], c) => {
    using e = add(c.outputs[0], 1);
    return [mul(g, e)];
  },
}).fn;

/**
 * Base-2 logarithm. Gradient `1 / (x ln 2)`.
 *
 * Shapes: `x [...]` to `[...]` f32.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { log2, tensor } from "@longseq/tensor";
 * assert.deepEqual(await log2(tensor([1, 8, 0.5])).array(), [0, 3, -1]);
 * ```
 */
export const log2: (x: Tensor) => Tensor = defineUnary("log2", {
  ...K.log2,
  floatOnly: true,
  saves: X,
  vjp: ([g], c) => {
    using d = mul(c.inputs[0], Math.LN2);
    return [div(g, d)];
  },
}).fn;

/**
 * Tangent. Gradient `1 + tan(x)^2`.
 *
 * Shapes: `x [...]` to `[...]` f32.
 *
 * @example
 * ```ts
 * import { assertAllClose, tan, tensor } from "@longseq/tensor";
 * await assertAllClose(tan(tensor([0, Math.PI / 4])), [0, 1], { atol: 1e-6 });
 * ```
 */
export const tan: (x: Tensor) => Tensor = defineUnary("tan", {
  ...K.tan,
  floatOnly: true,
  saves: Y,
  vjp: ([g], c) => {
    using y2 = square(c.outputs[0]);
    using d = add(y2, 1);
    return [mul(g, d)];
  },
}).fn;

/**
 * Arctangent, in `(-pi/2, pi/2)`. Gradient `1 / (1 + x^2)`.
 *
 * Shapes: `x [...]` to `[...]` f32.
 *
 * @example
 * ```ts
 * import { assertAllClose, atan, tensor } from "@longseq/tensor";
 * await assertAllClose(atan(tensor([0, 1, -Infinity])), [0, Math.PI / 4, -Math.PI / 2]);
 * ```
 */
export const atan: (x: Tensor) => Tensor = defineUnary("atan", {
  ...K.atan,
  floatOnly: true,
  saves: X,
  vjp: ([g], c) => {
    using x2 = square(c.inputs[0]);
    using d = add(x2, 1);
    return [div(g, d)];
  },
}).fn;
