/**
 * The Reformer language model (Kitaev et al. 2020, arXiv:2001.04451;
 * docs/algorithms.md#reversible-residual-layers): token embedding plus axial positions, duplicated
 * into two halves, a stack of reversible blocks (LSH, local or full shared-QK attention and
 * chunked feed-forward), the halves concatenated and layer-normed, and a vocabulary projection
 * whose loss is computed slice by slice.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { concat } from "../../ops/slicing.ts";
import * as random from "../../ops/random.ts";
import type { ApplyOptions } from "../layer.ts";
import {
  type AttentionOverride,
  attentionTypes,
  type ReformerAttention,
  type ReformerBlockParams,
  reversibleBlocks,
  type ReversibleBlocksConfig,
} from "./reversible_blocks.ts";
import {
  embeddingAndHead,
  type LanguageModelConfig,
  languageModelMethods,
  type LanguageModelParams,
  type LmLossOptions,
} from "./language_model.ts";
import { checkDropoutRate, checkPositiveInt } from "../validate.ts";
import { boolMask } from "../attention/core.ts";
import { padAxis, takeFirst } from "../attention/chunks.ts";
import { full } from "../../ops/creation.ts";

/** Configuration of {@linkcode reformerLM}. */
export interface ReformerLMConfig
  extends Omit<ReversibleBlocksConfig, "causal">, Omit<LanguageModelConfig, "dModel"> {
  /** Decoder (causal) attention; default true (a language model). */
  causal?: boolean;
  /**
   * Pad an input longer than the shortest chunk length (of the attention types present) to a
   * multiple of this length before the layers (the padding masked, the output cut back), as
   * HuggingFace's Reformer pads to the least common multiple of its chunk lengths. Default 1:
   * each attention layer pads only to its own chunk length.
   */
  padMultiple?: number;
}

/** The length `apply` runs the layers at for an input of `n` (see `padMultiple`). */
export function paddedLength(config: ReformerLMConfig, n: number): number {
  const m = config.padMultiple ?? 1;
  if (m <= 1 || n % m === 0) return n;
  const types = attentionTypes("reformerLM", config.attention, config.layers);
  const chunk = config.chunkLen ?? 64;
  const lens = types.map((t) =>
    t === "lsh" ? chunk : t === "local" ? config.localChunkLen ?? chunk : Infinity
  );
  return n > Math.min(...lens) ? Math.ceil(n / m) * m : n;
}

/** Params of {@linkcode reformerLM}. */
export interface ReformerLMParams extends LanguageModelParams {
  /** One reversible block per layer. */
  blocks: ReformerBlockParams[];
}

/** Options of the model's `apply`. */
export interface ReformerApplyOptions extends ApplyOptions {
  /** Padding mask `[batch, len]`: true (or non-zero) marks real tokens. */
  mask?: Tensor;
  /** Evaluate the shared-QK layers with another attention (full or LSH). */
  attentionOverride?: AttentionOverride;
  /**
   * Explicit LSH rotations per layer (`[heads, dHead, nHashes, rotSize/2]`, HF's layout;
   * undefined entries and non-LSH layers hash as usual). Without them, layer `i` draws its
   * rotations from the call's key, or from seed `hashSeed + i` when no key is given.
   */
  rotations?: readonly (Tensor | undefined)[];
}

/** Options of the model's `loss`. */
export interface ReformerLossOptions extends ReformerApplyOptions, LmLossOptions {}

/** A language model: `init`, `apply` (logits) and `loss`. */
export interface LanguageModel<P, O extends ApplyOptions, L extends O> {
  /** The longest sequence `apply` and `loss` accept. */
  readonly maxLen: number;
  /** Fresh params from a PRNG key. */
  init(key: Tensor): P;
  /** Logits `[batch, len, vocab]` for i32 tokens `[batch, len]`, any `len <= maxLen`. */
  apply(params: P, tokens: Tensor, opts?: O): Tensor;
  /**
   * The model from the embedded input on: `x [batch, len, dModel]` (token embedding plus
   * positions) to logits. For continuous inputs, and for gradients with respect to inputs.
   */
  applyEmbedded(params: P, x: Tensor, opts?: O): Tensor;
  /**
   * Mean (or summed) cross-entropy of `targets [batch, len]` given `tokens`, a scalar; the
   * head and loss run over `lmHeadChunks` slices, so `[len, vocab]` logits never exist at once.
   */
  loss(params: P, tokens: Tensor, targets: Tensor, opts?: L): Tensor;
}

/**
 * The Reformer language model. `config.attention` picks each layer's attention (`"lsh"`,
 * `"local"` or `"full"` shared-QK; default `"lsh"`); `reversible: false` runs the same model
 * with stored activations. Any length from 1 to `maxLen` works (attention layers pad
 * internally); `opts.mask` marks padding. `opts.attentionOverride` evaluates a model trained
 * with LSH using full attention, or one trained with full attention using LSH with any
 * number of hashes (the paper's Table 2): both use the same params.
 *
 * Params: `{ embed, pos, blocks, norm, head }`; the final norm is over `2 * dModel`.
 *
 * Shapes: `apply(params, tokens [batch, len] i32)` gives logits `[batch, len, vocab]`;
 * `loss(params, tokens [batch, len], targets [batch, len])` a scalar `[]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random, tensor } from "@longseq/tensor";
 * const model = nn.reformerLM({
 *   vocab: 16, dModel: 8, dFF: 16, heads: 2, layers: 2, nHashes: 2, chunkLen: 4,
 *   axialShape: [4, 8],
 * });
 * const params = model.init(random.key(0));
 * const tokens = tensor([[1, 2, 3, 4, 5, 6, 7]], { dtype: "i32" });
 * const logits = model.apply(params, tokens);
 * const targets = tensor([[2, 3, 4, 5, 6, 7, 8]], { dtype: "i32" });
 * const loss = model.loss(params, tokens, targets);
 * assert.deepEqual(logits.shape, [1, 7, 16]);
 * assert.deepEqual(loss.shape, []);
 * assert.ok(Math.abs(await loss.array() as number - Math.log(16)) < 1); // near chance at init
 * ```
 */
export function reformerLM(
  config: ReformerLMConfig,
): LanguageModel<ReformerLMParams, ReformerApplyOptions, ReformerLossOptions> & {
  readonly types: readonly ReformerAttention[];
} {
  const op = "reformerLM";
  if (config === null || typeof config !== "object") {
    throw new TypeError(`${op}: config must be an object`);
  }
  const dropRate = config.dropout ?? 0;
  checkDropoutRate(op, dropRate);
  const frame = embeddingAndHead(op, config, 2 * config.dModel);
  const padMultiple = config.padMultiple ?? 1;
  checkPositiveInt(op, "padMultiple", padMultiple);
  const stack = reversibleBlocks({ ...config, causal: config.causal ?? true });

  const hidden = (p: ReformerLMParams, x: Tensor, opts: ReformerApplyOptions, key?: Tensor) => {
    if (!(x instanceof Tensor) || x.rank !== 3 || x.shape[2] !== config.dModel) {
      throw new RangeError(
        `${op}: the embedded input must be [batch, len, ${config.dModel}], got ${
          x instanceof Tensor ? fmt(x.shape) : typeof x
        }`,
      );
    }
    const [b, n] = x.shape;
    const lp = paddedLength(config, n);
    let mask = opts.mask;
    if (lp > n) {
      if (mask !== undefined && !(mask instanceof Tensor && fmt(mask.shape) === fmt([b, n]))) {
        throw new RangeError(`${op}: opts.mask must be [batch, len] = ${fmt([b, n])}`);
      }
      const real = mask ? boolMask(mask) : full([b, n], true, { device: x.device });
      mask = padAxis(real, 1, lp, 0);
      x = padAxis(x, 1, lp);
    }
    // The stack adds onto the halves it gets, so both start as the embedding itself.
    const [y1, y2] = stack.apply(p.blocks, [x, x], {
      key,
      training: opts.training,
      mask,
      attentionOverride: opts.attentionOverride,
      rotations: opts.rotations,
    });
    return takeFirst(concat([y1, y2], -1), 1, n);
  };
  const methods = languageModelMethods<ReformerLMParams, ReformerApplyOptions, ReformerLossOptions>(
    op,
    frame,
    dropRate,
    hidden,
  );

  return {
    maxLen: frame.maxLen,
    types: stack.types,
    init(key) {
      const [k1, k2] = random.splitN(key, 2);
      try {
        return { ...frame.init(k1), blocks: stack.init(k2) };
      } finally {
        k1.dispose();
        k2.dispose();
      }
    },
    ...methods,
  };
}
