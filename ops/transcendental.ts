/**
 * More elementwise math: `expm1`, `log2`, `tan` and `atan`, each a primitive with its own
 * kernel entries (the backends' elementwise tables) and VJP rule. Integer inputs are cast to f32 first.
 * @module
 */
import { SAVES } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { add, div, mul } from "./binary.ts";
import { square } from "./unary.ts";
import { defineUnary } from "./unary_def.ts";

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
  floatOnly: true,
  saves: SAVES.output,
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
  floatOnly: true,
  saves: SAVES.input,
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
  floatOnly: true,
  saves: SAVES.output,
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
  floatOnly: true,
  saves: SAVES.input,
  vjp: ([g], c) => {
    using x2 = square(c.inputs[0]);
    using d = add(x2, 1);
    return [div(g, d)];
  },
}).fn;
