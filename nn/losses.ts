/**
 * Losses: softmax cross-entropy from logits with an optional mask, its chunked LM-head form
 * that never holds `[len, vocab]` logits at once, and unit conversions (bits per token).
 * @module
 */
import { fmt, Tensor } from "../ops/tensor.ts";
import { cast, div, maximum, mul } from "../ops/binary.ts";
import { notEqual, where } from "../ops/compare.ts";
import { full } from "../ops/creation.ts";
import { takeAlongAxis } from "../ops/indexing.ts";
import { sum } from "../ops/reduce.ts";
import { broadcastTo, expandDims, reshape } from "../ops/shape.ts";
import { logSoftmax } from "../ops/softmax.ts";
import { exp } from "../ops/unary.ts";
import { chunkedSum } from "./layers/chunked.ts";
import { affine, type LinearParams } from "./layers/linear.ts";
import { checkParam } from "./validate.ts";

/** Options of {@linkcode softmaxCrossEntropy}. */
export interface CrossEntropyOptions {
  /**
   * Which positions count: bool, or numbers (non-zero counts), shaped like `targets` or
   * broadcastable to it by NumPy rules (e.g. `[len]` or `[1, len]` against `[batch, len]`
   * targets). Masked positions contribute exactly 0 to the loss and its gradient.
   */
  mask?: Tensor;
  /**
   * `"mean"` (default): the mean over unmasked positions (0 when none is unmasked);
   * `"sum"`: their sum; `"none"`: the loss per position, 0 where masked.
   */
  reduction?: "mean" | "sum" | "none";
}

/** The sum of the per-position losses and the number of positions summed. */
export interface CrossEntropyStats {
  /** Sum of the unmasked positions' losses, a scalar f32. */
  sum: Tensor;
  /** Number of unmasked positions, a scalar f32. */
  count: Tensor;
}

function checkTargets(op: string, logits: unknown, targets: unknown, mask: unknown) {
  if (!(logits instanceof Tensor)) throw new TypeError(`${op}: logits must be a Tensor`);
  if (!(targets instanceof Tensor)) throw new TypeError(`${op}: targets must be a Tensor`);
  if (logits.dtype !== "f32") throw new TypeError(`${op}: logits must be f32, got ${logits.dtype}`);
  if (logits.rank === 0 || logits.shape[logits.rank - 1] === 0) {
    throw new RangeError(`${op}: logits ${fmt(logits.shape)} need a non-empty last (class) axis`);
  }
  if (targets.dtype !== "i32" && targets.dtype !== "u32") {
    throw new TypeError(`${op}: targets must be i32 or u32 class ids, got ${targets.dtype}`);
  }
  if (fmt(targets.shape) !== fmt(logits.shape.slice(0, -1))) {
    throw new RangeError(
      `${op}: targets ${fmt(targets.shape)} must have the shape of logits ${
        fmt(logits.shape)
      } without its last (class) axis`,
    );
  }
  if (mask !== undefined) {
    if (!(mask instanceof Tensor)) throw new TypeError(`${op}: mask must be a Tensor`);
    if (!broadcastsTo(mask.shape, targets.shape)) {
      throw new RangeError(
        `${op}: mask ${fmt(mask.shape)} cannot broadcast to the shape of targets ${
          fmt(targets.shape)
        } (NumPy rules: align the trailing axes; each mask axis must be 1 or equal)`,
      );
    }
  }
}

/** Whether `from` broadcasts to exactly `to` by NumPy rules. */
function broadcastsTo(from: readonly number[], to: readonly number[]): boolean {
  if (from.length > to.length) return false;
  const off = to.length - from.length;
  return from.every((n, i) => n === 1 || n === to[off + i]);
}

/**
 * `-log softmax(logits)[target]` per position, 0 where masked; shape of targets. Masked rows'
 * logits are replaced by zeros before the log-softmax ("double where"): a masked row of all
 * `-inf` (or NaN) logits would otherwise give NaN there, and although the final `where` drops
 * that value, the backward pass would still multiply the zero cotangent by it (`0 * NaN`).
 */
function perPosition(logits: Tensor, targets: Tensor, keep: Tensor | null): Tensor {
  using keepRow = keep ? expandDims(keep, -1) : null;
  using safe = keepRow ? where(keepRow, logits, 0) : null;
  using lp = logSoftmax(safe ?? logits, -1);
  using idx = expandDims(targets, -1);
  using picked = takeAlongAxis(lp, idx, -1);
  using flat = reshape(picked, targets.shape);
  const nll = mul(flat, -1);
  if (!keep) return nll;
  // where, not a product with the mask, so a masked position cannot bring in NaN or inf.
  using owned = nll;
  return where(keep, owned, 0);
}

/**
 * The mask as a fresh bool handle (non-zero keeps) of the targets' shape `shape` (broadcast
 * when it is smaller), or null without a mask.
 */
function keepOf(mask: Tensor | undefined, shape: readonly number[]): Tensor | null {
  if (!mask) return null;
  const same = fmt(mask.shape) === fmt(shape);
  if (mask.dtype === "bool") return same ? mask.view(mask.shape) : broadcastTo(mask, shape);
  if (same) return notEqual(mask, 0);
  using keep = notEqual(mask, 0);
  return broadcastTo(keep, shape);
}

/** The number of kept positions as a scalar f32 (all of `targets` without a mask). */
function countOf(keep: Tensor | null, targets: Tensor): Tensor {
  if (!keep) return full([], targets.size, { device: targets.device });
  using asF = cast(keep, "f32");
  return sum(asF);
}

/**
 * The sum and count behind {@linkcode softmaxCrossEntropy}'s mean: sums of losses over
 * several batches (or chunks) combine by adding both and dividing once.
 *
 * Shapes: `logits: [..., classes]` (f32), `targets: [...]` (i32/u32), `mask`: `targets`' shape
 * or broadcastable to it; `sum` and `count` are scalars.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, tensor } from "@longseq/tensor";
 * const { sum, count } = nn.softmaxCrossEntropyStats(
 *   tensor([[0, 0], [0, 0]]), tensor(new Int32Array([0, 1])), { mask: tensor([true, false]) },
 * );
 * assert.ok(await allClose(sum, Math.LN2));
 * assert.equal(await count.array(), 1);
 * ```
 */
export function softmaxCrossEntropyStats(
  logits: Tensor,
  targets: Tensor,
  options: { mask?: Tensor } = {},
): CrossEntropyStats {
  const op = "softmaxCrossEntropy";
  checkTargets(op, logits, targets, options.mask);
  using keep = keepOf(options.mask, targets.shape);
  using nll = perPosition(logits, targets, keep);
  return { sum: sum(nll), count: countOf(keep, targets) };
}

/**
 * Softmax cross-entropy from unnormalised logits against integer class ids:
 * `loss_i = logsumexp(logits_i) - logits_i[targets_i]`, reduced as asked (default: the mean
 * over unmasked positions). A fully masked input gives 0 (with zero gradient), never NaN.
 * Target ids are not range-checked on the host (out-of-range ids read the edge class).
 *
 * Shapes: `logits: [..., classes]` (f32), `targets: [...]` (i32/u32), `mask` (optional):
 * `targets`' shape or broadcastable to it by NumPy rules (a `[len]` mask applies to every row of
 * `[batch, len]` targets); result `[]`, or `[...]` with `reduction: "none"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, tensor } from "@longseq/tensor";
 * const loss = nn.softmaxCrossEntropy(tensor([[2, 0, 0], [0, 0, 0]]), tensor(new Int32Array([0, 2])));
 * const want = (Math.log(Math.exp(2) + 2) - 2 + Math.log(3)) / 2; // (0.2395 + 1.0986) / 2
 * assert.ok(await allClose(loss, want));
 * ```
 */
export function softmaxCrossEntropy(
  logits: Tensor,
  targets: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  const op = "softmaxCrossEntropy";
  const { mask, reduction = "mean" } = options;
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new TypeError(
      `${op}: reduction must be "mean", "sum" or "none", got ${JSON.stringify(reduction)}`,
    );
  }
  checkTargets(op, logits, targets, mask);
  if (reduction === "none") {
    using keep = keepOf(mask, targets.shape);
    return perPosition(logits, targets, keep);
  }
  const stats = softmaxCrossEntropyStats(logits, targets, { mask });
  return finish(stats, reduction);
}

/** Reduces stats to a mean (dividing by at least 1) or a sum; frees them. */
function finish({ sum: s, count }: CrossEntropyStats, reduction: "mean" | "sum"): Tensor {
  try {
    if (reduction === "sum") return reshape(s, s.shape); // a traced handle, unlike view()
    using atLeast1 = maximum(count, 1);
    return div(s, atLeast1);
  } finally {
    s.dispose();
    count.dispose();
  }
}

/** Options of {@linkcode chunkedLmLoss}. */
export interface ChunkedLmLossOptions {
  /** Sequence positions per slice (the last slice may be shorter). */
  chunkSize: number;
  /** Which positions count, `[batch, len]` or broadcastable to it (bool, or non-zero numbers). */
  mask?: Tensor;
  /** `"mean"` (default, 0 when everything is masked) or `"sum"` over unmasked positions. */
  reduction?: "mean" | "sum";
  /**
   * A position-wise function run on each slice of `hidden` before the head, such as a final
   * layer norm (`{ params: p.norm, apply: norm.apply }`), and differentiated with respect to
   * its params too. It is recomputed slice by slice in the backward pass, so its output never
   * exists whole: `[batch, len, d]` less memory than applying it to `hidden` first.
   */
  before?: ChunkPrelude;
}

/** A position-wise function of {@linkcode ChunkedLmLossOptions.before} and its params. */
export interface ChunkPrelude {
  /** The function's params (any pytree of tensors). */
  params: unknown;
  /** Maps a `[batch, slice, d]` slice to `[batch, slice, d']` (`d'` the head's input). */
  apply: (params: never, x: Tensor) => Tensor;
}

/**
 * The language-model head and its loss, chunked over the sequence: for each slice of
 * `chunkSize` positions it computes `logits = hidden @ head.w + head.b` and the summed
 * softmax cross-entropy against `targets`, in the forward and (recomputing) the backward pass,
 * so `[batch, len, vocab]` logits never exist at once: only `[batch, chunkSize, vocab]`.
 * Equals `softmaxCrossEntropy(linear(hidden), targets, { mask })` up to the order of the sum.
 *
 * Shapes: `hidden: [batch, len, d]`, `head: { w: [d, vocab], b?: [vocab] }` (a
 * {@linkcode linear} layer's params), `targets: [batch, len]` (i32/u32), `mask: [batch, len]` or
 * broadcastable to it (`[len]`, `[batch, 1]`); result `[]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, ones, random, zeros } from "@longseq/tensor";
 * const head = nn.linear({ inFeatures: 8, outFeatures: 256 }).init(random.key(0));
 * const [h, targets] = [ones([2, 100, 8]), zeros([2, 100], { dtype: "i32" })];
 * const loss = nn.chunkedLmLoss(h, head, targets, { chunkSize: 16 });
 * const logits = nn.linear({ inFeatures: 8, outFeatures: 256 }).apply(head, h); // all at once
 * assert.ok(await allClose(loss, nn.softmaxCrossEntropy(logits, targets), { rtol: 1e-5 }));
 * ```
 */
export function chunkedLmLoss(
  hidden: Tensor,
  head: LinearParams,
  targets: Tensor,
  options: ChunkedLmLossOptions,
): Tensor {
  const op = "chunkedLmLoss";
  const { chunkSize, mask, reduction = "mean", before } = options ?? {};
  if (before !== undefined && typeof before?.apply !== "function") {
    throw new TypeError(`${op}: before must be { params, apply(params, x) }`);
  }
  if (!(hidden instanceof Tensor) || hidden.rank !== 3) {
    throw new RangeError(
      `${op}: hidden must be a [batch, len, d] tensor, got ${
        hidden instanceof Tensor ? fmt(hidden.shape) : typeof hidden
      }`,
    );
  }
  if (reduction !== "mean" && reduction !== "sum") {
    throw new TypeError(
      `${op}: reduction must be "mean" or "sum", got ${JSON.stringify(reduction)}`,
    );
  }
  const [b, len] = hidden.shape;
  const w = head?.w;
  const d = before ? w?.shape?.[0] : hidden.shape[2];
  if (!(w instanceof Tensor) || w.rank !== 2) {
    throw new TypeError(`${op}: head must be { w: [${d}, vocab], b?: [vocab] }`);
  }
  checkParam(op, "head.w", w, [d, w.shape[1]]);
  if (head.b !== undefined) checkParam(op, "head.b", head.b, [w.shape[1]]);
  if (!(targets instanceof Tensor) || fmt(targets.shape) !== fmt([b, len])) {
    throw new RangeError(
      `${op}: targets must have shape ${fmt([b, len])} (hidden ${fmt(hidden.shape)} without d), ` +
        `got ${targets instanceof Tensor ? fmt(targets.shape) : typeof targets}`,
    );
  }
  checkTargets(op, hidden, targets, mask); // dtypes and mask shape (hidden stands in for logits)
  // The mask at the targets' shape, so the chunking slices it along the sequence like them.
  using keep = keepOf(mask, targets.shape);
  const x = keep ? { h: hidden, t: targets, m: keep } : { h: hidden, t: targets };
  const total =
    (before
      ? lmSum({ chunkSize }, before.apply)({ head, before: before.params }, x)
      : lmSum({ chunkSize })({ head }, x)) as Tensor;
  return finish({ sum: total, count: countOf(keep, targets) }, reduction);
}

/**
 * The chunked sum of per-position losses (a fresh chunked function per chunk size), with
 * `prelude` run on each slice of the hidden states first.
 */
function lmSum(spec: { chunkSize: number }, prelude?: ChunkPrelude["apply"]) {
  return chunkedSum(
    (p: { head: LinearParams; before?: unknown }, x: { h: Tensor; t: Tensor; m?: Tensor }) => {
      using pre = prelude ? prelude(p.before as never, x.h) : null;
      const hs = pre ?? x.h;
      using keep = keepOf(x.m, x.t.shape);
      // Masked positions' hidden states become 0 before the head, so an inf or NaN there cannot
      // reach the head's gradient (`h^T dlogits` would be `inf * 0`).
      using keepRow = keep ? expandDims(keep, -1) : null;
      using h = keepRow ? where(keepRow, hs, 0) : null;
      using logits = affine(p.head.w, p.head.b, h ?? hs);
      using nll = perPosition(logits, x.t, keep);
      return sum(nll);
    },
    spec,
    1,
  );
}

const LN2 = Math.log(2);

/**
 * Converts a loss in nats per token (natural log, as the cross-entropy here) to bits per
 * token (bits per byte / per character for byte-level models like enwik8): `nats / ln 2`.
 * Shapes: a number gives a number, a tensor (any shape) an f32 tensor of its shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * assert.equal(nn.bitsPerToken(Math.LN2), 1);
 * ```
 */
export function bitsPerToken(lossNats: number): number;
/** The same for a tensor of losses (elementwise). */
export function bitsPerToken(lossNats: Tensor): Tensor;
export function bitsPerToken(lossNats: number | Tensor): number | Tensor {
  return typeof lossNats === "number" ? lossNats / LN2 : div(lossNats, LN2);
}

/**
 * Perplexity from a mean loss in nats per token: `exp(loss)`.
 * Shapes: a number gives a number, a tensor (any shape) an f32 tensor of its shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * assert.ok(Math.abs(nn.perplexity(Math.log(50)) - 50) < 1e-9);
 * ```
 */
export function perplexity(lossNats: number): number;
/** The same for a tensor of losses (elementwise). */
export function perplexity(lossNats: Tensor): Tensor;
export function perplexity(lossNats: number | Tensor): number | Tensor {
  return typeof lossNats === "number" ? Math.exp(lossNats) : exp(lossNats);
}
