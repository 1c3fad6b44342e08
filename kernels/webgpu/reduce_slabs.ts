/**
 * Sums, maxima and minima over a column axis too long for one storage binding: `x [n, inner]`
 * (a layout whose single outer row passes the binding limit) is reduced slab by slab along
 * `n`, each slab copied out to a storage of its own, and the partial results are combined
 * in slab order. Float sums therefore add in a different order than the one-pass kernel and
 * may differ from it by rounding.
 * @module
 */
import type { DType } from "../dtype.ts";
import type { ReduceLayout, ReduceOp } from "../specs/reduce.ts";
import type { GpuDevice, GpuStorage } from "./device.ts";
import { elementwiseGpu } from "./elementwise.ts";
import { bindingRefusal } from "./windows.ts";

/** Most bytes of one slab copy. */
const SLAB_BYTES = 256 * 2 ** 20;

const NAN = (v: string) => `((bitcast<u32>(${v}) & 0x7fffffffu) > 0x7f800000u)`;

/** WGSL combining two partials `a`, `b` (of `outDtype`'s compute type) as `op` does. */
function combine(op: ReduceOp, outDtype: DType): string {
  if (op === "sum") return "a + b";
  const cmp = op === "max" ? ">" : "<";
  if (outDtype !== "f32" && outDtype !== "f16") return `select(a, b, b ${cmp} a)`;
  // NaN wins, as in the one-pass kernels (WGSL's max and min may drop it).
  return `select(a, b, ${NAN("b")} || (!${NAN("a")} && b ${cmp} a))`;
}

/**
 * Reduces `x` (`[1, n, inner]` of `inDtype`) over `n` into `[inner]` of `outDtype`, slabs of
 * rows at a time, with `reduce` (the one-pass reduction of a slab that fits one binding).
 */
export function reduceSlabs(
  device: GpuDevice,
  x: GpuStorage,
  { n, inner }: ReduceLayout,
  op: ReduceOp,
  inDtype: DType,
  outDtype: DType,
  reduce: (slab: GpuStorage, layout: ReduceLayout) => GpuStorage,
): GpuStorage {
  const rowBytes = inner * device.elementBytes(inDtype);
  // Slabs are copies: at most SLAB_BYTES each keeps the temporary small beside `x`.
  const room = device.maxBindingBytes - device.bindingAlignment;
  const rows = rowBytes > room ? 0 : Math.max(1, Math.floor(Math.min(room, SLAB_BYTES) / rowBytes));
  if (rows < 1) {
    throw bindingRefusal(device, op, [n, inner], "one row of the reduced axis is that large");
  }
  let total: GpuStorage | null = null;
  for (let j = 0; j < n; j += rows) {
    const count = Math.min(rows, n - j);
    const slab = elementwiseGpu(
      device,
      "a",
      [{ storage: x, dtype: inDtype, strides: [inner, 1], offset: j * inner }],
      [count, inner],
      inDtype,
      "",
      op,
    );
    const part = reduce(slab, { outer: 1, n: count, inner });
    device.free(slab);
    if (total === null) {
      total = part;
      continue;
    }
    const both = [total, part].map((storage) => ({
      storage,
      dtype: outDtype,
      strides: [1],
      offset: 0,
    }));
    const next = elementwiseGpu(device, combine(op, outDtype), both, [inner], outDtype, "", op);
    device.free(total);
    device.free(part);
    total = next;
  }
  return total!;
}
