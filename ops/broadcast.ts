/**
 * NumPy broadcasting rules and axis normalisation, shared by every op's shape rule.
 * @module
 */
import { contiguousStrides } from "../kernels/strided.ts";
import { fmt } from "./tensor.ts";

/** The broadcast shape of several shapes, or a RangeError naming the op and shapes. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const d = rank - s.length + i;
      const n = s[i];
      if (out[d] === 1) out[d] = n;
      else if (n !== 1 && n !== out[d]) {
        throw new RangeError(
          `${op}: shapes ${shapes.map(fmt).join(" and ")} cannot be broadcast ` +
            `(axis ${d - rank}: ${out[d]} vs ${n}; sizes must match or be 1)`,
        );
      }
    }
  }
  return out;
}

/** Strides that read a contiguous `shape` as if broadcast to `outShape` (0 on new axes). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const c = contiguousStrides(shape);
  const pad = outShape.length - shape.length;
  return outShape.map((_, d) => (d < pad || shape[d - pad] === 1 ? 0 : c[d - pad]));
}

/** Normalises an axis (negative counts from the end), throwing a RangeError when out of range. */
export function normAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new RangeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalises a set of axes (default: all), rejecting duplicates. Returns them sorted. */
export function normAxes(
  op: string,
  axes: number | readonly number[] | undefined,
  rank: number,
): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = (typeof axes === "number" ? [axes] : axes).map((a) => normAxis(op, a, rank));
  if (new Set(list).size !== list.length) {
    throw new RangeError(
      `${op}: repeated axis in [${(typeof axes === "number" ? [axes] : axes).join(",")}]`,
    );
  }
  return list.sort((a, b) => a - b);
}

/** Checks that a shape is a list of non-negative integers. */
export function checkShape(op: string, shape: readonly number[]): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new TypeError(
      `${op}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`,
    );
  }
}
