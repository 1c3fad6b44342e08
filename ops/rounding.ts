/**
 * Rounding and the floored modulo: `floor`, `ceil`, `round` (half to even) and `mod`
 * (Python / `jnp.mod` semantics: the result has the sign of the divisor). Each is an
 * elementwise primitive whose kernels are the backends' elementwise entries of the same name. Integer
 * inputs keep their dtype (rounding them is the identity). Gradients: `floor`, `ceil` and
 * `round` are piecewise constant, so their gradient is zero (as in JAX); `mod(x, y)` has
 * gradient 1 with respect to `x` and `-floor(x / y)` with respect to `y`.
 * @module
 */
import { definePrimitive } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { runElementwise } from "./elementwise.ts";
import { broadcastShapes } from "./broadcast.ts";
import { applyBinary, div, mul, type TensorLike } from "./binary.ts";
import { neg } from "./unary.ts";
import { defineUnary } from "./unary_def.ts";

const rounding = (name: "floor" | "ceil" | "round") =>
  defineUnary(name, {
    floatOnly: false,
    vjp: () => [null],
    saves: { inputs: [], outputs: [] },
  }).fn;

/**
 * Largest integer not above `x`, elementwise (integer dtypes unchanged). Zero gradient.
 *
 * Shapes: `x [...]` to `[...]`, same dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { floor, tensor } from "@longseq/tensor";
 * assert.deepEqual(await floor(tensor([1.5, -1.5, 2])).array(), [1, -2, 2]);
 * ```
 */
export const floor: (x: Tensor) => Tensor = rounding("floor");

/**
 * Smallest integer not below `x`, elementwise (integer dtypes unchanged). Zero gradient.
 *
 * Shapes: `x [...]` to `[...]`, same dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ceil, tensor } from "@longseq/tensor";
 * assert.deepEqual(await ceil(tensor([1.5, -1.5, 2])).array(), [2, -1, 2]);
 * ```
 */
export const ceil: (x: Tensor) => Tensor = rounding("ceil");

/**
 * Rounds to the nearest integer, halves to the even neighbour (NumPy `round`, JAX
 * `jnp.round`): `0.5 -> 0`, `1.5 -> 2`, `2.5 -> 2`, `-0.5 -> -0`. Integer dtypes unchanged.
 * Zero gradient.
 *
 * Shapes: `x [...]` to `[...]`, same dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { round, tensor } from "@longseq/tensor";
 * assert.deepEqual(await round(tensor([0.5, 1.5, 2.5, -2.5, 2.6])).array(), [0, 2, 2, -2, 3]);
 * ```
 */
export const round: (x: Tensor) => Tensor = rounding("round");

const modPrim = definePrimitive<undefined>({
  name: "mod",
  saves: { inputs: [0, 1], outputs: [] },
  forward: ([a, b]) => [
    runElementwise(
      "mod",
      [a, b],
      broadcastShapes("mod", a.shape, b.shape),
      a.dtype,
    ),
  ],
  // mod(x, y) = x - y floor(x / y): d/dx = 1, d/dy = -floor(x / y) (floor has zero slope).
  vjp: ([g], { inputs: [x, y] }) => {
    using q = div(x, y);
    using f = floor(q);
    using gf = mul(g, f);
    return [g, neg(gf)];
  },
});

/**
 * The floored modulo `x - y * floor(x / y)`, with NumPy broadcasting: the result has the sign
 * of the divisor `y`, as Python's `%` and `jnp.mod` (`mod(-1, 3) = 2`, `mod(1, -3) = -2`).
 * Operands are promoted to a common dtype (bool is rejected). For f32, `mod(x, 0)` is NaN;
 * for integers it is 0. Gradients: 1 with respect to `x`, `-floor(x / y)` with respect to `y`.
 *
 * Shapes: `x`, `y` broadcast to the result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mod, tensor } from "@longseq/tensor";
 * assert.deepEqual(await mod(tensor([-1, 1, 5.5]), 3).array(), [2, 1, 2.5]);
 * assert.deepEqual(await mod(tensor([1, -7], { dtype: "i32" }), -3).array(), [-2, -1]);
 * ```
 */
export function mod(x: TensorLike, y: TensorLike): Tensor {
  return applyBinary(modPrim, x, y);
}
