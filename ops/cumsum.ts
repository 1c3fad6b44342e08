/**
 * Cumulative sums along an axis: inclusive or exclusive, forward or reverse.
 * @module
 */
import { definePrimitive, type Primitive } from "./primitive.ts";
import { bindScan, launchScan, type ScanParams } from "./scan.ts";
import type { Tensor } from "./tensor.ts";

/** Options for {@linkcode cumsum}. */
export interface CumsumOptions {
  /** Sum from the end of the axis towards the start (default false). */
  reverse?: boolean;
  /** Leave each element out of its own sum, so the first is 0 (default false). */
  exclusive?: boolean;
}

const cumsumPrim = definePrimitive<ScanParams>({
  name: "cumsum",
  saves: { inputs: [], outputs: [] },
  forward: ([x], params) => [launchScan(x, params, "cumsum")],
  // Each input feeds the outputs after it (before it when reversed): the transpose sums the
  // cotangents the other way, with the same exclusivity.
  vjp: ([g], { params: { axis, reverse, exclusive } }) => [
    cumsum(g, axis, { reverse: !reverse, exclusive }),
  ],
});

/**
 * Running sums along `axis` (default the last); the result has the shape and dtype of `x`.
 * `reverse` sums from the end; `exclusive` leaves each element out of its own sum (so the
 * first result along the scan is 0). f32, i32 and u32 inputs (integers wrap on overflow); on
 * the GPU, f32 sums are computed as a blocked scan, so rounding differs slightly from a
 * sequential loop. The gradient is the reversed cumsum of the cotangent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cumsum, tensor } from "@longseq/tensor";
 * const x = tensor([1, 2, 3, 4]);
 * assert.deepEqual(await cumsum(x).array(), [1, 3, 6, 10]);
 * assert.deepEqual(await cumsum(x, -1, { reverse: true, exclusive: true }).array(), [9, 7, 4, 0]);
 * ```
 */
export function cumsum(x: Tensor, axis: number = -1, options: CumsumOptions = {}): Tensor {
  return bindScan(cumsumPrim, x, axis, options);
}

/** The cumsum primitive, for tests of its VJP rule. */
export const CUMSUM_PRIMITIVE: Primitive<ScanParams> = cumsumPrim;
