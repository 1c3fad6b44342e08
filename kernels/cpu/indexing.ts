/**
 * CPU references for the indexing family: gathers (`take`, `takeAlongAxis`), scatter-adds,
 * and `oneHot`. Plain loops; scatters and scans accumulate in float64 (integer
 * dtypes wrap like the GPU's 32-bit arithmetic when the result is stored).
 *
 * Index rule shared with the GPU kernels: a negative (i32) index counts from the end, and the
 * result is clamped to `[0, n - 1]`.
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../dtype.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { AlongLayout } from "../specs/indexing.ts";
import type { KernelTable } from "../backend.ts";
import type { AlongIndexSpec, AxisIndexSpec, OneHotSpec } from "../specs/indexing.ts";

/** The index rule: negative counts from the end, then clamp to `[0, n - 1]`. */
export function normIndex(v: number, n: number): number {
  const j = v < 0 ? v + n : v;
  return j < 0 ? 0 : j >= n ? n - 1 : j;
}

const data = (s: CpuStorage) => s.data;

/** `out[a, k, b] = x[a, idx[k], b]`. */
export function takeCpu(
  device: CpuDevice,
  [x, idx]: CpuStorage[],
  { layout: { outer, n, inner }, count: m, dtype }: AxisIndexSpec,
): CpuStorage {
  const src = data(x), ix = data(idx);
  const out = dtypeInfo(dtype).create(outer * m * inner);
  for (let a = 0; a < outer; a++) {
    for (let k = 0; k < m; k++) {
      const from = (a * n + normIndex(ix[k], n)) * inner;
      out.set(src.subarray(from, from + inner), (a * m + k) * inner);
    }
  }
  return device.adopt(out);
}

/** Calls `f(u, xOffset)` for each element `u` of the along-axis result shape. */
function forEachAlong(ix: TypedArray, g: AlongLayout, f: (u: number, xOff: number) => void) {
  const { shape, xStrides, iStrides, axis, n } = g;
  const rank = shape.length;
  const total = shape.reduce((p, d) => p * d, 1);
  const c = new Array<number>(rank).fill(0);
  for (let u = 0; u < total; u++) {
    let xo = 0, io = 0;
    for (let d = 0; d < rank; d++) {
      io += c[d] * iStrides[d];
      if (d !== axis) xo += c[d] * xStrides[d];
    }
    f(u, xo + normIndex(ix[io], n) * xStrides[axis]);
    for (let d = rank - 1; d >= 0; d--) {
      if (++c[d] < shape[d]) break;
      c[d] = 0;
    }
  }
}

/** `out[..., k, ...] = x[..., idx[..., k, ...], ...]` (NumPy `take_along_axis`). */
export function takeAlongCpu(
  device: CpuDevice,
  x: CpuStorage,
  idx: CpuStorage,
  g: AlongLayout,
  dtype: DType,
): CpuStorage {
  const src = data(x);
  const out = dtypeInfo(dtype).create(g.shape.reduce((p, d) => p * d, 1));
  forEachAlong(data(idx), g, (u, xo) => (out[u] = src[xo]));
  return device.adopt(out);
}

/** Addition in float64, or wrapping like 32-bit integers for integer dtypes. */
export function plusFor(dtype: DType): (a: number, b: number) => number {
  const info = dtypeInfo(dtype);
  return info.isFloat ? (a, b) => a + b : (a, b) => info.coerce(a + b);
}

/** Float64 accumulator initialised with `x`, stored back as `dtype` (wrapping integers). */
function accumulate(
  device: CpuDevice,
  x: CpuStorage,
  dtype: DType,
  add: (acc: Float64Array, plus: (a: number, b: number) => number) => void,
): CpuStorage {
  const acc = Float64Array.from(data(x));
  const info = dtypeInfo(dtype);
  add(acc, plusFor(dtype));
  const out = info.create(acc.length);
  for (let i = 0; i < acc.length; i++) out[i] = info.coerce(acc[i]);
  return device.adopt(out);
}

/** `out = x; out[a, idx[k], b] += upd[a, k, b]` for every `k` (duplicates accumulate). */
export function scatterAddCpu(
  device: CpuDevice,
  [x, idx, upd]: CpuStorage[],
  { layout: { outer, n, inner }, count: m, dtype }: AxisIndexSpec,
): CpuStorage {
  const ix = data(idx), up = data(upd);
  return accumulate(device, x, dtype, (acc, plus) => {
    for (let a = 0; a < outer; a++) {
      for (let k = 0; k < m; k++) {
        const to = (a * n + normIndex(ix[k], n)) * inner, from = (a * m + k) * inner;
        for (let b = 0; b < inner; b++) acc[to + b] = plus(acc[to + b], up[from + b]);
      }
    }
  });
}

/** The adjoint of {@linkcode takeAlongCpu}: `out = x`, then each update adds where it was read. */
export function scatterAddAlongCpu(
  device: CpuDevice,
  x: CpuStorage,
  idx: CpuStorage,
  upd: CpuStorage,
  g: AlongLayout,
  dtype: DType,
): CpuStorage {
  const up = data(upd);
  return accumulate(device, x, dtype, (acc, plus) => {
    forEachAlong(data(idx), g, (u, xo) => (acc[xo] = plus(acc[xo], up[u])));
  });
}

/** `out[k, c] = idx[k] == c ? 1 : 0` for `c < depth` (negative indices match nothing). */
export function oneHotCpu(
  device: CpuDevice,
  idx: CpuStorage,
  m: number,
  depth: number,
  dtype: DType,
): CpuStorage {
  const ix = data(idx);
  const out = dtypeInfo(dtype).create(m * depth);
  for (let k = 0; k < m; k++) {
    const v = ix[k];
    if (v >= 0 && v < depth) out[k * depth + v] = 1;
  }
  return device.adopt(out);
}

/** The indexing family's kernels. */
export const indexingKernels: KernelTable = {
  take: takeCpu,
  scatterAdd: scatterAddCpu,
  takeAlongAxis: (d: CpuDevice, [x, i]: CpuStorage[], s: AlongIndexSpec) =>
    takeAlongCpu(d, x, i, s.layout, s.dtype),
  scatterAddAlongAxis: (d: CpuDevice, [x, i, u]: CpuStorage[], s: AlongIndexSpec) =>
    scatterAddAlongCpu(d, x, i, u, s.layout, s.dtype),
  oneHot: (d: CpuDevice, [i]: CpuStorage[], s: OneHotSpec) =>
    oneHotCpu(d, i, s.count, s.depth, s.dtype),
};
