/**
 * Shape ops that only re-index: reshape (no copy), transpose, expandDims, squeeze, broadcastTo.
 * @module
 */
import { bind1, definePrimitive } from "./primitive.ts";
import { fmt, sizeOf, type Tensor } from "./tensor.ts";
import { broadcastShapes, checkShape, normAxes, normAxis } from "./broadcast.ts";
import { contiguousStrides } from "../kernels/strided.ts";
import { runElementwise } from "./elementwise.ts";

const reshapePrim = definePrimitive<readonly number[]>({
  name: "reshape",
  saves: { inputs: [], outputs: [] },
  forward: ([x], shape) => [x.view(shape)],
  vjp: ([g], c) => [reshape(g, c.inputs[0].shape)],
});

/**
 * Gives the data a new shape of the same size, without copying. One dimension may be `-1`
 * (inferred).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arange, reshape } from "@longseq/tensor";
 * assert.deepEqual(await reshape(arange(6), [2, -1]).array(), [[0, 1, 2], [3, 4, 5]]);
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const unknown = shape.filter((d) => d === -1).length;
  if (unknown > 1) throw new RangeError(`reshape: only one dimension may be -1, got ${fmt(shape)}`);
  checkShape("reshape", shape.map((d) => (d === -1 ? 0 : d)));
  let target = [...shape];
  if (unknown) {
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0) {
      throw new RangeError(
        `reshape: cannot reshape ${fmt(x.shape)} (size ${x.size}) into ${fmt(shape)}`,
      );
    }
    target = shape.map((d) => (d === -1 ? x.size / known : d));
  }
  if (sizeOf(target) !== x.size) {
    throw new RangeError(
      `reshape: cannot reshape ${fmt(x.shape)} (size ${x.size}) into ${fmt(shape)} (size ${
        sizeOf(target)
      })`,
    );
  }
  return bind1(reshapePrim, [x], target);
}

const transposePrim = definePrimitive<readonly number[]>({
  name: "transpose",
  saves: { inputs: [], outputs: [] },
  forward: ([x], perm) => {
    const c = contiguousStrides(x.shape);
    const shape = perm.map((p) => x.shape[p]);
    return [
      runElementwise(
        "copy",
        [{ tensor: x, strides: perm.map((p) => c[p]) }],
        shape,
        x.dtype,
      ),
    ];
  },
  vjp: ([g], c) => {
    const inv = new Array<number>(c.params.length);
    c.params.forEach((p, i) => (inv[p] = i));
    return [transpose(g, inv)];
  },
});

/**
 * Permutes axes (default: reverses them).
 * Shapes: `x [d0, d1, ...]` to `[d[perm[0]], d[perm[1]], ...]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, transpose } from "@longseq/tensor";
 * assert.deepEqual(await transpose(tensor([[1, 2], [3, 4]])).array(), [[1, 3], [2, 4]]);
 * ```
 */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const rank = x.rank;
  const p = perm ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (p.length !== rank) {
    throw new RangeError(
      `transpose: permutation [${p.join(",")}] has ${p.length} axes, tensor ${
        fmt(x.shape)
      } has ${rank}`,
    );
  }
  const norm = p.map((a) => normAxis("transpose", a, rank));
  if (new Set(norm).size !== rank) {
    throw new RangeError(
      `transpose: [${p.join(",")}] is not a permutation of the axes of ${fmt(x.shape)}`,
    );
  }
  return bind1(transposePrim, [x], norm);
}

/**
 * Inserts size-1 axes at the given positions of the result.
 * Shapes: `x [...dims]` to `dims` with a 1 at each `axis` (positions in the result).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandDims, ones } from "@longseq/tensor";
 * assert.deepEqual(expandDims(ones([3]), 0).shape, [1, 3]);
 * ```
 */
export function expandDims(x: Tensor, axis: number | readonly number[]): Tensor {
  const list = typeof axis === "number" ? [axis] : axis;
  const rank = x.rank + list.length;
  const axes = normAxes("expandDims", list, rank);
  const shape: number[] = [];
  let k = 0;
  for (let d = 0; d < rank; d++) shape.push(axes.includes(d) ? 1 : x.shape[k++]);
  return reshape(x, shape);
}

/**
 * Removes size-1 axes (default: all of them).
 * Shapes: `x [...dims]` to `dims` without the size-1 axes named by `axis` (default: all).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ones, squeeze } from "@longseq/tensor";
 * assert.deepEqual(squeeze(ones([1, 3, 1])).shape, [3]);
 * ```
 */
export function squeeze(x: Tensor, axis?: number | readonly number[]): Tensor {
  const axes = axis === undefined
    ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
    : normAxes("squeeze", axis, x.rank);
  for (const a of axes) {
    if (x.shape[a] !== 1) {
      throw new RangeError(`squeeze: axis ${a} of ${fmt(x.shape)} has size ${x.shape[a]}, not 1`);
    }
  }
  return reshape(x, x.shape.filter((_, i) => !axes.includes(i)));
}

const broadcastPrim = definePrimitive<readonly number[]>({
  name: "broadcastTo",
  saves: { inputs: [], outputs: [] },
  forward: ([x], shape) => [runElementwise("copy", [x], shape, x.dtype, "broadcastTo")],
  // The walker sums the cotangent down to the input's shape.
  vjp: ([g]) => [g],
});

/**
 * Broadcasts to a shape by NumPy rules (a copy).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { broadcastTo, tensor } from "@longseq/tensor";
 * assert.deepEqual(await broadcastTo(tensor([1, 2]), [3, 2]).array(), [[1, 2], [1, 2], [1, 2]]);
 * ```
 */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  checkShape("broadcastTo", shape);
  const out = broadcastShapes("broadcastTo", x.shape, shape);
  if (fmt(out) !== fmt(shape)) {
    throw new RangeError(`broadcastTo: cannot broadcast ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  return bind1(broadcastPrim, [x], [...shape]);
}
