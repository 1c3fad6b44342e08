/**
 * Triangular masks and parts: `tri` (the mask, as `jnp.tri`), `tril` and `triu`. The mask is
 * built on the device from two `arange` vectors (no `n * m` upload); `tril` and `triu` are a
 * `where` over it, so their gradient passes through the kept elements.
 * @module
 */
import { checkTensor } from "./validate.ts";
import type { DType } from "../kernels/dtype.ts";
import type { DeviceName } from "../kernels/device.ts";
import { fmt, type Tensor } from "./tensor.ts";
import { add, cast } from "./binary.ts";
import { lessEqual, where } from "./compare.ts";
import { arange, type CreateOptions, full } from "./creation.ts";
import { reshape } from "./shape.ts";

import { scope } from "./scope.ts";

function checkK(op: string, k: number) {
  if (!Number.isInteger(k)) {
    throw new TypeError(`${op}: diagonal offset k must be an integer, got ${k}`);
  }
}

/** The bool `[n, m]` mask `j <= i + k` on `device`. */
function lowerMask(n: number, m: number, k: number, device?: DeviceName): Tensor {
  return scope(() => {
    const rows = reshape(arange(n, undefined, 1, { device }), [n, 1]);
    const cols = reshape(arange(m, undefined, 1, { device }), [1, m]);
    return lessEqual(cols, add(rows, k));
  });
}

/**
 * The `[n, m]` lower-triangular mask: 1 where `j <= i + k` (on and below diagonal `k`; `k > 0`
 * is above the main diagonal), else 0, of `options.dtype` (default f32), as `jnp.tri`. With
 * `dtype: "bool"` it is a ready attention mask: `tri(L, L, 0, { dtype: "bool" })` is causal.
 *
 * Shapes: `[n, m]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tri } from "@longseq/tensor";
 * assert.deepEqual(await tri(2, 3).array(), [[1, 0, 0], [1, 1, 0]]);
 * assert.deepEqual(await tri(2, 2, -1, { dtype: "bool" }).array(), [[false, false], [true, false]]);
 * ```
 */
export function tri(n: number, m: number = n, k = 0, options: CreateOptions = {}): Tensor {
  for (const [name, v] of [["n", n], ["m", m]] as const) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(`tri: ${name} must be a non-negative integer, got ${v}`);
    }
  }
  checkK("tri", k);
  const dtype: DType = options.dtype ?? "f32";
  return scope(() => {
    const mask = lowerMask(n, m, k, options.device);
    return dtype === "bool" ? mask : cast(mask, dtype);
  });
}

function triPart(op: "tril" | "triu", x: Tensor, k: number): Tensor {
  checkTensor(op, "x", x);
  checkK(op, k);
  if (x.rank < 2) {
    throw new RangeError(
      `${op}: needs at least 2 axes (the matrix is the last two), got ${fmt(x.shape)}`,
    );
  }
  const [n, m] = x.shape.slice(-2);
  return scope(() => {
    const zero = full([], 0, { dtype: x.dtype, device: x.device });
    // tril keeps j <= i + k; triu keeps j >= i + k, the complement of j <= i + k - 1.
    return op === "tril"
      ? where(lowerMask(n, m, k, x.device), x, zero)
      : where(lowerMask(n, m, k - 1, x.device), zero, x);
  });
}

/**
 * The lower triangle of the last two axes: elements with `j <= i + k` kept, others 0
 * (`jnp.tril`). Batched over leading axes; any dtype.
 *
 * Shapes: `x [..., n, m]` to `[..., n, m]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, tril } from "@longseq/tensor";
 * const x = tensor([[1, 2, 3], [4, 5, 6]]);
 * assert.deepEqual(await tril(x).array(), [[1, 0, 0], [4, 5, 0]]);
 * assert.deepEqual(await tril(x, 1).array(), [[1, 2, 0], [4, 5, 6]]);
 * ```
 */
export function tril(x: Tensor, k = 0): Tensor {
  return triPart("tril", x, k);
}

/**
 * The upper triangle of the last two axes: elements with `j >= i + k` kept, others 0
 * (`jnp.triu`). Batched over leading axes; any dtype.
 *
 * Shapes: `x [..., n, m]` to `[..., n, m]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, triu } from "@longseq/tensor";
 * const x = tensor([[1, 2, 3], [4, 5, 6]]);
 * assert.deepEqual(await triu(x).array(), [[1, 2, 3], [0, 5, 6]]);
 * assert.deepEqual(await triu(x, -1).array(), [[1, 2, 3], [4, 5, 6]]);
 * ```
 */
export function triu(x: Tensor, k = 0): Tensor {
  return triPart("triu", x, k);
}
