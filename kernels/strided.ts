/**
 * Strided views used by the elementwise kernels of both backends: an input is read at
 * `offset + sum(index[d] * strides[d])`, which covers broadcasting (stride 0), transposes and
 * slices without copies.
 * @module
 */
import type { DType } from "./dtype.ts";
import type { Storage } from "./device.ts";

/** One kernel input seen through strides over the output shape. */
export interface StridedInput {
  readonly storage: Storage;
  readonly dtype: DType;
  readonly strides: readonly number[];
  readonly offset: number;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a contiguous shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = shape[d] === 1 ? 0 : acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * Merges adjacent dimensions that every operand walks contiguously, and drops size-1 ones, so
 * kernels index in as few dimensions as possible. Returns the new shape and strides.
 */
export function collapse(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (
      last >= 0 &&
      strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])
    ) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}
