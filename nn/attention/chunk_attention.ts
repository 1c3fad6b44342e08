/**
 * The attention core every layer reduces to, as one differentiable node with a hand-written
 * backward pass (the structure of a fused attention kernel): its forward pass keeps only `q`,
 * `k`, `v`, the output, the per-query logsumexp and the small position tensors the masks are
 * built from; its backward pass recomputes the logits and probabilities block by block
 * instead of holding them. It equals {@linkcode attendChunks} (the plain composition) in values
 * and gradients, with no `[..., queries, keys]` tensor kept between the passes.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { add, cast, mul, sub } from "../../ops/binary.ts";
import { equal, greaterEqual, logicalAnd, logicalNot, where } from "../../ops/compare.ts";
import { matmul } from "../../ops/matmul.ts";
import { sum } from "../../ops/reduce.ts";
import { broadcastTo, reshape } from "../../ops/shape.ts";
import { fusedChunkAttention, fusedChunkAttentionSupported } from "../../ops/chunk_attention.ts";
import { logsumexp, softmax } from "../../ops/softmax.ts";
import { customVjp } from "../../autodiff/custom.ts";
import { applyDropout } from "../layers/dropout.ts";
import { maskValues } from "./core.ts";
import { lookAround } from "./chunks.ts";

/** The masks of {@linkcode chunkAttention}, given by positions. */
export interface ChunkMasks {
  /** i32 original position of each query, `[..., nq]` (broadcastable to q's leading axes). */
  qpos: Tensor;
  /** i32 original position of each key slot, `[..., nk]`. */
  kpos: Tensor;
  /** Bool per key slot, `[..., nk]`: false masks the key (padding, outside the window). */
  kvalid?: Tensor | null;
  /** Mask keys whose position is after the query's. */
  causal: boolean;
  /** Replace a query's logit against its own position by the self constant (shared QK). */
  selfMask: boolean;
  /** Constant f32 added to the masked logits, `[..., nq, nk]` (no gradient), or null. */
  bias?: Tensor | null;
  /** Dropout on the probabilities, replayed from its key in the backward pass. */
  dropout?: { rate: number; key?: Tensor };
  /**
   * Look-around: `k` and `v` hold each chunk's own keys, `[..., nChunks, kc, dk]` with the
   * chunk axis third from the end (as in `q`), and the key slots of chunk `c` are chunks
   * `(c + offset) mod nChunks` for each offset, in order (`lookAround(k, rank - 3, offsets)`).
   * The fused kernels read them in place; `kpos`, `kvalid` and `bias` describe all
   * `offsets.length * kc` slots.
   */
  lookAround?: readonly number[];
  /**
   * `"fused"`: the fused kernels (`ops/chunk_attention.ts`); `"composed"`: primitives with a
   * hand-written backward pass. Default: fused, except with active dropout or on a device
   * with too few storage bindings.
   */
  impl?: "fused" | "composed";
}

interface Aux {
  qpos: Tensor;
  kpos: Tensor;
  kvalid: Tensor | null;
  bias: Tensor | null;
  key: Tensor | null;
  causal: boolean;
  selfMask: boolean;
  rate: number;
  /** The dtype whose mask constants apply (f16's under mixed precision). */
  maskDtype: "f32" | "f16";
}

/** Masked logits of one call (fresh tensor). */
function maskedLogits(q: Tensor, k: Tensor, a: Aux): Tensor {
  const mv = maskValues(a.maskDtype);
  let l = matmul(q, k, { transposeB: true });
  const step = (next: Tensor) => (l.dispose(), l = next);
  using qp = reshape(a.qpos, [...a.qpos.shape, 1]);
  using kp = reshape(a.kpos, [...a.kpos.shape.slice(0, -1), 1, a.kpos.shape.at(-1)!]);
  let keep: Tensor | null = a.causal ? greaterEqual(qp, kp) : null;
  if (a.kvalid) {
    using kv = reshape(a.kvalid, [...a.kvalid.shape.slice(0, -1), 1, a.kvalid.shape.at(-1)!]);
    const both = keep ? logicalAnd(keep, kv) : kv.view(kv.shape);
    keep?.dispose();
    keep = both;
  }
  if (keep) {
    step(where(keep, l, mv.mask));
    keep.dispose();
  }
  if (a.selfMask) {
    using self = equal(qp, kp);
    step(where(self, mv.self, l));
  }
  if (a.bias) step(add(l, a.bias));
  return l;
}

/** Where the logits are the raw `q k^T` (not replaced by a constant): gradients flow there. */
function passThrough(a: Aux): Tensor | null {
  using qp = reshape(a.qpos, [...a.qpos.shape, 1]);
  using kp = reshape(a.kpos, [...a.kpos.shape.slice(0, -1), 1, a.kpos.shape.at(-1)!]);
  let pass: Tensor | null = a.causal ? greaterEqual(qp, kp) : null;
  const and = (m: Tensor) => {
    const next = pass ? logicalAnd(pass, m) : m.view(m.shape);
    pass?.dispose();
    pass = next;
  };
  if (a.kvalid) {
    using kv = reshape(a.kvalid, [...a.kvalid.shape.slice(0, -1), 1, a.kvalid.shape.at(-1)!]);
    and(kv);
  }
  if (a.selfMask) {
    using self = equal(qp, kp);
    using notSelf = logicalNot(self);
    and(notSelf);
  }
  return pass;
}

/**
 * Probabilities by a max-shifted softmax, not `exp(logits - lse)`: rows whose keys are all
 * masked have logits near `-1e5` or `-1e9`, where f32 spacing is 0.008 or 64, so only the
 * shifted form sums to one.
 */
function probabilities(q: Tensor, k: Tensor, a: Aux): Tensor {
  using l = maskedLogits(q, k, a);
  return softmax(l, -1);
}

function dropped(p: Tensor, a: Aux): Tensor {
  return a.rate > 0 && a.key
    ? applyDropout(p, a.rate, { key: a.key, training: true })
    : p.view(p.shape);
}

function forward(q: Tensor, k: Tensor, v: Tensor, a: Aux): [Tensor, Tensor] {
  using l = maskedLogits(q, k, a);
  const lse = logsumexp(l, -1);
  using p = softmax(l, -1);
  using pd = dropped(p, a);
  return [matmul(pd, v), lse];
}

const core = customVjp(
  (q: Tensor, k: Tensor, v: Tensor, a: Aux): [Tensor, Tensor] => forward(q, k, v, a),
  {
    fwd: (q, k, v, a) => {
      const out = forward(q, k, v, a);
      return [out, { q, k, v, a, o: out[0], lse: out[1] }];
    },
    bwd: ({ q, k, v, a, o }, [dO, dLse]) => {
      const p = probabilities(q, k, a);
      try {
        const g = dO ?? null;
        let ds: Tensor;
        let dv: Tensor | null = null;
        if (g) {
          using pd = dropped(p, a);
          dv = matmul(pd, g, { transposeA: true });
          using dpd = matmul(g, v, { transposeB: true });
          using dp = dropped(dpd, a);
          // rowsum(P * dP) = rowsum(dO * O), with or without dropout.
          using go = mul(g, o);
          using dsum = sum(go, -1, { keepdims: true });
          using inner = sub(dp, dsum);
          ds = mul(p, inner);
        } else ds = mul(p, 0);
        if (dLse) {
          using dl = reshape(dLse, [...dLse.shape, 1]);
          using pl = mul(p, dl);
          const next = add(ds, pl);
          ds.dispose();
          ds = next;
        }
        const pass = passThrough(a);
        if (pass) {
          const next = where(pass, ds, 0);
          ds.dispose();
          pass.dispose();
          ds = next;
        }
        const dq = matmul(ds, k);
        const dk = matmul(ds, q, { transposeA: true });
        ds.dispose();
        return [dq, dk, dv ?? mul(v, 0), null];
      } finally {
        p.dispose();
      }
    },
  },
);

/**
 * Masked softmax attention on aligned blocks with a memory-lean backward pass:
 * `logits = q k^T`; keys with `kvalid` false, or (causal) after the query's position, get the
 * mask constant; with `selfMask` a query's logit against its own position gets the self
 * constant (docs/algorithms.md#masks); then `o = softmax(logits + bias) v` and
 * `lse = logsumexp(logits + bias)`. Differentiable in `q`, `k`, `v` (first order).
 *
 * @param q `[..., nq, dk]`; `k`, `v` `[..., nk, dk]` with the same leading axes.
 * @returns `o: [..., nq, dk]`, `lse: [..., nq]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, ones, tensor } from "@longseq/tensor";
 * const pos = tensor(new Int32Array([0, 1, 2]));
 * const { o, lse } = nn.chunkAttention(ones([1, 3, 4]), ones([1, 3, 4]), ones([1, 3, 4]), {
 *   qpos: pos, kpos: pos, causal: true, selfMask: false,
 * });
 * assert.deepEqual(o.shape, [1, 3, 4]);
 * // Equal logits (4 each): query i sees i + 1 keys, lse = 4 + log(i + 1).
 * assert.ok(await allClose(lse, [[4, 4 + Math.log(2), 4 + Math.log(3)]], { rtol: 1e-5 }));
 * ```
 */
export function chunkAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  m: ChunkMasks,
): { o: Tensor; lse: Tensor } {
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
    if (!(t instanceof Tensor) || !["f32", "f16"].includes(t.dtype) || t.rank < 2) {
      throw new TypeError(`chunkAttention: ${name} must be an f32 or f16 tensor of rank >= 2`);
    }
    if (t.dtype !== q.dtype) {
      throw new TypeError(`chunkAttention: q is ${q.dtype} but ${name} is ${t.dtype}`);
    }
  }
  // Mixed precision: f16 operands with f16 mask constants, softmax statistics in f32.
  return attend(q, k, v, m, q.dtype === "f16" ? "f16" : "f32");
}

/** {@linkcode chunkAttention} on f32 operands with `maskDtype`'s mask constants. */
function attend(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  m: ChunkMasks,
  maskDtype: "f32" | "f16",
): { o: Tensor; lse: Tensor } {
  const drop = m.dropout && m.dropout.rate > 0 && m.dropout.key ? m.dropout : null;
  const a: Aux = {
    qpos: m.qpos,
    kpos: m.kpos,
    kvalid: m.kvalid ?? null,
    bias: m.bias ?? null,
    key: drop?.key ?? null,
    causal: m.causal,
    selfMask: m.selfMask,
    rate: drop?.rate ?? 0,
    maskDtype,
  };
  const fused = m.impl === "fused" ||
    (m.impl !== "composed" && !drop && fusedChunkAttentionSupported(q));
  const offsets = m.lookAround ?? null;
  if (offsets && (q.rank < 3 || k.shape[k.rank - 3] !== q.shape[q.rank - 3])) {
    throw new RangeError(
      `chunkAttention: lookAround needs the chunk axis third from the end of q and k, got ` +
        `q ${fmt(q.shape)} and k ${fmt(k.shape)}`,
    );
  }
  if (!fused) {
    if (q.dtype === "f16") {
      // The composed path computes in f32 on copies (the fused kernels widen internally).
      using q32 = cast(q, "f32"), k32 = cast(k, "f32"), v32 = cast(v, "f32");
      const { o, lse } = composed(q32, k32, v32, a, offsets);
      using o32 = o;
      return { o: cast(o32, "f16"), lse };
    }
    return composed(q, k, v, a, offsets);
  }
  if (drop) throw new TypeError("chunkAttention: the fused kernel does not support dropout");
  return fusedPath(q, k, v, a, offsets);
}

/** The primitives-only path (dropout, or no fused kernels), with look-around copies. */
function composed(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  a: Aux,
  offsets: readonly number[] | null,
): { o: Tensor; lse: Tensor } {
  if (!offsets) {
    const [o, lse] = core(q, k, v, a);
    return { o, lse };
  }
  using kl = lookAround(k, k.rank - 3, offsets);
  using vl = lookAround(v, v.rank - 3, offsets);
  const [o, lse] = core(q, kl, vl, a);
  return { o, lse };
}

/** Flattens the leading axes to rows, materialises the position codes and runs the kernel. */
function fusedPath(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  a: Aux,
  offsets: readonly number[] | null,
): { o: Tensor; lse: Tensor } {
  const lead = q.shape.slice(0, -2);
  const [nq, dim] = q.shape.slice(-2);
  const kc = k.shape[k.rank - 2];
  const nk = (offsets?.length ?? 1) * kc;
  const rows = lead.reduce((x, y) => x * y, 1);
  const mv = maskValues(a.maskDtype);
  const owned: Tensor[] = [];
  const own = (t: Tensor) => (owned.push(t), t);
  try {
    const rowsOf = (t: Tensor, tail: number[]) => {
      const full = [...lead, ...tail];
      const b = t.shape.join() === full.join() ? t : own(broadcastTo(t, full));
      return own(reshape(b, [rows, ...tail]));
    };
    const q3 = rowsOf(q, [nq, dim]), k3 = rowsOf(k, [kc, dim]), v3 = rowsOf(v, [kc, dim]);
    const qpos = rowsOf(a.qpos, [nq]);
    let kcode = rowsOf(a.kpos, [nk]);
    if (a.kvalid) {
      const valid = rowsOf(a.kvalid, [nk]);
      kcode = own(where(valid, kcode, own(sub(-1, kcode))));
    }
    const bias = a.bias ? rowsOf(a.bias, [nq, nk]) : null;
    const chunks = offsets ? q.shape[q.rank - 3] : 1;
    const [o, lse, stat] = fusedChunkAttention(q3, k3, v3, qpos, kcode, bias, {
      causal: a.causal,
      selfMask: a.selfMask,
      maskValue: mv.mask,
      selfValue: mv.self,
    }, { offsets: offsets ?? [0], chunks });
    owned.push(o, lse, stat);
    return { o: reshape(o, [...lead, nq, dim]), lse: reshape(lse, [...lead, nq]) };
  } finally {
    for (const t of owned) t.dispose();
  }
}
