/**
 * Argument checks shared by the ops: tensors, devices, dtypes, axes, shapes and integers. Each
 * throws a TypeError or RangeError naming the op and the argument before any device work.
 * @module
 */
import { assertLive, deviceOf, fmt, Tensor } from "./tensor.ts";
import type { Device } from "../kernels/device.ts";

/** Throws a TypeError unless `t` is a Tensor. */
export function checkTensor(op: string, name: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) {
    const what = Array.isArray(t) ? "an array" : t === null ? "null" : typeof t;
    throw new TypeError(`${op}: ${name} must be a Tensor, got ${what}`);
  }
}

/** Throws unless `indices` is an i32 or u32 tensor. */
export function checkIndices(op: string, indices: unknown): asserts indices is Tensor {
  checkTensor(op, "indices", indices);
  if (indices.dtype !== "i32" && indices.dtype !== "u32") {
    throw new TypeError(
      `${op}: indices must be i32 or u32, got ${indices.dtype}${fmt(indices.shape)}; cast them`,
    );
  }
}

/** Throws a TypeError for bool inputs of ops that do not take them. */
export function rejectBool(op: string, x: Tensor): void {
  if (x.dtype === "bool") {
    throw new TypeError(`${op}: bool input ${x} is not supported; cast it first`);
  }
}

/** Checks that every tensor lives on one device and returns it. */
export function sameDevice(op: string, tensors: readonly Tensor[]): Device {
  assertLive(op, tensors);
  const dev = deviceOf(tensors[0]);
  for (const t of tensors) {
    if (deviceOf(t) !== dev) {
      throw new TypeError(
        `${op}: tensors are on different devices (${
          tensors.map((x) => `${fmt(x.shape)} on ${x.device}`).join(", ")
        }); move one with toDevice()`,
      );
    }
  }
  return dev;
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

/** Throws a RangeError unless `v` is an integer of at least `min` (0 or 1). */
export function checkIntAtLeast(
  op: string,
  name: string,
  v: unknown,
  min: 0 | 1,
): asserts v is number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    const kind = min === 0 ? "non-negative" : "positive";
    throw new RangeError(`${op}: ${name} must be a ${kind} integer, got ${String(v)}`);
  }
}
