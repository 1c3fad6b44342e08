/**
 * `sort` of the wasm backend: each row of f32, i32 or u32 keys sorted stably by an LSD radix
 * sort (8-bit digits) over the same order-preserving u32 keys as the reference
 * (`orderedKeys` in `kernels/cpu/sort.ts`: -0 folded into +0, every NaN the largest key,
 * `descending` inverting the key). A stable radix sort on the key orders by `(key, index)`,
 * exactly the reference's comparison, so the indices and values are the reference's bits.
 * Digits every key of a row shares are skipped, so small integer keys (LSH bucket ids) cost
 * one or two passes. Rows are claimed in blocks by the threads; each row is sorted by one
 * thread alone, so the result does not depend on the thread count.
 * @module
 */
import type { DType } from "../dtype.ts";
import type { SortSpec } from "../specs/sort.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import type { Runtime } from "./runtime.ts";

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
  if (size > 0) {
    const args = [
      KEY_KINDS.indexOf(dtype),
      descending ? 1 : 0,
      rows,
      n,
      x.offset,
      indices.offset,
      values ? values.offset : -1,
    ];
    device.run(JOB_SORT, args, rows < 2 || size < PARALLEL_MIN);
  }
  return values ? [values, indices] : [indices];
}

/** Per-thread buffers for rows of `n`: keys and indices, twice (passes ping-pong). */
interface Scratch {
  keys: Uint32Array;
  keys2: Uint32Array;
  idx: Int32Array;
  idx2: Int32Array;
  counts: Int32Array;
}

/**
 * Maps the `n` keys at `M[at..]` (32-bit words of `kind`: 0 f32, 1 i32, 2 u32) to ordered u32
 * in `s.keys` (XOR `flip`) and returns the bits in which some keys differ.
 */
function mapKeys(M: Int32Array, at: number, n: number, kind: number, flip: number, s: Scratch) {
  const keys = s.keys;
  let and = -1, or = 0;
  for (let i = 0; i < n; i++) {
    let b = M[at + i];
    if (kind === 0) {
      const mag = b & 0x7fffffff;
      if (mag > 0x7f800000) b = -1;
      else if (mag === 0) b = 0x80000000 | 0;
      else b = b < 0 ? ~b : b | 0x80000000;
    } else if (kind === 1) {
      b ^= 0x80000000;
    }
    b ^= flip;
    keys[i] = b;
    and &= b;
    or |= b;
  }
  return and ^ or;
}

/**
 * Stable radix sort of `s.keys[0, n)`, only over the digits in which keys differ (`varying`);
 * returns the order (one of the scratch index buffers).
 */
function radixSort(s: Scratch, n: number, varying: number): Int32Array {
  let keys = s.keys, keys2 = s.keys2, idx = s.idx, idx2 = s.idx2;
  for (let i = 0; i < n; i++) idx[i] = i;
  const counts = s.counts;
  for (let shift = 0; shift < 32; shift += 8) {
    if (((varying >>> shift) & 255) === 0) continue;
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(keys[i] >>> shift) & 255]++;
    for (let c = 0, sum = 0; c < 256; c++) {
      const t = counts[c];
      counts[c] = sum;
      sum += t;
    }
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      const at = counts[(k >>> shift) & 255]++;
      keys2[at] = k;
      idx2[at] = idx[i];
    }
    const k = keys, j = idx;
    keys = keys2, keys2 = k, idx = idx2, idx2 = j;
  }
  return idx;
}

/** The job: rows claimed in blocks, each row sorted by this thread. */
export function sortJob(
  rt: Runtime,
  args: Float64Array,
  _part: number,
  _parts: number,
  claim: () => number,
): void {
  const kind = args[0], flip = args[1] ? -1 : 0, rows = args[2], n = args[3];
  const M = rt.i32;
  const x = args[4] / 4, out = args[5] / 4, vals = args[6] >= 0 ? args[6] / 4 : -1;
  const s: Scratch = {
    keys: new Uint32Array(n),
    keys2: new Uint32Array(n),
    idx: new Int32Array(n),
    idx2: new Int32Array(n),
    counts: new Int32Array(256),
  };
  // Short rows are claimed a block at a time, so that claims cost little beside the sorting.
  const block = Math.max(1, Math.floor(CLAIM_ELEMENTS / n));
  for (let c = claim(); c * block < rows; c = claim()) {
    for (let r = c * block; r < Math.min(rows, (c + 1) * block); r++) {
      const base = r * n;
      const idx = radixSort(s, n, mapKeys(M, x + base, n, kind, flip, s));
      for (let j = 0; j < n; j++) M[out + base + j] = idx[j];
      // Values copied as raw bits, so -0 and NaN payloads survive.
      if (vals >= 0) { for (let j = 0; j < n; j++) M[vals + base + j] = M[x + base + idx[j]]; }
    }
  }
}
