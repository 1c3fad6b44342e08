/**
 * Creation of evenly spaced values (`linspace`), coordinate grids (`meshgrid`) and filled
 * copies of a tensor's shape (`fullLike`).
 * @module
 */
import { checkTensor } from "./validate.ts";
import type { DType } from "../kernels/dtype.ts";
import { dtypeInfo } from "../kernels/dtype.ts";
import type { Tensor } from "./tensor.ts";
import { type CreateOptions, fromTypedArray, full } from "./creation.ts";
import { broadcastTo, reshape } from "./shape.ts";

import { scope } from "./scope.ts";

/** Options of {@linkcode linspace}. */
export interface LinspaceOptions extends CreateOptions {
  /** Include `stop` as the last value (default true). */
  endpoint?: boolean;
}

/**
 * `num` evenly spaced values from `start` to `stop` (NumPy `linspace`): `start + i * step`
 * with `step = (stop - start) / (num - 1)`, or `/ num` without the endpoint. The last value is
 * `stop` exactly when `endpoint`. Computed in float64 on the host, then stored in
 * `options.dtype` (default f32; integer dtypes truncate).
 *
 * Shapes: `[num]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linspace } from "@longseq/tensor";
 * assert.deepEqual(await linspace(0, 1, 5).array(), [0, 0.25, 0.5, 0.75, 1]);
 * assert.deepEqual(await linspace(0, 1, 4, { endpoint: false }).array(), [0, 0.25, 0.5, 0.75]);
 * ```
 */
export function linspace(
  start: number,
  stop: number,
  num = 50,
  options: LinspaceOptions = {},
): Tensor {
  if (!Number.isFinite(start) || !Number.isFinite(stop)) {
    throw new RangeError(`linspace: start and stop must be finite, got ${start} and ${stop}`);
  }
  if (!Number.isInteger(num) || num < 0) {
    throw new RangeError(`linspace: num must be a non-negative integer, got ${num}`);
  }
  const { endpoint = true } = options;
  const dtype: DType = options.dtype ?? "f32";
  const info = dtypeInfo(dtype, "linspace");
  const div = endpoint ? num - 1 : num;
  const step = div > 0 ? (stop - start) / div : 0;
  const arr = info.create(num);
  for (let i = 0; i < num; i++) arr[i] = info.coerce(start + i * step);
  if (endpoint && num > 1) arr[num - 1] = info.coerce(stop);
  return fromTypedArray(arr, [num], dtype, options.device);
}

/**
 * Coordinate grids from 1-D coordinate vectors (NumPy / JAX `meshgrid`). With
 * `indexing: "xy"` (default, Cartesian) the first two output axes are swapped: for `x [n]` and
 * `y [m]` the grids are `[m, n]`; with `"ij"` (matrix indexing) they are `[n, m]`. Inputs of
 * other ranks are flattened. Each grid is a broadcast, so gradients sum back over it.
 *
 * Shapes: `k` inputs of sizes `n0..nk-1` to `k` grids of `[n0, .., nk-1]` (`"ij"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { meshgrid, tensor } from "@longseq/tensor";
 * const [gx, gy] = meshgrid([tensor([1, 2, 3]), tensor([10, 20])]);
 * assert.deepEqual(await gx.array(), [[1, 2, 3], [1, 2, 3]]);
 * assert.deepEqual(await gy.array(), [[10, 10, 10], [20, 20, 20]]);
 * ```
 */
export function meshgrid(
  xs: readonly Tensor[],
  options: { indexing?: "xy" | "ij" } = {},
): Tensor[] {
  const { indexing = "xy" } = options;
  if (indexing !== "xy" && indexing !== "ij") {
    throw new TypeError(`meshgrid: indexing must be "xy" or "ij", got ${JSON.stringify(indexing)}`);
  }
  if (!Array.isArray(xs)) throw new TypeError("meshgrid: expected an array of tensors");
  xs.forEach((x, i) => checkTensor("meshgrid", `input ${i}`, x));
  const sizes = xs.map((x) => x.size);
  const pos = xs.map((_, i) => i);
  if (indexing === "xy" && xs.length >= 2) [pos[0], pos[1]] = [1, 0];
  const out = new Array<number>(xs.length);
  pos.forEach((p, i) => (out[p] = sizes[i]));
  return scope(() =>
    xs.map((x, i) => {
      const shape = out.map((_, d) => (d === pos[i] ? sizes[i] : 1));
      return broadcastTo(reshape(x, shape), out);
    })
  );
}

/**
 * A tensor with the shape (and by default the dtype and device) of `x`, filled with `value`.
 *
 * Shapes: `x [...]` to `[...]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fullLike, tensor } from "@longseq/tensor";
 * const y = fullLike(tensor([[1, 2]]), 7);
 * assert.deepEqual(await y.array(), [[7, 7]]);
 * assert.equal(fullLike(y, true, { dtype: "bool" }).dtype, "bool");
 * ```
 */
export function fullLike(x: Tensor, value: number | boolean, options: CreateOptions = {}): Tensor {
  checkTensor("fullLike", "x", x);
  return full(x.shape, value, {
    dtype: options.dtype ?? x.dtype,
    device: options.device ?? x.device,
  });
}
