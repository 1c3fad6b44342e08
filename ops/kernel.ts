/**
 * Runs an elementwise kernel on whichever device holds the inputs. This is the one place that
 * picks the CPU or WebGPU implementation of an elementwise op.
 * @module
 */
import type { DType } from "../kernels/dtype.ts";
import { checkAllocation } from "../kernels/device.ts";
import type { StridedInput } from "../kernels/strided.ts";
import type { CpuDevice } from "../kernels/cpu/device.ts";
import { elementwiseCpu, type ScalarFn } from "../kernels/cpu/elementwise.ts";
import type { GpuDevice } from "../kernels/webgpu/device.ts";
import { elementwiseGpu } from "../kernels/webgpu/elementwise.ts";
import { assertLive, fmt, Tensor } from "./tensor.ts";
import { broadcastStrides } from "./broadcast.ts";

/** An elementwise op: a JS scalar function (CPU reference) and a WGSL expression. */
export interface ScalarOp {
  /** CPU reference over JS numbers. */
  cpu: ScalarFn;
  /**
   * CPU reference when the output is i32/u32, where `cpu`'s float64 arithmetic would lose the
   * low bits the GPU's wrapping integer arithmetic keeps (products past 2^53).
   */
  cpuInt?: ScalarFn;
  /** WGSL expression over `a`, `b`, `c`; may depend on the input and output dtypes. */
  wgsl: string | ((inDtype: DType, outDtype: DType) => string);
  /** WGSL helper functions the expression uses. */
  helpers?: string;
}

/** One input of {@linkcode runElementwise}: a tensor and how it is read. */
export interface View {
  tensor: Tensor;
  strides?: readonly number[];
  offset?: number;
}

/** Checks that every tensor lives on one device and returns it. */
export function sameDevice(op: string, tensors: readonly Tensor[]) {
  assertLive(op, tensors);
  const dev = tensors[0].backend;
  for (const t of tensors) {
    if (t.backend !== dev) {
      throw new TypeError(
        `${op}: tensors are on different devices (${
          tensors.map((x) => `${fmt(x.shape)} on ${x.device}`).join(", ")
        }); move one with toDevice()`,
      );
    }
  }
  return dev;
}

/**
 * Applies `op` to inputs broadcast (or strided) to `outShape`, returning a new tensor.
 * Inputs without explicit strides are broadcast to `outShape`.
 */
export function runElementwise(
  name: string,
  op: ScalarOp,
  views: readonly (Tensor | View)[],
  outShape: readonly number[],
  outDtype: DType,
): Tensor {
  const vs = views.map((v) => (v instanceof Tensor ? { tensor: v } : v));
  const device = sameDevice(name, vs.map((v) => v.tensor));
  checkAllocation(name, device, outShape, outDtype);
  const inputs: StridedInput[] = vs.map((v) => ({
    storage: v.tensor.storage,
    dtype: v.tensor.dtype,
    strides: v.strides ?? broadcastStrides(v.tensor.shape, outShape),
    offset: v.offset ?? 0,
  }));
  const storage = device.name === "cpu"
    ? elementwiseCpu(
      device as CpuDevice,
      op.cpuInt && (outDtype === "i32" || outDtype === "u32") ? op.cpuInt : op.cpu,
      inputs,
      outShape,
      outDtype,
    )
    : elementwiseGpu(
      device as GpuDevice,
      typeof op.wgsl === "string" ? op.wgsl : op.wgsl(inputs[0]?.dtype ?? outDtype, outDtype),
      inputs,
      outShape,
      outDtype,
      op.helpers,
    );
  return Tensor.fromStorage(device, storage, outShape, outDtype);
}
