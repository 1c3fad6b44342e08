/**
 * Backends as plug-ins: a backend is a {@linkcode Device} plus a table of kernels keyed by
 * stable kernel names (`"matmul"`, `"sum"`, `"add"`, ...). Ops never name a backend: they
 * launch a kernel by name on the device holding their inputs, and the registry here finds the
 * backend's kernel.
 *
 * A kernel takes the device, the input storages (in the order the op documents) and a spec
 * (its static parameters, types in `kernels/specs/`), and returns its output storage or
 * storages. Each backend's table lives in `kernels/<backend>/mod.ts`, which gathers the tables
 * its family files (`matmul.ts`, `reduce.ts`, ...) export; the family files of every backend
 * carry the same names.
 *
 * A backend without some kernel may name a fallback backend: that kernel then runs there, on
 * copies of the inputs, and its outputs are copied back. Both backends must then give
 * synchronous host copies ({@linkcode Backend.toHost}). Without a fallback, a missing kernel
 * is an error naming the kernel and the backend.
 * @module
 */
import type { DType, TypedArray } from "./dtype.ts";
import type { Device, DeviceName, Storage } from "./device.ts";

/**
 * A kernel: `(device, inputs, spec) => output(s)`. Declared with `never` parameters so that a
 * table can hold kernels typed for their own device, storage and spec classes; the launcher
 * calls them through {@linkcode callKernel}.
 */
export type Kernel = (
  device: never,
  inputs: never,
  spec: never,
) => Storage | readonly Storage[];

/** A backend's kernels by name. */
export type KernelTable = Readonly<Record<string, Kernel>>;

/** A registered backend. */
export interface Backend {
  /** The backend's name (the device's name). */
  readonly name: DeviceName;
  /** The device: storage, transfer and accounting. */
  readonly device: Device;
  /** Kernels by name. */
  readonly kernels: KernelTable;
  /**
   * The backend whose kernels run where this one has none (on copies of the storages).
   * Requires {@linkcode Backend.toHost} on both backends.
   */
  readonly fallback?: DeviceName;
  /**
   * Copies `size` elements of `dtype` out of a storage synchronously (only backends whose
   * memory the host can read at once, such as the CPU's, can give this).
   */
  readonly toHost?: (storage: Storage, dtype: DType, size: number) => TypedArray;
  /**
   * Whether a kernel of the table can run on this device as configured (for example a shader
   * needing more storage bindings than the adapter allows). Default: every listed kernel can.
   */
  readonly supports?: (kernel: string) => boolean;
  /**
   * Whether a kernel of the table takes this call, given its spec and the inputs' dtypes
   * (for example a kernel written for f32 only). When it answers false the call runs on the
   * fallback backend, on copies, as for a kernel the table lacks. Default: every call.
   */
  readonly accepts?: (kernel: string, spec: unknown, dtypes: readonly DType[]) => boolean;
  /**
   * Whether a kernel written for f32 operands also reads f16 ones itself (converting on load),
   * so that fused primitives under mixed precision hand it their f16 operands instead of f32
   * copies (`ops/widen.ts`). Default: no kernel does.
   */
  readonly readsF16?: (kernel: string) => boolean;
  /**
   * The most bytes one operand (an output, or an input's whole storage) of a call of `kernel`
   * may hold, when less than the device's per-tensor limit: a WebGPU kernel that cannot split
   * its work binds each storage whole, so it takes nothing larger than one storage binding.
   * The launcher refuses a larger operand with a RangeError naming the op, the shape and the
   * limit. Default (or undefined): no limit beyond the device's.
   */
  readonly operandLimit?: (kernel: string) => number | undefined;
}

const registry = new Map<string, Backend>();

/** Registers (or replaces) a backend under its name; returns it. */
export function registerBackend(backend: Backend): Backend {
  registry.set(backend.name, backend);
  return backend;
}

/** Removes a backend from the registry (tests that register their own use this). */
export function unregisterBackend(name: DeviceName): void {
  registry.delete(name);
}

/** The backend registered under `name`, if any. */
export function findBackend(name: DeviceName): Backend | undefined {
  return registry.get(name);
}

/** The backend a device belongs to; throws when it was never registered. */
export function backendOf(device: Device): Backend {
  const b = registry.get(device.name);
  if (!b || b.device !== device) {
    throw new Error(`launch: device ${device.name} is not a registered backend`);
  }
  return b;
}

/** Calls a kernel taken from a table. */
export function callKernel(
  kernel: Kernel,
  device: Device,
  inputs: readonly Storage[],
  spec: unknown,
): readonly Storage[] {
  const out = (kernel as (d: Device, i: readonly Storage[], s: unknown) => Storage | Storage[])(
    device,
    inputs,
    spec,
  );
  return Array.isArray(out) ? out : [out as Storage];
}
