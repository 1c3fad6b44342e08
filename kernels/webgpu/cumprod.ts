/**
 * WebGPU `cumprod`: running products along the middle axis of `[outer, n, inner]`, one thread
 * per column walking it sequentially (neighbouring threads read neighbouring addresses when
 * `inner > 1`). f32 products round after every step, like the CPU reference, so both agree
 * exactly; i32 and u32 products wrap. Work per thread is `n`, so very long rows with few
 * columns use few threads.
 * @module
 */
import { dtypeInfo } from "../dtype.ts";
import type { KernelTable } from "../backend.ts";
import type { ScanSpec } from "../specs/scan.ts";
import { FLAT_ARGS, FLAT_INDEX, type GpuDevice, type GpuStorage, grid, WG } from "./device.ts";

function code(t: string): string {
  return `struct P { outer: u32, n: u32, inner: u32, rev: u32, excl: u32 }
@group(0) @binding(0) var<storage, read> x: array<${t}>;
@group(0) @binding(1) var<storage, read_write> out: array<${t}>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.outer * p.inner) { return; }
  let b = i % p.inner;
  let base = (i / p.inner) * p.n;
  var acc = ${t}(1);
  for (var q = 0u; q < p.n; q++) {
    let at = (base + select(q, p.n - 1u - q, p.rev == 1u)) * p.inner + b;
    let v = x[at];
    if (p.excl == 1u) { out[at] = acc; acc = acc * v; } else { acc = acc * v; out[at] = acc; }
  }
}`;
}

/** Running products of `x` (`[outer, n, inner]`) along `n`, into a new storage. */
export function cumprodGpu(device: GpuDevice, x: GpuStorage, s: ScanSpec): GpuStorage {
  const { layout: { outer, n, inner }, reverse, exclusive, dtype } = s;
  const out = device.alloc(dtype, outer * n * inner);
  if (outer * n * inner === 0) return out;
  const params = new Uint32Array([outer, n, inner, reverse ? 1 : 0, exclusive ? 1 : 0]);
  device.run({ code: code(dtypeInfo(dtype).wgsl) }, [x, out], grid(outer * inner), params);
  return out;
}

/** The cumprod kernel. */
export const cumprodKernels: KernelTable = {
  cumprod: (d: GpuDevice, [x]: GpuStorage[], s: ScanSpec) => cumprodGpu(d, x, s),
};
