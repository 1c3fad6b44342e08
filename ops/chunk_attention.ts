/**
 * The fused chunk-attention primitive: masked `softmax(q k^T) v` and its logsumexp for many
 * independent rows of queries and key slots in one kernel, with a backward primitive that
 * recomputes the probabilities (flash-attention style) instead of storing them. LSH, local
 * and full attention all reduce to it (`nn/chunk_attention.ts` prepares the inputs).
 * @module
 */
import type { ChunkAttnSpec } from "../kernels/specs/chunk_attention.ts";
import {
  bind,
  definePrimitive,
  type KernelOutput,
  kernelSupported,
  refuseSecondOrder,
} from "./primitive.ts";
import { deviceOf, fmt, Tensor } from "./tensor.ts";
import { sameDevice } from "./validate.ts";
import { cast, mul, sub } from "./binary.ts";
import { sum } from "./reduce.ts";
import { launchWidened } from "./widen.ts";

export type { ChunkAttnSpec } from "../kernels/specs/chunk_attention.ts";

/** f32 outputs of the given shapes. */
const f32 = (...shapes: (readonly number[])[]): KernelOutput[] =>
  shapes.map((shape) => ({ shape, dtype: "f32" }));

const gradPrim = definePrimitive<ChunkAttnSpec>({
  name: "chunkAttentionGrad",
  forward: (xs, s) =>
    launchWidened(
      "chunkAttentionGrad",
      xs,
      s,
      f32([s.rows, s.nq, s.dim], [s.rows, s.kc, s.dim], [s.rows, s.kc, s.dim]),
      [0, 1, 2],
    ),
  vjp: refuseSecondOrder("chunkAttention", "nn.denseMaskedAttention"),
});

const fwdPrim = definePrimitive<ChunkAttnSpec>({
  name: "chunkAttention",
  // Every input, the output and the softmax statistics; not the logsumexp.
  saves: { inputs: [0, 1, 2, 3, 4, 5], outputs: [0, 2] },
  forward: (xs, s) =>
    launchWidened(
      "chunkAttention",
      xs,
      s,
      f32([s.rows, s.nq, s.dim], [s.rows, s.nq], [s.rows, s.nq, 2]),
      [0],
    ),
  vjp: ([dO, dLse], { inputs, outputs, params: s }) => {
    const [q, k, v, qpos, kcode] = inputs;
    // delta = rowsum(dO * o) - dLse: the softmax Jacobian's row term, and the lse's own (in
    // f32 also under mixed precision: it is a softmax statistic).
    // Its temporaries are freed before the kernel runs, so they add nothing to the peak.
    using delta = rowDelta(dO, outputs[0], dLse);
    const rest = s.hasBias ? [inputs[5]] : [];
    const [dq, dk, dv] = bind(gradPrim, [q, k, v, qpos, kcode, ...rest, outputs[2], dO, delta], s);
    return [dq, dk, dv, null, null, ...rest.map(() => null)];
  },
});

/**
 * `rowsum(dO * o) - dLse` in f32 (the softmax Jacobian's row term of a fused attention
 * backward pass), with every temporary freed on return. Under mixed precision the products
 * are rounded to f16 (as an f16 matmul's would be) and summed in f32.
 */
export function rowDelta(dO: Tensor, o: Tensor, dLse: Tensor): Tensor {
  using go = mul(dO, o);
  using go32 = go.dtype === "f32" ? null : cast(go, "f32");
  using rs = sum(go32 ?? go, -1);
  return sub(rs, dLse);
}

/** Whether a device can run the fused kernels (enough storage bindings per shader). */
export function fusedChunkAttentionSupported(t: Tensor): boolean {
  return kernelSupported(deviceOf(t), "chunkAttention") &&
    kernelSupported(deviceOf(t), "chunkAttentionGrad");
}

/**
 * Fused chunk attention: for each of `R` rows, queries `q [R, C, D]` against key slots
 * `k, v [R, K, D]`. With `lookAround = { offsets, chunks }`, `k` and `v` are `[R, Kc, D]` and
 * the `K = offsets.length * Kc` slots of row `r` are rows `(c + offset) mod chunks` of its
 * group (`c = r mod chunks`), read in place (chunked attention's look-around without copies;
 * their gradients come back summed into `[R, Kc, D]`). A key is masked (logit replaced by `maskValue`) where its code `kcode
 * [R, K]` is negative (the code of a masked key at position `p` is `-p - 1`) or, when causal,
 * its position exceeds the query's `qpos [R, C]`; with `selfMask` equal positions get
 * `selfValue`; `bias [R, C, K]` is then added. Returns `o [R, C, D]`, `lse [R, C]` and the
 * backward pass's `stat [R, C, 2]`. Differentiable in `q`, `k`, `v` (first order). `q`, `k`
 * and `v` are f32, or all f16 (mixed precision): kernels that read f16 (the CPU reference's and
 * WebGPU's) take them as they are, others read f32 copies made for the call; `o` and the
 * gradients are f16, and `lse` and `stat` stay f32.
 */
export function fusedChunkAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  qpos: Tensor,
  kcode: Tensor,
  bias: Tensor | null,
  flags: Pick<ChunkAttnSpec, "causal" | "selfMask" | "maskValue" | "selfValue">,
  lookAround: { offsets: readonly number[]; chunks: number } = { offsets: [0], chunks: 1 },
): Tensor[] {
  const op = "fusedChunkAttention";
  const [rows, nq, dim] = q.shape;
  const { offsets, chunks } = lookAround;
  if (
    !Array.isArray(offsets) || offsets.length === 0 || !offsets.every(Number.isSafeInteger) ||
    !Number.isInteger(chunks) || chunks < 1 || rows % chunks !== 0
  ) {
    throw new RangeError(
      `${op}: lookAround needs integer offsets and a chunk count dividing the ${rows} rows, ` +
        `got offsets ${JSON.stringify(offsets)}, chunks ${chunks}`,
    );
  }
  const kc = k.shape[1];
  const nk = offsets.length * kc;
  // f32, or f16 under mixed precision (f32 arithmetic and statistics, f16 operands and o).
  const float = q.dtype === "f16" ? "f16" : "f32";
  const want: [string, Tensor | null, number[], string][] = [
    ["q", q, [rows, nq, dim], float],
    ["k", k, [rows, kc, dim], float],
    ["v", v, [rows, kc, dim], float],
    ["qpos", qpos, [rows, nq], "i32"],
    ["kcode", kcode, [rows, nk], "i32"],
    ["bias", bias, [rows, nq, nk], "f32"],
  ];
  for (const [name, t, shape, dtype] of want) {
    if (t === null) continue;
    if (!(t instanceof Tensor) || fmt(t.shape) !== fmt(shape) || t.dtype !== dtype) {
      throw new RangeError(
        `${op}: ${name} must be ${dtype}${fmt(shape)} (q is ${fmt(q.shape)}, k ${
          fmt(k.shape)
        }), got ${t instanceof Tensor ? `${t.dtype}${fmt(t.shape)}` : typeof t}`,
      );
    }
  }
  const xs = [q, k, v, qpos, kcode, ...(bias ? [bias] : [])];
  sameDevice(op, xs);
  const spec: ChunkAttnSpec = {
    rows,
    nq,
    nk,
    kc,
    offsets: [...offsets],
    chunks,
    dim,
    hasBias: bias !== null,
    ...flags,
  };
  return bind(fwdPrim, xs, spec);
}
