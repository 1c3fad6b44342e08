/**
 * Scatter-add with updates larger than one storage binding (an embedding's gradient over a
 * long sequence): the updates and their indices are copied out in pieces of whole rows and
 * scattered one piece after another, each onto the previous result. Every target still adds
 * its updates in increasing update order onto `x`, so the result is bit for bit the one-pass
 * kernel's.
 * @module
 */
import type { DType } from "../dtype.ts";
import type { AxisIndexSpec } from "../specs/indexing.ts";
import type { GpuDevice, GpuStorage } from "./device.ts";
import { elementwiseGpu } from "./elementwise.ts";
import { axisScatterGpu } from "./indexing.ts";
import { bindingRefusal, tooLarge } from "./windows.ts";

/** Rows `[start, start + count)` of a contiguous `[rows, width]` storage, copied. */
function rowsOf(
  device: GpuDevice,
  x: GpuStorage,
  dtype: DType,
  width: number,
  start: number,
  count: number,
): GpuStorage {
  const input = { storage: x, dtype, strides: [width, 1], offset: start * width };
  return elementwiseGpu(device, "a", [input], [count, width], dtype, "", "scatterAdd");
}

/** `scatterAdd`: `out = x`, plus each update row added to the row its index names. */
export function scatterAddGpu(
  device: GpuDevice,
  [x, idx, upd]: GpuStorage[],
  s: AxisIndexSpec,
): GpuStorage {
  if (!tooLarge(device, upd) && !tooLarge(device, idx)) {
    return axisScatterGpu(device, [x, idx, upd], s);
  }
  const { outer, inner } = s.layout;
  const eb = device.elementBytes(s.dtype);
  const rows = Math.floor((device.maxBindingBytes - device.bindingAlignment) / (inner * eb));
  if (outer !== 1 || tooLarge(device, x) || rows < 1) {
    throw bindingRefusal(
      device,
      "scatterAdd",
      [outer, s.count, inner],
      "only updates of one outer block, onto a target that fits, can be split",
    );
  }
  let out = x;
  for (let start = 0; start < s.count; start += rows) {
    const count = Math.min(rows, s.count - start);
    const i = rowsOf(device, idx, s.indexDtype, 1, start, count);
    const u = rowsOf(device, upd, s.dtype, inner, start, count);
    const next = axisScatterGpu(device, [out, i, u], { ...s, count });
    device.free(i);
    device.free(u);
    if (out !== x) device.free(out);
    out = next;
  }
  return out;
}
