/**
 * WebGPU combining scatters (`set`, `max`, `min`), deterministic without atomics, by the
 * scheme of the scatter-add in `indexing.ts`: each update's target row is computed, the update
 * positions are stably sorted by target (`sortedTargets`), and one thread per output element
 * combines `x` with its updates in increasing update position (`segmentCombine`). So `set` with duplicate targets keeps the last update in index
 * order, as the CPU reference does, and `max` / `min` propagate NaN on both backends (tested
 * on the bits: WGSL leaves `max` of NaN to the implementation).
 * @module
 */
import { dtypeInfo } from "../dtype.ts";
import type { GpuDevice, GpuStorage } from "./device.ts";
import { axisScatterGpu } from "./indexing.ts";
import type { AxisIndexSpec, ScatterCombine } from "../specs/indexing.ts";
import type { KernelTable } from "../backend.ts";

/** WGSL `combine(old, upd)` for a mode and element type. */
export function combineWgsl(mode: ScatterCombine, t: string): string {
  if (mode === "set") return `fn combine(old: ${t}, upd: ${t}) -> ${t} { return upd; }`;
  const nan = t === "f32"
    ? "if (isnan_(old) || isnan_(upd)) { return bitcast<f32>(0x7fc00000u); }"
    : "";
  return `fn isnan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn combine(old: ${t}, upd: ${t}) -> ${t} {
  ${nan}
  return ${mode}(old, upd);
}`;
}

const combine = (mode: ScatterCombine) => (d: GpuDevice, xs: GpuStorage[], s: AxisIndexSpec) =>
  axisScatterGpu(d, xs, s, combineWgsl(mode, dtypeInfo(s.dtype).wgsl));

/** The combining scatters' kernels. */
export const scatterCombineKernels: KernelTable = {
  scatterSet: combine("set"),
  scatterMax: combine("max"),
  scatterMin: combine("min"),
};
