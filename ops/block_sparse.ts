/**
 * The block-sparse attention primitive: causal softmax attention restricted to a factorised
 * pattern, computing only the score tiles of its block layout, with CPU and WebGPU kernels and
 * a VJP rule that recomputes the probabilities from the saved log-sum-exp (no score matrix is
 * ever stored). The user-facing function that builds the layout is
 * `nn/sparse_attention.ts`'s `blockSparseAttention`.
 * @module
 */
import type { BlockSparseSpec } from "../kernels/specs/block_sparse.ts";
import { bind, definePrimitive, refuseSecondOrder } from "./primitive.ts";
import { fmt, Tensor } from "./tensor.ts";
import { sameDevice } from "./validate.ts";
import { rowDelta } from "./chunk_attention.ts";
import { launchWidened } from "./widen.ts";

export type { BlockLayout, BlockSparseSpec, PatternSpec } from "../kernels/specs/block_sparse.ts";

/** Static parameters: the kernel spec and whether a key mask is the last input. */
interface Params {
  readonly spec: BlockSparseSpec;
  readonly masked: boolean;
}

// The backward kernels as a primitive of their own, so the rule's outputs are ordinary tensors.
const backwardPrim = definePrimitive<Params>({
  name: "blockSparseAttentionBackward",
  forward: (inputs, { spec }) => {
    const out = { shape: inputs[0].shape, dtype: "f32" } as const;
    return launchWidened("blockSparseAttentionBackward", inputs, spec, [out, out, out], [0, 1, 2]);
  },
  vjp: refuseSecondOrder("blockSparseAttention", "nn.denseMaskedAttention"),
});

const forwardPrim = definePrimitive<Params>({
  name: "blockSparseAttention",
  forward: (inputs, { spec }) => {
    const shape = inputs[0].shape;
    return launchWidened("blockSparseAttention", inputs, spec, [
      { shape, dtype: "f32" },
      { shape: shape.slice(0, -1), dtype: "f32" },
    ], [0]);
  },
  // With p = exp(s - lse): dv = p^T do, ds = p (do v^T - delta) with delta = rowsum(do o) -
  // dlse (the lse output's own cotangent enters through delta), dq = ds k, dk = ds^T q.
  vjp: ([dout, dlse], { inputs, outputs: [o, lse], params }) => {
    const [q, k, v, mask] = inputs;
    // f32 also under mixed precision (a softmax statistic, as lse).
    using delta = rowDelta(dout, o, dlse);
    const ins = [q, k, v, dout, lse, delta];
    if (mask) ins.push(mask);
    const [dq, dk, dv] = bind(backwardPrim, ins, params);
    return [dq, dk, dv, ...(mask ? [null] : [])];
  },
});

/**
 * Block-sparse causal attention on prepared operands: `q, k, v: [batch, heads, n, d]`, an
 * optional key mask `[batch, n]` (bool, false = padded key) and a spec whose layout and
 * pattern describe which tiles and keys are used. Returns `[o, lse]` (`[batch, heads, n, d]`
 * and `[batch, heads, n]`): a row with no allowed key has `o = 0` and `lse = -inf`.
 * Queries are not scaled here. `q`, `k` and `v` are f32, or all f16 (mixed precision): `o`
 * and the gradients are then f16 and `lse` stays f32; kernels that read f16 (the CPU
 * reference's and WebGPU's) take the operands as they are, others read f32 copies made for
 * the call. Validates everything before any device work.
 */
export function blockSparsePrimitive(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  keyMask: Tensor | null,
  spec: Omit<BlockSparseSpec, "groups" | "heads" | "n" | "d">,
): [Tensor, Tensor] {
  const op = "blockSparseAttention";
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
    if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor`);
    if (t.dtype !== "f32" && t.dtype !== "f16") {
      throw new TypeError(`${op}: ${name} must be f32 or f16, got ${t.dtype}`);
    }
    if (t.dtype !== q.dtype) {
      throw new TypeError(
        `${op}: q, k and v must share a dtype, got ${name} ${t.dtype} (q ${q.dtype})`,
      );
    }
  }
  if (q.rank !== 4 || fmt(k.shape) !== fmt(q.shape) || fmt(v.shape) !== fmt(q.shape)) {
    throw new RangeError(
      `${op}: q, k and v must share one shape [batch, heads, n, d], got q ${fmt(q.shape)}, ` +
        `k ${fmt(k.shape)}, v ${fmt(v.shape)}`,
    );
  }
  const [b, h, n, d] = q.shape;
  if (n !== spec.layout.len) {
    throw new RangeError(
      `${op}: the layout was made for length ${spec.layout.len} but q has length ${n} ` +
        `(${fmt(q.shape)})`,
    );
  }
  if (keyMask !== null) {
    if (!(keyMask instanceof Tensor) || keyMask.dtype !== "bool") {
      throw new TypeError(`${op}: the key mask must be a bool Tensor`);
    }
    if (fmt(keyMask.shape) !== fmt([b, n])) {
      throw new RangeError(
        `${op}: the key mask must be [batch, n] = ${fmt([b, n])}, got ${fmt(keyMask.shape)}`,
      );
    }
  }
  sameDevice(op, keyMask ? [q, k, v, keyMask] : [q, k, v]);
  const full: BlockSparseSpec = { ...spec, groups: b * h, heads: h, n, d };
  const ins = keyMask ? [q, k, v, keyMask] : [q, k, v];
  const [o, lse] = bind(forwardPrim, ins, { spec: full, masked: !!keyMask });
  return [o, lse];
}
