/**
 * CPU reference reductions over the middle axis of a contiguous `[outer, n, inner]` layout:
 * sum, max, min, argmax, argmin, and the row-wise softmax / log-softmax.
 *
 * Float sums and the softmax normaliser accumulate in float64 (JS numbers) and round once to
 * f32 at the end, so the reference is at least as accurate as any GPU summation order.
 * Integer sums wrap to 32 bits like the GPU's. max/min/argmax/argmin propagate NaN: a NaN
 * beats every number, and among equal values (or NaNs) the first index wins.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { ArgReduceOp, ReduceLayout, ReduceOp } from "../specs/reduce.ts";
import type { KernelTable } from "../backend.ts";
import type { ArgReduceSpec, ReduceSpec, SoftmaxSpec } from "../specs/reduce.ts";

/** Whether `v` should replace the current extreme `m` (NaN wins; equal values keep `m`). */
function beats(op: "max" | "min", v: number, m: number): boolean {
  if (m !== m) return false;
  if (v !== v) return true;
  return op === "max" ? v > m : v < m;
}

/** The result of reducing nothing: the sum's 0, and the extremes' infinities. */
function identity(op: ReduceOp): number {
  return op === "sum" ? 0 : op === "max" ? -Infinity : Infinity;
}

/**
 * Reduces `x` (`[outer, n, inner]`, of `inDtype`) over `n` into a new `[outer, inner]` storage
 * of `outDtype`. `n` may be 0 only for `sum` (the caller rejects empty max/min).
 */
export function reduceCpu(
  device: CpuDevice,
  x: CpuStorage,
  { outer, n, inner }: ReduceLayout,
  op: ReduceOp,
  outDtype: DType,
): CpuStorage {
  const src = x.data;
  const out = dtypeInfo(outDtype).create(outer * inner);
  const acc = new Float64Array(inner);
  const wrap = outDtype === "i32"
    ? (v: number) => v | 0
    : outDtype === "u32"
    ? (v: number) => v >>> 0
    : null;
  for (let o = 0; o < outer; o++) {
    acc.fill(identity(op));
    for (let j = 0; j < n; j++) {
      const base = (o * n + j) * inner;
      if (op === "sum") {
        if (wrap) { for (let k = 0; k < inner; k++) acc[k] = wrap(acc[k] + src[base + k]); }
        else for (let k = 0; k < inner; k++) acc[k] += src[base + k];
      } else {
        for (let k = 0; k < inner; k++) {
          const v = src[base + k];
          if (beats(op, v, acc[k])) acc[k] = v;
        }
      }
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
  { outer, n, inner }: ReduceLayout,
  op: ArgReduceOp,
): CpuStorage {
  const src = x.data;
  const out = new Int32Array(outer * inner);
  const best = new Float64Array(inner);
  const cmp = op === "argmax" ? "max" : "min";
  for (let o = 0; o < outer; o++) {
    const row = o * inner;
    for (let k = 0; k < inner; k++) best[k] = src[o * n * inner + k];
    for (let j = 1; j < n; j++) {
      const base = (o * n + j) * inner;
      for (let k = 0; k < inner; k++) {
        const v = src[base + k];
        if (beats(cmp, v, best[k])) (best[k] = v, out[row + k] = j);
      }
    }
  }
  return device.adopt(out);
}

/**
 * Softmax (or log-softmax when `log`) of f32 `x` over `n` of `[outer, n, inner]`, max-shifted
 * so large logits do not overflow. A slice of only `-inf` gives softmax 0 and log-softmax
 * `-inf`. Returns a new f32 storage of the same layout.
 */
export function softmaxCpu(
  device: CpuDevice,
  x: CpuStorage,
  { outer, n, inner }: ReduceLayout,
  log: boolean,
): CpuStorage {
  const src = x.data;
  const out = new Float32Array(outer * n * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const at = (j: number) => (o * n + j) * inner + k;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, src[at(j)]);
      if (m === -Infinity) {
        // Only -inf (a fully masked row): softmax 0 and log-softmax -inf, so the VJPs
        // (`y * (g - sum(g y))`, `g - exp(y) sum(g)`) stay finite.
        for (let j = 0; j < n; j++) out[at(j)] = log ? -Infinity : 0;
        continue;
      }
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(src[at(j)] - m);
      const ls = Math.log(s);
      for (let j = 0; j < n; j++) {
        const d = src[at(j)] - m;
        out[at(j)] = log ? d - ls : Math.exp(d) / s;
      }
    }
  }
  return device.adopt(out);
}

const reduce = (op: ReduceOp) => (d: CpuDevice, [x]: CpuStorage[], s: ReduceSpec) =>
  reduceCpu(d, x, s.layout, op, s.outDtype);
const argReduce = (op: ArgReduceOp) => (d: CpuDevice, [x]: CpuStorage[], s: ArgReduceSpec) =>
  argReduceCpu(d, x, s.layout, op);

/** The reduction family's kernels. */
export const reduceKernels: KernelTable = {
  sum: reduce("sum"),
  max: reduce("max"),
  min: reduce("min"),
  argmax: argReduce("argmax"),
  argmin: argReduce("argmin"),
  softmax: (d: CpuDevice, [x]: CpuStorage[], s: SoftmaxSpec) => softmaxCpu(d, x, s, false),
  logSoftmax: (d: CpuDevice, [x]: CpuStorage[], s: SoftmaxSpec) => softmaxCpu(d, x, s, true),
};
