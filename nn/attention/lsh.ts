/**
 * LSH attention, the Reformer's `O(len log len)` attention (Kitaev et al. 2020 §2;
 * docs/algorithms.md#lsh-attention): shared-QK vectors are hashed by random rotations into
 * buckets, sorted by `(round, bucket, position)`, cut into chunks that each attend to themselves
 * and the chunk before, and the rounds are combined by their logsumexp. A composition of
 * primitives: gradients come from autodiff, with the bucket assignment (not differentiable) held
 * fixed.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { add, cast, maximum, mul, sub } from "../../ops/binary.ts";
import { equal, greaterEqual, less, where } from "../../ops/compare.ts";
import { broadcastTo, expandDims, reshape, transpose } from "../../ops/shape.ts";
import { argsort, gatherByIndex, scatterByIndex } from "../../ops/sort.ts";
import { takeAlongAxis } from "../../ops/indexing.ts";
import { full } from "../../ops/creation.ts";
import { sum } from "../../ops/reduce.ts";
import { exp, log, neg } from "../../ops/unary.ts";
import { logsumexp } from "../../ops/softmax.ts";
import * as random from "../../ops/random.ts";
import type { Layer } from "../layer.ts";
import { stopGradient } from "../../autodiff/grad.ts";
import {
  type AttentionParams,
  boolMask,
  checkDropout,
  checkKeyDevice,
  headConfig,
  maskValues,
  roundWeights,
  unitKeys,
} from "./core.ts";
import { chunkOffsets, i32Tensor, lookAround, padAxis, takeFirst } from "./chunks.ts";
import { chunkAttention } from "./chunk_attention.ts";
import type { AttentionApplyOptions } from "./full.ts";
import { attentionFrame } from "./frame.ts";
import {
  bucketCount,
  type BucketSpec,
  checkBuckets,
  checkRotations,
  defaultBuckets,
  hashBuckets,
  randomRotations,
} from "./lsh_hash.ts";
import { checkIntAtLeast } from "../validate.ts";

/** Configuration of {@linkcode lshAttention}. */
export interface LshAttentionConfig {
  /** Model width. */
  dModel: number;
  /** Number of heads. */
  heads: number;
  /** Width of one head (default `dModel / heads`). */
  dHead?: number;
  /** Hash rounds (default 1). More rounds approach full attention at proportional cost. */
  nHashes?: number;
  /** Sorted entries per chunk (default 64). */
  chunkLen?: number;
  /**
   * Buckets per round (even), or factors `[f1, f2]` for `f1 * f2` buckets. Default: chosen per
   * call from the length, see `defaultBuckets`.
   */
  nBuckets?: BucketSpec;
  /** Each position attends only to itself and earlier positions. */
  causal?: boolean;
  /** Chunks before its own that a sorted chunk attends to (default 1; wraps around). */
  chunksBefore?: number;
  /** Chunks after its own that a sorted chunk attends to (default 0; wraps around). */
  chunksAfter?: number;
  /**
   * Subtract `log(count)` from each logit, `count` the number of rounds in which the query
   * and key positions share a chunk window, so keys found by several rounds are not
   * over-weighted (the paper's `N_ij`; trax 2020). Default false.
   */
  dedup?: boolean;
  /** Dropout rate on the attention probabilities (when `opts.training`; needs `opts.key`). */
  dropout?: number;
  /**
   * How probabilities and hash rounds are normalised: `"normalized"` (default) exactly
   * (`softmax(lse)` over the rounds); `"hf"` as HuggingFace computes them in f32, by
   * `exp(x - logsumexp(x))`: for a query that sees only itself (its lse near the `-1e5` self
   * value, where f32 spacing is 0.008) HF's probabilities and round weights then sum to 1
   * +- 0.4%. For exact parity with HF checkpoints (sequences longer than one chunk; shorter
   * ones HF attends without hashing, exactly normalised).
   */
  roundWeights?: "normalized" | "hf";
  /** Seed of the rotations when neither `opts.key` nor `opts.rotations` is given. */
  hashSeed?: number;
}

/** The state an LSH call saves for replay: its bucket ids. */
export interface LshSaved {
  /** i32 `[batch, heads, nHashes, paddedLen]`; padding positions hold bucket `nBuckets`. */
  buckets: Tensor;
}

/** Options of {@linkcode lshAttention}'s `apply`. */
export interface LshApplyOptions extends AttentionApplyOptions {
  /** Explicit rotations `[heads, dHead, nHashes, rotSize/2]` (HF's layout), instead of a key. */
  rotations?: Tensor;
  /** Bucket ids saved by an earlier call (`applyWithState`): hashing is skipped. */
  saved?: LshSaved;
}

/** The LSH attention layer: a {@linkcode Layer} that can also return and replay its buckets. */
export interface LshAttentionLayer extends Layer<AttentionParams, Tensor, Tensor, LshApplyOptions> {
  /**
   * Like `apply`, but also returns the bucket ids; passing them back as `saved` replays the
   * same hashing. Matches the reversible layers' `F(params, x, opts, saved?)` signature.
   */
  applyWithState(
    params: AttentionParams,
    x: Tensor,
    opts?: LshApplyOptions,
    saved?: LshSaved,
  ): { out: Tensor; saved: LshSaved };
}

/**
 * Multi-head LSH self-attention with shared QK (Reformer §2; docs/algorithms.md#lsh-attention):
 * keys are the unit-normalised queries; `nHashes` rounds of angular LSH with rotations drawn from
 * `opts.key` (or given as `opts.rotations`, or from `hashSeed`); a stable sort by `(round, bucket, position)`; chunks
 * of `chunkLen` attending to themselves and `chunksBefore` previous chunks (wrapping); causal,
 * padding (`-1e9`) and self (`-1e5`) masks by original positions; rounds combined with weights
 * `exp(lse_r - logsumexp(lse))`. The default bucket count comes from the length of each call.
 * Any length works: the sequence is padded to a multiple of `chunkLen` and the padding is
 * masked and hashed to its own bucket. When the padded length is at most `chunkLen`, the
 * result equals full shared-QK attention with the same masks.
 *
 * Params are those of `attention` with `sharedQK`: `{ wqk, wv, wo }`.
 *
 * Shapes: `x [batch, len, dModel]` to `[batch, len, dModel]`; `opts.mask [batch, len]`.
 * Memory `O(batch * heads * nHashes * len * chunkLen)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, ones, random } from "@longseq/tensor";
 * const lsh = nn.lshAttention({ dModel: 8, heads: 2, nHashes: 2, chunkLen: 4, causal: true });
 * const params = lsh.init(random.key(0));
 * const { out, saved } = lsh.applyWithState(params, ones([1, 13, 8]), { key: random.key(1) });
 * const again = lsh.apply(params, ones([1, 13, 8]), { saved }); // same buckets, same result
 * assert.deepEqual(out.shape, [1, 13, 8]);
 * assert.deepEqual(saved.buckets.shape, [1, 2, 2, 16]); // [b, heads, nHashes, padded len]
 * assert.ok(await allClose(again, out));
 * ```
 */
export function lshAttention(config: LshAttentionConfig): LshAttentionLayer {
  const op = "lshAttention";
  const hc = headConfig(op, config, true);
  const nHashes = checkIntAtLeast(op, "nHashes", config.nHashes ?? 1, 1);
  const chunkLen = checkIntAtLeast(op, "chunkLen", config.chunkLen ?? 64, 1);
  const before = checkIntAtLeast(op, "chunksBefore", config.chunksBefore ?? 1, 0);
  const after = checkIntAtLeast(op, "chunksAfter", config.chunksAfter ?? 0, 0);
  if (config.nBuckets !== undefined) checkBuckets(op, config.nBuckets);
  if (config.hashSeed !== undefined) checkIntAtLeast(op, "hashSeed", config.hashSeed, 0);
  const causal = !!config.causal, dedup = !!config.dedup;
  const hfWeights = config.roundWeights === "hf";
  if (config.roundWeights !== undefined && !hfWeights && config.roundWeights !== "normalized") {
    throw new TypeError(
      `${op}: roundWeights must be "normalized" or "hf", got ${
        JSON.stringify(config.roundWeights)
      }`,
    );
  }
  const rate = checkDropout(op, config.dropout);

  const frame = attentionFrame<LshApplyOptions, LshSaved>(op, hc, rate, {
    keys: false,
    check({ x, b, n, opts }) {
      const lp = Math.ceil(n / chunkLen) * chunkLen;
      const spec = config.nBuckets ?? defaultBuckets(lp, chunkLen);
      if (opts.key !== undefined) {
        if (!(opts.key instanceof Tensor)) throw new TypeError(`${op}: opts.key must be a Tensor`);
        checkKeyDevice(op, opts.key, x);
      }
      if (opts.saved !== undefined) checkSaved(op, opts.saved, [b, hc.heads, nHashes, lp], x);
      else if (opts.rotations !== undefined) {
        checkRotations(op, opts.rotations, hc.heads, hc.dHead, nHashes, spec);
        if (opts.rotations.device !== x.device) {
          throw new TypeError(
            `${op}: opts.rotations is on ${opts.rotations.device}, x on ${x.device}`,
          );
        }
      } else if (!(opts.key instanceof Tensor) && config.hashSeed === undefined) {
        throw new TypeError(
          `${op}: pass opts.key (PRNG key for the random rotations), opts.rotations, ` +
            "opts.saved, or set hashSeed in the config",
        );
      }
    },
    attend({ q: qk, v }, { x, b, n, opts, dropout }) {
      const lp = Math.ceil(n / chunkLen) * chunkLen;
      const spec = config.nBuckets ?? defaultBuckets(lp, chunkLen);
      // One split serves hashing and dropout, so replaying saved buckets keeps the mask.
      const [hashKey, dropKey] = opts.key && dropout
        ? random.splitN(opts.key, 2)
        : [opts.key, undefined];
      const qkp = padAxis(qk, 2, lp), vp = padAxis(v, 2, lp);
      const valid = opts.mask || lp > n ? padAxis(validMask(opts.mask, b, n, x), 1, lp, 0) : null;
      let buckets: Tensor;
      if (opts.saved) buckets = opts.saved.buckets.view(opts.saved.buckets.shape);
      else {
        const rot = opts.rotations ??
          randomRotations(
            hashKey ?? random.key(config.hashSeed!, { device: x.device }),
            hc.heads,
            hc.dHead,
            nHashes,
            spec,
          );
        buckets = hashBuckets(stopGradient(qkp), rot, spec, valid);
      }
      const out = attendSorted({
        qk: qkp,
        v: vp,
        buckets,
        valid,
        stride: bucketCount(spec) + 1,
        dropout: dropout ? { rate, key: dropKey } : undefined,
      });
      return { o: takeFirst(out, 2, n), state: { buckets } };
    },
  });
  const applyWithState = (
    params: AttentionParams,
    x: Tensor,
    opts: LshApplyOptions = {},
    saved?: LshSaved,
  ): { out: Tensor; saved: LshSaved } => {
    const r = frame.run(params, x, saved ? { ...opts, saved } : opts);
    return { out: r.out, saved: r.state! };
  };

  interface Sorted {
    qk: Tensor;
    v: Tensor;
    buckets: Tensor;
    valid: Tensor | null;
    stride: number;
    dropout?: { rate: number; key?: Tensor };
  }

  /**
   * Sort, chunk, mask, attend, unsort and combine rounds (docs/algorithms.md#lsh-attention) on
   * padded `[b, h, lp, dk]` vectors; returns `[b, h, lp, dk]`.
   */
  function attendSorted({ qk, v, buckets, valid, stride, dropout }: Sorted): Tensor {
    const [b, h, lp, dk] = qk.shape;
    const nTot = nHashes * lp, nc = nTot / chunkLen;
    const dev = qk.device;
    const offsets = chunkOffsets(before, after);
    const kl = offsets.length * chunkLen;
    // Stable sort of `bucket + round * stride`: by round, then bucket, then position.
    const roundOff = i32Tensor(
      Array.from({ length: nHashes }, (_, r) => r * stride),
      [nHashes, 1],
      dev,
    );
    const sortIdx = argsort(reshape(add(buckets, roundOff), [b, h, nTot]));
    const positions = i32Tensor(Array.from({ length: nTot }, (_, j) => j % lp), [nTot], dev);
    const pos = gatherByIndex(broadcastTo(positions, [b, h, nTot]), sortIdx);
    const sortRows = (t: Tensor) => {
      const rep = reshape(broadcastTo(expandDims(t, 2), [b, h, nHashes, lp, dk]), [b, h, nTot, dk]);
      return reshape(gatherByIndex(rep, sortIdx), [b, h, nc, chunkLen, dk]);
    };
    const q = sortRows(qk);
    // Each chunk's own keys and values: the kernel reads the look-back chunks in place.
    const k = unitKeys(q);
    const vs = sortRows(v);
    const qpos = reshape(pos, [b, h, nc, chunkLen]);
    const kpos = lookAround(qpos, 2, offsets);
    const kvalid = valid
      ? reshape(takeAlongAxis(reshape(valid, [b, 1, lp]), reshape(kpos, [b, h, nc * kl]), 2), [
        b,
        h,
        nc,
        kl,
      ])
      : null;
    const bias = dedup ? dedupBias(sortIdx, pos, [b, h, lp, nc], offsets) : null;
    const { o: raw, lse } = chunkAttention(q, k, vs, {
      qpos,
      kpos,
      kvalid,
      causal,
      selfMask: true,
      bias,
      dropout,
      lookAround: offsets,
    });
    const o = hfWeights && lp > chunkLen
      ? mul(
        raw,
        cast(expandDims(hfSelfScale(stopGradient(lse), maskValues(qk.dtype).self), -1), raw.dtype),
      )
      : raw;
    const unsorted = reshape(scatterByIndex(reshape(o, [b, h, nTot, dk]), sortIdx), [
      b,
      h,
      nHashes,
      lp,
      dk,
    ]);
    if (nHashes === 1) return reshape(unsorted, [b, h, lp, dk]);
    const l = scatterByIndex(reshape(lse, [b, h, nTot]), sortIdx);
    const l5 = reshape(l, [b, h, nHashes, lp, 1]);
    // HF attends without hashing when the sequence fits one chunk (exact weights then).
    const w = hfWeights && lp > chunkLen
      ? exp(sub(l5, logsumexp(l5, 2, { keepdims: true })))
      : roundWeights(l5, 2);
    // The weights come from f32 statistics; under mixed precision they join f16 outputs as f16.
    using wd = cast(w, unsorted.dtype);
    return sum(mul(unsorted, wd), 2);
  }

  /**
   * `-log(count)` per (sorted query, key slot): `count` is the number of rounds `r` in which
   * the key's chunk is in the window of the query's chunk (both located in round `r`),
   * at least 1 (pairs met only across a round boundary are left as they are).
   */
  function dedupBias(
    sortIdx: Tensor,
    pos: Tensor,
    [b, h, lp, nc]: number[],
    offsets: readonly number[],
  ): Tensor {
    const nTot = nHashes * lp, dev = sortIdx.device;
    const chunkOf = i32Tensor(Array.from({ length: nTot }, (_, s) => Math.floor(s / chunkLen)), [
      nTot,
    ], dev);
    // For entry `r * lp + p`: the sorted chunk it landed in; then per position, per round.
    const landed = scatterByIndex(broadcastTo(chunkOf, [b, h, nTot]), sortIdx);
    const locs = transpose(reshape(landed, [b, h, nHashes, lp]), [0, 1, 3, 2]);
    const qlocs = takeAlongAxis(locs, reshape(pos, [b, h, nTot, 1]), 2);
    const qc = reshape(qlocs, [b, h, nc, chunkLen, nHashes]);
    const kc = lookAround(qc, 2, offsets);
    const q6 = reshape(qc, [b, h, nc, chunkLen, 1, nHashes]);
    let count: Tensor | null = null;
    for (const d of offsets) {
      // The query's chunk sees the key's chunk at offset d: qloc == kloc - d (mod nc).
      const t = sub(kc, d);
      const wrapped = where(less(t, 0), add(t, nc), where(greaterEqual(t, nc), sub(t, nc), t));
      const k6 = reshape(wrapped, [b, h, nc, 1, offsets.length * chunkLen, nHashes]);
      const c = sum(cast(equal(q6, k6), "f32"), -1);
      count = count ? add(count, c) : c;
    }
    return neg(log(maximum(count!, 1)));
  }

  return {
    init: frame.init,
    apply: (params, x, opts) => {
      const { out, saved } = applyWithState(params, x, opts);
      saved.buckets.dispose();
      return out;
    },
    applyWithState,
  };
}

/**
 * HF normalises probabilities by its f32-rounded logsumexp. Where a query sees only itself, `c`
 * times at the self value `s` (`lse` near `s`, whose f32 spacing is 0.008), they sum to
 * `c * exp(s - lse)`, not 1: this factor there, 1 elsewhere. (`s - lse` is exact in f32.)
 */
export function hfSelfScale(lse: Tensor, self: number): Tensor {
  const d = sub(self, lse);
  const c = cast(cast(add(exp(neg(d)), 0.5), "i32"), "f32");
  return where(less(lse, self / 2), exp(add(d, log(c))), 1);
}

/** The padding mask as bool `[b, n]`, all true when none is given. */
function validMask(mask: Tensor | undefined, b: number, n: number, x: Tensor): Tensor {
  return mask ? boolMask(mask) : full([b, n], true, { device: x.device });
}

function checkSaved(op: string, saved: unknown, want: number[], x: Tensor): void {
  const t = (saved as LshSaved)?.buckets;
  if (!(t instanceof Tensor) || t.dtype !== "i32" || fmt(t.shape) !== fmt(want)) {
    throw new TypeError(
      `${op}: saved.buckets must be i32 ${fmt(want)} ([batch, heads, nHashes, paddedLen]), got ${
        t instanceof Tensor ? `${t.dtype}${fmt(t.shape)}` : typeof t
      }`,
    );
  }
  if (t.device !== x.device) {
    throw new TypeError(`${op}: saved.buckets is on ${t.device} but x is on ${x.device}`);
  }
}
