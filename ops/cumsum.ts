/**
 * Cumulative sums along an axis: inclusive or exclusive, forward or reverse.
 * @module
 */
import type { ScanSpec } from "../kernels/specs/scan.ts";
import { bind1, definePrimitive, launch1, type Primitive } from "./primitive.ts";
import { fmt, type Tensor } from "./tensor.ts";
import { checkTensor, normAxis } from "./validate.ts";
import { axisLayout } from "./indexing.ts";

/** Options for {@linkcode cumsum}. */
export interface CumsumOptions {
  /** Sum from the end of the axis towards the start (default false). */
  reverse?: boolean;
  /** Leave each element out of its own sum, so the first is 0 (default false). */
  exclusive?: boolean;
}

interface CumsumParams {
  axis: number;
  reverse: boolean;
  exclusive: boolean;
}

const cumsumPrim = definePrimitive<CumsumParams>({
  name: "cumsum",
  saves: { inputs: [], outputs: [] },
  forward: ([x], { axis, reverse, exclusive }) => {
    const spec: ScanSpec = {
      layout: axisLayout(x.shape, axis),
      reverse,
      exclusive,
      dtype: x.dtype,
    };
    return [launch1("cumsum", [x], spec, x)];
  },
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
 * import { cumsum, tensor } from "@longseq/tensor";
 * const x = tensor([1, 2, 3, 4]);
 * console.log(await cumsum(x).array()); // [1, 3, 6, 10]
 * console.log(await cumsum(x, -1, { reverse: true, exclusive: true }).array()); // [9, 7, 4, 0]
 * ```
 */
export function cumsum(x: Tensor, axis = -1, options: CumsumOptions = {}): Tensor {
  checkTensor("cumsum", "x", x);
  if (x.dtype === "bool") {
    throw new TypeError(`cumsum: bool input ${fmt(x.shape)} is not supported; cast it first`);
  }
  const a = normAxis("cumsum", axis, x.rank);
  return bind1(cumsumPrim, [x], {
    axis: a,
    reverse: options.reverse ?? false,
    exclusive: options.exclusive ?? false,
  });
}

/** The cumsum primitive, for tests of its VJP rule. */
export const CUMSUM_PRIMITIVE: Primitive<CumsumParams> = cumsumPrim;
