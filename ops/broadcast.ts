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

// Axis and shape checks live in validate.ts; re-exported for existing importers.
export { checkShape, normAxes, normAxis } from "./validate.ts";
