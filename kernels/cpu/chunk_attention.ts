/**
 * CPU reference of the fused chunk-attention kernels (forward, and the two backward passes),
 * in float64 arithmetic rounded once to f32. Layout, for `R` independent rows of `C` queries
 * against `K` key slots of width `D`: `q [R, C, D]`, `qpos [R, C]` i32, `kcode [R, K]` i32 (the
 * key's position `p`, or `-p - 1` when the key is masked), optional `bias [R, C, K]`, and
 * `k`, `v [R, Kc, D]`: each row's own chunk of `Kc` keys. The `K = offsets.length * Kc` key
 * slots of row `r` are the chunks `(c + offset) mod chunks` of its group of `chunks` rows
 * (`c = r mod chunks`), one block of `Kc` slots per offset: chunked attention's look-around
 * read in place, never copied. Logits: `q . k`, replaced by `maskValue` where the key is
 * masked or (causal) after the query, then by `selfValue` where (selfMask) the positions are
 * equal, plus `bias`.
 * @module
 */
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { ChunkAttnSpec } from "../specs/chunk_attention.ts";
import type { KernelTable } from "../backend.ts";
import { withBias } from "../specs/chunk_attention.ts";

/** The row of `k`/`v` that key-slot block `b` of row `r` reads. */
export function keyRow(s: ChunkAttnSpec, r: number, b: number): number {
  const c = r % s.chunks;
  return r - c + ((((c + s.offsets[b]) % s.chunks) + s.chunks) % s.chunks);
}

/** The element index in `k`/`v` (times `D`) of key slot `j` of row `r`. */
function keyIndex(s: ChunkAttnSpec, r: number, j: number): number {
  return keyRow(s, r, Math.floor(j / s.kc)) * s.kc + (j % s.kc);
}

/** A logit function for row `r`: `(i, j) -> [logit, gradient passes]`. */
function logits(
  s: ChunkAttnSpec,
  q: Float32Array,
  k: Float32Array,
  qpos: Int32Array,
  kcode: Int32Array,
  bias: Float32Array | null,
) {
  const { nq, nk, dim } = s;
  return (r: number, i: number, j: number): [number, boolean] => {
    const qp = qpos[r * nq + i], kc = kcode[r * nk + j];
    const kp = kc >= 0 ? kc : -kc - 1;
    let keep = kc >= 0 && (!s.causal || kp <= qp);
    let l = s.maskValue;
    if (keep) {
      l = 0;
      const qo = (r * nq + i) * dim, ko = keyIndex(s, r, j) * dim;
      for (let d = 0; d < dim; d++) l += q[qo + d] * k[ko + d];
      l = Math.fround(l);
    }
    if (s.selfMask && kp === qp) {
      l = s.selfValue;
      keep = false;
    }
    // Rounded like the f32 kernels: next to a mask constant a small bias vanishes.
    if (bias) l = Math.fround(l + bias[(r * nq + i) * nk + j]);
    return [l, keep];
  };
}

/**
 * Forward pass: `o [R, C, D]`, `lse [R, C]` and `stat [R, C, 2]` = `(max logit, log sum)`, which
 * lets the backward pass rebuild the probabilities exactly even when the logits are huge.
 */
export function chunkAttentionCpu(
  device: CpuDevice,
  [q, k, v, qpos, kcode, bias]: (CpuStorage | null)[],
  s: ChunkAttnSpec,
): [CpuStorage, CpuStorage, CpuStorage] {
  const { rows, nq, nk, dim } = s;
  const vd = v!.data as Float32Array;
  const logit = logits(
    s,
    q!.data as Float32Array,
    k!.data as Float32Array,
    qpos!.data as Int32Array,
    kcode!.data as Int32Array,
    (bias?.data ?? null) as Float32Array | null,
  );
  const o = s.half ? new Float16Array(rows * nq * dim) : new Float32Array(rows * nq * dim);
  const lse = new Float32Array(rows * nq);
  const stat = new Float32Array(rows * nq * 2);
  const l = new Float64Array(nk), acc = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < nq; i++) {
      let m = -Infinity;
      for (let j = 0; j < nk; j++) m = Math.max(m, l[j] = logit(r, i, j)[0]);
      let sum = 0;
      acc.fill(0);
      for (let j = 0; j < nk; j++) {
        const p = Math.exp(l[j] - m);
        sum += p;
        const vo = keyIndex(s, r, j) * dim;
        for (let d = 0; d < dim; d++) acc[d] += p * vd[vo + d];
      }
      const row = r * nq + i;
      for (let d = 0; d < dim; d++) o[row * dim + d] = acc[d] / sum;
      lse[row] = m + Math.log(sum);
      stat[2 * row] = m;
      stat[2 * row + 1] = Math.log(sum);
    }
  }
  return [device.adopt(o), device.adopt(lse), device.adopt(stat)];
}

/**
 * Backward pass given `dO [R, C, D]` and `delta [R, C]` = `rowsum(dO * o) - dLse`:
 * `ds = p * (dO . v - delta)` where the logit is `q . k`, and `dq = ds k`, `dk = ds^T q`,
 * `dv = p^T dO`, with `dk`, `dv [R, Kc, D]` summed over every slot that reads a key.
 */
export function chunkAttentionGradCpu(
  device: CpuDevice,
  [q, k, v, qpos, kcode, bias, stat, dO, delta]: (CpuStorage | null)[],
  s: ChunkAttnSpec,
): [CpuStorage, CpuStorage, CpuStorage] {
  const { rows, nq, nk, dim } = s;
  const [qd, kd, vd] = [q, k, v].map((t) => t!.data as Float32Array);
  const [st, g, dl] = [stat, dO, delta].map((t) => t!.data as Float32Array);
  const logit = logits(
    s,
    qd,
    kd,
    qpos!.data as Int32Array,
    kcode!.data as Int32Array,
    (bias?.data ?? null) as Float32Array | null,
  );
  const dq = new Float64Array(rows * nq * dim);
  // dk and dv are per row of k and v: a key seen from several rows sums what each sends.
  const dk = new Float64Array(rows * s.kc * dim), dv = new Float64Array(rows * s.kc * dim);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < nq; i++) {
      const row = r * nq + i;
      for (let j = 0; j < nk; j++) {
        const [l, pass] = logit(r, i, j);
        const p = Math.exp(l - st[2 * row] - st[2 * row + 1]);
        const ko = keyIndex(s, r, j) * dim;
        let dp = 0;
        for (let d = 0; d < dim; d++) {
          dp += g[row * dim + d] * vd[ko + d];
          dv[ko + d] += p * g[row * dim + d];
        }
        if (!pass) continue;
        const ds = p * (dp - dl[row]);
        for (let d = 0; d < dim; d++) {
          dq[row * dim + d] += ds * kd[ko + d];
          dk[ko + d] += ds * qd[row * dim + d];
        }
      }
    }
  }
  return [dq, dk, dv].map((a) =>
    device.adopt(s.half ? Float16Array.from(a) : Float32Array.from(a))
  ) as [
    CpuStorage,
    CpuStorage,
    CpuStorage,
  ];
}

/** The chunk-attention family's kernels. */
export const chunkAttentionKernels: KernelTable = {
  chunkAttention: (d: CpuDevice, xs: CpuStorage[], s: ChunkAttnSpec) =>
    chunkAttentionCpu(d, withBias(xs, s), s),
  chunkAttentionGrad: (d: CpuDevice, xs: CpuStorage[], s: ChunkAttnSpec) =>
    chunkAttentionGradCpu(d, withBias(xs, s), s),
};
