/**
 * The Sparse Transformer's factorised attention (Child et al. 2019 §4.3 and §5;
 * docs/algorithms.md#sparse-transformer-patterns): the
 * `strided` and `fixed` patterns with the three ways of combining their two components
 * (alternating per layer, merged into one head, split across heads), computed block-sparsely:
 * only the score tiles the pattern touches are ever formed. Three implementations that agree:
 * - `blockSparseAttention`: a fused primitive (CPU + WebGPU kernels, its own VJP that
 *   recomputes probabilities from the saved log-sum-exp; memory `O(len * d)`);
 * - `gatherSparseAttention`: the same tiles as a composition of primitives (gather the key and
 *   value blocks per query block, batched matmul, masked softmax, matmul), used for dropout;
 * - `denseMaskedAttention`: the `O(len^2)` reference with the boolean mask.
 *
 * Masked keys get probability exactly 0, and a query with no key left (fixed B before the
 * first summary position, or a fully padded row) outputs 0 rather than attending uniformly,
 * which would leak future positions.
 * @module
 */
import type { BlockLayout, PatternSpec } from "../../ops/block_sparse.ts";
import { blockSparsePrimitive } from "../../ops/block_sparse.ts";
import { broadcastShapes } from "../../ops/broadcast.ts";
import { logicalAnd, where } from "../../ops/compare.ts";
import { fromTypedArray } from "../../ops/creation.ts";
import { take } from "../../ops/indexing.ts";
import { matmul } from "../../ops/matmul.ts";
import * as random from "../../ops/random.ts";
import { scope } from "../../ops/scope.ts";
import { reshape } from "../../ops/shape.ts";
import { concat, slice } from "../../ops/slicing.ts";
import { softmax } from "../../ops/softmax.ts";
import { fmt, Tensor } from "../../ops/tensor.ts";
import { type AttentionParams, boolMask, checkDropout, headConfig, maskValues } from "./core.ts";
import { padAxis, takeFirst } from "./chunks.ts";
import type { AttentionApplyOptions } from "./full.ts";
import { applyDropout } from "../layers/dropout.ts";
import type { Layer } from "../layer.ts";
import { blockLayout, checkPattern, patternMask, patternMaskValue } from "./sparse_patterns.ts";
import { checkIntAtLeast, showValue } from "../validate.ts";
import { attentionFrame } from "./frame.ts";

/** Dropout on the attention probabilities (active when `rate > 0` and a key is given). */
export interface ProbDropout {
  /** Probability of dropping an entry, in `[0, 1)`. */
  rate: number;
  /** PRNG key of the dropout mask (no dropout without one). */
  key?: Tensor;
}

/** Options of {@linkcode blockSparseAttention} and {@linkcode gatherSparseAttention}. */
export interface BlockSparseOptions {
  /** The pattern component(s) to attend with. */
  pattern: PatternSpec;
  /** Tile side of the block layout. */
  blockSize: number;
  /** Padding mask `[batch, len]`, bool (false = padded key). */
  keyMask?: Tensor | null;
}

function checkQKV(op: string, q: Tensor, k: Tensor, v: Tensor): void {
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
    if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor`);
  }
  if (q.rank !== 4 || fmt(k.shape) !== fmt(q.shape) || fmt(v.shape) !== fmt(q.shape)) {
    throw new RangeError(
      `${op}: q, k and v must share one shape [batch, heads, len, d], got q ${fmt(q.shape)}, ` +
        `k ${fmt(k.shape)}, v ${fmt(v.shape)}`,
    );
  }
}

function layoutFor(op: string, q: Tensor, o: BlockSparseOptions): [PatternSpec, BlockLayout] {
  const pattern = checkPattern(op, o?.pattern);
  const bs = checkIntAtLeast(op, "blockSize", o.blockSize, 1);
  return [pattern, blockLayout(pattern, q.shape[2], bs)];
}

/**
 * Block-sparse causal attention with a factorised pattern, as one fused primitive: for each
 * query block only the key blocks of `blockLayout(pattern, len, blockSize)` are visited, and
 * the backward pass recomputes the probabilities from the saved log-sum-exp, so neither pass
 * stores a score matrix. Queries are not scaled (scale `k` by `1/sqrt(d)` first). Equals
 * {@linkcode denseMaskedAttention} with `patternMask(pattern, len)`. Any length works.
 * Second-order gradients are not supported.
 *
 * Shapes: `q, k, v: [batch, heads, len, d]` to `[batch, heads, len, d]`;
 * `keyMask: [batch, len]`. `q`, `k` and `v` are all f32 or all f16 (mixed precision: f32
 * arithmetic and softmax statistics, an f16 output and gradients).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, ones } from "@longseq/tensor";
 * const q = ones([1, 2, 10, 4]);
 * const pattern = { kind: "fixed", stride: 4, c: 1, part: "union" } as const;
 * const o = nn.blockSparseAttention(q, q, q, { pattern, blockSize: 4 });
 * assert.ok(await allClose(o, ones([1, 2, 10, 4]))); // any average of ones is one
 * ```
 */
export function blockSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: BlockSparseOptions,
): Tensor {
  const op = "blockSparseAttention";
  checkQKV(op, q, k, v);
  const [pattern, layout] = layoutFor(op, q, options);
  const spec = { pattern, layout };
  const [o, lse] = blockSparsePrimitive(q, k, v, options.keyMask ?? null, spec);
  lse.dispose();
  return o;
}

/** Key-block slots per query block (padded with masked repeats) and their count. */
function slots(layout: BlockLayout): { idx: Int32Array; width: number } {
  const { nBlocks: nb, rowPtr, cols } = layout;
  let width = 1;
  for (let qb = 0; qb < nb; qb++) width = Math.max(width, rowPtr[qb + 1] - rowPtr[qb]);
  const idx = new Int32Array(nb * width);
  for (let qb = 0; qb < nb; qb++) {
    for (let s = 0; s < width; s++) {
      const t = rowPtr[qb] + s;
      idx[qb * width + s] = t < rowPtr[qb + 1] ? cols[t] : -1;
    }
  }
  return { idx, width };
}

/**
 * Block-sparse causal attention as a composition of primitives (gradients by autodiff): the
 * key and value blocks each query block needs are gathered with `take` (query blocks with
 * fewer tiles get masked filler slots), scores come from one batched matmul per tile list,
 * followed by a masked softmax across the gathered tiles and a matmul with the values. Stores
 * `[batch, heads, nBlocks, blockSize, width * blockSize]` scores (`width` = most tiles of a
 * query block). Equals {@linkcode blockSparseAttention}; supports dropout on probabilities.
 *
 * Shapes: as {@linkcode blockSparseAttention}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones } from "@longseq/tensor";
 * const q = ones([1, 1, 9, 2]);
 * const pattern = { kind: "strided", stride: 3, c: 0, part: "b" } as const;
 * assert.deepEqual(nn.gatherSparseAttention(q, q, q, { pattern, blockSize: 2 }).shape, [1, 1, 9, 2]);
 * ```
 */
export function gatherSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: BlockSparseOptions & { dropout?: ProbDropout },
): Tensor {
  const op = "gatherSparseAttention";
  checkQKV(op, q, k, v);
  const [pattern, layout] = layoutFor(op, q, options);
  const keyMask = options.keyMask ?? null;
  if (keyMask) checkKeyMask(op, keyMask, q);
  const [b, h, n, d] = q.shape;
  const { blockSize: bs, nBlocks: nb } = layout;
  const { idx, width } = slots(layout);
  const kw = width * bs;
  return scope(() => {
    const blocks = (t: Tensor) => reshape(padAxis(t, 2, nb * bs), [b, h, nb, bs, d]);
    const index = fromTypedArray(idx.map((x) => Math.max(x, 0)), [nb * width], "i32", q.device);
    const gathered = (t: Tensor) => reshape(take(blocks(t), index, 2), [b, h, nb, kw, d]);
    const table = new Uint8Array(nb * bs * kw);
    for (let qb = 0; qb < nb; qb++) {
      for (let r = 0; r < bs; r++) {
        const i = qb * bs + r;
        for (let s = 0; s < width; s++) {
          const kb = idx[qb * width + s];
          for (let c = 0; c < bs && kb >= 0 && i < n; c++) {
            const j = kb * bs + c;
            table[(qb * bs + r) * kw + s * bs + c] = j < n && patternMaskValue(pattern, i, j)
              ? 1
              : 0;
          }
        }
      }
    }
    let keep = fromTypedArray(table, [nb, bs, kw], "bool", q.device);
    if (keyMask) {
      const m = reshape(padAxis(boolMask(keyMask), 1, nb * bs, 0), [b, nb, bs]);
      keep = logicalAnd(keep, reshape(take(m, index, 1), [b, 1, nb, 1, kw]));
    }
    const scores = matmul(reshape(padAxis(q, 2, nb * bs), [b, h, nb, bs, d]), gathered(k), {
      transposeB: true,
    });
    const p = maskedProbs(scores, keep, options.dropout);
    const o = matmul(p, gathered(v));
    return takeFirst(reshape(o, [b, h, nb * bs, d]), 2, n);
  });
}

/** `softmax` over the kept logits, exactly 0 elsewhere (a row with none kept is all 0). */
function maskedProbs(logits: Tensor, keep: Tensor, drop?: ProbDropout): Tensor {
  return scope(() => {
    const masked = where(keep, logits, maskValues(logits.dtype).mask);
    const p = where(keep, softmax(masked, -1), 0);
    return drop && drop.rate > 0 && drop.key
      ? applyDropout(p, drop.rate, { key: drop.key, training: true })
      : p;
  });
}

function checkKeyMask(op: string, m: Tensor, q: Tensor): void {
  if (!(m instanceof Tensor) || m.dtype !== "bool") {
    throw new TypeError(`${op}: keyMask must be a bool Tensor`);
  }
  if (fmt(m.shape) !== fmt([q.shape[0], q.shape[2]])) {
    throw new RangeError(
      `${op}: keyMask must be [batch, len] = ${fmt([q.shape[0], q.shape[2]])}, got ` +
        fmt(m.shape),
    );
  }
}

/**
 * Dense masked attention, the `O(n * m)` reference: `softmax(q k^T)` over the keys `mask`
 * keeps (probability exactly 0 elsewhere; a row with no key kept outputs 0), times `v`.
 * Queries are not scaled.
 *
 * Shapes: `q: [..., n, d]`, `k, v: [..., m, d]` (leading axes broadcast as in matmul), `mask`
 * bool broadcastable to `[..., n, m]`; returns `[..., n, d]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones } from "@longseq/tensor";
 * const [a] = nn.stridedPattern(6, 2);
 * const x = ones([1, 6, 4]);
 * assert.deepEqual(nn.denseMaskedAttention(x, x, x, a).shape, [1, 6, 4]);
 * ```
 */
export function denseMaskedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor,
  options: { dropout?: ProbDropout } = {},
): Tensor {
  const op = "denseMaskedAttention";
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
    if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor`);
    if (t.rank < 2) throw new RangeError(`${op}: ${name} needs rank >= 2, got ${fmt(t.shape)}`);
  }
  if (fmt(k.shape) !== fmt(v.shape)) {
    throw new RangeError(`${op}: k ${fmt(k.shape)} and v ${fmt(v.shape)} must match`);
  }
  if (!(mask instanceof Tensor) || mask.dtype !== "bool") {
    throw new TypeError(`${op}: mask must be a bool Tensor`);
  }
  return scope(() => {
    const logits = matmul(q, k, { transposeB: true });
    broadcastShapes(op, mask.shape, logits.shape);
    return matmul(maskedProbs(logits, mask, options.dropout), v);
  });
}

/** Configuration of {@linkcode sparseAttention}. */
export interface SparseAttentionConfig {
  /** Model width. */
  dModel: number;
  /** Number of heads. */
  heads: number;
  /** Width of one head (default `dModel / heads`). */
  dHead?: number;
  /** `"strided"` (images, periodic data) or `"fixed"` (text). */
  pattern: "strided" | "fixed";
  /** The stride `l`, about `sqrt(len)`. */
  stride: number;
  /** Summary positions per block of the fixed pattern (default `max(1, floor(stride / 8))`). */
  c?: number;
  /**
   * How the two components combine: `"alternate"`: every head uses component `component`
   * (a model alternates 0 and 1 across residual blocks); `"merged"`: every head attends to
   * the union; `"split"`: the first `ceil(heads / 2)` heads use A, the rest B.
   */
  mode: "alternate" | "merged" | "split";
  /** The component of an `"alternate"` layer: 0 (A, local) or 1 (B, long range). */
  component?: 0 | 1;
  /** Tile side of the block-sparse computation (default `min(32, stride)`). */
  blockSize?: number;
  /** Dropout rate on the attention probabilities (training only; needs `opts.key`). */
  dropout?: number;
  /**
   * `"blockSparse"` (default; fused kernels, falls back to `"gather"` while dropout is active),
   * `"gather"` (composition of primitives) or `"dense"` (the masked `O(len^2)` reference).
   */
  impl?: "blockSparse" | "gather" | "dense";
}

/** Which heads use which component. */
function headGroups(
  op: string,
  c: SparseAttentionConfig,
): { to: number; part: PatternSpec["part"] }[] {
  if (c.mode === "merged") return [{ to: c.heads, part: "union" }];
  if (c.mode === "alternate") {
    if (c.component !== 0 && c.component !== 1) {
      throw new TypeError(
        `${op}: mode "alternate" needs component 0 or 1, got ${JSON.stringify(c.component)}`,
      );
    }
    return [{ to: c.heads, part: c.component === 0 ? "a" : "b" }];
  }
  if (c.mode === "split") {
    if (c.heads < 2) {
      throw new RangeError(`${op}: mode "split" needs heads >= 2, got ${showValue(c.heads)}`);
    }
    return [{ to: Math.ceil(c.heads / 2), part: "a" }, { to: c.heads, part: "b" }];
  }
  throw new TypeError(
    `${op}: mode must be "alternate", "merged" or "split", got ${JSON.stringify(c.mode)}`,
  );
}

/**
 * Sparse Transformer self-attention (always causal): multi-head attention whose heads use the
 * strided or fixed factorised pattern, combined per `mode`, computed block-sparsely. Params
 * are those of `attention` (`{ wq, wk, wv, wo }`, keys scaled by `1/sqrt(dHead)`).
 *
 * Shapes: `x [batch, len, dModel]` to `[batch, len, dModel]` for any `len >= 1`;
 * `opts.mask [batch, len]` (true = real token). Time `O(tiles * blockSize^2 * dHead)` per
 * head, about `O(len * sqrt(len))` with `stride ~ sqrt(len)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const layer = nn.sparseAttention({
 *   dModel: 8, heads: 2, pattern: "fixed", stride: 4, c: 1, mode: "split",
 * });
 * const y = layer.apply(layer.init(random.key(0)), ones([1, 10, 8]));
 * assert.deepEqual(y.shape, [1, 10, 8]);
 * ```
 */
export function sparseAttention(
  config: SparseAttentionConfig,
): Layer<AttentionParams, Tensor, Tensor, AttentionApplyOptions> {
  const op = "sparseAttention";
  const hc = headConfig(op, config, false);
  const stride = config.stride;
  const kind = config.pattern;
  const c = kind === "fixed" ? config.c ?? Math.max(1, Math.floor(stride / 8)) : 0;
  checkPattern(op, { kind, stride, c, part: "a" });
  const blockSize = config.blockSize ?? Math.min(32, stride);
  checkIntAtLeast(op, "blockSize", blockSize, 1);
  const groups = headGroups(op, config);
  const impl = config.impl ?? "blockSparse";
  if (!["blockSparse", "gather", "dense"].includes(impl)) {
    throw new TypeError(
      `${op}: impl must be "blockSparse", "gather" or "dense", got ${showValue(impl)}`,
    );
  }
  const rate = checkDropout(op, config.dropout);
  const frame = attentionFrame<AttentionApplyOptions>(op, hc, rate, {
    attend({ q, k: kq, v }, { x, b, n, opts, dropout }) {
      const k = kq!;
      const keyMask = opts.mask ? boolMask(opts.mask) : null;
      const keys = dropout && groups.length > 1 ? random.splitN(dropout.key!, groups.length) : [];
      const outs = groups.map(({ to, part }, g) => {
        const from = g === 0 ? 0 : groups[g - 1].to;
        const heads = (t: Tensor) =>
          groups.length === 1 ? t : slice(t, [0, from], [b, to, n, hc.dHead]);
        const pattern: PatternSpec = { kind, stride, c, part };
        const drop = dropout && { rate: dropout.rate, key: keys[g] ?? dropout.key };
        const [qh, kh, vh] = [heads(q), heads(k), heads(v)];
        if (impl === "dense") {
          let mask = patternMask(pattern, n, { device: x.device });
          if (keyMask) mask = logicalAnd(mask, reshape(keyMask, [b, 1, 1, n]));
          return denseMaskedAttention(qh, kh, vh, mask, { dropout: drop });
        }
        const o = { pattern, blockSize, keyMask };
        return impl === "gather" || drop
          ? gatherSparseAttention(qh, kh, vh, { ...o, dropout: drop })
          : blockSparseAttention(qh, kh, vh, o);
      });
      return outs.length === 1 ? outs[0] : concat(outs, 1);
    },
  });
  return { init: frame.init, apply: (params, x, opts) => frame.run(params, x, opts).out };
}
