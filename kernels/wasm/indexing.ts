/**
 * `take`, `scatterAdd` and `oneHot` of the wasm backend for 4-byte data, in place in the wasm
 * memory, with the reference's index rule (`normIndex`: negative counts from the end, then
 * clamp) and its arithmetic: `scatterAdd` of f32 sums each position in float64, from `x` and
 * then the updates in increasing update order, and rounds once; i32 and u32 wrap like 32-bit
 * integers. The threads split `take` by output rows and `scatterAdd` by target rows (each
 * position summed by one thread, in the reference's order), so the bits do not depend on the
 * thread count.
 * @module
 */
import type { DType } from "../dtype.ts";
import type { AxisIndexSpec, OneHotSpec } from "../specs/indexing.ts";
import { normIndex } from "../cpu/indexing.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { type Runtime, share } from "./runtime.ts";

/** These jobs' indices in `jobs.ts`. */
export const JOB_TAKE = 11, JOB_SCATTER_ADD = 12;

/** Less work than this (elements moved) runs on the calling thread alone. */
export const INDEXING_PARALLEL_MIN = 1 << 15;
/**
 * Smaller `take`s run on the calling thread alone: a gather is bound by memory bandwidth, and
 * below this many elements waking a second thread costs more than it saves.
 */
const TAKE_PARALLEL_MIN = 1 << 20;

/** Data dtypes the indexing kernels take: 4-byte elements. */
const DATA: readonly DType[] = ["f32", "i32", "u32"];

/** Whether the indexing kernels take data of `dtype` indexed by `indexDtype`. */
export function indexingSupported(dtype: DType, indexDtype: DType): boolean {
  return DATA.includes(dtype) && (indexDtype === "i32" || indexDtype === "u32");
}

/** Reads the index at `at` of the memory `M` as i32 (`signed`) or u32. */
export function readIndex(M: Int32Array, at: number, signed: number): number {
  return signed ? M[at] : M[at] >>> 0;
}

/** The job arguments both axis kernels share. */
function axisArgs(s: AxisIndexSpec, ptrs: number[]): number[] {
  const { outer, n, inner } = s.layout;
  return [outer, n, inner, s.count, s.indexDtype === "i32" ? 1 : 0, ...ptrs];
}

/** `out[a, k, :] = x[a, idx[k], :]` over `x [outer, n, inner]` and `count` indices. */
export function takeWasm(
  device: WasmDevice,
  x: WasmStorage,
  idx: WasmStorage,
  s: AxisIndexSpec,
): WasmStorage {
  const { outer, inner } = s.layout;
  const total = outer * s.count * inner;
  const out = device.alloc(s.dtype, total);
  if (total === 0) return out;
  device.run(
    JOB_TAKE,
    axisArgs(s, [x.offset, idx.offset, out.offset]),
    total < TAKE_PARALLEL_MIN,
  );
  return out;
}

/** Rows shorter than this are copied by a JS loop rather than a call into the module. */
const COPY_CALL_MIN = 8;

/** The take job: this thread's share of the `outer * count` output rows. */
export function takeJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const [outer, n, inner, m, signed, xAt, iAt, oAt] = args;
  const M = rt.i32, copy = rt.kernels.copy_bytes;
  const x = xAt / 4, ix = iAt / 4, o = oAt / 4;
  const [lo, hi] = share(outer * m, part, parts);
  for (let r = lo; r < hi; r++) {
    const k = r % m, a = (r - k) / m;
    const from = x + (a * n + normIndex(readIndex(M, ix + k, signed), n)) * inner;
    const to = o + r * inner;
    if (inner < COPY_CALL_MIN) { for (let b = 0; b < inner; b++) M[to + b] = M[from + b]; }
    else copy(4 * to, 4 * from, 4 * inner);
  }
}

/** `out = x; out[a, idx[k], :] += upd[a, k, :]` for every `k` (duplicates accumulate). */
export function scatterAddWasm(
  device: WasmDevice,
  x: WasmStorage,
  idx: WasmStorage,
  upd: WasmStorage,
  s: AxisIndexSpec,
): WasmStorage {
  const { outer, n, inner } = s.layout;
  const size = outer * n * inner;
  const out = device.alloc(s.dtype, size);
  if (size === 0) return out;
  const work = size + outer * s.count * inner;
  const inline = work < INDEXING_PARALLEL_MIN;
  // One float64 row accumulator per thread.
  const acc = device.scratch(8 * inner * (inline ? 1 : device.threads));
  try {
    device.run(
      JOB_SCATTER_ADD,
      [
        ...axisArgs(s, [x.offset, idx.offset, upd.offset, out.offset]),
        s.dtype === "f32" ? 1 : 0,
        acc.offset,
      ],
      inline,
    );
  } finally {
    device.release(acc);
  }
  return out;
}

/**
 * The updates of each target row, in increasing update order: update `order[k]` for `k` in
 * `[start[j], start[j + 1])` lands on row `j` (a stable counting sort of the indices).
 */
function bucketByTarget(M: Int32Array, ix: number, m: number, n: number, signed: number) {
  const target = new Int32Array(m);
  const start = new Int32Array(n + 1);
  for (let k = 0; k < m; k++) {
    target[k] = normIndex(readIndex(M, ix + k, signed), n);
    start[target[k] + 1]++;
  }
  for (let j = 0; j < n; j++) start[j + 1] += start[j];
  const next = start.slice(0, n);
  const order = new Int32Array(m);
  for (let k = 0; k < m; k++) order[next[target[k]]++] = k;
  return { start, order };
}

/** The scatter-add job: this thread's share of the `outer * n` target rows. */
export function scatterAddJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const [outer, n, inner, m, signed, xAt, iAt, uAt, oAt, float, accAt] = args;
  const { start, order } = bucketByTarget(rt.i32, iAt / 4, m, n, signed);
  const k = rt.kernels;
  // This thread's float64 sums of one row, as in the reference.
  const acc = accAt + 8 * inner * part;
  const [lo, hi] = share(outer * n, part, parts);
  for (let r = lo; r < hi; r++) {
    const j = r % n, a = (r - j) / n;
    const row = 4 * r * inner, dst = oAt + row;
    if (float) k.f64_from_f32(acc, xAt + row, inner);
    else k.copy_bytes(dst, xAt + row, 4 * inner);
    for (let t = start[j]; t < start[j + 1]; t++) {
      const from = uAt + 4 * (a * m + order[t]) * inner;
      if (float) k.f64_add_f32(acc, from, inner);
      else k.iadd_vv(dst, from, dst, inner);
    }
    if (float) k.f32_from_f64(dst, acc, inner);
  }
}

/** Output dtypes `oneHot` writes here. */
const ONE_HOT: readonly DType[] = ["f32", "i32", "u32", "bool"];

/** Whether {@linkcode oneHotWasm} takes this call. */
export function oneHotSupported(s: OneHotSpec): boolean {
  return ONE_HOT.includes(s.dtype) && (s.indexDtype === "i32" || s.indexDtype === "u32");
}

/**
 * `out[k, c] = idx[k] == c ? 1 : 0` for `c < depth` (indices outside `[0, depth)` give a row
 * of zeros), on the calling thread: a fill the memory bandwidth bounds.
 */
export function oneHotWasm(device: WasmDevice, idx: WasmStorage, s: OneHotSpec): WasmStorage {
  const { count, depth, dtype } = s;
  const out = device.alloc(dtype, count * depth);
  if (count * depth === 0) return out;
  const view = device.view(out, dtype, count * depth);
  view.fill(0);
  const M = device.runtime.i32, ix = idx.offset / 4;
  const signed = s.indexDtype === "i32" ? 1 : 0;
  for (let k = 0; k < count; k++) {
    const v = readIndex(M, ix + k, signed);
    if (v >= 0 && v < depth) view[k * depth + v] = 1;
  }
  return out;
}
