/**
 * CPU reference of block-sparse causal attention (the Sparse Transformer's factorised
 * patterns): for each query row, only the key blocks its query block's tile list names are
 * visited, and inside a tile the pattern's predicate decides which keys count. Sums run in
 * float64; under `half` the f16 operands are read as they are and `o`, `dq`, `dk`, `dv` are
 * stored as f16. Also defines the layout and pattern types both backends share.
 * @module
 */
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { BlockSparseSpec, PatternSpec } from "../specs/block_sparse.ts";
import type { KernelTable } from "../backend.ts";

/** Whether query `i` may attend to key `j` under `p` (causal). */
export function patternAllows(p: PatternSpec, i: number, j: number): boolean {
  if (j > i) return false;
  const l = p.stride;
  const fixed = p.kind === "fixed";
  if (p.part !== "b" && (fixed ? Math.floor(i / l) === Math.floor(j / l) : i - j < l)) return true;
  if (p.part !== "a" && (fixed ? j % l >= l - p.c : (i - j) % l === 0)) return true;
  return false;
}

/** Calls `f(j)` for every key `j` that query `i` of sequence `g` attends to. */
function eachKey(
  s: BlockSparseSpec,
  mask: Uint8Array | null,
  g: number,
  i: number,
  f: (j: number) => void,
): void {
  const { layout: { rowPtr, cols, blockSize: bs }, n, pattern } = s;
  const mrow = Math.floor(g / s.heads) * n;
  const qb = Math.floor(i / bs);
  for (let t = rowPtr[qb]; t < rowPtr[qb + 1]; t++) {
    const end = Math.min(cols[t] * bs + bs, n);
    for (let j = cols[t] * bs; j < end; j++) {
      if (patternAllows(pattern, i, j) && (!mask || mask[mrow + j])) f(j);
    }
  }
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, d: number): number {
  let s = 0;
  for (let e = 0; e < d; e++) s += a[ao + e] * b[bo + e];
  return s;
}

/**
 * Forward pass: `o = softmax(q k^T) v` over the allowed keys of each row and
 * `lse = logsumexp(q k^T)` over them; a row without allowed keys gets `o = 0`, `lse = -inf`.
 * `q, k, v: [groups, n, d]`, `mask: [groups / heads, n]` (0 = padded key) or null.
 */
export function blockSparseForwardCpu(
  device: CpuDevice,
  q: CpuStorage,
  k: CpuStorage,
  v: CpuStorage,
  mask: CpuStorage | null,
  s: BlockSparseSpec,
): [CpuStorage, CpuStorage] {
  const { groups, n, d } = s;
  const Q = q.data as Float32Array, K = k.data as Float32Array, V = v.data as Float32Array;
  const M = mask ? (mask.data as Uint8Array) : null;
  const o = s.half ? new Float16Array(groups * n * d) : new Float32Array(groups * n * d);
  const lse = new Float32Array(groups * n);
  const keys: number[] = [], scores: number[] = [];
  const acc = new Float64Array(d);
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < n; i++) {
      const row = g * n + i;
      keys.length = 0;
      scores.length = 0;
      let m = -Infinity;
      eachKey(s, M, g, i, (j) => {
        const sc = dot(Q, row * d, K, (g * n + j) * d, d);
        keys.push(j);
        scores.push(sc);
        if (sc > m) m = sc;
      });
      if (keys.length === 0) {
        lse[row] = -Infinity;
        continue;
      }
      acc.fill(0);
      let z = 0;
      keys.forEach((j, t) => {
        const p = Math.exp(scores[t] - m);
        z += p;
        const vo = (g * n + j) * d;
        for (let e = 0; e < d; e++) acc[e] += p * V[vo + e];
      });
      for (let e = 0; e < d; e++) o[row * d + e] = acc[e] / z;
      lse[row] = m + Math.log(z);
    }
  }
  return [device.adopt(o), device.adopt(lse)];
}

/**
 * Backward pass from the saved `lse` and `delta = sum(do * o, -1) - dlse` (both
 * `[groups, n]`): with `p = exp(q.k - lse)` and `ds = p (do.v - delta)` on allowed pairs,
 * `dq = ds k`, `dk = ds^T q`, `dv = p^T do`.
 */
export function blockSparseBackwardCpu(
  device: CpuDevice,
  [q, k, v, dout, lse, delta]: readonly CpuStorage[],
  mask: CpuStorage | null,
  s: BlockSparseSpec,
): [CpuStorage, CpuStorage, CpuStorage] {
  const { groups, n, d } = s;
  const [Q, K, V, DO, L, DL] = [q, k, v, dout, lse, delta].map((x) => x.data as Float32Array);
  const M = mask ? (mask.data as Uint8Array) : null;
  const dq = new Float64Array(groups * n * d);
  const dk = new Float64Array(groups * n * d);
  const dv = new Float64Array(groups * n * d);
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < n; i++) {
      const row = g * n + i, qo = row * d;
      eachKey(s, M, g, i, (j) => {
        const ko = (g * n + j) * d;
        const p = Math.exp(dot(Q, qo, K, ko, d) - L[row]);
        const ds = p * (dot(DO, qo, V, ko, d) - DL[row]);
        for (let e = 0; e < d; e++) {
          dq[qo + e] += ds * K[ko + e];
          dk[ko + e] += ds * Q[qo + e];
          dv[ko + e] += p * DO[qo + e];
        }
      });
    }
  }
  const narrow = (x: Float64Array) => s.half ? Float16Array.from(x) : Float32Array.from(x);
  return [dq, dk, dv].map((x) => device.adopt(narrow(x))) as [
    CpuStorage,
    CpuStorage,
    CpuStorage,
  ];
}

/** The block-sparse family's kernels (inputs end with the optional bool key mask). */
export const blockSparseKernels: KernelTable = {
  blockSparseAttention: (d: CpuDevice, [q, k, v, mask]: CpuStorage[], s: BlockSparseSpec) =>
    blockSparseForwardCpu(d, q, k, v, mask ?? null, s),
  blockSparseAttentionBackward: (d: CpuDevice, xs: CpuStorage[], s: BlockSparseSpec) =>
    blockSparseBackwardCpu(d, xs.slice(0, 6), xs[6] ?? null, s),
};
