/**
 * Rounding and the floored modulo: `floor`, `ceil`, `round` (half to even) and `mod`
 * (Python / `jnp.mod` semantics: the result has the sign of the divisor). Each is an
 * elementwise primitive with its own kernel entry (the `ROUNDING_KERNELS` table below). Integer
 * inputs keep their dtype (rounding them is the identity). Gradients: `floor`, `ceil` and
 * `round` are piecewise constant, so their gradient is zero (as in JAX); `mod(x, y)` has
 * gradient 1 with respect to `x` and `-floor(x / y)` with respect to `y`.
 * @module
 */
import type { DType } from "../kernels/dtype.ts";
import { definePrimitive } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { runElementwise, type ScalarOp } from "./kernel.ts";
import { broadcastShapes } from "./broadcast.ts";
import { applyBinary, div, mul, type TensorLike } from "./binary.ts";
import { neg } from "./unary.ts";
import { defineUnary } from "./unary_def.ts";

/** NumPy's `round`: to the nearest integer, halves to the even neighbour (keeps `-0`). */
export function roundHalfEven(a: number): number {
  const f = Math.floor(a);
  const d = a - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return r === 0 && a < 0 ? -0 : r;
}

/** The floored modulo of two numbers: `a - b * floor(a / b)`, with the sign of `b`. */
export function floorMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
}

const MOD_WGSL = `
fn modf_(a: f32, b: f32) -> f32 {
  let r = a % b;
  if (r != 0.0 && ((r < 0.0) != (b < 0.0))) { return r + b; }
  return r;
}
fn modi_(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  let r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) { return r + b; }
  return r;
}
fn modu_(a: u32, b: u32) -> u32 { if (b == 0u) { return 0u; } return a % b; }`;

/** Identity for integer dtypes, `fn(a)` for f32. */
const floatFn = (fn: string) => (t: DType) => (t === "f32" ? `${fn}(a)` : "a");

/**
 * The kernel entries of this file (CPU reference and WGSL expression per op), for backends
 * and for porting. WGSL's `round` already rounds halves to even.
 */
export const ROUNDING_KERNELS: Readonly<Record<"floor" | "ceil" | "round" | "mod", ScalarOp>> = {
  floor: { cpu: Math.floor, wgsl: floatFn("floor") },
  ceil: { cpu: Math.ceil, wgsl: floatFn("ceil") },
  round: { cpu: roundHalfEven, wgsl: floatFn("round") },
  mod: {
    cpu: floorMod,
    wgsl: (t) => `mod${t === "f32" ? "f" : t === "i32" ? "i" : "u"}_(a, b)`,
    helpers: MOD_WGSL,
  },
};

const rounding = (name: "floor" | "ceil" | "round") =>
  defineUnary(name, {
    ...ROUNDING_KERNELS[name],
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
      ROUNDING_KERNELS.mod,
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
