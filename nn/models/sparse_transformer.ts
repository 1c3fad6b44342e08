/**
 * The Sparse Transformer language model (Child et al. 2019 §4.3 and §5;
 * docs/algorithms.md#sparse-transformer-patterns): pre-activation residual blocks `x +
 * attn(LN(x))`, `x + ffn(LN(x))` with factorised (strided or fixed) block-sparse attention,
 * residual output projections scaled by `1/sqrt(2N)` at init, and every block recomputed in the
 * backward pass (`remat`) instead of stored.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { scope } from "../../ops/scope.ts";
import { add, mul } from "../../ops/binary.ts";
import * as random from "../../ops/random.ts";
import { remat } from "../../autodiff/custom.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import type { AttentionParams } from "../attention/core.ts";
import { sparseAttention, type SparseAttentionConfig } from "../attention/sparse.ts";
import { layerNorm, type LayerNormParams } from "../layers/layer_norm.ts";
import { feedForward, type FeedForwardParams } from "../layers/feed_forward.ts";
import { chunked } from "../layers/chunked.ts";
import { applyDropout } from "../layers/dropout.ts";
import {
  embeddingAndHead,
  type LanguageModelConfig,
  languageModelMethods,
  type LanguageModelParams,
} from "./language_model.ts";
import type { LanguageModel, ReformerApplyOptions, ReformerLossOptions } from "./reformer.ts";
import { checkDropoutRate, checkPositiveInt } from "../validate.ts";

/** Configuration of {@linkcode sparseTransformerLM}. */
export interface SparseTransformerLMConfig extends LanguageModelConfig {
  /** Hidden width of the feed-forward blocks. */
  dFF: number;
  /** Attention heads. */
  heads: number;
  /** Width of one head (default `dModel / heads`). */
  dHead?: number;
  /** Number of residual blocks `N` (each: attention then feed-forward). */
  layers: number;
  /** `"strided"` (images, periodic data) or `"fixed"` (text). */
  pattern: "strided" | "fixed";
  /** The stride `l`, about `sqrt(len)`. */
  stride: number;
  /** Summary positions per block of the fixed pattern (see `sparseAttention`). */
  c?: number;
  /**
   * `"alternate"` (default): block `i` uses component `i mod 2`; `"merged"`: every head attends
   * to the union of both; `"split"`: half the heads use each component.
   */
  mode?: "alternate" | "merged" | "split";
  /** Tile side of the block-sparse computation (see `sparseAttention`). */
  blockSize?: number;
  /** Attention implementation (default `"blockSparse"`). */
  impl?: SparseAttentionConfig["impl"];
  /** Dropout on the residual branches, the embedding and the feed-forward hidden layer. */
  dropout?: number;
  /** Dropout on the attention probabilities (default: `dropout`). */
  attentionDropout?: number;
  /** Slices the feed-forward runs over, one after another (default 1). */
  ffChunks?: number;
  /** Feed-forward activation (default `"gelu"`). */
  activation?: "gelu" | "relu";
  /** Recompute each block in the backward pass instead of storing it (default true). */
  checkpoint?: boolean;
}

/** Params of one residual block. */
export interface SparseBlockParams {
  /** Layer norm before attention. */
  attnNorm: LayerNormParams;
  /** Attention projections `{ wq, wk, wv, wo }`. */
  attn: AttentionParams;
  /** Layer norm before the feed-forward. */
  ffNorm: LayerNormParams;
  /** Feed-forward `dModel -> dFF -> dModel`. */
  ff: FeedForwardParams;
}

/** Params of {@linkcode sparseTransformerLM}. */
export interface SparseTransformerLMParams extends LanguageModelParams {
  /** One residual block per layer. */
  blocks: SparseBlockParams[];
}

/** Options of the model's `apply` (`attentionOverride` is not used). */
export type SparseApplyOptions = Omit<ReformerApplyOptions, "attentionOverride">;

/** Options of the model's `loss`. */
export type SparseLossOptions = Omit<ReformerLossOptions, "attentionOverride">;

interface BlockOpts {
  key?: Tensor;
  mask?: Tensor;
  training: boolean;
}

/**
 * The Sparse Transformer language model: token embedding plus axial positions, `layers`
 * pre-activation residual blocks (`h + attn(LN(h))`, then `h + ffn(LN(h))`) with causal
 * factorised sparse attention, a final layer norm and a vocabulary projection. The output
 * projections of attention and feed-forward (`wo`, `ff.out.w`) are scaled by `1/sqrt(2N)` at
 * init. With `checkpoint` (default) each block keeps only its input during the forward pass
 * and is re-run in the backward pass, dropout masks replayed from their keys.
 *
 * Shapes: tokens `[batch, len]` i32 for any `len` from 1 to `maxLen`; `opts.mask [batch, len]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random, tensor } from "@longseq/tensor";
 * const model = nn.sparseTransformerLM({
 *   vocab: 16, dModel: 8, dFF: 16, heads: 2, layers: 2, pattern: "fixed", stride: 4, c: 1,
 *   maxLen: 32,
 * });
 * const params = model.init(random.key(0));
 * const tokens = tensor([[1, 2, 3, 4, 5, 6, 7]], { dtype: "i32" });
 * const logits = model.apply(params, tokens);
 * assert.deepEqual(logits.shape, [1, 7, 16]);
 * ```
 */
export function sparseTransformerLM(
  config: SparseTransformerLMConfig,
): LanguageModel<SparseTransformerLMParams, SparseApplyOptions, SparseLossOptions> {
  const op = "sparseTransformerLM";
  if (config === null || typeof config !== "object") {
    throw new TypeError(`${op}: config must be an object`);
  }
  const { dModel, dFF, heads, layers } = config;
  checkPositiveInt(op, "layers", layers);
  checkPositiveInt(op, "dFF", dFF);
  const dropRate = config.dropout ?? 0;
  checkDropoutRate(op, dropRate);
  const attnRate = config.attentionDropout ?? dropRate;
  checkDropoutRate(op, attnRate);
  const ffChunks = config.ffChunks ?? 1;
  checkPositiveInt(op, "ffChunks", ffChunks);
  const frame = embeddingAndHead(op, config, dModel);
  const mode = config.mode ?? "alternate";
  const attns = Array.from({ length: layers }, (_, i) =>
    sparseAttention({
      dModel,
      heads,
      dHead: config.dHead,
      pattern: config.pattern,
      stride: config.stride,
      c: config.c,
      mode,
      component: mode === "alternate" ? (i % 2 as 0 | 1) : undefined,
      blockSize: config.blockSize,
      impl: config.impl,
      dropout: attnRate,
    }));
  const norm = layerNorm({ dim: dModel });
  const ff = feedForward({ dModel, dFF, activation: config.activation, dropout: dropRate });
  const residualScale = 1 / Math.sqrt(2 * layers);

  const ffSlice = (
    p: { norm: LayerNormParams; ff: FeedForwardParams },
    x: Tensor,
    o?: ApplyOptions,
  ) =>
    scope(() => {
      const [kf, kd] = o?.key ? random.splitN(o.key, 2) : [undefined, undefined];
      const y = ff.apply(p.ff, norm.apply(p.norm, x), { key: kf, training: o?.training });
      return applyDropout(y, dropRate, { key: kd, training: o?.training });
    });
  const ffBranch = ffChunks > 1 ? chunked(ffSlice, { chunks: ffChunks }, 1) : ffSlice;

  const blockFns = attns.map((attn: Layer<AttentionParams, Tensor, Tensor, BlockOpts>) => {
    const block = (p: SparseBlockParams, h: Tensor, o: BlockOpts) =>
      scope(() => {
        const [ka, kd, kf] = o.key ? random.splitN(o.key, 3) : [];
        const a = attn.apply(p.attn, norm.apply(p.attnNorm, h), {
          key: ka,
          training: o.training,
          mask: o.mask,
        });
        const h1 = add(h, applyDropout(a, dropRate, { key: kd, training: o.training }));
        const f = ffBranch({ norm: p.ffNorm, ff: p.ff }, h1, { key: kf, training: o.training });
        return add(h1, f);
      });
    return config.checkpoint ?? true ? remat(block) : block;
  });

  const hidden = (
    p: SparseTransformerLMParams,
    x: Tensor,
    opts: SparseApplyOptions,
    key?: Tensor,
  ) => {
    if (!(x instanceof Tensor) || x.rank !== 3 || x.shape[2] !== dModel) {
      throw new RangeError(
        `${op}: the embedded input must be [batch, len, ${dModel}], got ${
          x instanceof Tensor ? fmt(x.shape) : typeof x
        }`,
      );
    }
    if (!Array.isArray(p?.blocks) || p.blocks.length !== layers) {
      throw new TypeError(`${op}: params.blocks must hold ${layers} blocks`);
    }
    if (opts.training && (dropRate > 0 || attnRate > 0) && !key) {
      throw new TypeError(`${op}: training with dropout needs a PRNG key (opts.key)`);
    }
    const keys = key ? random.splitN(key, layers) : [];
    let h = x;
    blockFns.forEach((f, i) => {
      h = f(p.blocks[i], h, { key: keys[i], mask: opts.mask, training: !!opts.training });
    });
    return h;
  };
  const methods = languageModelMethods<
    SparseTransformerLMParams,
    SparseApplyOptions,
    SparseLossOptions
  >(
    op,
    frame,
    dropRate,
    hidden,
  );

  return {
    maxLen: frame.maxLen,
    init(key) {
      const keys = random.splitN(key, 2 * layers + 1);
      try {
        return scope(() => ({
          ...frame.init(keys[2 * layers]),
          blocks: attns.map((attn, i) => {
            const a = attn.init(keys[2 * i]);
            const f = ff.init(keys[2 * i + 1]);
            return {
              attnNorm: norm.init(key),
              attn: { ...a, wo: mul(a.wo, residualScale) },
              ffNorm: norm.init(key),
              ff: { in: f.in, out: { ...f.out, w: mul(f.out.w, residualScale) } },
            };
          }),
        }));
      } finally {
        for (const k of keys) k.dispose();
      }
    },
    ...methods,
  };
}
