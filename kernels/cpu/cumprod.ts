/**
 * CPU reference of `cumprod`: running products along the middle axis of `[outer, n, inner]`,
 * one sequential loop per column. f32 products round to f32 after every step (as the WebGPU
 * kernel's loop does, so both agree exactly); i32 and u32 products wrap to 32 bits.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import type { KernelTable } from "../backend.ts";
import type { ScanSpec } from "../specs/scan.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";

/** `a * b` in `dtype`'s arithmetic (f16 runs in f32, rounded to f16 as it is stored). */
function timesFor(dtype: DType): (a: number, b: number) => number {
  if (dtype === "f32" || dtype === "f16") return (a, b) => Math.fround(a * b);
  if (dtype === "u32") return (a, b) => Math.imul(a, b) >>> 0;
  return (a, b) => Math.imul(a, b);
}

/** Running products of `x` (`[outer, n, inner]` of `dtype`) along `n`, into a new storage. */
export function cumprodCpu(device: CpuDevice, x: CpuStorage, s: ScanSpec): CpuStorage {
  const { layout: { outer, n, inner }, reverse, exclusive, dtype } = s;
  const src = x.data;
  const out = dtypeInfo(dtype).create(src.length);
  const times = timesFor(dtype);
  for (let a = 0; a < outer; a++) {
    for (let b = 0; b < inner; b++) {
      let acc = 1;
      for (let q = 0; q < n; q++) {
        const at = (a * n + (reverse ? n - 1 - q : q)) * inner + b;
        if (exclusive) out[at] = acc;
        acc = times(acc, src[at]);
        if (!exclusive) out[at] = acc;
      }
    }
  }
  return device.adopt(out);
}

/** The cumprod kernel. */
export const cumprodKernels: KernelTable = {
  cumprod: (d: CpuDevice, [x]: CpuStorage[], s: ScanSpec) => cumprodCpu(d, x, s),
};
