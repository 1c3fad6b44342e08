/**
 * What the scans (`cumsum`, `cumprod`) share: their params, input checks and kernel launch.
 * @module
 */
import type { ScanSpec } from "../kernels/specs/scan.ts";
import { bind1, launch1, type Primitive } from "./primitive.ts";
import { fmt, type Tensor } from "./tensor.ts";
import { checkTensor, normAxis } from "./validate.ts";
import { axisLayout } from "./indexing.ts";

/** The params of a scan primitive. */
export interface ScanParams {
  axis: number;
  reverse: boolean;
  exclusive: boolean;
}

/** Runs the scan kernel `kernel` (named as the op) on `x`. */
export function launchScan(
  x: Tensor,
  { axis, reverse, exclusive }: ScanParams,
  kernel: string,
): Tensor {
  const spec: ScanSpec = { layout: axisLayout(x.shape, axis), reverse, exclusive, dtype: x.dtype };
  return launch1(kernel, [x], spec, x);
}

/** Checks a scan's input (any dtype but bool) and axis, and binds the scan primitive `prim`. */
export function bindScan(
  prim: Primitive<ScanParams>,
  x: Tensor,
  axis: number,
  options: { reverse?: boolean; exclusive?: boolean },
): Tensor {
  const op = prim.name;
  checkTensor(op, "x", x);
  if (x.dtype === "bool") {
    throw new TypeError(`${op}: bool input ${fmt(x.shape)} is not supported; cast it first`);
  }
  return bind1(prim, [x], {
    axis: normAxis(op, axis, x.rank),
    reverse: options.reverse ?? false,
    exclusive: options.exclusive ?? false,
  });
}
