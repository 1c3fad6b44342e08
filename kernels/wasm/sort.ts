/**
 * `sort` of the wasm backend: each row of f32, i32 or u32 keys sorted stably by an LSD radix
 * sort (8-bit digits) over the same order-preserving u32 keys as the reference
 * (`orderedKeys` in `kernels/cpu/sort.ts`: -0 folded into +0, every NaN the largest key,
 * `descending` inverting the key). A stable radix sort on the key orders by `(key, index)`,
 * exactly the reference's comparison, so the indices and values are the reference's bits.
 * Digits every key of a row shares are skipped, so small integer keys (LSH bucket ids) cost
 * one or two passes. The loops over a row are the module's (`gen_sort.ts`); this file drives
 * them row by row. Rows are claimed in blocks by the threads; each row is sorted by one thread
 * alone, so the result does not depend on the thread count.
 * @module
 */
import type { DType } from "../dtype.ts";
import type { SortSpec } from "../specs/sort.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import type { Kernels, Runtime } from "./runtime.ts";

/** This job's index in `jobs.ts`. */
export const JOB_SORT = 9;

/** Inputs smaller than this (elements) run on the calling thread alone. */
const PARALLEL_MIN = 1 << 13;
/** About this many keys per claim of rows. */
const CLAIM_ELEMENTS = 1 << 12;

const KEY_KINDS: readonly DType[] = ["f32", "i32", "u32"];

/** Whether {@linkcode sortWasm} takes keys of `dtype`. */
export function sortSupported(dtype: DType): boolean {
  return KEY_KINDS.includes(dtype);
}

/**
 * Sorts each of `rows` rows of `n` keys of `x`; returns `[values, indices]` when `withValues`,
 * else `[indices]` (i32 positions within the row).
 */
export function sortWasm(
  device: WasmDevice,
  x: WasmStorage,
  { dtype, rows, n, descending, withValues }: SortSpec,
): WasmStorage[] {
  if (!sortSupported(dtype)) throw new TypeError(`wasm: sort does not take ${dtype} keys`);
  const size = rows * n;
  const values = withValues ? device.alloc(dtype, size) : null;
  const indices = device.alloc("i32", size);
  if (size === 0) return values ? [values, indices] : [indices];
  const inline = rows < 2 || size < PARALLEL_MIN;
  // Per thread: keys and indices twice (the passes ping-pong), and 256 counts.
  const scratch = device.scratch(scratchBytes(n) * (inline ? 1 : device.threads));
  try {
    const args = [
      KEY_KINDS.indexOf(dtype),
      descending ? 1 : 0,
      rows,
      n,
      x.offset,
      indices.offset,
      values ? values.offset : -1,
      scratch.offset,
    ];
    device.run(JOB_SORT, args, inline);
  } finally {
    device.release(scratch);
  }
  return values ? [values, indices] : [indices];
}

/** Scratch bytes one thread uses for rows of `n`. */
function scratchBytes(n: number): number {
  return 16 * n + 1024;
}

/**
 * Sorts the row of `n` keys at byte `x` into the i32 order at `out` (and the values at
 * `vals` when it is not negative), with the scratch at `buf`.
 */
function sortRow(
  k: Kernels,
  kind: number,
  flip: number,
  n: number,
  x: number,
  out: number,
  vals: number,
  buf: number,
): void {
  let keys = buf, idx = buf + 4 * n, keys2 = buf + 8 * n, idx2 = buf + 12 * n;
  const counts = buf + 16 * n;
  const varying = kind === 0
    ? k.sort_keys_f32(x, keys, n, flip)
    : k.sort_keys_xor(x, keys, n, (kind === 1 ? 0x80000000 : 0) ^ flip);
  let passes = 0;
  for (let shift = 0; shift < 32; shift += 8) {
    // A digit every key shares leaves the order as it is.
    if (((varying >>> shift) & 255) === 0) continue;
    (passes++ ? k.sort_pass : k.sort_pass_first)(keys, idx, keys2, idx2, counts, n, shift);
    [keys, keys2, idx, idx2] = [keys2, keys, idx2, idx];
  }
  if (passes === 0) {
    k.sort_iota(out, n);
    if (vals >= 0) k.copy_bytes(vals, x, 4 * n);
  } else {
    k.copy_bytes(out, idx, 4 * n);
    // Values copied as raw bits, so -0 and NaN payloads survive.
    if (vals >= 0) k.sort_gather(x, idx, vals, n);
  }
}

/** The job: rows claimed in blocks, each row sorted by this thread in its own scratch. */
export function sortJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  _parts: number,
  claim: () => number,
): void {
  const [kind, descending, rows, n, x, out, vals, scratch] = args;
  const flip = descending ? -1 : 0;
  const buf = scratch + part * scratchBytes(n);
  // Short rows are claimed a block at a time, so that claims cost little beside the sorting.
  const block = Math.max(1, Math.floor(CLAIM_ELEMENTS / n));
  for (let c = claim(); c * block < rows; c = claim()) {
    for (let r = c * block; r < Math.min(rows, (c + 1) * block); r++) {
      const v = vals >= 0 ? vals + 4 * r * n : -1;
      sortRow(rt.kernels, kind, flip, n, x + 4 * r * n, out + 4 * r * n, v, buf);
    }
  }
}
