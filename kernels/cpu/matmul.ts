/**
 * CPU reference for batched matrix products, and the layout both backends share: a batch of
 * `[m, k] @ [k, n]` products whose operands may be stored transposed and whose batch indices
 * broadcast through per-operand strides (0 on broadcast axes).
 * @module
 */
import type { CpuDevice, CpuStorage } from "./device.ts";

/** How one batched matmul reads its operands. Every count is in elements. */
export interface MatmulSpec {
  /** The output's batch dimensions (possibly empty). */
  readonly batchShape: readonly number[];
  /** Stride of A's matrices along each batch dimension (0 where A is broadcast). */
  readonly aStrides: readonly number[];
  /** Stride of B's matrices along each batch dimension (0 where B is broadcast). */
  readonly bStrides: readonly number[];
  /** Rows of the product. */
  readonly m: number;
  /** Columns of the product. */
  readonly n: number;
  /** Inner (summed) dimension. */
  readonly k: number;
  /** A is stored `[k, m]` and read transposed. */
  readonly transA: boolean;
  /** B is stored `[n, k]` and read transposed. */
  readonly transB: boolean;
}

/** Number of matrices in the output batch. */
export function batchCount(spec: MatmulSpec): number {
  return spec.batchShape.reduce((x, y) => x * y, 1);
}

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
 * `out[z] = A[z] @ B[z]` for every batch index, in i-k-j order with float64 row accumulators
 * (rounded to f32 once, at the end). Returns contiguous `[...batch, m, n]` f32 storage.
 */
export function matmulCpu(
  device: CpuDevice,
  a: CpuStorage,
  b: CpuStorage,
  spec: MatmulSpec,
): CpuStorage {
  const { m, n, k, transA, transB } = spec;
  const A = a.data, B = b.data;
  const count = batchCount(spec);
  const out = new Float32Array(count * m * n);
  const row = new Float64Array(n);
  // Element steps of A along (i, p) and of B along (p, j), whichever way each is stored.
  const [ai, ap] = transA ? [1, m] : [k, 1];
  const [bp, bj] = transB ? [1, k] : [n, 1];
  for (let z = 0; z < count; z++) {
    const [aOff, bOff] = batchOffsets(spec, z);
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let p = 0; p < k; p++) {
        const av = A[aOff + i * ai + p * ap];
        const bRow = bOff + p * bp;
        for (let j = 0; j < n; j++) row[j] += av * B[bRow + j * bj];
      }
      out.set(row, (z * m + i) * n);
    }
  }
  return device.adopt(out);
}
