/**
 * Pieces shared by the attention layers (full, local, LSH): head splitting, shared-QK key
 * normalisation, the dtype-aware mask constants, the masked attention core that every layer
 * reduces to (`attendChunks`), and the layer pieces the frame is built from (validation,
 * projections, init, dropout); chunk shaping is in `chunks.ts`. All are compositions of
 * differentiable primitives, so gradients come from autodiff.
 * @module
 */
import type { DType } from "../../kernels/dtype.ts";
import { fmt, Tensor } from "../../ops/tensor.ts";
import { add, mul } from "../../ops/binary.ts";
import { notEqual, where } from "../../ops/compare.ts";
import { matmul } from "../../ops/matmul.ts";
import { mean } from "../../ops/reduce.ts";
import { expandDims, reshape, transpose } from "../../ops/shape.ts";
import { logsumexp, softmax } from "../../ops/softmax.ts";
import { rsqrt, square } from "../../ops/unary.ts";
import * as random from "../../ops/random.ts";
import { applyDropout } from "../layers/dropout.ts";
import { checkFloat, showValue } from "../validate.ts";
import type { ApplyOptions } from "../layer.ts";
import { checkDropoutRate } from "../validate.ts";

/** The constants masked logits are replaced by (docs/algorithms.md#masks), per dtype. */
export interface MaskValues {
  /** Causal and padding masks: `-1e9` in f32, `-1e4` in f16. */
  readonly mask: number;
  /** A shared-QK query against its own position: `-1e5` in f32, `-1e3` in f16. */
  readonly self: number;
}

/**
 * The replacement values for masked attention logits of `dtype`. Half precision gets smaller
 * magnitudes so the constants stay finite and ordered (`mask < self < any real logit`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * assert.deepEqual(nn.maskValues("f32"), { mask: -1e9, self: -1e5 });
 * ```
 */
export function maskValues(dtype: DType): MaskValues {
  return dtype === "f16" ? { mask: -1e4, self: -1e3 } : { mask: -1e9, self: -1e5 };
}

/** `[b, len, heads * dk]` to `[b, heads, len, dk]`. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, n, d] = x.shape;
  using r = reshape(x, [b, n, heads, d / heads]);
  return transpose(r, [0, 2, 1, 3]);
}

/** `[b, heads, len, dk]` to `[b, len, heads * dk]`. */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, n, d] = x.shape;
  using t = transpose(x, [0, 2, 1, 3]);
  return reshape(t, [b, n, h * d]);
}

/**
 * Shared-QK keys: `qk / sqrt(mean(qk^2) + 1e-6) / sqrt(dk)` over the last axis (unit length up
 * to the epsilon; docs/algorithms.md#shared-qk).
 */
export function unitKeys(qk: Tensor): Tensor {
  const dk = qk.shape[qk.rank - 1];
  using sq = square(qk);
  using ms = mean(sq, -1, { keepdims: true });
  using eps = add(ms, 1e-6);
  using r = rsqrt(eps);
  using scaled = mul(r, 1 / Math.sqrt(dk));
  return mul(qk, scaled);
}

/** Masks and extras of {@linkcode attendChunks}. */
export interface AttendOptions {
  /** Bool, broadcastable to the logits `[..., q, k]`: false replaces the logit by `mask`. */
  keep?: Tensor | null;
  /** Bool, broadcastable to the logits: true replaces the logit by `self` (after `keep`). */
  self?: Tensor | null;
  /** f32 added to the logits after masking (de-duplication uses `-log(count)`). */
  bias?: Tensor | null;
  /** Also return `logsumexp` of the masked logits. */
  withLse?: boolean;
  /** Dropout on the probabilities: applied when `rate > 0` and `key` is given. */
  dropout?: { rate: number; key?: Tensor };
}

/**
 * Masked softmax attention on aligned blocks as a plain composition of primitives (the
 * reference `chunkAttention` is tested against; it also supports grad of grad):
 * `logits = q k^T`, masked logits replaced by the dtype's constants, `o = softmax(logits) v`,
 * and optionally `lse = logsumexp(logits)`. Queries are not scaled here; callers scale keys.
 * Every intermediate is `[..., nq, nk]`, and autodiff keeps several of them for the backward
 * pass; the layers use `chunkAttention` instead.
 *
 * @param q `[..., nq, dk]`, `k` and `v` `[..., nk, dk]` (leading axes broadcast as in matmul).
 * @returns `o: [..., nq, dk]` and, with `withLse`, `lse: [..., nq]`.
 */
export function attendChunks(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttendOptions = {},
): { o: Tensor; lse: Tensor | null } {
  const mv = maskValues(q.dtype);
  const owned: Tensor[] = [];
  try {
    let logits = matmul(q, k, { transposeB: true });
    owned.push(logits);
    if (opts.keep) owned.push(logits = where(opts.keep, logits, mv.mask));
    if (opts.self) owned.push(logits = where(opts.self, mv.self, logits));
    if (opts.bias) owned.push(logits = add(logits, opts.bias));
    let p = softmax(logits, -1);
    owned.push(p);
    const drop = opts.dropout;
    if (drop && drop.rate > 0 && drop.key) {
      owned.push(p = applyDropout(p, drop.rate, { key: drop.key, training: true }));
    }
    const o = matmul(p, v);
    const lse = opts.withLse ? logsumexp(logits, -1) : null;
    return { o, lse };
  } finally {
    for (const t of owned) t.dispose();
  }
}

/**
 * `exp(lse - logsumexp(lse))` over `axis`: the weights of hash rounds (Reformer §2, multi-round
 * LSH; docs/algorithms.md#combining-hash-rounds), computed as a softmax, which subtracts the
 * maximum first. Rows whose keys are all masked have `lse` near `-1e5` or `-1e9`, where f32
 * spacing is 0.008 or 64: only differences of such values are exact, so the `logsumexp` form
 * would give weights that do not sum to one.
 */
export function roundWeights(lse: Tensor, axis: number): Tensor {
  return softmax(lse, axis);
}

/** Options every attention layer's `apply` accepts besides `key` and `training`. */
export interface MaskOption {
  /**
   * Padding mask `[batch, len]`: true (or non-zero) marks real tokens, false marks padding,
   * whose inputs count as 0 (inf/NaN there is safe) and are never attended to.
   */
  mask?: Tensor;
}

/** Validates `x: [batch, len, dModel]` and the padding mask; returns `[batch, len]`. */
export function checkInput(
  op: string,
  x: unknown,
  dModel: number,
  mask?: unknown,
): [number, number] {
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: x must be a Tensor, got ${typeof x}`);
  if (x.rank !== 3 || x.shape[2] !== dModel) {
    throw new RangeError(
      `${op}: x must be [batch, len, dModel] with dModel ${dModel}, got ${fmt(x.shape)}`,
    );
  }
  checkFloat(op, "x", x);
  const [b, n] = x.shape;
  if (n === 0) throw new RangeError(`${op}: the sequence is empty (${fmt(x.shape)})`);
  if (mask !== undefined) {
    if (!(mask instanceof Tensor)) throw new TypeError(`${op}: opts.mask must be a Tensor`);
    if (mask.rank !== 2 || mask.shape[0] !== b || mask.shape[1] !== n) {
      throw new RangeError(
        `${op}: opts.mask must be [batch, len] = ${fmt([b, n])}, got ${fmt(mask.shape)}`,
      );
    }
    if (mask.device !== x.device) {
      throw new TypeError(`${op}: opts.mask is on ${mask.device} but x is on ${x.device}`);
    }
  }
  return [b, n];
}

/** The padding mask as bool (non-zero means a real token). */
export function boolMask(mask: Tensor): Tensor {
  return mask.dtype === "bool" ? mask.view(mask.shape) : notEqual(mask, 0);
}

/** Projection weights of an attention layer (no biases, as in the Reformer). */
export interface AttentionParams {
  /** Shared query-key projection `[dModel, heads * dHead]` (shared-QK layers only). */
  wqk?: Tensor;
  /** Query projection `[dModel, heads * dHead]` (layers without shared QK). */
  wq?: Tensor;
  /** Key projection `[dModel, heads * dHead]` (layers without shared QK). */
  wk?: Tensor;
  /** Value projection `[dModel, heads * dHead]`. */
  wv: Tensor;
  /** Output projection `[heads * dHead, dModel]`. */
  wo: Tensor;
}

/** The head geometry of an attention layer, validated. */
export interface HeadConfig {
  readonly dModel: number;
  readonly heads: number;
  readonly dHead: number;
  readonly sharedQK: boolean;
}

/** Validates `dModel`, `heads` and `dHead` (default `dModel / heads`). */
export function headConfig(
  op: string,
  c: { dModel: number; heads: number; dHead?: number; sharedQK?: boolean },
  sharedQK: boolean,
): HeadConfig {
  const { dModel, heads } = c ?? {};
  if (!Number.isInteger(dModel) || dModel < 1 || !Number.isInteger(heads) || heads < 1) {
    throw new RangeError(
      `${op}: dModel and heads must be positive integers, got ${showValue(dModel)} and ${
        showValue(heads)
      }`,
    );
  }
  if (c.dHead === undefined && dModel % heads !== 0) {
    throw new RangeError(
      `${op}: dModel ${dModel} is not divisible by heads ${heads}; pass dHead explicitly`,
    );
  }
  const dHead = c.dHead ?? dModel / heads;
  if (!Number.isInteger(dHead) || dHead < 1) {
    throw new RangeError(`${op}: dHead must be a positive integer, got ${showValue(dHead)}`);
  }
  return { dModel, heads, dHead, sharedQK };
}

/** Checks that `params` holds the weights this layer needs, with the right shapes. */
export function checkParams(op: string, p: AttentionParams, hc: HeadConfig): void {
  const inner = hc.heads * hc.dHead;
  const want: [string, number[]][] = [
    ...(hc.sharedQK ? [["wqk", [hc.dModel, inner]]] : [["wq", [hc.dModel, inner]], [
      "wk",
      [hc.dModel, inner],
    ]]) as [string, number[]][],
    ["wv", [hc.dModel, inner]],
    ["wo", [inner, hc.dModel]],
  ];
  for (const [name, shape] of want) {
    const t = (p as unknown as Record<string, unknown>)?.[name];
    if (!(t instanceof Tensor) || fmt(t.shape) !== fmt(shape)) {
      throw new TypeError(
        `${op}: params.${name} must be a ${fmt(shape)} tensor, got ${
          t instanceof Tensor ? fmt(t.shape) : typeof t
        }${hc.sharedQK ? " (shared-QK layer)" : ""}`,
      );
    }
  }
}

/**
 * Projects `x: [b, len, dModel]` to per-head queries, keys and values `[b, heads, len, dHead]`.
 * Shared QK: keys are the unit-normalised queries (`q` unscaled); otherwise keys are scaled by
 * `1/sqrt(dHead)`. A padding `mask` (`[b, len]`) zeroes padded positions of `x` first, so a
 * non-finite padded value cannot reach outputs or gradients (`0 * inf` in `p v`, `dlogits k`).
 */
export function projectQKV(
  p: AttentionParams,
  x: Tensor,
  hc: HeadConfig,
  mask?: Tensor,
): { q: Tensor; k: Tensor; v: Tensor } {
  using xs = mask ? zeroPadded(x, mask) : null;
  const proj = (w: Tensor) => {
    using y = matmul(xs ?? x, w);
    return splitHeads(y, hc.heads);
  };
  const v = proj(p.wv);
  if (hc.sharedQK) {
    const q = proj(p.wqk!);
    return { q, k: unitKeys(q), v };
  }
  const q = proj(p.wq!);
  using kr = proj(p.wk!);
  return { q, k: mul(kr, 1 / Math.sqrt(hc.dHead)), v };
}

/**
 * `x [b, n, dModel]` with the positions `mask [b, n]` pads set to 0, so that an inf or NaN
 * there reaches no projection, output or gradient.
 */
export function zeroPadded(x: Tensor, mask: Tensor): Tensor {
  using keep = boolMask(mask);
  using keepRow = expandDims(keep, -1);
  return where(keepRow, x, 0);
}

/** Merges heads `[b, heads, len, dHead]` and applies the output projection. */
export function outputProjection(p: AttentionParams, o: Tensor): Tensor {
  using m = mergeHeads(o);
  return matmul(m, p.wo);
}

/**
 * Fresh projection weights, Glorot-normal like `linear` (`std = sqrt(2 / (fanIn + fanOut))`).
 */
export function initAttention(key: Tensor, hc: HeadConfig): AttentionParams {
  const inner = hc.heads * hc.dHead;
  const names = hc.sharedQK ? ["wqk", "wv", "wo"] : ["wq", "wk", "wv", "wo"];
  const keys = random.splitN(key, names.length);
  try {
    const out: Record<string, Tensor> = {};
    names.forEach((name, i) => {
      const shape = name === "wo" ? [inner, hc.dModel] : [hc.dModel, inner];
      using n = random.normal(keys[i], shape);
      out[name] = mul(n, Math.sqrt(2 / (hc.dModel + inner)));
    });
    return out as unknown as AttentionParams;
  } finally {
    for (const k of keys) k.dispose();
  }
}

/** Validates a dropout rate (default 0). */
export function checkDropout(op: string, rate: unknown): number {
  if (rate === undefined) return 0;
  checkDropoutRate(op, rate);
  return rate;
}

/**
 * The dropout setting for one call: active when training with a positive rate, which then
 * needs `opts.key`.
 */
export function dropoutFor(
  op: string,
  rate: number,
  opts: ApplyOptions,
  x: Tensor,
  key: Tensor | undefined = opts.key,
): { rate: number; key?: Tensor } | undefined {
  if (!opts.training || rate === 0) return undefined;
  if (!(key instanceof Tensor)) {
    throw new TypeError(`${op}: training with dropout ${rate} needs a PRNG key (opts.key)`);
  }
  checkKeyDevice(op, key, x);
  return { rate, key };
}

/** Throws unless the PRNG key lives on x's device (samples are drawn on the key's device). */
export function checkKeyDevice(op: string, key: Tensor, x: Tensor): void {
  if (key.device !== x.device) {
    throw new TypeError(
      `${op}: opts.key is on ${key.device} but x is on ${x.device}; create the key there ` +
        `(random.key(seed, { device: "${x.device}" })) or move it with toDevice()`,
    );
  }
}
