/**
 * Incremental decoding for causal Reformer language models: a per-layer cache of keys and
 * values (and, for LSH layers, buckets), so each new token costs one position's work per layer
 * plus its attention over the cached keys, instead of a forward pass over the whole prefix.
 *
 * Why this is exact: a reversible block computes `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`, where `G`
 * (layer norm and feed-forward) is position-wise and `F` is attention on a layer-normed input.
 * With causal masks, position `t`'s outputs depend on earlier positions only through the keys
 * and values of each layer's attention, which do not change when later tokens arrive. So the
 * cache keeps, per layer, the keys (for shared-QK layers, the unit-normalised shared
 * projection) and the values of earlier positions, and a new position attends to them with the
 * model's masks: causal, the `-1e5` self mask of shared-QK attention, and for local layers the
 * window of its own chunk and `chunksBefore` (1) chunks before it (older keys are dropped).
 *
 * LSH layers are cached with HuggingFace's `past_buckets_states` semantics (decode_lsh.ts):
 * every position keeps its bucket per hash round under the layer's fixed rotations (those
 * `apply` uses without a key: seed `hashSeed + i`, or `opts.rotations`); a new query is hashed
 * alike, sorted with the cached positions in each round, and attends to the sorted chunk it
 * lands in and its neighbours; until the cache first reaches `chunkLen` positions (a prompt of
 * at most one chunk) it attends to every earlier position, as HF does. This is the function HF
 * decodes with, not `apply` over the longer prefix: there a new token re-sorts every position,
 * which changes earlier outputs too. `lshAsFull` evaluates LSH layers with full shared-QK
 * attention instead (exact against `attentionOverride: "full"`).
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { scope } from "../../ops/scope.ts";
import { add } from "../../ops/binary.ts";
import { reshape } from "../../ops/shape.ts";
import { concat, slice } from "../../ops/slicing.ts";
import { showValue } from "../validate.ts";
import { full, tensor } from "../../ops/creation.ts";
import { outputProjection, projectQKV } from "../attention/core.ts";
import { i32Tensor, padAxis, takeFirst } from "../attention/chunks.ts";
import { chunkAttention } from "../attention/chunk_attention.ts";
import {
  type BucketSpec,
  defaultBuckets,
  hashBuckets,
  randomRotations,
} from "../attention/lsh_hash.ts";
import * as random from "../../ops/random.ts";
import { lshCachedStep, type LshWindow } from "./decode_lsh.ts";
import { embeddingAndHead } from "./language_model.ts";
import { reformerBlock } from "./reformer_block.ts";
import { paddedLength, type ReformerLMConfig, type ReformerLMParams } from "./reformer.ts";

/** Options of {@linkcode reformerDecoder}. */
export interface ReformerDecoderOptions {
  /** Evaluate LSH layers with full shared-QK attention (not what the model computes). */
  lshAsFull?: boolean;
  /**
   * Fixed rotations of the LSH layers, one entry per layer (`[heads, dHead, nHashes, rotSize/2]`,
   * HF's layout; undefined for the others). Default: those `apply` draws without a key.
   */
  rotations?: readonly (Tensor | undefined)[];
}

/** The LSH part of a layer's cache. */
export interface LshLayerCache {
  /** i32 `[1, heads, nHashes, len]`: each position's bucket per round. */
  readonly buckets: Tensor;
  /** Whether a step attends within its sorted chunk window (else to every position). */
  readonly hashed: boolean;
  /** The bucket count or factors, fixed at prefill. */
  readonly spec: BucketSpec;
}

/** One layer's cache: keys and values `[1, heads, len - start, dHead]` of positions from `start`. */
export interface LayerCache {
  /** Cached keys `[1, heads, len - start, dHead]`. */
  readonly k: Tensor;
  /** Cached values, shaped like `k`. */
  readonly v: Tensor;
  /** The position of the first cached key. */
  readonly start: number;
  /** LSH layers: the buckets. */
  readonly lsh?: LshLayerCache;
}

/** The decoding state after `length` tokens; owns its tensors (`dispose()` frees them). */
export interface DecodeState {
  /** Tokens seen so far. */
  readonly length: number;
  /** One cache per layer. */
  readonly layers: readonly LayerCache[];
  /** Frees the cached tensors. */
  dispose(): void;
}

/** The decoder built by {@linkcode reformerDecoder}. */
export interface ReformerDecoder {
  /** The longest sequence (the model's `maxLen`): `step` throws on a state this long. */
  readonly maxLen: number;
  /** Runs the prompt `tokens [1, n]` at once: the last position's logits `[vocab]` and the state. */
  prefill(tokens: Tensor): [Tensor, DecodeState];
  /**
   * Appends one token: its logits `[vocab]` (the distribution of the next token) and a new
   * state. The given state is left as it is (dispose it when no longer needed).
   */
  step(state: DecodeState, token: number): [Tensor, DecodeState];
}

/**
 * Incremental decoding for a causal {@linkcode reformerLM} built from `config` with `params`,
 * batch 1: `prefill` runs a prompt through the stack once and caches every layer's keys and
 * values; each `step` then embeds one token at the next position and attends to the cache.
 * For full and local layers the logits equal those `model.apply(params, tokens)` gives at the
 * same position (evaluation mode: no dropout). LSH layers decode with HuggingFace's
 * `past_buckets_states` semantics (see the module doc): `prefill` equals `apply` over the
 * prompt, and each `step` hashes the new query into the cached buckets rather than re-sorting
 * the whole prefix as `apply` would.
 *
 * Cost per step: `O(layers * (dModel * (dModel + dFF) + len * dModel))` for full attention,
 * with `len` bounded by two chunks for local attention (plus one embedding pass of the tokens'
 * positions, `O(len * dModel)` gathers).
 *
 * Shapes: `prefill(tokens [1, n] i32)` and `step(state, token)` each give logits `[vocab]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, random, reshape, slice, tensor } from "@longseq/tensor";
 * const config = {
 *   vocab: 16, dModel: 8, dFF: 16, heads: 2, layers: 2, attention: "full" as const,
 *   axialShape: [4, 8],
 * };
 * const params = nn.reformerLM(config).init(random.key(0));
 * const dec = nn.reformerDecoder(config, params);
 * const [l0, s0] = dec.prefill(tensor([[1, 2, 3]], { dtype: "i32" }));
 * const [l1, s1] = dec.step(s0, 4); // the logits after 1, 2, 3, 4
 * assert.deepEqual(l0.shape, [16]);
 * // The same as the last position of a full forward pass.
 * const full = nn.reformerLM(config).apply(params, tensor([[1, 2, 3, 4]], { dtype: "i32" }));
 * const last = reshape(slice(full, [0, 3, 0], [1, 4, 16]), [16]);
 * assert.ok(await allClose(l1, last, { rtol: 1e-4, atol: 1e-5 }));
 * s0.dispose();
 * ```
 */
export function reformerDecoder(
  config: ReformerLMConfig,
  params: ReformerLMParams,
  opts: ReformerDecoderOptions = {},
): ReformerDecoder {
  const op = "reformerDecoder";
  if (config === null || typeof config !== "object") {
    throw new TypeError(`${op}: config must be an object`);
  }
  if (config.causal === false) {
    throw new TypeError(`${op}: the model must be causal (config.causal is false)`);
  }
  const { dModel, layers } = config;
  // The blocks the model runs, defined once (reformer_block.ts); evaluation mode, causal.
  const def = reformerBlock(op, { ...config, causal: true });
  const isLsh = def.types.map((t) => t === "lsh" && !opts.lshAsFull);
  const chunkLen = config.chunkLen ?? 64;
  const window: LshWindow = {
    chunkLen,
    before: config.chunksBefore ?? 1,
    after: config.chunksAfter ?? 0,
    hf: config.lshRoundWeights === "hf",
  };
  /** Layer i's fixed rotations for a bucket spec (drawn in the caller's scope each time). */
  const rotationsFor = (i: number, spec: BucketSpec): Tensor => {
    const given = opts.rotations?.[i];
    if (given) return given;
    const hc = def.heads(i);
    const key = random.key((config.hashSeed ?? 0) + i, { device: params.embed.table.device });
    return randomRotations(key, hc.heads, hc.dHead, config.nHashes ?? 1, spec);
  };
  const frame = embeddingAndHead(op, config, 2 * dModel);
  const f = def.types.map((_, i) => def.f(def.attention(i, opts.lshAsFull ? "full" : undefined)));
  const outOf = (r: Tensor | { out: Tensor }) => (r instanceof Tensor ? r : r.out);
  /** The first position a query at `p` sees: its local window's start, or 0. */
  const start = def.types.map((_, i) => {
    const w = def.window(i);
    return w
      ? (p: number) => Math.max(0, (Math.floor(p / w.chunkLen) - w.before) * w.chunkLen)
      : () => 0;
  });
  if (!Array.isArray(params?.blocks) || params.blocks.length !== layers) {
    throw new TypeError(`${op}: params.blocks must hold ${layers} blocks`);
  }

  const makeState = (length: number, caches: LayerCache[]): DecodeState => ({
    length,
    layers: caches,
    dispose() {
      for (const c of caches) {
        c.k.dispose();
        c.v.dispose();
        c.lsh?.buckets.dispose();
      }
    },
  });
  const head = (y1: Tensor, y2: Tensor): Tensor => {
    const logits = frame.logits(params, concat([y1, y2], -1));
    const [, n, vocab] = logits.shape;
    return reshape(slice(logits, [0, n - 1, 0], [1, n, vocab]), [vocab]);
  };
  /** Drops cached positions before `from` (the cache holds positions `c.start ...`). */
  const trim = (c: LayerCache, from: number): LayerCache => {
    if (from <= c.start) return c;
    const cut = (t: Tensor) => slice(t, [0, 0, from - c.start, 0], [...t.shape]);
    return { k: cut(c.k), v: cut(c.v), start: from };
  };

  return {
    maxLen: frame.maxLen,
    prefill(tokens) {
      const [b, n] = frame.checkTokens(tokens, "tokens");
      if (b !== 1) throw new RangeError(`${op}: decoding takes one sequence, got ${fmt([b, n])}`);
      const { logits, caches } = scope(() => {
        const caches: LayerCache[] = [];
        // Padded as the model pads (padMultiple), the padding masked; caches keep n positions.
        const lp = paddedLength(config, n);
        const mask = lp > n
          ? padAxis(full([1, n], true, { device: tokens.device }), 1, lp, 0)
          : undefined;
        const x = padAxis(frame.embed(params, tokens, 0), 1, lp);
        let x1 = x, x2 = x;
        const firstN = (t: Tensor) => takeFirst(t, 2, n);
        params.blocks.forEach((blk, i) => {
          const p = projectQKV(blk.f.attn, def.attnInput(blk.f, x2), def.heads(i));
          const [q, k, v] = [p.q, p.k, p.v].map(firstN);
          const spec = config.nBuckets ??
            defaultBuckets(Math.ceil(lp / chunkLen) * chunkLen, chunkLen);
          const rotations = isLsh[i] ? rotationsFor(i, spec) : undefined;
          const y1 = add(x1, outOf(f[i](blk.f, x2, { rotations, mask })));
          const y2 = add(x2, outOf(def.g(blk.g, y1, {})));
          [x1, x2] = [y1, y2];
          const lsh = rotations
            ? {
              buckets: hashBuckets(q, rotations, spec, null),
              hashed: lp > chunkLen,
              spec,
            }
            : undefined;
          caches.push(trim({ k, v, start: 0, lsh }, start[i](n - 1)));
        });
        [x1, x2] = [x1, x2].map((t) => takeFirst(t, 1, n));
        return { logits: head(x1, x2), caches };
      });
      return [logits, makeState(n, caches)];
    },
    step(state, token) {
      const t = state?.length;
      if (typeof t !== "number" || state.layers?.length !== layers) {
        throw new TypeError(`${op}: step needs a state from prefill or step of this decoder`);
      }
      if (t >= frame.maxLen) {
        throw new RangeError(`${op}: the state holds maxLen ${frame.maxLen} tokens already`);
      }
      const vocab = config.vocab;
      if (!Number.isInteger(token) || token < 0 || token >= vocab) {
        throw new RangeError(
          `${op}: token must be an integer in 0..${vocab - 1}, got ${showValue(token)}`,
        );
      }
      const device = state.layers[0]?.k.device;
      const { logits, caches } = scope(() => {
        const caches: LayerCache[] = [];
        // Embedding is per position, so row t of any t + 1 tokens ending in `token` is the new
        // token's embedding plus position t's.
        const ids = new Int32Array(t + 1);
        ids[t] = token;
        const all = tensor(ids, { dtype: "i32", shape: [1, t + 1], device });
        const e = frame.embed(params, all, 0);
        let x1 = slice(e, [0, t, 0], [1, t + 1, dModel]), x2 = x1;
        const qpos = i32Tensor([t], [1], x1.device);
        params.blocks.forEach((blk, i) => {
          const hc = def.heads(i);
          const { q, k, v } = projectQKV(blk.f.attn, def.attnInput(blk.f, x2), hc);
          const old = trim(state.layers[i], start[i](t));
          const ls = old.lsh;
          const c: LayerCache = {
            k: concat([old.k, k], 2),
            v: concat([old.v, v], 2),
            start: old.start,
            lsh: ls && {
              buckets: concat(
                [ls.buckets, hashBuckets(q, rotationsFor(i, ls.spec), ls.spec, null)],
                3,
              ),
              hashed: ls.hashed || t + 1 >= chunkLen,
              spec: ls.spec,
            },
          };
          const kpos = i32Tensor(
            Array.from({ length: t + 1 - c.start }, (_, j) => c.start + j),
            [t + 1 - c.start],
            x1.device,
          );
          const o = ls?.hashed
            ? lshCachedStep(q, c.k, c.v, c.lsh!.buckets, window)
            : chunkAttention(q, c.k, c.v, { qpos, kpos, causal: true, selfMask: hc.sharedQK }).o;
          const y1 = add(x1, outputProjection(blk.f.attn, o));
          const y2 = add(x2, outOf(def.g(blk.g, y1, {})));
          [x1, x2] = [y1, y2];
          caches.push(c);
        });
        return { logits: head(x1, x2), caches };
      });
      return [logits, makeState(t + 1, caches)];
    },
  };
}
