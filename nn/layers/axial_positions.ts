/**
 * Axial positional embeddings (docs/algorithms.md#axial-positional-embeddings): a position's
 * embedding is the concatenation of one row per factor of an axial shape, so `n1 + n2 + ...` rows
 * stand for `n1 * n2 * ...` positions.
 * @module
 */
import { fmt, type Tensor } from "../../ops/tensor.ts";
import { tensor } from "../../ops/creation.ts";
import { take } from "../../ops/indexing.ts";
import { concat } from "../../ops/slicing.ts";
import * as random from "../../ops/random.ts";
import type { Layer } from "../layer.ts";
import { checkParam, checkPositiveInt, showValue } from "../validate.ts";

/** Options of {@linkcode axialPositions}. */
export interface AxialPositionsOptions {
  /** The axial shape `[n1, n2, ...]`: up to `n1 * n2 * ...` positions. */
  shape: readonly number[];
  /** Embedding size per factor `[d1, d2, ...]`; the output has `d1 + d2 + ...` features. */
  dims: readonly number[];
}

/** Params of {@linkcode axialPositions}: one table per factor, `tables[k]: [n_k, d_k]`. */
export interface AxialPositionsParams {
  /** `tables[k]: [shape[k], dims[k]]`, init `N(0, 1)`. */
  tables: Tensor[];
  /** Params are plain objects (pytrees), indexable by key. */
  [k: string]: Tensor[];
}

/**
 * Axial positional embeddings. Position `p`, written in the mixed radix of `shape` as
 * `p = ((i1 * n2 + i2) * n3 + i3) ...` (the last factor varies fastest), gets
 * `concat(tables[0][i1], tables[1][i2], ...)`. `apply(params, len)` evaluates the first `len`
 * positions for any `len` from 1 to `n1 * n2 * ...`, so one model serves every sequence length
 * up to its maximum (not only the full product). Gradients reach the rows that were read.
 *
 * Shapes: params `tables[k]: [n_k, d_k]`; `apply(params, len)` gives `[len, sum(dims)]`, to be
 * added to `[batch, len, sum(dims)]` token embeddings (it broadcasts over the batch).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random } from "@longseq/tensor";
 * const pos = nn.axialPositions({ shape: [4, 8], dims: [3, 5] }); // up to 32 positions, 8 features
 * const params = pos.init(random.key(0));
 * const e = pos.apply(params, 20);
 * assert.deepEqual(e.shape, [20, 8]);
 * assert.deepEqual(params.tables.map((t) => t.shape), [[4, 3], [8, 5]]);
 * ```
 */
export function axialPositions(
  options: AxialPositionsOptions,
): Layer<AxialPositionsParams, number, Tensor> {
  const op = "axialPositions";
  const { shape, dims } = options ?? {};
  if (!Array.isArray(shape) || !Array.isArray(dims) || shape.length === 0) {
    throw new TypeError(`${op}: shape and dims must be non-empty arrays of positive integers`);
  }
  if (shape.length !== dims.length) {
    throw new RangeError(
      `${op}: shape ${fmt(shape)} and dims ${fmt(dims)} must have one entry per factor`,
    );
  }
  shape.forEach((n, k) => checkPositiveInt(op, `shape[${k}]`, n));
  dims.forEach((d, k) => checkPositiveInt(op, `dims[${k}]`, d));
  const maxLen = shape.reduce((a, b) => a * b, 1);
  // strides[k]: how many positions one step of factor k spans.
  const strides = shape.map((_, k) => shape.slice(k + 1).reduce((a, b) => a * b, 1));
  return {
    init(key) {
      const keys = shape.length === 1 ? [key] : random.splitN(key, shape.length);
      try {
        return { tables: shape.map((n, k) => random.normal(keys[k], [n, dims[k]])) };
      } finally {
        if (shape.length > 1) { for (const k of keys) k.dispose(); }
      }
    },
    apply(params, len) {
      if (typeof len !== "number" || !Number.isInteger(len) || len < 1 || len > maxLen) {
        throw new RangeError(
          `${op}: len must be an integer from 1 to ${maxLen} (the product of shape ${
            fmt(shape)
          }), got ${showValue(len)}`,
        );
      }
      const tables = params?.tables;
      if (!Array.isArray(tables) || tables.length !== shape.length) {
        throw new TypeError(`${op}: params.tables must hold ${shape.length} tensors`);
      }
      tables.forEach((t, k) => checkParam(op, `tables[${k}]`, t, [shape[k], dims[k]]));
      const device = tables[0].device;
      const parts = shape.map((n, k) => {
        // The digit of each position for factor k, computed on the host: len small integers.
        const idx = new Int32Array(len);
        for (let p = 0; p < len; p++) idx[p] = Math.floor(p / strides[k]) % n;
        using ids = tensor(idx, { device });
        return take(tables[k], ids, 0);
      });
      if (parts.length === 1) return parts[0];
      try {
        return concat(parts, -1);
      } finally {
        for (const t of parts) t.dispose();
      }
    },
  };
}
