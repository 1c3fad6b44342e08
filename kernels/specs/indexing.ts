/**
 * Specs of the indexing kernels. Inputs: `take` (`x`, `indices`), `scatterAdd` (`x`,
 * `indices`, `updates`), `takeAlongAxis` (`x`, `indices`), `scatterAddAlongAxis` (`x`,
 * `indices`, `updates`), `oneHot` (`indices`), and the combining scatters `scatterSet`,
 * `scatterMax`, `scatterMin` (`x`, `indices`, `updates`; spec {@linkcode AxisIndexSpec}). Indices are i32 or u32: a negative (i32) index
 * counts from the end, and the result is clamped to `[0, n - 1]`.
 * @module
 */
import type { DType } from "../dtype.ts";

/** A tensor laid out as `[outer, n, inner]` around the indexed axis. */
export interface AxisLayout {
  outer: number;
  /** Size of the indexed axis. */
  n: number;
  inner: number;
}

/**
 * Geometry of the along-axis ops, over the shape `shape` of the gathered result (= the
 * scattered updates): `xStrides`/`iStrides` read `x`/`indices` broadcast to it (0 on size-1
 * axes); along `axis`, `x` is read at the index found in `indices`, of range `n`.
 */
export interface AlongLayout {
  shape: readonly number[];
  xStrides: readonly number[];
  iStrides: readonly number[];
  axis: number;
  n: number;
}

/** Spec of `take` and `scatterAdd`. */
export interface AxisIndexSpec {
  readonly layout: AxisLayout;
  /** Number of indices. */
  readonly count: number;
  /** Dtype of `x` (and of `updates`). */
  readonly dtype: DType;
  /** Dtype of `indices`. */
  readonly indexDtype: DType;
}

/** Spec of `takeAlongAxis` and `scatterAddAlongAxis`. */
export interface AlongIndexSpec {
  readonly layout: AlongLayout;
  /** Elements of `x`. */
  readonly size: number;
  /** Dtype of `x` (and of `updates`). */
  readonly dtype: DType;
  /** Dtype of `indices`. */
  readonly indexDtype: DType;
}

/** Spec of `oneHot`: output `[count, depth]` of `dtype`. */
export interface OneHotSpec {
  readonly count: number;
  readonly depth: number;
  readonly dtype: DType;
  /** Dtype of `indices`. */
  readonly indexDtype: DType;
}

/** How a combining scatter merges an update with the value already at its target. */
export type ScatterCombine = "set" | "max" | "min";
