/**
 * What a dispatch binds: a whole storage, or a window (a byte range) of one for tensors larger
 * than one storage binding (see `windows.ts`), checked against the binding limit.
 * @module
 */
import type { GpuStorage } from "./device.ts";

/**
 * A byte range of a storage bound in place of the whole buffer: `offset` is a multiple of the
 * device's `minStorageBufferOffsetAlignment` and `size` of 4.
 */
export interface GpuWindow {
  readonly storage: GpuStorage;
  readonly offset: number;
  readonly size: number;
}

/** What a kernel binds: a whole storage or a window of one. */
export type GpuBindable = GpuStorage | GpuWindow;

/**
 * The buffer binding of `b` under a limit of `limit` bytes. A whole storage larger than the
 * limit throws a RangeError naming the kernel (`kernel()`): binding it would be a validation
 * error, or, under a limit lowered for tests, would hide a kernel that does not split.
 */
export function bindingResource(
  b: GpuBindable,
  limit: number,
  kernel: () => string,
): GPUBufferBinding {
  if ("storage" in b) return { buffer: b.storage.buffer, offset: b.offset, size: b.size };
  if (b.buffer.size <= limit) return { buffer: b.buffer };
  // A pooled buffer's size class may pass the limit while its tensor does not.
  const size = Math.max(4, Math.ceil(b.byteLength / 4) * 4);
  if (size <= limit) return { buffer: b.buffer, offset: 0, size };
  throw new RangeError(
    `webgpu: kernel ${kernel()} would bind a tensor of ${b.byteLength} bytes whole, over the ` +
      `limit of ${limit} bytes per storage binding; it cannot split its work for tensors this ` +
      "large",
  );
}

/**
 * Checks a binding limit set for tests: undefined (the adapter's), or a multiple of 4 from
 * twice the offset alignment to the adapter's limit. Returns it; throws a RangeError otherwise.
 */
export function checkBindingOverride(
  bytes: number | undefined,
  adapter: number,
  alignment: number,
): number | undefined {
  if (bytes !== undefined && !(bytes % 4 === 0 && bytes >= 2 * alignment && bytes <= adapter)) {
    throw new RangeError(
      `maxBindingBytes must be a multiple of 4 in [${2 * alignment}, ${adapter}], got ${bytes}`,
    );
  }
  return bytes;
}
