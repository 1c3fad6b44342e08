/**
 * Axis and chunk shaping for the chunked attention layers: rolling and look-around over chunk
 * axes, padding an axis to a length and trimming it back, and i32 index tensors.
 * @module
 */
import type { DeviceName } from "../../kernels/device.ts";
import type { Tensor } from "../../ops/tensor.ts";
import { fromTypedArray } from "../../ops/creation.ts";
import { reshape } from "../../ops/shape.ts";
import { concat, pad, slice } from "../../ops/slicing.ts";

/**
 * Rolls chunks along `axis` so chunk `c` of the result holds chunk `(c + d) mod n` of `x`.
 */
export function rollChunks(x: Tensor, axis: number, d: number): Tensor {
  const n = x.shape[axis];
  const s = ((d % n) + n) % n;
  if (s === 0) return reshape(x, x.shape);
  const at = (start: number, end: number) =>
    slice(
      x,
      x.shape.map((_, i) => (i === axis ? start : 0)),
      x.shape.map((m, i) => (i === axis ? end : m)),
    );
  using head = at(s, n);
  using tail = at(0, s);
  return concat([head, tail], axis);
}

/**
 * Look-around for chunked attention: chunk `c` of the result is the concatenation, along
 * `axis + 1`, of chunks `c + d` (mod the number of chunks) of `x` for each `d` in `offsets`.
 *
 * @param x `[..., nChunks, chunkLen, ...]` with the chunk index on `axis`.
 * @returns `[..., nChunks, offsets.length * chunkLen, ...]`.
 */
export function lookAround(x: Tensor, axis: number, offsets: readonly number[]): Tensor {
  if (offsets.length === 1) return rollChunks(x, axis, offsets[0]);
  const parts = offsets.map((d) => rollChunks(x, axis, d));
  try {
    return concat(parts, axis + 1);
  } finally {
    for (const t of parts) t.dispose();
  }
}

/** The chunk offsets `[-before, ..., after]`. */
export function chunkOffsets(before: number, after: number): number[] {
  return Array.from({ length: before + after + 1 }, (_, i) => i - before);
}

/** Pads axis `axis` of `x` at the end to length `to` with `value`. */
export function padAxis(x: Tensor, axis: number, to: number, value = 0): Tensor {
  const n = x.shape[axis];
  if (n === to) return reshape(x, x.shape);
  return padEnd(x, axis, to - n, value);
}

function padEnd(x: Tensor, axis: number, extra: number, value: number): Tensor {
  return pad(x, x.shape.map((_, i): [number, number] => [0, i === axis ? extra : 0]), value);
}

/** Keeps the first `n` entries of axis `axis`. */
export function takeFirst(x: Tensor, axis: number, n: number): Tensor {
  if (x.shape[axis] === n) return reshape(x, x.shape);
  return slice(x, x.shape.map(() => 0), x.shape.map((m, i) => (i === axis ? n : m)));
}

/** An i32 tensor from a JS array. */
export function i32Tensor(values: ArrayLike<number>, shape: readonly number[], device: DeviceName) {
  return fromTypedArray(Int32Array.from(values), shape, "i32", device);
}
