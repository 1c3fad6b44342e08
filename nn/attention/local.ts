/**
 * Local (chunked) attention: the sequence is cut into chunks of `chunkLen` and each chunk's
 * queries attend to the keys of their own chunk plus `chunksBefore` chunks before and
 * `chunksAfter` after (docs/algorithms.md#sorting-and-chunking, without the hashing). Any length
 * works: the sequence is padded internally to a multiple of `chunkLen` and the padding is masked.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { logicalAnd } from "../../ops/compare.ts";
import { cast } from "../../ops/binary.ts";
import { reshape } from "../../ops/shape.ts";
import type { Layer } from "../layer.ts";
import { type AttentionParams, boolMask, checkDropout, headConfig } from "./core.ts";
import { chunkOffsets, i32Tensor, lookAround, padAxis, takeFirst } from "./chunks.ts";
import { chunkAttention } from "./chunk_attention.ts";
import { attentionFrame } from "./frame.ts";
import type { AttentionApplyOptions, AttentionConfig } from "./full.ts";
import { checkIntAtLeast } from "../validate.ts";

/** Configuration of {@linkcode localAttention}. */
export interface LocalAttentionConfig extends AttentionConfig {
  /** Positions per chunk. */
  chunkLen: number;
  /** Chunks before its own that a chunk's queries see (default 1). */
  chunksBefore?: number;
  /** Chunks after its own that a chunk's queries see (default 0). */
  chunksAfter?: number;
  /**
   * The window wraps around the ends of the sequence (chunk 0's previous chunk is the last
   * one), and a window wider than the sequence sees a chunk once per offset, as HuggingFace's
   * Reformer local attention does. Default false: no wrap, each key at most once.
   */
  wrap?: boolean;
}

/**
 * The window of chunk offsets to gather: `[-before, after]`, or every chunk once when the
 * window covers the whole sequence (so no key is gathered twice).
 */
export function windowOffsets(nChunks: number, before: number, after: number): number[] {
  return before + after + 1 >= nChunks ? chunkOffsets(0, nChunks - 1) : chunkOffsets(before, after);
}

/**
 * The offsets of a wrapping window as HuggingFace's `_look_adjacent` takes them: an offset of
 * at least the chunk count in size reads the chunk itself, and a single chunk attends to itself
 * once (HF's standard attention for sequences of at most one chunk).
 */
function wrapOffsets(nChunks: number, before: number, after: number): number[] {
  if (nChunks === 1) return [0];
  return chunkOffsets(before, after).map((d) => (Math.abs(d) < nChunks ? d : 0));
}

/**
 * Multi-head attention restricted to a window of chunks: position `i` in chunk `c` attends to
 * positions in chunks `c - chunksBefore ... c + chunksAfter` (chunks outside the sequence do
 * not wrap around), further limited by the causal and padding masks. Params and masking are
 * those of {@linkcode attention} (`sharedQK` is supported too).
 *
 * Shapes: `x [batch, len, dModel]` to `[batch, len, dModel]` for any `len >= 1`;
 * `opts.mask [batch, len]`. Memory and time `O(batch * heads * len * chunkLen * window)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const layer = nn.localAttention({ dModel: 8, heads: 2, chunkLen: 4, causal: true });
 * const y = layer.apply(layer.init(random.key(0)), ones([1, 10, 8]));
 * assert.deepEqual(y.shape, [1, 10, 8]);
 * ```
 */
export function localAttention(
  config: LocalAttentionConfig,
): Layer<AttentionParams, Tensor, Tensor, AttentionApplyOptions> {
  const op = "localAttention";
  const hc = headConfig(op, config, !!config.sharedQK);
  const chunkLen = checkIntAtLeast(op, "chunkLen", config.chunkLen, 1);
  const before = checkIntAtLeast(op, "chunksBefore", config.chunksBefore ?? 1, 0);
  const after = checkIntAtLeast(op, "chunksAfter", config.chunksAfter ?? 0, 0);
  const causal = !!config.causal;
  const rate = checkDropout(op, config.dropout);
  const wrap = !!config.wrap;
  const frame = attentionFrame<AttentionApplyOptions>(op, hc, rate, {
    attend(qkv, { x, b, n, opts, dropout }) {
      const nc = Math.ceil(n / chunkLen);
      const lp = nc * chunkLen;
      const offsets = wrap ? wrapOffsets(nc, before, after) : windowOffsets(nc, before, after);
      const kl = offsets.length * chunkLen;
      const chunked = (t: Tensor) => reshape(padAxis(t, 2, lp), [b, hc.heads, nc, chunkLen, -1]);
      const q = chunked(qkv.q);
      // Each chunk's own keys and values: the kernel reads the window's chunks in place.
      const k = chunked(qkv.k!);
      const v = chunked(qkv.v);
      // Static structure: key slot j of chunk c holds position kc * chunkLen + j % chunkLen.
      const slots = Array.from({ length: nc * kl }, (_, t) => {
        const c = Math.floor(t / kl), j = t % kl;
        const kc = (((c + offsets[Math.floor(j / chunkLen)]) % nc) + nc) % nc;
        const inWindow = wrap || (kc - c >= -before && kc - c <= after);
        const kp = kc * chunkLen + (j % chunkLen);
        return [kp, inWindow && kp < n ? 1 : 0];
      });
      const qpos = i32Tensor(Array.from({ length: lp }, (_, i) => i), [nc, chunkLen], x.device);
      const kpos = i32Tensor(slots.map((s) => s[0]), [nc, kl], x.device);
      let kvalid = cast(i32Tensor(slots.map((s) => s[1]), [nc, kl], x.device), "bool");
      if (opts.mask) {
        const m = reshape(padAxis(boolMask(opts.mask), 1, lp, 0), [b, 1, nc, chunkLen]);
        kvalid = logicalAnd(kvalid, lookAround(m, 2, offsets));
      }
      const { o } = chunkAttention(q, k, v, {
        qpos,
        kpos,
        kvalid,
        causal,
        selfMask: hc.sharedQK,
        dropout,
        lookAround: offsets,
      });
      return takeFirst(reshape(o, [b, hc.heads, lp, hc.dHead]), 2, n);
    },
  });
  return { init: frame.init, apply: (params, x, opts) => frame.run(params, x, opts).out };
}
