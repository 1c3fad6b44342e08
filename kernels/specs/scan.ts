/**
 * Spec of the scan kernels `cumsum` and `cumprod` (input `x`; output of its shape and dtype):
 * running sums or products along the middle axis of `[outer, n, inner]`.
 * @module
 */
import type { DType } from "../dtype.ts";
import type { AxisLayout } from "./indexing.ts";

/** Spec of `cumsum` and `cumprod`. */
export interface ScanSpec {
  readonly layout: AxisLayout;
  /** Scan from the end of the axis towards the start. */
  readonly reverse: boolean;
  /** Leave each element out of its own result (the first is the identity). */
  readonly exclusive: boolean;
  /** f32, i32 or u32. */
  readonly dtype: DType;
}
