/**
 * The Reformer block, defined once: its attention half `F = dropout(attention(layerNorm(x)))`
 * and its feed-forward half `G = dropout(feedForward(layerNorm(x)))` (run over `ffChunks`
 * slices), their params and init. The reversible stack, its stored-activation twin
 * (`reversible: false`) and the incremental decoder are all built from this definition.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { scope } from "../../ops/scope.ts";
import * as random from "../../ops/random.ts";
import type { RevFn, RevParams } from "../../autodiff/reversible.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import { attention } from "../attention/full.ts";
import { localAttention } from "../attention/local.ts";
import { lshAttention, type LshAttentionLayer, type LshSaved } from "../attention/lsh.ts";
import type { BucketSpec } from "../attention/lsh_hash.ts";
import { type AttentionParams, type HeadConfig, headConfig } from "../attention/core.ts";
import { layerNorm, type LayerNormParams } from "../layers/layer_norm.ts";
import { feedForward, type FeedForwardParams } from "../layers/feed_forward.ts";
import { chunked } from "../layers/chunked.ts";
import { applyDropout } from "../layers/dropout.ts";
import { checkDropoutRate, checkPositiveInt, showValue } from "../validate.ts";

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

/** Feed-forward activations of a Reformer block (`"gelu"` is the tanh approximation). */
export type ReformerActivation = "gelu" | "relu" | "gelu_exact";

/** Configuration of the Reformer blocks (see `reversibleBlocks`). */
export interface ReformerBlockConfig {
  /** Width of each half of the activation. */
  dModel: number;
  /** Hidden width of the feed-forward blocks. */
  dFF: number;
  /** Attention heads. */
  heads: number;
  /** Width of one head (default `dModel / heads`). */
  dHead?: number;
  /** Number of blocks. */
  layers: number;
  /** Attention type for every layer, or one per layer (default `"lsh"`). */
  attention?: ReformerAttention | readonly ReformerAttention[];
  /** LSH hash rounds (default 1). */
  nHashes?: number;
  /** Chunk length of LSH attention, and of local attention unless `localChunkLen` (default 64). */
  chunkLen?: number;
  /** Chunk length of local attention (default `chunkLen`). */
  localChunkLen?: number;
  /** Chunks before its own that a sorted LSH chunk attends to (default 1). */
  chunksBefore?: number;
  /** Chunks after its own that a sorted LSH chunk attends to (default 0). */
  chunksAfter?: number;
  /** Chunks before its own that a local chunk attends to (default 1). */
  localChunksBefore?: number;
  /** Chunks after its own that a local chunk attends to (default 0). */
  localChunksAfter?: number;
  /**
   * Local windows wrap around the ends of the sequence, as HuggingFace's local attention does
   * (chunk 0 then sees the last chunk when not causal). Default false.
   */
  localWrap?: boolean;
  /** LSH buckets per round (default: from each call's length). */
  nBuckets?: BucketSpec;
  /** How LSH hash rounds are weighted (default `"normalized"`; `"hf"` as HuggingFace). */
  lshRoundWeights?: "normalized" | "hf";
  /** Decoder (causal) attention. Default false. */
  causal?: boolean;
  /** Dropout on the outputs of `F` and `G` and on the feed-forward hidden layer (default 0). */
  dropout?: number;
  /** Dropout on the attention probabilities (default: `dropout`). */
  attentionDropout?: number;
  /** Slices the feed-forward runs over, one after another (default 1: unchunked). */
  ffChunks?: number;
  /** Feed-forward activation (default `"gelu"`, the tanh approximation). */
  activation?: ReformerActivation;
  /** Epsilon of the blocks' layer norms (default `1e-6`). */
  layerNormEps?: number;
  /** Local attention shares queries and keys (default false, as trax's `SelfAttention`). */
  localSharedQK?: boolean;
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

/** Per-call options handed to `F` and `G` (replayed unchanged in the recomputation). */
export interface BranchOpts {
  key?: Tensor;
  training?: boolean;
  mask?: Tensor;
  /** Explicit LSH rotations of this layer (HF's layout); ignored by other attentions. */
  rotations?: Tensor;
}

/** One layer's attention: LSH (with replayable buckets) or a plain attention layer. */
export type AttnImpl =
  | { lsh: LshAttentionLayer }
  | { layer: Layer<AttentionParams, Tensor, Tensor, BranchOpts> };

/** The local attention window of a layer, in positions and chunks. */
export interface LocalWindow {
  readonly chunkLen: number;
  readonly before: number;
  readonly after: number;
}

/** The one definition of the Reformer block that every use derives from. */
export interface ReformerBlockDef {
  /** The attention type of each layer. */
  readonly types: readonly ReformerAttention[];
  /** Dropout rate of the residual branches and the feed-forward hidden layer. */
  readonly dropRate: number;
  /** Dropout rate on the attention probabilities. */
  readonly attnRate: number;
  /** Layer `i`'s attention, or the one an override puts in its place. */
  attention(i: number, override?: AttentionOverride): AttnImpl;
  /** `F` with a given attention: `dropout(attention(layerNorm(x)))`. */
  f(impl: AttnImpl): RevFn<ReformerAttnParams, BranchOpts>;
  /** `G`: `dropout(feedForward(layerNorm(x)))` over `ffChunks` slices. */
  readonly g: RevFn<ReformerFFParams, BranchOpts>;
  /** `F`'s input: the layer-normed half the attention projects. */
  attnInput(p: ReformerAttnParams, x: Tensor): Tensor;
  /** The head geometry of layer `i`'s attention (shared QK for LSH and full layers). */
  heads(i: number): HeadConfig;
  /** The window of a local layer (`null` for the others). */
  window(i: number): LocalWindow | null;
  /** Fresh params for every layer. */
  init(key: Tensor): ReformerBlockParams[];
}

function rate(op: string, name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  try {
    checkDropoutRate(op, v);
  } catch {
    throw new RangeError(`${op}: ${name} must be a number in [0, 1), got ${showValue(v)}`);
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

/** Validates `config` and defines the blocks (attention, `F`, `G`, init) once. */
export function reformerBlock(op: string, config: ReformerBlockConfig): ReformerBlockDef {
  const { dModel, dFF, heads, dHead, layers } = config ?? {};
  checkPositiveInt(op, "dModel", dModel);
  checkPositiveInt(op, "dFF", dFF);
  checkPositiveInt(op, "layers", layers);
  const types = attentionTypes(op, config.attention, layers);
  const chunkLen = config.chunkLen ?? 64;
  checkPositiveInt(op, "chunkLen", chunkLen);
  const localChunkLen = config.localChunkLen ?? chunkLen;
  checkPositiveInt(op, "localChunkLen", localChunkLen);
  const ffChunks = config.ffChunks ?? 1;
  checkPositiveInt(op, "ffChunks", ffChunks);
  const dropRate = rate(op, "dropout", config.dropout, 0);
  const attnRate = rate(op, "attentionDropout", config.attentionDropout, dropRate);
  const causal = !!config.causal;
  const hashSeed = config.hashSeed ?? 0;
  if (!Number.isSafeInteger(hashSeed) || hashSeed < 0) {
    throw new RangeError(`${op}: hashSeed must be an integer >= 0, got ${showValue(hashSeed)}`);
  }
  const act = config.activation ?? "gelu";
  const norm = layerNorm({ dim: dModel, eps: config.layerNormEps });
  const ff = feedForward({ dModel, dFF, activation: act, dropout: dropRate });
  const base = { dModel, heads, dHead, causal, dropout: attnRate };
  const window: LocalWindow = {
    chunkLen: localChunkLen,
    before: config.localChunksBefore ?? 1,
    after: config.localChunksAfter ?? 0,
  };
  const lshOf = (i: number, s: { nHashes?: number; chunkLen?: number; nBuckets?: BucketSpec }) =>
    lshAttention({
      ...base,
      nHashes: s.nHashes ?? config.nHashes ?? 1,
      chunkLen: s.chunkLen ?? chunkLen,
      nBuckets: s.nBuckets ?? config.nBuckets,
      chunksBefore: config.chunksBefore,
      chunksAfter: config.chunksAfter,
      roundWeights: config.lshRoundWeights,
      hashSeed: hashSeed + i,
    });
  const fullOf = () => attention({ ...base, sharedQK: true });
  const localShared = !!config.localSharedQK;
  // Validates every layer's configuration now, and gives init its layers.
  const own: AttnImpl[] = types.map((t, i) =>
    t === "lsh" ? { lsh: lshOf(i, {}) } : t === "full" ? { layer: fullOf() } : {
      layer: localAttention({
        ...base,
        chunkLen: window.chunkLen,
        chunksBefore: window.before,
        chunksAfter: window.after,
        wrap: !!config.localWrap,
        sharedQK: localShared,
      }),
    }
  );
  const headsOf = types.map((t) => headConfig(op, base, t !== "local" || localShared));

  const f = (impl: AttnImpl): RevFn<ReformerAttnParams, BranchOpts> => (p, x, o, saved) =>
    scope(() => {
      const [ka, kd] = o?.key ? random.splitN(o.key, 2) : [undefined, undefined];
      const h = norm.apply(p.norm, x);
      const ao = { key: ka, training: o?.training, mask: o?.mask };
      if ("lsh" in impl) {
        const r = impl.lsh.applyWithState(
          p.attn,
          h,
          { ...ao, rotations: o?.rotations },
          saved as LshSaved | undefined,
        );
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

  return {
    types,
    dropRate,
    attnRate,
    attention(i, o) {
      const t = types[i];
      if (t === "local" || o === undefined) return own[i];
      if (o === "full") return { layer: fullOf() };
      return { lsh: lshOf(i, o === "lsh" ? {} : o.lsh) };
    },
    f,
    g,
    attnInput: (p, x) => norm.apply(p.norm, x),
    heads: (i) => headsOf[i],
    window: (i) => (types[i] === "local" ? window : null),
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
  };
}

function initAttn(impl: AttnImpl, key: Tensor): AttentionParams {
  return "lsh" in impl ? impl.lsh.init(key) : impl.layer.init(key);
}
