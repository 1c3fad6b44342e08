/**
 * The parts the language models share around their layer stacks: token embedding plus axial
 * positions at the input, and a final layer norm, vocabulary projection and chunked loss at
 * the output (the `[len, vocab]` logits are never materialised by the loss).
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { add, cast } from "../../ops/binary.ts";
import { mapTree } from "../../autodiff/pytree.ts";
import { scope } from "../../ops/scope.ts";
import * as random from "../../ops/random.ts";
import { embedding, type EmbeddingParams } from "../layers/embedding.ts";
import { axialPositions, type AxialPositionsParams } from "../layers/axial_positions.ts";
import { layerNorm, type LayerNormParams } from "../layers/layer_norm.ts";
import { linear, type LinearParams } from "../layers/linear.ts";
import { applyDropout } from "../layers/dropout.ts";
import { chunkedLmLoss } from "../losses.ts";
import type { ApplyOptions } from "../layer.ts";
import { childKeys } from "../layers/combinators.ts";
import { checkPositiveInt } from "../validate.ts";

/** Input and output settings shared by the language models. */
export interface LanguageModelConfig {
  /** Vocabulary size. */
  vocab: number;
  /** Width of the embedding. */
  dModel: number;
  /** Longest sequence (default: the product of `axialShape`). */
  maxLen?: number;
  /** Axial position shape `[n1, n2, ...]` (default `[maxLen]`: one learned table). */
  axialShape?: readonly number[];
  /** Axial embedding widths, summing to `dModel` (default: `dModel` split evenly). */
  axialDims?: readonly number[];
  /** Slices of the sequence the LM head and loss run over, one at a time (default 1). */
  lmHeadChunks?: number;
  /** Epsilon of the final layer norm (default `1e-6`). */
  layerNormEps?: number;
  /**
   * `"f16"`: mixed precision as the Sparse Transformer trains (Child et al. 2019, after
   * Micikevicius et al. 2018). Params stay f32 (the master copy the optimizer updates); each
   * call casts the layer stack's params and its input to f16, so activations and matmul inputs
   * are f16, attention uses the f16 mask constants (`-1e4`, `-1e3`) with its softmax statistics
   * in f32, and the embedding, final norm, head and loss stay f32. Pair it with
   * `optim.dynamicLossScale`. Needs a backend with f16 (WebGPU's `shader-f16`, or the CPU).
   * Default `"f32"`.
   */
  precision?: Precision;
}

/** The dtype a language model's layer stack computes in: see {@linkcode LanguageModelConfig}. */
export type Precision = "f32" | "f16";

/** Params of the shared input and output layers. */
export interface LanguageModelParams {
  /** Token embedding `[vocab, dModel]`. */
  embed: EmbeddingParams;
  /** Axial position tables. */
  pos: AxialPositionsParams;
  /** Final layer norm. */
  norm: LayerNormParams;
  /** Output projection `{ w: [dOut, vocab], b: [vocab] }`. */
  head: LinearParams;
}

/** @deprecated Renamed {@linkcode LanguageModelConfig}; this alias goes in the next release. */
export type LmFrameConfig = LanguageModelConfig;
/** @deprecated Renamed {@linkcode LanguageModelParams}; this alias goes in the next release. */
export type LmFrameParams = LanguageModelParams;

/** Options of a language model's `loss`. */
export interface LmLossOptions {
  /** Which target positions count `[batch, len]` (default: `opts.mask`, else all). */
  lossMask?: Tensor;
  /** `"mean"` (default) or `"sum"` over the counted positions. */
  reduction?: "mean" | "sum";
}

/** The input and output layers built by {@linkcode embeddingAndHead}. */
export interface EmbeddingAndHead {
  /** The longest sequence accepted. */
  readonly maxLen: number;
  /** The layer stack's precision. */
  readonly precision: Precision;
  /** Fresh params (embedding, positions, final norm, head) from a PRNG key. */
  init(key: Tensor): LanguageModelParams;
  /** Validates `[batch, len]` integer ids; returns `[batch, len]`. */
  checkTokens(x: unknown, what: string): [number, number];
  /** Token embedding plus positions, with dropout when training: `[b, len, dModel]`. */
  embed(
    p: LanguageModelParams,
    tokens: Tensor,
    rate: number,
    key?: Tensor,
    training?: boolean,
  ): Tensor;
  /** Final norm and projection: `[b, len, dOut]` to logits `[b, len, vocab]`. */
  logits(p: LanguageModelParams, hidden: Tensor): Tensor;
  /** Final norm, then the chunked head and cross-entropy. */
  loss(
    p: LanguageModelParams,
    hidden: Tensor,
    targets: Tensor,
    mask?: Tensor,
    o?: LmLossOptions,
  ): Tensor;
}

/** Builds the shared input and output layers; `dOut` is the width of the stack's output. */
export function embeddingAndHead(
  op: string,
  c: LanguageModelConfig,
  dOut: number,
): EmbeddingAndHead {
  const { vocab, dModel } = c;
  checkPositiveInt(op, "vocab", vocab);
  checkPositiveInt(op, "dModel", dModel);
  if (c.maxLen === undefined && c.axialShape === undefined) {
    throw new TypeError(`${op}: give maxLen or axialShape (the longest sequence)`);
  }
  const shape = c.axialShape ? [...c.axialShape] : [c.maxLen!];
  shape.forEach((n, k) => checkPositiveInt(op, `axialShape[${k}]`, n));
  const capacity = shape.reduce((a, b) => a * b, 1);
  const maxLen = c.maxLen ?? capacity;
  checkPositiveInt(op, "maxLen", maxLen);
  if (maxLen > capacity) {
    throw new RangeError(
      `${op}: maxLen ${maxLen} exceeds the ${capacity} positions of axialShape ${fmt(shape)}`,
    );
  }
  const dims = c.axialDims
    ? [...c.axialDims]
    : shape.map((_, k) =>
      Math.floor(dModel / shape.length) + (k === shape.length - 1 ? dModel % shape.length : 0)
    );
  if (dims.length !== shape.length || dims.reduce((a, b) => a + b, 0) !== dModel) {
    throw new RangeError(
      `${op}: axialDims ${fmt(dims)} must have one entry per axial factor ${fmt(shape)} and ` +
        `sum to dModel ${dModel}`,
    );
  }
  const chunks = c.lmHeadChunks ?? 1;
  checkPositiveInt(op, "lmHeadChunks", chunks);
  const precision = c.precision ?? "f32";
  if (precision !== "f32" && precision !== "f16") {
    throw new RangeError(
      `${op}: precision must be "f32" or "f16", got ${JSON.stringify(precision)}`,
    );
  }
  const emb = embedding({ vocab, dim: dModel });
  const pos = axialPositions({ shape, dims });
  const norm = layerNorm({ dim: dOut, eps: c.layerNormEps });
  const head = linear({ inFeatures: dOut, outFeatures: vocab });

  const checkTokens = (x: unknown, what: string): [number, number] => {
    if (!(x instanceof Tensor) || x.rank !== 2 || (x.dtype !== "i32" && x.dtype !== "u32")) {
      throw new TypeError(
        `${op}: ${what} must be i32 [batch, len], got ${
          x instanceof Tensor ? `${x.dtype}${fmt(x.shape)}` : typeof x
        }`,
      );
    }
    const [b, n] = x.shape;
    if (n < 1 || n > maxLen) {
      throw new RangeError(`${op}: ${what} length ${n} must be from 1 to maxLen ${maxLen}`);
    }
    return [b, n];
  };

  return {
    maxLen,
    precision,
    init(key) {
      const [k1, k2, k3] = random.splitN(key, 3);
      try {
        return {
          embed: emb.init(k1),
          pos: pos.init(k2),
          norm: norm.init(k3),
          head: head.init(k3),
        };
      } finally {
        for (const k of [k1, k2, k3]) k.dispose();
      }
    },
    checkTokens,
    embed(p, tokens, rate, key, training) {
      const [, n] = checkTokens(tokens, "tokens");
      return scope(() => {
        const e = emb.apply(p.embed, tokens);
        const h = add(e, pos.apply(p.pos, n));
        return applyDropout(h, rate, { key, training });
      });
    },
    logits(p, hidden) {
      return scope(() => head.apply(p.head, norm.apply(p.norm, hidden)));
    },
    loss(p, hidden, targets, mask, o = {}) {
      const [b, n] = checkTokens(targets, "targets");
      if (hidden.shape[0] !== b || hidden.shape[1] !== n) {
        throw new RangeError(
          `${op}: targets ${fmt(targets.shape)} must match the tokens [${hidden.shape[0]}, ${
            hidden.shape[1]
          }]`,
        );
      }
      return scope(() =>
        // The norm runs slice by slice inside the chunked head, so its [b, n, d] output
        // is never kept whole for the backward pass.
        chunkedLmLoss(hidden, p.head, targets, {
          before: { params: p.norm, apply: norm.apply },
          chunkSize: Math.ceil(n / chunks),
          mask: o.lossMask ?? mask,
          reduction: o.reduction,
        })
      );
    },
  };
}

/**
 * A language model's `apply`, `applyEmbedded` and `loss` around its layer stack: `hidden` maps
 * the embedded input `[b, len, dModel]` (and the stack's PRNG key) to the stack's output; the
 * embedding and head supply the embedding, the split of `opts.key` and the head.
 */
export function languageModelMethods<
  P extends LanguageModelParams & { blocks: unknown },
  O extends ApplyOptions & { mask?: Tensor },
  L extends O & LmLossOptions,
>(
  op: string,
  frame: EmbeddingAndHead,
  dropRate: number,
  stack: (p: P, x: Tensor, opts: O, key?: Tensor) => Tensor,
): {
  apply(params: P, tokens: Tensor, opts?: O): Tensor;
  applyEmbedded(params: P, x: Tensor, opts?: O): Tensor;
  loss(params: P, tokens: Tensor, targets: Tensor, opts?: L): Tensor;
} {
  // Mixed precision: the stack runs on f16 copies of its params and input (their gradients
  // flow back through the casts to the f32 params) and hands f32 to the norm and head.
  const hidden = frame.precision === "f32" ? stack : (p: P, x: Tensor, opts: O, key?: Tensor) => {
    const blocks = mapTree(
      p.blocks,
      (t) => t instanceof Tensor && t.dtype === "f32" ? cast(t, "f16") : t,
    );
    return cast(stack({ ...p, blocks }, cast(x, "f16"), opts, key), "f32");
  };
  const run = (p: P, tokens: Tensor, opts: O) => {
    // The embedding's and the stack's keys (both undefined without one).
    const [ke, ks] = childKeys(op, opts.key, 2);
    return hidden(p, frame.embed(p, tokens, dropRate, ke, opts.training), opts, ks);
  };
  return {
    apply: (params, tokens, opts = {} as O) =>
      scope(() => frame.logits(params, run(params, tokens, opts))),
    applyEmbedded: (params, x, opts = {} as O) =>
      scope(() => frame.logits(params, hidden(params, x, opts, opts.key))),
    loss: (params, tokens, targets, opts = {} as L) =>
      scope(() => frame.loss(params, run(params, tokens, opts), targets, opts.mask, opts)),
  };
}
