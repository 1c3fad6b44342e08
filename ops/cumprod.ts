/**
 * Cumulative products along an axis: inclusive or exclusive, forward or reverse, with a VJP
 * rule that is exact for inputs containing zeros.
 * @module
 */
import { definePrimitive, type Primitive } from "./primitive.ts";
import { bindScan, launchScan, type ScanParams } from "./scan.ts";
import type { Tensor } from "./tensor.ts";
import { cumsum } from "./cumsum.ts";
import { cast, div, mul } from "./binary.ts";
import { equal, logicalAnd, where } from "./compare.ts";
import { pad, slice } from "./slicing.ts";

/** Options for {@linkcode cumprod}. */
export interface CumprodOptions {
  /** Multiply from the end of the axis towards the start (default false). */
  reverse?: boolean;
  /** Leave each element out of its own product, so the first is 1 (default false). */
  exclusive?: boolean;
}

/**
 * The cotangent of an inclusive cumprod `y` of `x` for cotangent `g`. With `z` the first zero
 * of a scan (in scan order): before `z`, `dx_i = sum_{j >= i} g_j y_j / x_i`; at `z`,
 * `dx_z = sum_{j >= z} g_j prod_{k <= j, k != z} x_k`, the same sum over the cumprod of `x`
 * with that zero replaced by 1; after `z` every product holding `x_i` also holds `x_z = 0`.
 */
function inclusiveVjp(x: Tensor, y: Tensor, g: Tensor, axis: number, reverse: boolean): Tensor {
  const back = { reverse: !reverse };
  using isZero = equal(x, 0);
  using zeroF = cast(isZero, "f32");
  using zerosSoFar = cumsum(zeroF, axis, { reverse });
  using before = equal(zerosSoFar, 0);
  using firstCount = equal(zerosSoFar, 1);
  using atFirst = logicalAnd(firstCount, isZero);
  // Before the first zero.
  using gy = mul(g, y);
  using tail = cumsum(gy, axis, back);
  using safeX = where(before, x, 1);
  using q = div(tail, safeX);
  // At the first zero: the products with it replaced by 1.
  using patched = where(atFirst, 1, x);
  using py = cumprod(patched, axis, { reverse });
  using gpy = mul(g, py);
  using tailZ = cumsum(gpy, axis, back);
  using atZ = where(atFirst, tailZ, 0);
  return where(before, q, atZ);
}

/** `g` moved one step against the scan (`g'_i = g_{i+1}` in scan order, 0 at the end). */
function shiftBack(g: Tensor, axis: number, reverse: boolean): Tensor {
  const n = g.shape[axis];
  if (n === 0) return cast(g, g.dtype);
  const starts = g.shape.map((_, d) => (d === axis && !reverse ? 1 : 0));
  const ends = g.shape.map((m, d) => (d === axis && reverse ? n - 1 : m));
  using inner = slice(g, starts, ends);
  return pad(inner, g.shape.map((_, d) => (d === axis ? (reverse ? [1, 0] : [0, 1]) : [0, 0])));
}

const cumprodPrim = definePrimitive<ScanParams>({
  name: "cumprod",
  forward: ([x], params) => [launchScan(x, params, "cumprod")],
  // An exclusive product is the inclusive one shifted by a step: `y_j = Y_{j-1}` with `Y` the
  // inclusive product, so `x` gets the inclusive rule with the cotangent shifted back.
  vjp: ([g], { inputs: [x], outputs: [y], params: { axis, reverse, exclusive } }) => {
    if (!exclusive) return [inclusiveVjp(x, y, g, axis, reverse)];
    using inclusive = mul(y, x);
    using shifted = shiftBack(g, axis, reverse);
    return [inclusiveVjp(x, inclusive, shifted, axis, reverse)];
  },
});

/**
 * Running products along `axis` (default the last); the result has the shape and dtype of
 * `x`. `reverse` multiplies from the end; `exclusive` leaves each element out of its own
 * product (so the first result along the scan is 1). f32, i32 and u32 inputs (integers wrap on
 * overflow; f32 products round after every step, in scan order, on every device).
 *
 * The gradient is JAX's (the derivative of the products, not a division by `x`): exact also
 * where `x` holds zeros. With `y` the inclusive product, an element before the first zero of
 * its scan gets `sum_{j >= i} g_j y_j / x_i`, the first zero gets the products of the other
 * elements, and elements after it get 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cumprod, tensor } from "@longseq/tensor";
 * const x = tensor([1, 2, 3, 4]);
 * assert.deepEqual(await cumprod(x).array(), [1, 2, 6, 24]);
 * assert.deepEqual(await cumprod(x, -1, { reverse: true, exclusive: true }).array(), [24, 12, 4, 1]);
 * ```
 */
export function cumprod(x: Tensor, axis: number = -1, options: CumprodOptions = {}): Tensor {
  return bindScan(cumprodPrim, x, axis, options);
}

/** The cumprod primitive, for tests of its VJP rule. */
export const CUMPROD_PRIMITIVE: Primitive<ScanParams> = cumprodPrim;
