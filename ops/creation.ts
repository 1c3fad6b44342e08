/**
 * Creating tensors: from JS data, constants, ranges, identities; moving between devices.
 * @module
 */
import { type DType, dtypeInfo, dtypeOfArray, type TypedArray } from "../kernels/dtype.ts";
import { checkAllocation, type DeviceName } from "../kernels/device.ts";
import { getDevice } from "./device.ts";
import { checkShape } from "./broadcast.ts";
import { fmt, fromStorage, type NestedArray, sizeOf, type Tensor } from "./tensor.ts";
import { runElementwise } from "./elementwise.ts";

/** Options shared by the creation functions. */
export interface CreateOptions {
  /** Element type (default `f32`, or the typed array's / booleans' type). */
  dtype?: DType;
  /** Device (default: the one chosen by `init`). */
  device?: DeviceName;
}

/** Options for {@linkcode tensor}. */
export interface TensorOptions extends CreateOptions {
  /** Shape for flat data (default: inferred from nesting, or `[length]`). */
  shape?: readonly number[];
}

function flatten(op: string, data: NestedArray, shape: number[], out: number[], depth = 0): void {
  if (Array.isArray(data)) {
    if (depth === shape.length) shape.push(data.length);
    else if (shape[depth] !== data.length) {
      throw new RangeError(
        `${op}: ragged nested array (axis ${depth} has lengths ${shape[depth]} and ${data.length})`,
      );
    }
    for (const x of data) flatten(op, x, shape, out, depth + 1);
  } else {
    if (depth !== shape.length) throw new RangeError(`${op}: ragged nested array at axis ${depth}`);
    if (typeof data === "boolean") out.push(data ? 1 : 0);
    else if (typeof data === "number") out.push(data);
    else throw new TypeError(`${op}: expected numbers or booleans, got ${typeof data}`);
  }
}

function hasBoolean(data: NestedArray): boolean {
  return Array.isArray(data) ? data.length > 0 && hasBoolean(data[0]) : typeof data === "boolean";
}

/** Copies a typed array into a fresh tensor on a device. */
export function fromTypedArray(
  data: TypedArray,
  shape: readonly number[],
  dtype: DType,
  device?: DeviceName,
): Tensor {
  const dev = getDevice(device);
  return fromStorage(dev, dev.upload(data, dtype), shape, dtype);
}

/**
 * Creates a tensor from nested arrays, a flat array or a typed array.
 * Shapes: nested arrays give their nesting (`[[1, 2, 3]]` is `[1, 3]`, a number `[]`); flat
 * and typed arrays are 1-D unless `shape` is given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor } from "@longseq/tensor";
 * const a = tensor([[1, 2, 3], [4, 5, 6]]); // f32 [2, 3]
 * const b = tensor(new Int32Array([1, 2, 3, 4]), { shape: [2, 2] });
 * assert.deepEqual([a.shape, a.dtype], [[2, 3], "f32"]);
 * assert.deepEqual([b.shape, b.dtype], [[2, 2], "i32"]);
 * ```
 */
export function tensor(
  data: NestedArray | TypedArray | readonly number[],
  options: TensorOptions = {},
): Tensor {
  const op = "tensor";
  let flat: ArrayLike<number>;
  let inferred: number[];
  let dtype = options.dtype;
  if (ArrayBuffer.isView(data)) {
    flat = data as TypedArray;
    inferred = [flat.length];
    dtype ??= dtypeOfArray(data as TypedArray);
  } else {
    const out: number[] = [];
    inferred = [];
    flatten(op, data as NestedArray, inferred, out);
    flat = out;
    dtype ??= hasBoolean(data as NestedArray) ? "bool" : "f32";
  }
  const info = dtypeInfo(dtype, op);
  checkAllocation(op, getDevice(options.device), [flat.length], dtype);
  let shape = inferred;
  if (options.shape) {
    checkShape(op, options.shape);
    if (sizeOf(options.shape) !== flat.length) {
      throw new RangeError(`${op}: ${flat.length} values do not fill shape ${fmt(options.shape)}`);
    }
    shape = [...options.shape];
  }
  const arr = info.create(flat.length);
  for (let i = 0; i < flat.length; i++) arr[i] = info.coerce(flat[i]);
  return fromTypedArray(arr, shape, dtype, options.device);
}

/**
 * A tensor of `shape` filled with `value`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { full } from "@longseq/tensor";
 * assert.deepEqual(await full([2], 7).array(), [7, 7]);
 * ```
 */
export function full(
  shape: readonly number[],
  value: number | boolean,
  options: CreateOptions = {},
): Tensor {
  checkShape("full", shape);
  const dtype = options.dtype ?? (typeof value === "boolean" ? "bool" : "f32");
  const info = dtypeInfo(dtype, "full");
  const one = info.create(1);
  one[0] = info.coerce(Number(value));
  using scalar = fromTypedArray(one, [], dtype, options.device);
  return runElementwise(
    "copy",
    [{ tensor: scalar, strides: shape.map(() => 0) }],
    shape,
    dtype,
    "full",
  );
}

/**
 * A tensor of zeros.
 * Shapes: the result has `shape` (`[]` gives a 0-d tensor).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zeros } from "@longseq/tensor";
 * assert.deepEqual(await zeros([2, 3]).array(), [[0, 0, 0], [0, 0, 0]]);
 * ```
 */
export function zeros(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return full(shape, 0, { dtype: "f32", ...options });
}

/**
 * A tensor of ones.
 * Shapes: the result has `shape` (`[]` gives a 0-d tensor).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ones } from "@longseq/tensor";
 * assert.deepEqual(await ones([2]).array(), [1, 1]);
 * ```
 */
export function ones(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return full(shape, 1, { dtype: "f32", ...options });
}

/**
 * A tensor of zeros with the shape, dtype and device of `x` (any shape).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, zerosLike } from "@longseq/tensor";
 * const z = zerosLike(tensor([[1, 2, 3]], { dtype: "i32" })); // [1, 3] i32
 * assert.equal(z.dtype, "i32");
 * assert.deepEqual(await z.array(), [[0, 0, 0]]);
 * ```
 */
export function zerosLike(x: Tensor): Tensor {
  return full(x.shape, 0, { dtype: x.dtype, device: x.device });
}

/**
 * A tensor of ones with the shape, dtype and device of `x` (any shape).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { onesLike, tensor } from "@longseq/tensor";
 * const o = onesLike(tensor([[1.5], [2.5]])); // [2, 1] f32
 * assert.deepEqual(await o.array(), [[1], [1]]);
 * ```
 */
export function onesLike(x: Tensor): Tensor {
  return full(x.shape, 1, { dtype: x.dtype, device: x.device });
}

/**
 * Evenly spaced values `start, start+step, ...` below `stop` (NumPy `arange`).
 * With one argument, `arange(n)` gives `0..n-1`. Default dtype `i32` for integer arguments.
 * Shapes: the result is 1-D, `[ceil((stop - start) / step)]` (empty when that is not positive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arange } from "@longseq/tensor";
 * assert.deepEqual(await arange(4).array(), [0, 1, 2, 3]);
 * assert.deepEqual(await arange(1, 2, 0.5).array(), [1, 1.5]);
 * ```
 */
export function arange(
  start: number,
  stop?: number,
  step = 1,
  options: CreateOptions = {},
): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  if (!Number.isFinite(start) || !Number.isFinite(stop) || !Number.isFinite(step) || step === 0) {
    throw new RangeError(
      `arange: start, stop and step must be finite and step non-zero (got ${start}, ${stop}, ${step})`,
    );
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const ints = [start, stop, step].every(Number.isInteger);
  const dtype = options.dtype ?? (ints ? "i32" : "f32");
  const info = dtypeInfo(dtype, "arange");
  checkAllocation("arange", getDevice(options.device), [n], dtype);
  const arr = info.create(n);
  for (let i = 0; i < n; i++) arr[i] = info.coerce(start + i * step);
  return fromTypedArray(arr, [n], dtype, options.device);
}

/**
 * An `[n, m]` matrix with ones on the diagonal `k` (0: main, >0: above).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { eye } from "@longseq/tensor";
 * assert.deepEqual(await eye(2).array(), [[1, 0], [0, 1]]);
 * ```
 */
export function eye(n: number, m: number = n, k: number = 0, options: CreateOptions = {}): Tensor {
  checkShape("eye", [n, m]);
  if (!Number.isInteger(k)) {
    throw new TypeError(`eye: diagonal offset must be an integer, got ${k}`);
  }
  const dtype = options.dtype ?? "f32";
  checkAllocation("eye", getDevice(options.device), [n, m], dtype);
  const arr = dtypeInfo(dtype, "eye").create(n * m);
  for (let i = 0; i < n; i++) if (i + k >= 0 && i + k < m) arr[i * m + i + k] = 1;
  return fromTypedArray(arr, [n, m], dtype, options.device);
}

/**
 * Copies a tensor to another device (reads it back first when it is on the GPU).
 * Shapes: the result has `x`'s shape and dtype.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, toDevice } from "@longseq/tensor";
 * const c = await toDevice(tensor([1, 2]), "cpu-reference");
 * assert.equal(c.device, "cpu-reference");
 * ```
 */
export async function toDevice(x: Tensor, device: DeviceName): Promise<Tensor> {
  const data = await x.data();
  return fromTypedArray(data, x.shape, x.dtype, device);
}
