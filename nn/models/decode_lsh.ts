/**
 * One decoding step of an LSH layer over its cache, with HuggingFace's `past_buckets_states`
 * semantics: the cache holds every earlier position's unit keys, values and bucket per hash
 * round; the new query is hashed with the layer's fixed rotations, and in each round the
 * positions (the query included) are sorted by `(bucket, position)`; the query attends to the
 * sorted chunk it lands in and `chunksBefore`/`chunksAfter` chunks around it (wrapping within
 * the round), with the self mask of training; the rounds are combined by their logsumexp.
 * All on the device, without a readback.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { add, cast, div, mul, sub } from "../../ops/binary.ts";
import { less } from "../../ops/compare.ts";
import { argsort } from "../../ops/sort.ts";
import { takeAlongAxis } from "../../ops/indexing.ts";
import { sum } from "../../ops/reduce.ts";
import { broadcastTo, expandDims, reshape } from "../../ops/shape.ts";
import { slice } from "../../ops/slicing.ts";
import { exp } from "../../ops/unary.ts";
import { logsumexp, softmax } from "../../ops/softmax.ts";
import { i32Tensor } from "../attention/chunks.ts";
import { chunkAttention } from "../attention/chunk_attention.ts";
import { hfSelfScale } from "../attention/lsh.ts";
import { maskValues } from "../attention/core.ts";

/** The window of an LSH layer's cached step. */
export interface LshWindow {
  readonly chunkLen: number;
  readonly before: number;
  readonly after: number;
  /** Normalise as HF does in f32 (the layer's `roundWeights: "hf"`). */
  readonly hf: boolean;
}

/**
 * The attention of the last position over all `m` positions' cached unit keys and values.
 *
 * @param q the new query `[1, h, 1, d]` (unnormalised shared QK).
 * @param k unit keys `[1, h, m, d]`, the new position's last.
 * @param v values `[1, h, m, d]`.
 * @param buckets i32 `[1, h, nHashes, m]` bucket per round (the new position's last).
 * @returns per-head outputs `[1, h, 1, d]`.
 */
export function lshCachedStep(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  buckets: Tensor,
  w: LshWindow,
): Tensor {
  const [, h, nh, m] = buckets.shape;
  const d = q.shape[3];
  const dev = q.device;
  const c = w.chunkLen;
  const total = c * (1 + w.before + w.after);
  // Sort key (bucket, position); the query's rank is the count of keys below its own.
  const pos = i32Tensor(Array.from({ length: m }, (_, j) => j), [m], dev);
  const keyOf = add(mul(buckets, m), pos);
  const order = argsort(keyOf);
  const mine = slice(keyOf, [0, 0, 0, m - 1], [1, h, nh, m]);
  const rank = sum(cast(less(keyOf, mine), "f32"), -1, { keepdims: true });
  // Window of sorted slots ((rank div c) - before) * c + j, mod m (made positive first;
  // integers below 2^24 are exact in f32, and truncation is the floor of non-negatives).
  const chunk = cast(cast(div(rank, c), "i32"), "f32");
  const lift = m * (Math.ceil((w.before * c) / m) + 1);
  const j = i32Tensor(Array.from({ length: total }, (_, t) => t), [total], dev);
  const raw = add(add(mul(sub(chunk, w.before), c), cast(j, "f32")), lift);
  const wraps = cast(cast(div(raw, m), "i32"), "f32");
  const slots = cast(sub(raw, mul(wraps, m)), "i32");
  const kpos = takeAlongAxis(order, slots, 3);
  const gather = (t: Tensor) =>
    reshape(takeAlongAxis(t, reshape(kpos, [1, h, nh * total, 1]), 2), [1, h, nh, total, d]);
  const qq = broadcastTo(reshape(q, [1, h, 1, 1, d]), [1, h, nh, 1, d]);
  const qpos = i32Tensor(new Array(h * nh).fill(m - 1), [1, h, nh, 1], dev);
  const { o: raw0, lse } = chunkAttention(qq, gather(k), gather(v), {
    qpos,
    kpos,
    causal: false,
    selfMask: true,
  });
  const o = w.hf ? mul(raw0, expandDims(hfSelfScale(lse, maskValues(q.dtype).self), -1)) : raw0;
  const l = reshape(lse, [1, h, nh, 1, 1]);
  const weights = w.hf ? exp(sub(l, logsumexp(l, 2, { keepdims: true }))) : softmax(l, 2);
  return sum(mul(o, weights), 2);
}
