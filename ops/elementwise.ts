/**
 * Launching elementwise kernels: every elementwise op (arithmetic, comparisons, casts, and the
 * strided copies behind slices and transposes) is one kernel per backend, named after the op,
 * whose inputs are read through strides broadcast to the output shape.
 * @module
 */
import type { DType } from "../kernels/dtype.ts";
import type { ElementwiseSpec } from "../kernels/specs/elementwise.ts";
import { Tensor } from "./tensor.ts";
import { launch1 } from "./primitive.ts";
import { broadcastStrides } from "./broadcast.ts";
import { sameDevice } from "./validate.ts";

/** One input of {@linkcode runElementwise}: a tensor and how it is read. */
export interface View {
  tensor: Tensor;
  strides?: readonly number[];
  offset?: number;
}

/**
 * Runs elementwise kernel `name` (an entry of the backends' elementwise tables) on inputs
 * broadcast (or strided) to `outShape`, returning a new tensor. Inputs without explicit strides
 * are broadcast to `outShape`. `op` (default `name`) names the user-facing op in errors.
 */
export function runElementwise(
  name: string,
  views: readonly (Tensor | View)[],
  outShape: readonly number[],
  outDtype: DType,
  op: string = name,
): Tensor {
  const vs = views.map((v) => (v instanceof Tensor ? { tensor: v } : v));
  const device = sameDevice(name, vs.map((v) => v.tensor));
  const spec: ElementwiseSpec = {
    inputs: vs.map((v) => ({
      dtype: v.tensor.dtype,
      strides: v.strides ?? broadcastStrides(v.tensor.shape, outShape),
      offset: v.offset ?? 0,
    })),
    shape: outShape,
    dtype: outDtype,
  };
  const tensors = vs.map((v) => v.tensor);
  return launch1(name, tensors, spec, { shape: outShape, dtype: outDtype }, device, op);
}
