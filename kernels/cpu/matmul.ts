/**
 * CPU reference for batched matrix products, and the layout both backends share: a batch of
 * `[m, k] @ [k, n]` products whose operands may be stored transposed and whose batch indices
 * broadcast through per-operand strides (0 on broadcast axes).
 * @module
 */
import type { CpuDevice, CpuStorage } from "./device.ts";
import { dtypeInfo } from "../dtype.ts";
import { batchCount, type MatmulSpec } from "../specs/matmul.ts";
import type { KernelTable } from "../backend.ts";

/** Element offsets of A's and B's matrices for output matrix `z`. */
export function batchOffsets(spec: MatmulSpec, z: number): [number, number] {
  let a = 0, b = 0, rem = z;
  for (let d = spec.batchShape.length - 1; d >= 0; d--) {
    const c = rem % spec.batchShape[d];
    rem = (rem - c) / spec.batchShape[d];
    a += c * spec.aStrides[d];
    b += c * spec.bStrides[d];
  }
  return [a, b];
}

/**
 * `out[z] = A[z] @ B[z]` for every batch index. Each output element is summed over `p` in
 * ascending order in float64 and rounded to f32 once, at the end, so the result does not
 * depend on how the loops are blocked. Four rows of A share each pass over a row of B (one
 * load of `B[p, j]` feeds four accumulators), and a transposed B is first copied to `[k, n]`
 * so the inner loop reads it contiguously. Returns contiguous `[...batch, m, n]` storage of
 * the spec's dtype (f16 sums in float64 too, rounded once to f16).
 */
export function matmulCpu(
  device: CpuDevice,
  a: CpuStorage,
  b: CpuStorage,
  spec: MatmulSpec,
): CpuStorage {
  const { m, n, k, transA, transB } = spec;
  const A = a.data;
  const count = batchCount(spec);
  const out = dtypeInfo(spec.dtype ?? "f32").create(count * m * n);
  const rows = [0, 1, 2, 3].map(() => new Float64Array(n));
  const [r0, r1, r2, r3] = rows;
  const [ai, ap] = transA ? [1, m] : [k, 1];
  const bT = transB ? new Float32Array(k * n) : null;
  for (let z = 0; z < count; z++) {
    const [aOff, bOff] = batchOffsets(spec, z);
    let B = b.data, base = bOff;
    if (bT) {
      // B[z] is stored [n, k]; lay it out as [k, n].
      for (let j = 0; j < n; j++) {
        for (let p = 0; p < k; p++) bT[p * n + j] = B[bOff + j * k + p];
      }
      B = bT;
      base = 0;
    }
    for (let i = 0; i < m; i += 4) {
      const h = Math.min(4, m - i);
      for (let r = 0; r < h; r++) rows[r].fill(0);
      const a0 = aOff + i * ai, a1 = a0 + ai, a2 = a1 + ai, a3 = a2 + ai;
      for (let p = 0; p < k; p++) {
        const bRow = base + p * n;
        const pp = p * ap;
        if (h === 4) {
          const v0 = A[a0 + pp], v1 = A[a1 + pp], v2 = A[a2 + pp], v3 = A[a3 + pp];
          for (let j = 0; j < n; j++) {
            const bv = B[bRow + j];
            r0[j] += v0 * bv;
            r1[j] += v1 * bv;
            r2[j] += v2 * bv;
            r3[j] += v3 * bv;
          }
        } else {
          for (let r = 0; r < h; r++) {
            const v = A[a0 + r * ai + pp], row = rows[r];
            for (let j = 0; j < n; j++) row[j] += v * B[bRow + j];
          }
        }
      }
      for (let r = 0; r < h; r++) out.set(rows[r], (z * m + i + r) * n);
    }
  }
  return device.adopt(out);
}

/** The matmul family's kernels. */
export const matmulKernels: KernelTable = {
  matmul: (d: CpuDevice, [a, b]: CpuStorage[], s: MatmulSpec) => matmulCpu(d, a, b, s),
};
