/**
 * CPU reference reductions over the middle axis of a contiguous `[outer, n, inner]` layout:
 * sum, max, min, argmax, argmin (softmax is in `softmax.ts`).
 *
 * Float sums accumulate in float64 (JS numbers) and round once to f32 at the end, so the
 * reference is at least as accurate as any GPU summation order. Integer sums wrap to 32 bits
 * like the GPU's. max/min/argmax/argmin propagate NaN: a NaN beats every number, and among
 * equal values (or NaNs) the first index wins.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { ArgReduceOp, ArgReduceSpec, ReduceLayout, ReduceOp } from "../specs/reduce.ts";
import { type ReduceSpec, reduceTable } from "../specs/reduce.ts";
import type { KernelTable } from "../backend.ts";

/** Whether `v` should replace the current extreme `m` (NaN wins; equal values keep `m`). */
function beats(op: "max" | "min", v: number, m: number): boolean {
  if (m !== m) return false;
  if (v !== v) return true;
  return op === "max" ? v > m : v < m;
}

/**
 * Walks each `[outer, inner]` column of `src` over `n`, leaving its largest (`max`) or
 * smallest (`min`) value in `best` and, when `at` is given, that value's first index in `at`.
 * A column of nothing (`n` 0) gives the identity, -inf or inf.
 */
function extremes(
  src: ArrayLike<number>,
  { outer, n, inner }: ReduceLayout,
  op: "max" | "min",
  best: Float64Array,
  at?: Int32Array,
): void {
  const none = op === "max" ? -Infinity : Infinity;
  for (let o = 0; o < outer; o++) {
    const row = o * inner;
    for (let k = 0; k < inner; k++) best[row + k] = n ? src[o * n * inner + k] : none;
    for (let j = 1; j < n; j++) {
      const base = (o * n + j) * inner;
      for (let k = 0; k < inner; k++) {
        const v = src[base + k];
        if (beats(op, v, best[row + k])) {
          best[row + k] = v;
          if (at) at[row + k] = j;
        }
      }
    }
  }
}

/**
 * Reduces `x` (`[outer, n, inner]`, of `inDtype`) over `n` into a new `[outer, inner]` storage
 * of `outDtype`. `n` may be 0 only for `sum` (the caller rejects empty max/min).
 */
export function reduceCpu(
  device: CpuDevice,
  x: CpuStorage,
  layout: ReduceLayout,
  op: ReduceOp,
  outDtype: DType,
): CpuStorage {
  const { outer, n, inner } = layout;
  const src = x.data;
  const out = dtypeInfo(outDtype).create(outer * inner);
  if (op !== "sum") {
    const best = new Float64Array(outer * inner);
    extremes(src, layout, op, best);
    out.set(best);
    return device.adopt(out);
  }
  const acc = new Float64Array(inner);
  const wrap = outDtype === "i32"
    ? (v: number) => v | 0
    : outDtype === "u32"
    ? (v: number) => v >>> 0
    : null;
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let j = 0; j < n; j++) {
      const base = (o * n + j) * inner;
      if (wrap) { for (let k = 0; k < inner; k++) acc[k] = wrap(acc[k] + src[base + k]); }
      else for (let k = 0; k < inner; k++) acc[k] += src[base + k];
    }
    out.set(acc, o * inner);
  }
  return device.adopt(out);
}

/**
 * The index along `n` of the largest (`argmax`) or smallest (`argmin`) element of each
 * `[outer, inner]` column of `x`, as i32; ties give the first index. `n` must be positive.
 */
export function argReduceCpu(
  device: CpuDevice,
  x: CpuStorage,
  layout: ReduceLayout,
  op: ArgReduceOp,
): CpuStorage {
  const out = new Int32Array(layout.outer * layout.inner);
  const best = new Float64Array(layout.outer * layout.inner);
  extremes(x.data, layout, op === "argmax" ? "max" : "min", best, out);
  return device.adopt(out);
}

const reduce = (op: ReduceOp) => (d: CpuDevice, [x]: CpuStorage[], s: ReduceSpec) =>
  reduceCpu(d, x, s.layout, op, s.outDtype);
const argReduce = (op: ArgReduceOp) => (d: CpuDevice, [x]: CpuStorage[], s: ArgReduceSpec) =>
  argReduceCpu(d, x, s.layout, op);

/** The reduction family's kernels (softmax is in `softmax.ts`). */
export const reduceKernels: KernelTable = reduceTable(reduce, argReduce);
