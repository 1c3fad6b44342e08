/**
 * Spec of the matmul kernel (inputs `a`, `b`; output of the spec's dtype): a batch of `[m, k] @ [k, n]`
 * products whose operands may be stored transposed and whose batch indices broadcast through
 * per-operand strides (0 on broadcast axes).
 * @module
 */
import type { DType } from "../dtype.ts";

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
  /** Dtype of both operands and the result, `f32` (the default) or `f16`; sums run in f32. */
  readonly dtype?: DType;
}

/** Number of matrices in the output batch. */
export function batchCount(spec: MatmulSpec): number {
  return spec.batchShape.reduce((x, y) => x * y, 1);
}
