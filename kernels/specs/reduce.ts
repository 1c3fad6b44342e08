/**
 * Specs of the reduction kernels (`sum`, `max`, `min`, `argmax`, `argmin`, `softmax`,
 * `logSoftmax`), which all read a contiguous `[outer, n, inner]` layout and reduce over `n`.
 * @module
 */
import type { DType } from "../dtype.ts";

/** Reductions with an identity, producing values. */
export type ReduceOp = "sum" | "max" | "min";
/** Reductions producing the (first) index of the extreme value. */
export type ArgReduceOp = "argmax" | "argmin";

/**
 * A backend's reduction kernels by name: `value(op)` for `sum`, `max`, `min` and `index(op)`
 * for `argmax`, `argmin`, so every backend registers the same names.
 */
export function reduceTable<K>(
  value: (op: ReduceOp) => K,
  index: (op: ArgReduceOp) => K,
): Record<ReduceOp | ArgReduceOp, K> {
  return {
    sum: value("sum"),
    max: value("max"),
    min: value("min"),
    argmax: index("argmax"),
    argmin: index("argmin"),
  };
}

/** A contiguous tensor seen as `[outer, n, inner]`, reduced over `n`. */
export interface ReduceLayout {
  readonly outer: number;
  readonly n: number;
  readonly inner: number;
}

/** Spec of `sum`, `max`, `min` (input `x`; output `[outer, inner]` of `outDtype`). */
export interface ReduceSpec {
  readonly layout: ReduceLayout;
  /** The input's dtype. */
  readonly dtype: DType;
  /** The output's dtype (`i32` for a bool sum, else the input's). */
  readonly outDtype: DType;
}

/** Spec of `argmax`, `argmin` (input `x`; output `[outer, inner]` i32). */
export interface ArgReduceSpec {
  readonly layout: ReduceLayout;
  /** The input's dtype. */
  readonly dtype: DType;
}

/** Spec of `softmax` and `logSoftmax` (input f32 `x`; output of its shape). */
export type SoftmaxSpec = ReduceLayout & {
  /** Dtype of the input and the result, `f32` (the default) or `f16`; sums run in f32. */
  readonly dtype?: DType;
};
