/**
 * Full multi-head attention with causal and padding masks and optional shared-QK
 * (docs/algorithms.md#shared-qk and #masks): the `O(len^2)` reference the efficient layers are
 * measured against.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { reshape } from "../../ops/shape.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import {
  type AttentionParams,
  boolMask,
  checkDropout,
  headConfig,
  type MaskOption,
} from "./core.ts";
import { i32Tensor } from "./chunks.ts";
import { chunkAttention } from "./chunk_attention.ts";
import { attentionFrame } from "./frame.ts";

/** Configuration of {@linkcode attention}. */
export interface AttentionConfig {
  /** Model width: the last axis of the input and output. */
  dModel: number;
  /** Number of heads. */
  heads: number;
  /** Width of one head (default `dModel / heads`). */
  dHead?: number;
  /**
   * One projection for queries and keys, keys normalised to unit length, and a query's logit
   * against its own position replaced by `-1e5` (the Reformer's shared-QK attention).
   */
  sharedQK?: boolean;
  /** Each position attends only to itself and earlier positions. */
  causal?: boolean;
  /** Dropout rate on the attention probabilities (used when `opts.training`; needs `opts.key`). */
  dropout?: number;
}

/** Options of the attention layers' `apply`: PRNG key, training flag and padding mask. */
export interface AttentionApplyOptions extends ApplyOptions, MaskOption {}

/**
 * Full multi-head self-attention. Params are `{ wq, wk, wv, wo }` (`{ wqk, wv, wo }` with
 * `sharedQK`), no biases. Masked logits are replaced (not offset) by `maskValues(dtype)`:
 * `-1e9` for causal and padding masks, `-1e5` for the shared-QK self mask. A row whose keys
 * are all masked attends uniformly (finite, never NaN).
 *
 * Shapes: `x [batch, len, dModel]` to `[batch, len, dModel]`; `opts.mask [batch, len]` (true =
 * real token). Memory and time `O(batch * heads * len^2)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const layer = nn.attention({ dModel: 8, heads: 2, causal: true });
 * const params = layer.init(random.key(0));
 * const y = layer.apply(params, ones([1, 5, 8]));
 * assert.deepEqual(y.shape, [1, 5, 8]);
 * ```
 */
export function attention(
  config: AttentionConfig,
): Layer<AttentionParams, Tensor, Tensor, AttentionApplyOptions> {
  const op = "attention";
  const hc = headConfig(op, config, !!config.sharedQK);
  const causal = !!config.causal;
  const rate = checkDropout(op, config.dropout);
  const frame = attentionFrame<AttentionApplyOptions>(op, hc, rate, {
    attend({ q, k, v }, { x, b, n, opts, dropout }) {
      const pos = i32Tensor(Array.from({ length: n }, (_, i) => i), [n], x.device);
      const kvalid = opts.mask ? reshape(boolMask(opts.mask), [b, 1, n]) : null;
      return chunkAttention(q, k!, v, {
        qpos: pos,
        kpos: pos,
        kvalid,
        causal,
        selfMask: hc.sharedQK,
        dropout,
      }).o;
    },
  });
  return { init: frame.init, apply: (params, x, opts) => frame.run(params, x, opts).out };
}
