/**
 * `takeAlongAxis` and `scatterAddAlongAxis` of the wasm backend for 4-byte data, in place in
 * the wasm memory, over the reference's geometry (`AlongLayout`: the result shape, with `x`
 * and `indices` read through strides that are 0 where they broadcast) and index rule. The
 * gather splits the result elements across threads. The scatter sums each position of `x` in
 * float64 (f32) or wrapping 32-bit integers, from `x` and then the updates in increasing
 * update order, as the reference does; its threads split one axis on which `x` does not
 * broadcast, so every position is summed by one thread and the bits do not depend on the
 * thread count.
 * @module
 */
import type { AlongIndexSpec, AlongLayout } from "../specs/indexing.ts";
import { normIndex } from "../cpu/indexing.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { type Runtime, share } from "./runtime.ts";
import { INDEXING_PARALLEL_MIN, readIndex } from "./indexing.ts";

/** These jobs' indices in `jobs.ts`. */
export const JOB_TAKE_ALONG = 13, JOB_SCATTER_ADD_ALONG = 14;

/** Job arguments of the geometry: rank, axis, n, then shape, xStrides, iStrides. */
function layoutArgs(g: AlongLayout): number[] {
  return [g.shape.length, g.axis, g.n, ...g.shape, ...g.xStrides, ...g.iStrides];
}

/** The geometry back from the job arguments at `at` (see {@linkcode layoutArgs}). */
function readLayout(args: Float64Array, at: number): AlongLayout {
  const rank = args[at];
  const part = (i: number) => Array.from(args.subarray(at + 3 + i * rank, at + 3 + (i + 1) * rank));
  return {
    axis: args[at + 1],
    n: args[at + 2],
    shape: part(0),
    xStrides: part(1),
    iStrides: part(2),
  };
}

/** Elements of the result shape. */
const sizeOf = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/**
 * Walks result elements `u` of `[lo, hi)` in increasing order, calling `f(u, xOffset)` with the
 * element of `x` it reads (in elements from `x`'s start); `M` holds the indices at `ix`.
 * With `dim` >= 0, only elements whose coordinate on `dim` is in `[dimLo, dimHi)`.
 */
function walk(
  M: Int32Array,
  ix: number,
  signed: number,
  g: AlongLayout,
  lo: number,
  hi: number,
  f: (u: number, xOff: number) => void,
): void {
  const { shape, xStrides, iStrides, axis, n } = g;
  const rank = shape.length;
  const c = new Array<number>(rank).fill(0);
  for (let d = rank - 1, rem = lo; d >= 0; d--) {
    c[d] = rem % shape[d];
    rem = (rem - c[d]) / shape[d];
  }
  for (let u = lo; u < hi; u++) {
    let xo = 0, io = 0;
    for (let d = 0; d < rank; d++) {
      io += c[d] * iStrides[d];
      if (d !== axis) xo += c[d] * xStrides[d];
    }
    f(u, xo + normIndex(readIndex(M, ix + io, signed), n) * xStrides[axis]);
    for (let d = rank - 1; d >= 0; d--) {
      if (++c[d] < shape[d]) break;
      c[d] = 0;
    }
  }
}

/** `out[..., k, ...] = x[..., idx[..., k, ...], ...]` (NumPy `take_along_axis`). */
export function takeAlongWasm(
  device: WasmDevice,
  x: WasmStorage,
  idx: WasmStorage,
  s: AlongIndexSpec,
): WasmStorage {
  const total = sizeOf(s.layout.shape);
  const out = device.alloc(s.dtype, total);
  if (total === 0) return out;
  const args = [
    x.offset,
    idx.offset,
    out.offset,
    s.indexDtype === "i32" ? 1 : 0,
    ...layoutArgs(s.layout),
  ];
  device.run(JOB_TAKE_ALONG, args, total < INDEXING_PARALLEL_MIN);
  return out;
}

/** The gather job: this thread's share of the result elements. */
export function takeAlongJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const x = args[0] / 4, ix = args[1] / 4, o = args[2] / 4, signed = args[3];
  const g = readLayout(args, 4);
  const M = rt.i32;
  const [lo, hi] = share(sizeOf(g.shape), part, parts);
  walk(M, ix, signed, g, lo, hi, (u, xo) => (M[o + u] = M[x + xo]));
}

/**
 * The axis the scatter's threads split: the longest one other than `axis` on which `x` does
 * not broadcast (distinct coordinates there are distinct positions of `x`), or -1.
 */
function splitAxis(g: AlongLayout): number {
  let best = -1;
  g.shape.forEach((d, i) => {
    if (i !== g.axis && g.xStrides[i] !== 0 && (best < 0 || d > g.shape[best])) best = i;
  });
  return best;
}

/** The adjoint of {@linkcode takeAlongWasm}: `out = x`, then each update adds where it was read. */
export function scatterAddAlongWasm(
  device: WasmDevice,
  x: WasmStorage,
  idx: WasmStorage,
  upd: WasmStorage,
  s: AlongIndexSpec,
): WasmStorage {
  const out = device.alloc(s.dtype, s.size);
  if (s.size === 0) return out;
  const g = s.layout;
  const dim = splitAxis(g);
  const args = [
    x.offset,
    idx.offset,
    out.offset,
    s.indexDtype === "i32" ? 1 : 0,
    upd.offset,
    s.dtype === "f32" ? 1 : 0,
    dim,
    ...layoutArgs(g),
  ];
  const work = s.size + sizeOf(g.shape);
  device.run(JOB_SCATTER_ADD_ALONG, args, dim < 0 || work < INDEXING_PARALLEL_MIN);
  return out;
}

/**
 * The scatter job. This thread owns the positions of `x` whose coordinate on the split axis
 * `dim` is in its share (all of them when `dim` is -1 or on one thread): it starts them from
 * `x`, adds the updates that land there in increasing order, and stores them.
 */
export function scatterAddAlongJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  parts: number,
): void {
  const x = args[0] / 4, ix = args[1] / 4, o = args[2] / 4, signed = args[3];
  const u0 = args[4] / 4, float = args[5], dim = parts === 1 ? -1 : args[6];
  const g = readLayout(args, 7);
  const { shape, axis, n } = g;
  const xShape = shape.map((d, i) => (i === axis ? n : g.xStrides[i] === 0 ? 1 : d));
  const M = rt.i32, F = rt.f32;
  // Owned block: [pre, D, post] around `dim` (of x, and of the result, whose size on `dim` is x's).
  const D = dim < 0 ? 1 : shape[dim];
  const [dLo, dHi] = dim < 0 ? [0, 1] : share(D, part, parts);
  const xPre = dim < 0 ? 1 : sizeOf(xShape.slice(0, dim));
  const xPost = dim < 0 ? sizeOf(xShape) : sizeOf(xShape.slice(dim + 1));
  const uPre = dim < 0 ? 1 : sizeOf(shape.slice(0, dim));
  const uPost = dim < 0 ? sizeOf(shape) : sizeOf(shape.slice(dim + 1));
  const width = (dHi - dLo) * xPost;
  // Float64 sums of the owned positions, kept in order of position.
  const acc = new Float64Array(float ? xPre * width : 0);
  const slot = (p: number) => {
    const q = p % (D * xPost), pre = (p - q) / (D * xPost);
    return pre * width + q - dLo * xPost;
  };
  for (let pre = 0; pre < xPre; pre++) {
    const from = (pre * D + dLo) * xPost;
    if (float) { for (let t = 0; t < width; t++) acc[pre * width + t] = F[x + from + t]; }
    else M.copyWithin(o + from, x + from, x + from + width);
  }
  const add = float
    ? (u: number, xo: number) => (acc[slot(xo)] += F[u0 + u])
    : (u: number, xo: number) => (M[o + xo] = (M[o + xo] + M[u0 + u]) | 0);
  for (let pre = 0; pre < uPre; pre++) {
    const lo = (pre * D + dLo) * uPost, hi = (pre * D + dHi) * uPost;
    walk(M, ix, signed, g, lo, hi, add);
  }
  if (!float) return;
  for (let pre = 0; pre < xPre; pre++) {
    const from = (pre * D + dLo) * xPost;
    for (let t = 0; t < width; t++) F[o + from + t] = acc[pre * width + t];
  }
}
