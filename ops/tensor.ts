/**
 * The immutable tensor handle.
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../kernels/dtype.ts";
import type { Device, DeviceName, Storage } from "../kernels/device.ts";
import { sizeOf } from "../kernels/strided.ts";
import { registerInScope, unregisterFromScope } from "./scope.ts";
import type { Node } from "./primitive.ts";

/** Nested JS arrays, as returned by {@linkcode Tensor.array}. */
export type NestedArray = number | boolean | NestedArray[];

/** Storage shared by tensors that view the same data (e.g. after a reshape). */
interface Shared {
  readonly device: Device;
  readonly storage: Storage;
  refs: number;
  /** Counted in `memory().constantBytes` (storage of collectable handles such as PRNG keys). */
  constant?: boolean;
}

/** Drops one reference to `shared`, freeing the storage with the last one. */
function release(shared: Shared): void {
  if (--shared.refs > 0) return;
  if (shared.constant) shared.device.countConstant(shared.storage, -1);
  shared.device.free(shared.storage);
}

/**
 * Frees the storage of collectable handles (see {@linkcode collectable}) that were never
 * disposed, once the garbage collector finds them unreachable.
 */
const collector = new FinalizationRegistry<Shared>((shared) => {
  try {
    release(shared);
  } catch {
    // The device went away first: nothing is left to free.
  }
});

/** How many scalar constants each device keeps (see {@linkcode Tensor.scalar}). */
export const SCALAR_CACHE_SIZE = 256;

/** Each device's scalar constants, keyed by dtype and value, in least-recent-use order. */
const scalarCaches = new WeakMap<Device, Map<string, Shared>>();

export { sizeOf };

/**
 * Reads row `i` of a tensor's first axis as a new tensor. Set by the slicing ops (which import
 * this module, so it cannot import them) when they load.
 */
let readRow: ((t: Tensor, i: number) => Tensor) | null = null;

/** Sets how {@linkcode Tensor} iteration reads a row (called by the slicing ops). */
export function setRowReader(read: (t: Tensor, i: number) => Tensor): void {
  readRow = read;
}

/** Formats a shape as `[2,3]` for error messages. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** A tensor owning freshly allocated `storage` (for kernel launches; not exported by `mod.ts`). */
export let fromStorage: (
  device: Device,
  storage: Storage,
  shape: readonly number[],
  dtype: DType,
) => Tensor;
/** The storage holding a tensor's data (for kernel launches). Throws if it was disposed. */
export let storageOf: (t: Tensor) => Storage;
/** The device object holding a tensor's data. Throws if it was disposed. */
export let deviceOf: (t: Tensor) => Device;
/**
 * Makes `t` collectable and returns it (a view or a tensor of an autodiff trace is returned
 * unchanged): it needs no dispose. It leaves `memory().liveTensors` and every `scope`, its bytes count as
 * `memory().constantBytes`, and its storage is freed when the handle is garbage collected,
 * or at once by `dispose()`. For small immutable values such as PRNG keys (not exported by
 * `mod.ts`).
 */
export let collectable: (t: Tensor) => Tensor;
/** Whether `t` was made collectable. */
export let isCollectable: (t: Tensor) => boolean;

/**
 * Reads row `i` of `t` for iteration instead of {@linkcode setRowReader}'s reader, when it
 * returns a tensor (set by the PRNG key functions: rows of a key array are keys).
 */
let rowOverride: ((t: Tensor, i: number) => Tensor | undefined) | null = null;

/** Sets {@linkcode rowOverride}. */
export function setRowOverride(read: (t: Tensor, i: number) => Tensor | undefined): void {
  rowOverride = read;
}

/**
 * An immutable n-dimensional array on one device. Ops never change their inputs; values are
 * read asynchronously with {@linkcode Tensor.data} or {@linkcode Tensor.array}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor } from "@longseq/tensor";
 * using t = tensor([[1, 2], [3, 4]]);
 * assert.deepEqual(t.shape, [2, 2]);
 * assert.deepEqual(await t.array(), [[1, 2], [3, 4]]);
 * ```
 */
export class Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /**
   * Autodiff node that produced this tensor inside a `vjp` trace (null when untraced).
   * @internal
   */
  readonly node: Node | null;
  /**
   * Which output of its autodiff node this tensor is.
   * @internal
   */
  readonly nodeIndex: number;
  #shared: Shared | null;
  #collectable = false;

  /**
   * Wraps storage in a handle (kernel launches use `fromStorage` from this module).
   * @internal
   */
  private constructor(
    shared: Shared,
    shape: readonly number[],
    dtype: DType,
    node: Node | null,
    nodeIndex: number,
  ) {
    this.#shared = shared;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.node = node;
    this.nodeIndex = nodeIndex;
    shared.device.countTensor(1);
    registerInScope(this);
  }

  static {
    fromStorage = (device, storage, shape, dtype) =>
      new Tensor({ device, storage, refs: 1 }, shape, dtype, null, 0);
    storageOf = (t) => t.#live("storage").storage;
    deviceOf = (t) => t.#live("backend").device;
    collectable = (t) => {
      const shared = t.#live("collectable");
      if (t.#collectable) return t;
      // A view or a traced tensor stays an ordinary handle: others share its storage.
      if (shared.refs !== 1 || t.node) return t;
      t.#collectable = true;
      shared.constant = true;
      shared.device.countConstant(shared.storage, 1);
      shared.device.countTensor(-1);
      unregisterFromScope(t);
      collector.register(t, shared, t);
      return t;
    };
    isCollectable = (t) => t.#collectable;
  }

  /**
   * A scalar tensor holding `value` (coerced to `dtype`), as a new handle on storage the
   * device caches: the JS numbers in `mul(x, 0.5)` or an optimizer's `b1` upload once per
   * device instead of once per op. The handle is an ordinary tensor (dispose it). The cache
   * holds at most {@linkcode SCALAR_CACHE_SIZE} scalars per device, dropping the least recently
   * used first; its bytes show as `memory().constantBytes`, not `liveBytes`.
   */
  static scalar(device: Device, value: number, dtype: DType): Tensor {
    const info = dtypeInfo(dtype);
    const v = info.coerce(value);
    const key = `${dtype}:${Object.is(v, -0) ? "-0" : v}`;
    let cache = scalarCaches.get(device);
    if (!cache) scalarCaches.set(device, cache = new Map());
    let shared = cache.get(key);
    if (shared) {
      cache.delete(key);
    } else {
      const one = info.create(1);
      one[0] = v;
      shared = { device, storage: device.upload(one, dtype), refs: 1 };
      device.countConstant(shared.storage, 1);
      if (cache.size >= SCALAR_CACHE_SIZE) {
        const [oldKey, old] = cache.entries().next().value!;
        cache.delete(oldKey);
        device.countConstant(old.storage, -1);
        if (--old.refs === 0) device.free(old.storage);
      }
    }
    cache.set(key, shared);
    shared.refs++;
    return new Tensor(shared, [], dtype, null, 0);
  }

  /**
   * A new handle on the same storage with another shape of equal size (no copy). The storage
   * lives until every handle on it is disposed. (`node` and `nodeIndex` are for autodiff: they
   * mark the handle as an output of a traced node.)
   */
  view(shape: readonly number[], node: Tensor["node"] = null, nodeIndex = 0): Tensor {
    const shared = this.#live("view");
    if (sizeOf(shape) !== this.size) {
      throw new RangeError(`view: cannot view ${fmt(this.shape)} as ${fmt(shape)}`);
    }
    shared.refs++;
    return new Tensor(shared, shape, this.dtype, node, nodeIndex);
  }

  /** Name of the device holding the data. */
  get device(): DeviceName {
    return this.#live("device").device.name;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Whether {@linkcode Tensor.dispose} was called. */
  get disposed(): boolean {
    return this.#shared === null;
  }

  /** Reads the values as a flat typed array (row-major). */
  async data(): Promise<TypedArray> {
    const { device, storage } = this.#live("data");
    return await device.read(storage, this.dtype, this.size);
  }

  /** Reads the values as nested JS arrays (booleans for `bool`). */
  async array(): Promise<NestedArray> {
    const flat = await this.data();
    const isBool = this.dtype === "bool";
    const build = (dim: number, offset: number): NestedArray => {
      if (dim === this.shape.length) return isBool ? flat[offset] !== 0 : flat[offset];
      const stride = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  /** Frees the storage (when no other view holds it). Safe to call twice. */
  dispose(): void {
    const shared = this.#shared;
    if (!shared) return;
    this.#shared = null;
    if (this.#collectable) collector.unregister(this);
    else {
      shared.device.countTensor(-1);
      unregisterFromScope(this);
    }
    release(shared);
  }

  /**
   * Iterates along the first axis, like a JAX array: each step yields a new tensor of the
   * remaining shape (a copy the caller owns; inside `scope` it belongs to the scope). Rows are
   * made as the iteration reaches them, so destructuring makes only the rows it names.
   * Iterating a 0-d tensor throws a TypeError.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { tensor } from "@longseq/tensor";
   * const [first, second] = tensor([[1, 2], [3, 4]]); // [2, 2] -> two [2] rows
   * assert.deepEqual(await first.array(), [1, 2]);
   * assert.deepEqual(await second.array(), [3, 4]);
   * const rows = [];
   * for (const row of tensor([[1, 2, 3]])) rows.push(await row.array());
   * assert.deepEqual(rows, [[1, 2, 3]]);
   * ```
   */
  *[Symbol.iterator](): Iterator<Tensor> {
    this.#live("iterate");
    if (this.rank === 0) {
      throw new TypeError(
        `iteration over a 0-d tensor: ${this.toString()} has no first axis to iterate`,
      );
    }
    if (!readRow) throw new Error("iterate: the slicing ops are not loaded");
    for (let i = 0; i < this.shape[0]; i++) yield rowOverride?.(this, i) ?? readRow(this, i);
  }

  /** Disposes the tensor at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** A short description: dtype, shape and device (values need `await data()`). */
  toString(): string {
    if (!this.#shared) return `Tensor(${this.dtype}${fmt(this.shape)}, disposed)`;
    return `Tensor(${this.dtype}${fmt(this.shape)} on ${this.#shared.device.name})`;
  }

  #live(what: string): Shared {
    if (!this.#shared) {
      throw new TypeError(
        `${what}: tensor ${this.dtype}${fmt(this.shape)} was disposed; ` +
          "keep it alive (return it from scope() or keep()) until its last use",
      );
    }
    return this.#shared;
  }
}

/**
 * Throws a TypeError naming `op` and the input's position, shape and dtype when one of `inputs`
 * was disposed (e.g. "add: input 1 (tensor [2,3] f32) was disposed"). Ops call it (through
 * `bind`, `sameDevice` and the operand conversion of binary ops) before touching storage.
 */
export function assertLive(op: string, inputs: readonly unknown[]): void {
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i];
    if (t instanceof Tensor && t.disposed) {
      throw new TypeError(
        `${op}: input ${i} (tensor ${fmt(t.shape)} ${t.dtype}) was disposed; ` +
          "keep it alive (return it from scope() or keep()) until its last use",
      );
    }
  }
}
