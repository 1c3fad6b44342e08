/**
 * CPU reference for sorting along the last axis and for gathering / scattering by a
 * permutation. The sort maps every key to an order-preserving u32 (the same map the WebGPU
 * radix sort uses) and sorts indices by `(key, index)`, which makes it stable by construction.
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../dtype.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { PermLayout } from "../specs/sort.ts";
import type { KernelTable } from "../backend.ts";
import type { PermSpec, SortSpec } from "../specs/sort.ts";

/**
 * Maps 32-bit keys to u32 whose unsigned order is the sort order: i32 flips the sign bit; f32
 * flips every bit of negatives and the sign bit of the rest, after folding -0 into +0 and every
 * NaN into the largest key (NaN sorts last). `descending` inverts the mapped key.
 */
export function orderedKeys(data: TypedArray, dtype: DType, descending: boolean): Uint32Array {
  const n = data.length;
  const out = new Uint32Array(n);
  const flip = descending ? 0xffffffff : 0;
  // f16 widens exactly to f32, which keeps its order.
  if (dtype === "f16") return orderedKeys(Float32Array.from(data), "f32", descending);
  if (dtype === "f32") {
    const bits = new Uint32Array(data.buffer, data.byteOffset, n);
    for (let i = 0; i < n; i++) {
      let b = bits[i];
      const mag = b & 0x7fffffff;
      if (mag > 0x7f800000) b = 0xffffffff;
      else if (mag === 0) b = 0x80000000;
      else b = b & 0x80000000 ? ~b : b | 0x80000000;
      out[i] = (b ^ flip) >>> 0;
    }
  } else if (dtype === "i32") {
    const bits = new Uint32Array(data.buffer, data.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = (bits[i] ^ 0x80000000 ^ flip) >>> 0;
  } else {
    for (let i = 0; i < n; i++) out[i] = (data[i] ^ flip) >>> 0;
  }
  return out;
}

/**
 * Stable sort of each row of `n` elements of `x` (a contiguous `[rows, n]` storage): returns
 * the sorted values (copied from `x`, so -0 and NaN payloads survive) and the i32 positions
 * they came from within their row.
 */
export function sortCpu(
  device: CpuDevice,
  x: CpuStorage,
  dtype: DType,
  n: number,
  descending: boolean,
): [CpuStorage, CpuStorage] {
  const data = x.data;
  const size = data.length;
  const keys = orderedKeys(data, dtype, descending);
  const values = dtypeInfo(dtype).create(size);
  const indices = new Int32Array(size);
  const order = new Int32Array(n);
  for (let base = 0; base < size; base += n) {
    for (let j = 0; j < n; j++) order[j] = j;
    order.sort((a, b) => keys[base + a] - keys[base + b] || a - b);
    for (let j = 0; j < n; j++) {
      indices[base + j] = order[j];
      values[base + j] = data[base + order[j]];
    }
  }
  return [device.adopt(values), device.adopt(indices)];
}

/** `out[r, j, t] = x[r, idx[r, j], t]`; an index outside `[0, n)` reads 0. */
export function gatherByIndexCpu(
  device: CpuDevice,
  x: CpuStorage,
  idx: CpuStorage,
  dtype: DType,
  { rows, n, inner }: PermLayout,
): CpuStorage {
  const src = x.data, ix = idx.data;
  const out = dtypeInfo(dtype).create(rows * n * inner);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      const k = ix[r * n + j];
      if (k < 0 || k >= n) continue;
      const from = (r * n + k) * inner, to = (r * n + j) * inner;
      for (let t = 0; t < inner; t++) out[to + t] = src[from + t];
    }
  }
  return device.adopt(out);
}

/** `out[r, idx[r, j], t] = g[r, j, t]`; positions no index hits are 0, bad indices are skipped. */
export function scatterByIndexCpu(
  device: CpuDevice,
  g: CpuStorage,
  idx: CpuStorage,
  dtype: DType,
  { rows, n, inner }: PermLayout,
): CpuStorage {
  const src = g.data, ix = idx.data;
  const out = dtypeInfo(dtype).create(rows * n * inner);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      const k = ix[r * n + j];
      if (k < 0 || k >= n) continue;
      const from = (r * n + j) * inner, to = (r * n + k) * inner;
      for (let t = 0; t < inner; t++) out[to + t] = src[from + t];
    }
  }
  return device.adopt(out);
}

/** The sort family's kernels. */
export const sortKernels: KernelTable = {
  sort: (d: CpuDevice, [x]: CpuStorage[], s: SortSpec) => {
    const [values, indices] = sortCpu(d, x, s.dtype, s.n, s.descending);
    if (s.withValues) return [values, indices];
    d.free(values);
    return [indices];
  },
  gatherByIndex: (d: CpuDevice, [x, i]: CpuStorage[], s: PermSpec) =>
    gatherByIndexCpu(d, x, i, s.dtype, s.layout),
  scatterByIndex: (d: CpuDevice, [x, i]: CpuStorage[], s: PermSpec) =>
    scatterByIndexCpu(d, x, i, s.dtype, s.layout),
};
