/**
 * Token embeddings: a learned table read by integer ids.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { mul } from "../../ops/binary.ts";
import { take } from "../../ops/indexing.ts";
import * as random from "../../ops/random.ts";
import type { Layer } from "../layer.ts";
import { checkNonNegative, checkParam, checkPositiveInt } from "../validate.ts";

/** Options of {@linkcode embedding}. */
export interface EmbeddingOptions {
  /** Number of ids (rows of the table). */
  vocab: number;
  /** Size of each embedding vector. */
  dim: number;
  /** Standard deviation of the table at init (default 1, as trax's `Embedding`). */
  initStd?: number;
}

/** Params of {@linkcode embedding}: `table: [vocab, dim]`. */
export interface EmbeddingParams {
  /** The table, `[vocab, dim]`. */
  table: Tensor;
  /** Params are plain objects (pytrees), indexable by key. */
  [k: string]: Tensor;
}

/**
 * An embedding lookup: `y[..., :] = table[ids[...], :]`, a gather with `take` whose gradient
 * is a deterministic scatter-add into the table (repeated ids accumulate).
 *
 * Shapes: `ids: [...]` (i32 or u32) to `y: [..., dim]`; params `table: [vocab, dim]`, init
 * `N(0, initStd^2)`. Ids are not range-checked on the host (that would need a device
 * readback): out-of-range ids read the nearest edge row, as `take` documents.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random, tensor } from "@longseq/tensor";
 * const emb = nn.embedding({ vocab: 10, dim: 4 });
 * const params = emb.init(random.key(0));
 * const y = emb.apply(params, tensor(new Int32Array([1, 2, 3]), { shape: [1, 3] }));
 * assert.deepEqual(y.shape, [1, 3, 4]);
 * assert.deepEqual((await y.array() as number[][][])[0][0], (await params.table.array() as number[][])[1]);
 * ```
 */
export function embedding(options: EmbeddingOptions): Layer<EmbeddingParams> {
  const { vocab, dim, initStd = 1 } = options ?? {};
  checkPositiveInt("embedding", "vocab", vocab);
  checkPositiveInt("embedding", "dim", dim);
  checkNonNegative("embedding", "initStd", initStd);
  return {
    init(key) {
      using n = random.normal(key, [vocab, dim]);
      return { table: mul(n, initStd) };
    },
    apply(params, ids) {
      if (!(ids instanceof Tensor)) {
        throw new TypeError(`embedding: ids must be an i32 or u32 Tensor, got ${typeof ids}`);
      }
      if (ids.dtype !== "i32" && ids.dtype !== "u32") {
        throw new TypeError(
          `embedding: ids must be i32 or u32, got ${ids.dtype}${fmt(ids.shape)}; cast them`,
        );
      }
      checkParam("embedding", "table", params?.table, [vocab, dim]);
      return take(params.table, ids, 0);
    },
  };
}
