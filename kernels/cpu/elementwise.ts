/**
 * CPU reference for every elementwise kernel: `out[i] = f(in0[...], in1[...], ...)` over
 * strided inputs.
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../dtype.ts";
import { collapse, sizeOf, type StridedInput } from "../strided.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { KernelTable } from "../backend.ts";
import { type ElementwiseSpec, stridedInputs } from "../specs/elementwise.ts";
import { CPU_ELEMENTWISE, type CpuScalarOp, type ScalarFn } from "./elementwise_ops.ts";

/** Runs `f` over strided inputs, writing a fresh contiguous output of `outDtype`. */
export function elementwiseCpu(
  device: CpuDevice,
  f: ScalarFn,
  inputs: readonly StridedInput[],
  outShape: readonly number[],
  outDtype: DType,
): CpuStorage {
  const n = sizeOf(outShape);
  const out: TypedArray = dtypeInfo(outDtype).create(n);
  const { shape, strides } = collapse(outShape, inputs.map((x) => x.strides));
  const data = inputs.map((x) => (x.storage as CpuStorage).data);
  const offs = inputs.map((x) => x.offset);
  const k = inputs.length;
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  const args = new Array<number>(k);
  // Fixed arities avoid a spread call per element (the generic path is several times slower).
  const d0 = data[0], d1 = data[1], d2 = data[2];
  for (let i = 0; i < n; i++) {
    if (k === 1) out[i] = f(d0[offs[0]]);
    else if (k === 2) out[i] = f(d0[offs[0]], d1[offs[1]]);
    else if (k === 3) out[i] = f(d0[offs[0]], d1[offs[1]], d2[offs[2]]);
    else {
      for (let j = 0; j < k; j++) args[j] = data[j][offs[j]];
      out[i] = f(...args);
    }
    // Advance the odometer and every input's offset.
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) {
        for (let j = 0; j < k; j++) offs[j] += strides[j][d];
        break;
      }
      idx[d] = 0;
      for (let j = 0; j < k; j++) offs[j] -= strides[j][d] * (shape[d] - 1);
    }
  }
  return device.adopt(out);
}

function scalarFn(op: CpuScalarOp, s: ElementwiseSpec): ScalarFn {
  return typeof op === "function" ? op : op.byDtype(s.inputs[0]?.dtype ?? s.dtype, s.dtype);
}

/** One kernel per entry of the CPU elementwise table, under the op's name. */
export const elementwiseKernels: KernelTable = Object.fromEntries(
  Object.entries(CPU_ELEMENTWISE).map(([name, op]) => [
    name,
    (d: CpuDevice, inputs: CpuStorage[], s: ElementwiseSpec) =>
      elementwiseCpu(d, scalarFn(op, s), stridedInputs(inputs, s), s.shape, s.dtype),
  ]),
);
