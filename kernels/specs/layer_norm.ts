/**
 * Spec of the fused layer-norm kernels. `layerNorm` takes `x [rows, n]`, then `gamma` and
 * `beta [n]` when `affine`, and returns `y [rows, n]`, `mean [rows]` and
 * `rstd [rows] = 1 / sqrt(var + eps)` (population variance). `layerNormGrad` takes `x`,
 * `mean`, `rstd`, the cotangent `dy [rows, n]`, then `gamma` when `affine`, and returns
 * `dx [rows, n]`, then `dgamma` and `dbeta [n]` when `affine`: the backward pass rebuilds the
 * normalised row from `x`, `mean` and `rstd` instead of keeping it.
 * @module
 */

/** Sizes of one layer norm over the last axis. */
export interface LayerNormSpec {
  /** Rows (the product of the leading axes). */
  readonly rows: number;
  /** Row length, the normalised axis. */
  readonly n: number;
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Whether a scale `gamma` and a shift `beta` are applied (else 1 and 0). */
  readonly affine: boolean;
  /**
   * Set by `ops/widen.ts` for a kernel whose backend reads f16 (`readsF16`): the float
   * operands are f16, and so are the outputs that carry their precision (not the statistics).
   */
  readonly half?: boolean;
}
