/**
 * Specs of the sort kernels: `sort` (input `x`; outputs the sorted values, when `withValues`,
 * then the i32 indices) and `gatherByIndex` / `scatterByIndex` (inputs `x`, `indices`).
 * @module
 */
import type { DType } from "../dtype.ts";

/** Spec of `sort`: `rows` rows of `n` elements, sorted stably. */
export interface SortSpec {
  readonly dtype: DType;
  readonly rows: number;
  readonly n: number;
  readonly descending: boolean;
  /** Whether the sorted values are an output (else only the indices). */
  readonly withValues: boolean;
}

/**
 * Layout of a gather or scatter: `x` is `[rows, n, inner]` and the index is `[rows, n]`, with
 * index values in `[0, n)` selecting along the middle axis.
 */
export interface PermLayout {
  /** Product of the leading (batch) dimensions. */
  rows: number;
  /** Length of the permuted axis. */
  n: number;
  /** Product of the dimensions after the permuted axis (1 when it is the last). */
  inner: number;
}

/** Spec of `gatherByIndex` and `scatterByIndex`. */
export interface PermSpec {
  readonly layout: PermLayout;
  readonly dtype: DType;
}
