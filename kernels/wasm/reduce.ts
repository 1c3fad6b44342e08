/**
 * f32 reductions on the wasm device over the middle axis of a contiguous `[outer, n, inner]`
 * layout (the {@linkcode ReduceLayout} of `kernels/cpu/reduce.ts`): sum, max and min, and the
 * row-wise softmax, log-softmax and logsumexp.
 *
 * With `inner = 1` each row is reduced by a SIMD row kernel (four lane accumulators in
 * ascending order, combined as (l0 + l1) + (l2 + l3), then the tail); otherwise rows of
 * `inner` elements are combined in ascending `n`. Work is split over whole rows (or blocks of
 * `COLUMNS` columns), so the summation order, and the result, do not depend on the number of
 * threads. Sums accumulate in f32 (the CPU reference uses float64). max/min propagate NaN.
 * @module
 */
import type { ReduceLayout } from "../specs/reduce.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { type Runtime, share } from "./runtime.ts";

/** Reductions run natively. */
export type WasmReduceOp = "sum" | "max" | "min";
/** Row-wise normalisations run natively. */
export type WasmSoftmaxOp = "softmax" | "logSoftmax" | "logsumexp";

/** This file's job indices in `jobs.ts`. */
export const JOB_REDUCE = 2;
/** Job index of the softmax family. */
export const JOB_SOFTMAX = 3;

/** Columns per work item when `inner > 1`. */
export const COLUMNS = 1024;
/** Inputs smaller than this run on the calling thread alone. */
export const PARALLEL_MIN = 1 << 15;

const REDUCE_OPS: readonly WasmReduceOp[] = ["sum", "max", "min"];
const SOFTMAX_OPS: readonly WasmSoftmaxOp[] = ["softmax", "logSoftmax", "logsumexp"];

/**
 * Reduces f32 `x` (`[outer, n, inner]`) over `n` into a new f32 `[outer, inner]` storage.
 * Empty `n` gives the op's identity (0, -inf, inf).
 */
export function reduceWasm(
  device: WasmDevice,
  x: WasmStorage,
  { outer, n, inner }: ReduceLayout,
  op: WasmReduceOp,
): WasmStorage {
  const out = device.alloc("f32", outer * inner);
  if (outer * inner === 0) return out;
  const args = [REDUCE_OPS.indexOf(op), x.offset, out.offset, outer, n, inner];
  device.run(JOB_REDUCE, args, outer * n * inner < PARALLEL_MIN);
  return out;
}

/** The reduce job: this thread's rows (`inner = 1`) or column blocks. */
export function reduceJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const [opIndex, x, out, outer, n, inner] = args;
  const op = REDUCE_OPS[opIndex], k = rt.kernels;
  if (inner === 1) {
    const [lo, hi] = share(outer, part, parts);
    const row = k[`${op}_row`], F = rt.f32;
    for (let o = lo; o < hi; o++) F[out / 4 + o] = row(x + 4 * o * n, n);
    return;
  }
  const blocks = Math.ceil(inner / COLUMNS);
  const [lo, hi] = share(outer * blocks, part, parts);
  const combine = k[`${op === "sum" ? "add" : op}_vv`];
  for (let item = lo; item < hi; item++) {
    const o = Math.floor(item / blocks), c0 = (item % blocks) * COLUMNS;
    const w = Math.min(COLUMNS, inner - c0);
    const dst = out + 4 * (o * inner + c0);
    rt.f32.fill(op === "sum" ? 0 : op === "max" ? -Infinity : Infinity, dst / 4, dst / 4 + w);
    for (let j = 0; j < n; j++) combine(dst, x + 4 * ((o * n + j) * inner + c0), dst, w);
  }
}

/**
 * Softmax or log-softmax of f32 `x` over `n` (max-shifted), as a new storage of `x`'s layout;
 * or logsumexp, as a new `[outer, inner]` storage.
 */
export function softmaxWasm(
  device: WasmDevice,
  x: WasmStorage,
  { outer, n, inner }: ReduceLayout,
  op: WasmSoftmaxOp,
): WasmStorage {
  const size = op === "logsumexp" ? outer * inner : outer * n * inner;
  const out = device.alloc("f32", size);
  if (size === 0) return out;
  // Per thread: 64 bytes for the row's scalars, then (logsumexp) a row of exponentials.
  const slot = 64 + (op === "logsumexp" && inner === 1 ? Math.ceil(n / 16) * 64 : 0);
  const scratch = device.scratch(slot * device.threads);
  try {
    const args = [
      SOFTMAX_OPS.indexOf(op),
      x.offset,
      out.offset,
      outer,
      n,
      inner,
      scratch.offset,
      slot,
    ];
    device.run(JOB_SOFTMAX, args, outer * n * inner < PARALLEL_MIN);
  } finally {
    device.release(scratch);
  }
  return out;
}

/** The softmax job: this thread's rows (`inner = 1`, SIMD) or columns (scalar). */
export function softmaxJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const [opIndex, x, out, outer, n, inner, scratch, slotBytes] = args;
  const op = SOFTMAX_OPS[opIndex], k = rt.kernels;
  const F = rt.f32;
  if (inner === 1) {
    const slot = scratch + slotBytes * part;
    const [lo, hi] = share(outer, part, parts);
    for (let o = lo; o < hi; o++) {
      const src = x + 4 * o * n;
      const m = k.max_row(src, n);
      if (m === -Infinity) {
        // A row of only -inf (fully masked): softmax 0, logs -inf, as the reference defines it.
        if (op === "logsumexp") F[out / 4 + o] = -Infinity;
        else F.fill(op === "softmax" ? 0 : -Infinity, out / 4 + o * n, out / 4 + (o + 1) * n);
        continue;
      }
      if (op === "logsumexp") {
        F[out / 4 + o] = m + Math.log(k.expsub_row(src, slot + 64, n, m));
        continue;
      }
      const dst = out + 4 * o * n;
      const s = k.expsub_row(src, dst, n, m);
      if (op === "softmax") {
        F[slot / 4] = s;
        k.div_vs(dst, slot, dst, n);
      } else {
        F[slot / 4] = m;
        F[slot / 4 + 1] = Math.log(s);
        k.sub_vs(src, slot, dst, n);
        k.sub_vs(dst, slot + 4, dst, n);
      }
    }
    return;
  }
  const [lo, hi] = share(outer * inner, part, parts);
  for (let c = lo; c < hi; c++) {
    const o = Math.floor(c / inner), i = c % inner;
    const at = (j: number) => (x / 4) + (o * n + j) * inner + i;
    let m = -Infinity;
    for (let j = 0; j < n; j++) {
      const v = F[at(j)];
      if (v > m || v !== v) m = v;
    }
    if (m === -Infinity) {
      if (op === "logsumexp") F[out / 4 + o * inner + i] = -Infinity;
      else {
        for (let j = 0; j < n; j++) F[at(j) + (out - x) / 4] = op === "softmax" ? 0 : -Infinity;
      }
      continue;
    }
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(F[at(j)] - m);
    const ls = Math.log(s);
    if (op === "logsumexp") F[out / 4 + o * inner + i] = m + ls;
    else {
      const y = (out - x) / 4;
      for (let j = 0; j < n; j++) {
        const d = F[at(j)] - m;
        F[at(j) + y] = op === "logSoftmax" ? d - ls : Math.exp(d) / s;
      }
    }
  }
}
