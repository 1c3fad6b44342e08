/**
 * CPU references of the scans along the middle axis of `[outer, n, inner]`: `cumsum`,
 * accumulated in float64 (integer dtypes wrap like the GPU's 32-bit arithmetic when the result
 * is stored).
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import type { KernelTable } from "../backend.ts";
import type { AxisLayout } from "../specs/indexing.ts";
import type { ScanSpec } from "../specs/scan.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import { plusFor } from "./indexing.ts";

const data = (s: CpuStorage) => s.data;

/** Scan along the middle axis of `[outer, n, inner]`, in float64. */
export function cumsumCpu(
  device: CpuDevice,
  x: CpuStorage,
  { outer, n, inner }: AxisLayout,
  reverse: boolean,
  exclusive: boolean,
  dtype: DType,
): CpuStorage {
  const src = data(x);
  const info = dtypeInfo(dtype);
  const out = info.create(src.length);
  const plus = plusFor(dtype);
  for (let a = 0; a < outer; a++) {
    for (let b = 0; b < inner; b++) {
      let acc = 0;
      for (let q = 0; q < n; q++) {
        const at = (a * n + (reverse ? n - 1 - q : q)) * inner + b;
        const v = src[at];
        if (exclusive) out[at] = info.coerce(acc);
        acc = plus(acc, v);
        if (!exclusive) out[at] = info.coerce(acc);
      }
    }
  }
  return device.adopt(out);
}

/** The scan family's kernels. */
export const scanKernels: KernelTable = {
  cumsum: (d: CpuDevice, [x]: CpuStorage[], s: ScanSpec) =>
    cumsumCpu(d, x, s.layout, s.reverse, s.exclusive, s.dtype),
};
