/**
 * The Reformer's layer stack (Reformer §3; docs/algorithms.md#reversible-residual-layers):
 * reversible residual blocks whose `F` is attention (LSH, local or full shared-QK) on a
 * layer-normed input and whose `G` is a chunked feed-forward on a layer-normed input. Built on
 * autodiff's `reversibleStack`, so activation memory does not grow with depth; LSH bucket
 * assignments are returned as saved state and replayed in the recomputation, and every dropout
 * mask is replayed from its key.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { scope } from "../../ops/scope.ts";
import { add } from "../../ops/binary.ts";
import * as random from "../../ops/random.ts";
import {
  type Halves,
  type ReversibleStack,
  reversibleStack,
  type RevFn,
  type RevOpts,
  type RevParams,
} from "../../autodiff/reversible.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import { attention } from "../attention/full.ts";
import { localAttention } from "../attention/local.ts";
import { lshAttention, type LshAttentionLayer, type LshSaved } from "../attention/lsh.ts";
import type { BucketSpec } from "../attention/lsh_hash.ts";
import type { AttentionParams } from "../attention/core.ts";
import { layerNorm, type LayerNormParams } from "../layers/layer_norm.ts";
import { feedForward, type FeedForwardParams } from "../layers/feed_forward.ts";
import { chunked } from "../layers/chunked.ts";
import { applyDropout } from "../layers/dropout.ts";
import { checkDropoutRate, checkPositiveInt } from "../validate.ts";

/** The attention of one Reformer layer. `"full"` is full shared-QK attention. */
export type ReformerAttention = "lsh" | "local" | "full";

/**
 * Swaps the attention of the shared-QK layers (`"lsh"` and `"full"`) at evaluation time: a
 * model trained with LSH evaluated with full shared-QK attention (`"full"`), or a model
 * trained with full attention evaluated with LSH (`{ lsh: { nHashes } }`; `"lsh"` keeps the
 * configured LSH settings). The params of the two are the same (`{ wqk, wv, wo }`). Local
 * layers are left as they are.
 */
export type AttentionOverride = "full" | "lsh" | {
  lsh: { nHashes?: number; chunkLen?: number; nBuckets?: BucketSpec };
};

/** Configuration of {@linkcode reversibleBlocks}. */
export interface ReversibleBlocksConfig {
  /** Width of each half of the activation. */
  dModel: number;
  /** Hidden width of the feed-forward blocks. */
  dFF: number;
  /** Attention heads. */
  heads: number;
  /** Width of one head (default `dModel / heads`). */
  dHead?: number;
  /** Number of reversible blocks. */
  layers: number;
  /** Attention type for every layer, or one per layer (default `"lsh"`). */
  attention?: ReformerAttention | readonly ReformerAttention[];
  /** LSH hash rounds (default 1). */
  nHashes?: number;
  /** Chunk length of LSH and local attention (default 64). */
  chunkLen?: number;
  /** LSH buckets per round (default: from each call's length). */
  nBuckets?: BucketSpec;
  /** Decoder (causal) attention. Default false. */
  causal?: boolean;
  /** Dropout on the outputs of `F` and `G` and on the feed-forward hidden layer (default 0). */
  dropout?: number;
  /** Dropout on the attention probabilities (default: `dropout`). */
  attentionDropout?: number;
  /** Slices the feed-forward runs over, one after another (default 1: unchunked). */
  ffChunks?: number;
  /** Feed-forward activation (default `"gelu"`). */
  activation?: "gelu" | "relu";
  /** Local attention shares queries and keys (default false, as trax's `SelfAttention`). */
  localSharedQK?: boolean;
  /**
   * Differentiate by inversion (default true). `false` runs the same math with stored
   * activations: for tests and for comparing memory.
   */
  reversible?: boolean;
  /** Base seed of the LSH rotations when no `opts.key` is given (layer `i` uses `seed + i`). */
  hashSeed?: number;
}

/** Params of `F`: its layer norm and attention projections. */
export interface ReformerAttnParams {
  /** Layer norm of the input half, `[dModel]` each. */
  norm: LayerNormParams;
  /** Attention projections: `{ wqk, wv, wo }` (shared QK) or `{ wq, wk, wv, wo }`. */
  attn: AttentionParams;
}

/** Params of `G`: its layer norm and feed-forward layers. */
export interface ReformerFFParams {
  /** Layer norm of the input half. */
  norm: LayerNormParams;
  /** The feed-forward block `dModel -> dFF -> dModel`. */
  ff: FeedForwardParams;
}

/** Params of one reversible block. */
export type ReformerBlockParams = RevParams<ReformerAttnParams, ReformerFFParams>;

/** Options of {@linkcode reversibleBlocks}'s `apply`. */
export interface ReversibleBlocksOptions extends ApplyOptions {
  /** Padding mask `[batch, len]`: true (or non-zero) marks real tokens. */
  mask?: Tensor;
  /** Evaluate the shared-QK layers with another attention; see {@linkcode AttentionOverride}. */
  attentionOverride?: AttentionOverride;
}

/** The Reformer layer stack. `apply` maps the halves `(x1, x2)` to `(y1, y2)`. */
export interface ReversibleBlocks
  extends Layer<ReformerBlockParams[], Halves, Halves, ReversibleBlocksOptions> {
  /** The attention type of each layer. */
  readonly types: readonly ReformerAttention[];
}

/** Per-call options handed to `F` and `G` (replayed unchanged in the recomputation). */
interface BranchOpts {
  key?: Tensor;
  training?: boolean;
  mask?: Tensor;
}

type AttnImpl =
  | { lsh: LshAttentionLayer }
  | { layer: Layer<AttentionParams, Tensor, Tensor, BranchOpts> };

function rate(op: string, name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  try {
    checkDropoutRate(op, v);
  } catch {
    throw new RangeError(`${op}: ${name} must be a number in [0, 1), got ${String(v)}`);
  }
  return v as number;
}

/** Validates `attention` and expands it to one type per layer. */
export function attentionTypes(
  op: string,
  a: ReformerAttention | readonly ReformerAttention[] | undefined,
  layers: number,
): ReformerAttention[] {
  const ok = (t: unknown) => t === "lsh" || t === "local" || t === "full";
  const list = a === undefined ? ["lsh"] : typeof a === "string" ? [a] : a;
  if (!Array.isArray(list) || list.length === 0 || !list.every(ok)) {
    throw new TypeError(
      `${op}: attention must be "lsh", "local", "full" or an array of them, got ${
        JSON.stringify(a)
      }`,
    );
  }
  if (list.length !== 1 && list.length !== layers) {
    throw new RangeError(
      `${op}: attention lists ${list.length} types for ${layers} layers; give one or ${layers}`,
    );
  }
  return Array.from({ length: layers }, (_, i) => list[list.length === 1 ? 0 : i]);
}

/** Checks an override and names it (the key of the cache of stacks built for it). */
function overrideName(op: string, o: AttentionOverride | undefined): string {
  if (o === undefined) return "";
  if (o === "full" || o === "lsh") return o;
  const l = (o as { lsh?: unknown })?.lsh;
  if (l === null || typeof l !== "object") {
    throw new TypeError(
      `${op}: attentionOverride must be "full", "lsh" or { lsh: { nHashes } }, got ${
        JSON.stringify(o)
      }`,
    );
  }
  return JSON.stringify(l);
}

/**
 * The Reformer layer stack: `layers` reversible blocks `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`
 * with `F = dropout(attention(layerNorm(.)))` and `G = dropout(feedForward(layerNorm(.)))`,
 * `G` run over `ffChunks` slices of the sequence. Differentiated by inversion: the backward
 * pass rebuilds each block's input from its output, replaying the LSH buckets of the forward
 * pass and every dropout mask (all keys derive from `opts.key`).
 *
 * Shapes: each half `[batch, len, dModel]`, any `len >= 1`; `opts.mask [batch, len]`.
 * Params: one `{ f: { norm, attn }, g: { norm, ff } }` per layer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const stack = nn.reversibleBlocks({
 *   dModel: 8, dFF: 16, heads: 2, layers: 2, attention: ["lsh", "local"],
 *   nHashes: 2, chunkLen: 4, causal: true, ffChunks: 2,
 * });
 * const params = stack.init(random.key(0));
 * const [y1, y2] = stack.apply(params, [ones([1, 10, 8]), ones([1, 10, 8])]);
 * assert.deepEqual([y1.shape, y2.shape], [[1, 10, 8], [1, 10, 8]]);
 * ```
 */
export function reversibleBlocks(config: ReversibleBlocksConfig): ReversibleBlocks {
  const op = "reversibleBlocks";
  const { dModel, dFF, heads, dHead, layers } = config ?? {};
  checkPositiveInt(op, "dModel", dModel);
  checkPositiveInt(op, "dFF", dFF);
  checkPositiveInt(op, "layers", layers);
  const types = attentionTypes(op, config.attention, layers);
  const chunkLen = config.chunkLen ?? 64;
  checkPositiveInt(op, "chunkLen", chunkLen);
  const ffChunks = config.ffChunks ?? 1;
  checkPositiveInt(op, "ffChunks", ffChunks);
  const dropRate = rate(op, "dropout", config.dropout, 0);
  const attnRate = rate(op, "attentionDropout", config.attentionDropout, dropRate);
  const causal = !!config.causal;
  const hashSeed = config.hashSeed ?? 0;
  if (!Number.isSafeInteger(hashSeed) || hashSeed < 0) {
    throw new RangeError(`${op}: hashSeed must be an integer >= 0, got ${hashSeed}`);
  }
  const isReversible = config.reversible ?? true;
  const norm = layerNorm({ dim: dModel });
  const ff = feedForward({ dModel, dFF, activation: config.activation, dropout: dropRate });
  const base = { dModel, heads, dHead, causal, dropout: attnRate };
  const lshOf = (i: number, s: { nHashes?: number; chunkLen?: number; nBuckets?: BucketSpec }) =>
    lshAttention({
      ...base,
      nHashes: s.nHashes ?? config.nHashes ?? 1,
      chunkLen: s.chunkLen ?? chunkLen,
      nBuckets: s.nBuckets ?? config.nBuckets,
      hashSeed: hashSeed + i,
    });
  const fullOf = () => attention({ ...base, sharedQK: true });
  // Validates every layer's configuration now, and gives init its layers.
  const own: AttnImpl[] = types.map((t, i) =>
    t === "lsh" ? { lsh: lshOf(i, {}) } : t === "full" ? { layer: fullOf() } : {
      layer: localAttention({ ...base, chunkLen, sharedQK: !!config.localSharedQK }),
    }
  );

  const makeF = (impl: AttnImpl): RevFn<ReformerAttnParams, BranchOpts> => (p, x, o, saved) =>
    scope(() => {
      const [ka, kd] = o?.key ? random.splitN(o.key, 2) : [undefined, undefined];
      const h = norm.apply(p.norm, x);
      const ao = { key: ka, training: o?.training, mask: o?.mask };
      if ("lsh" in impl) {
        const r = impl.lsh.applyWithState(p.attn, h, ao, saved as LshSaved | undefined);
        return {
          out: applyDropout(r.out, dropRate, { key: kd, training: o?.training }),
          saved: r.saved,
        };
      }
      const out = impl.layer.apply(p.attn, h, ao);
      return applyDropout(out, dropRate, { key: kd, training: o?.training });
    });
  const gSlice = (p: ReformerFFParams, x: Tensor, o?: ApplyOptions) =>
    scope(() => {
      const [kf, kd] = o?.key ? random.splitN(o.key, 2) : [undefined, undefined];
      const h = norm.apply(p.norm, x);
      const y = ff.apply(p.ff, h, { key: kf, training: o?.training });
      return applyDropout(y, dropRate, { key: kd, training: o?.training });
    });
  const g = (ffChunks > 1 ? chunked(gSlice, { chunks: ffChunks }, 1) : gSlice) as RevFn<
    ReformerFFParams,
    BranchOpts
  >;

  // One stack per attention override, built on first use.
  const stacks = new Map<string, ReversibleStack>();
  const stackFor = (o: AttentionOverride | undefined): ReversibleStack => {
    const name = overrideName(op, o);
    let s = stacks.get(name);
    if (!s) {
      const impls = types.map((t, i): AttnImpl => {
        if (t === "local" || o === undefined) return own[i];
        if (o === "full") return { layer: fullOf() };
        return { lsh: lshOf(i, o === "lsh" ? {} : o.lsh) };
      });
      s = reversibleStack(impls.map((impl) => ({ f: makeF(impl) as RevFn, g: g as RevFn })));
      stacks.set(name, s);
    }
    return s;
  };

  return {
    types,
    init(key) {
      const keys = random.splitN(key, 2 * layers);
      try {
        return own.map((impl, i) => ({
          f: { norm: norm.init(key), attn: initAttn(impl, keys[2 * i]) },
          g: { norm: norm.init(key), ff: ff.init(keys[2 * i + 1]) },
        }));
      } finally {
        for (const k of keys) k.dispose();
      }
    },
    apply(params, x, opts = {}) {
      checkHalves(op, x, dModel);
      if (!Array.isArray(params) || params.length !== layers) {
        throw new TypeError(
          `${op}: params must be an array of ${layers} blocks, got ${
            Array.isArray(params) ? `${params.length} entries` : typeof params
          }`,
        );
      }
      if (opts.key !== undefined && !(opts.key instanceof Tensor)) {
        throw new TypeError(`${op}: opts.key must be a PRNG key tensor (random.key)`);
      }
      if (opts.training && (dropRate > 0 || attnRate > 0) && !opts.key) {
        throw new TypeError(`${op}: training with dropout needs a PRNG key (opts.key)`);
      }
      const stack = stackFor(opts.attentionOverride);
      return scope(() => {
        const keys = opts.key ? random.splitN(opts.key, 2 * layers) : [];
        const revOpts: RevOpts<BranchOpts, BranchOpts>[] = types.map((_, i) => ({
          f: { key: keys[2 * i], training: !!opts.training, mask: opts.mask },
          g: { key: keys[2 * i + 1], training: !!opts.training },
        }));
        if (isReversible) return stack.apply(params as RevParams[], x, revOpts);
        return storedForward(stack, params, x, revOpts);
      });
    },
  };
}

function initAttn(impl: AttnImpl, key: Tensor): AttentionParams {
  return "lsh" in impl ? impl.lsh.init(key) : impl.layer.init(key);
}

/** The same blocks with ordinary stored activations (`reversible: false`). */
function storedForward(
  stack: ReversibleStack,
  params: readonly RevParams[],
  [x1, x2]: Halves,
  opts: readonly RevOpts[],
): Halves {
  const outOf = (r: Tensor | { out: Tensor }) => (r instanceof Tensor ? r : r.out);
  let a = x1, b = x2;
  stack.blocks.forEach((blk, i) => {
    const y1 = add(a, outOf(blk.f(params[i].f, b, opts[i].f)));
    const y2 = add(b, outOf(blk.g(params[i].g, y1, opts[i].g)));
    [a, b] = [y1, y2];
  });
  return [a, b];
}

function checkHalves(op: string, x: unknown, dModel: number): void {
  if (!Array.isArray(x) || x.length !== 2 || !x.every((t) => t instanceof Tensor)) {
    throw new TypeError(`${op}: the input must be a pair of tensors [x1, x2]`);
  }
  const [a, b] = x as Tensor[];
  if (a.rank !== 3 || a.shape[2] !== dModel || fmt(a.shape) !== fmt(b.shape)) {
    throw new RangeError(
      `${op}: both halves must be [batch, len, ${dModel}], got ${fmt(a.shape)} and ${fmt(b.shape)}`,
    );
  }
}
