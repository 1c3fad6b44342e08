/**
 * Device selection: `init()` picks the default device; both backends can be used side by side.
 * @module
 */
import { CpuDevice } from "../kernels/cpu/device.ts";
import type { Device, DeviceName, MemoryInfo } from "../kernels/device.ts";
import { GpuDevice } from "../kernels/webgpu/device.ts";

const cpu = new CpuDevice();
let gpu: GpuDevice | null = null;
/** The one request for the WebGPU device, shared by every `init` call (null until the first). */
let gpuRequest: Promise<GpuDevice | null> | null = null;
let fallback: Device = cpu;
/** The `init` call in flight, if any, with the backend it was asked for. */
let pending: { backend: DeviceName | undefined; result: Promise<InitResult> } | null = null;

/** Options for {@linkcode init}. */
export interface InitOptions {
  /**
   * Backend to use by default. Without it, the `LONGSEQ_BACKEND` environment variable decides
   * (`cpu` or `webgpu`), else WebGPU is used when an adapter exists.
   */
  backend?: DeviceName;
  /** Suppresses the one line printed when falling back to the CPU. */
  quiet?: boolean;
}

/** What {@linkcode init} found. */
export interface InitResult {
  /** The default backend now in use. */
  backend: DeviceName;
  /** The adapter description (or the CPU's). */
  adapter: string;
}

/**
 * Picks the default device: WebGPU when an adapter exists, else the CPU (printing one line
 * saying so). Asking for `"webgpu"` explicitly throws when no adapter exists. Until `init` is
 * called the default device is the CPU.
 *
 * Concurrency: the WebGPU device is requested once per process and never replaced, so every
 * tensor made on it stays usable whatever `init` calls follow. A call made while another is
 * in flight returns that call's result when it asks for the same backend (the same
 * `backend` option, or both without one), and throws an Error when it asks for another. Once
 * a call has finished, a later one may switch the default device (e.g. to the CPU and back).
 *
 * @example
 * ```ts
 * import { init } from "@longseq/tensor";
 * const { backend, adapter } = await init({ quiet: true });
 * console.log(backend, adapter);
 * ```
 */
export async function init(options: InitOptions = {}): Promise<InitResult> {
  const backend = options.backend ?? envBackend();
  if (backend !== undefined && backend !== "cpu" && backend !== "webgpu") {
    throw new TypeError(
      `init: unknown backend ${JSON.stringify(backend)}; expected "webgpu" or "cpu"`,
    );
  }
  if (pending) {
    if (pending.backend !== backend) {
      throw new Error(
        `init: called with backend ${JSON.stringify(backend ?? "auto")} while a call with ` +
          `backend ${JSON.stringify(pending.backend ?? "auto")} is in flight; await it first`,
      );
    }
    return await pending.result;
  }
  const result = select(backend, options.quiet ?? false);
  const entry = { backend, result };
  pending = entry;
  const done = () => {
    if (pending === entry) pending = null;
  };
  result.then(done, done);
  return await result;
}

/** Sets the default device for `init` (see there), creating the WebGPU device at most once. */
async function select(backend: DeviceName | undefined, quiet: boolean): Promise<InitResult> {
  if (backend === "cpu") {
    fallback = cpu;
    return { backend: "cpu", adapter: cpu.description };
  }
  if (!gpu) {
    gpuRequest ??= GpuDevice.create();
    try {
      gpu = await gpuRequest;
    } finally {
      if (!gpu) gpuRequest = null; // no adapter, or the request failed: a later call may retry
    }
  }
  if (!gpu) {
    if (backend === "webgpu") {
      throw new Error(
        "init: no WebGPU adapter found (on Linux without a GPU, install mesa-vulkan-drivers)",
      );
    }
    if (!quiet) console.log("longseq: no WebGPU adapter found; using the CPU backend");
    fallback = cpu;
    return { backend: "cpu", adapter: cpu.description };
  }
  fallback = gpu;
  return { backend: "webgpu", adapter: gpu.description };
}

/** The device named, or the default device. Throws if WebGPU was asked for but not initialised. */
export function getDevice(name?: DeviceName): Device {
  if (name === undefined) return fallback;
  if (name === "cpu") return cpu;
  if (name === "webgpu") {
    if (!gpu) throw new Error("getDevice: WebGPU is not initialised; call `await init()` first");
    return gpu;
  }
  throw new TypeError(`getDevice: unknown device ${JSON.stringify(name)}`);
}

/** The backend named by the `LONGSEQ_BACKEND` environment variable, if readable and set. */
function envBackend(): DeviceName | undefined {
  try {
    const v = Deno.env.get("LONGSEQ_BACKEND");
    return v ? (v as DeviceName) : undefined;
  } catch {
    return undefined; // no env permission: fall back to auto-detection
  }
}

/** Names of the devices available now (the CPU, plus WebGPU once initialised). */
export function devices(): DeviceName[] {
  return gpu ? ["cpu", "webgpu"] : ["cpu"];
}

/**
 * Memory figures of a device (default: the default device): live tensors, live bytes, peak
 * bytes and bytes pooled for reuse.
 *
 * @example
 * ```ts
 * import { memory, zeros } from "@longseq/tensor";
 * const before = memory().liveBytes;
 * const z = zeros([256]);
 * console.log(memory().liveBytes - before); // 1024
 * z.dispose();
 * ```
 */
export function memory(device?: DeviceName): MemoryInfo {
  return getDevice(device).memory();
}

/** Sets a device's peak-bytes figure to its current live bytes. */
export function resetPeakMemory(device?: DeviceName): void {
  getDevice(device).resetPeak();
}

/**
 * Gives back the storage buffers a device keeps pooled for reuse after tensors are disposed
 * (default: every device), and returns the bytes released. The WebGPU pool keeps at most
 * {@linkcode setPoolLimit} bytes (256 MiB unless set), evicting the least recently freed
 * buffers first; call this after a phase with large temporaries (evaluation at a longer
 * length, a big one-off matmul) to return their memory to the system.
 *
 * @example
 * ```ts
 * import { memory, releasePooledMemory, zeros } from "@longseq/tensor";
 * zeros([1 << 20]).dispose();
 * releasePooledMemory();
 * console.log(memory().pooledBytes); // 0
 * ```
 */
export function releasePooledMemory(device?: DeviceName): number {
  const names = device === undefined ? devices() : [device];
  return names.reduce((n, d) => n + getDevice(d).releasePooled(), 0);
}

/**
 * Sets the most bytes of freed storage a device pools for reuse (default: every device; the
 * WebGPU default is 256 MiB). Lowering it releases the excess at once, least recently freed
 * buffers first; 0 disables pooling. The CPU pools nothing.
 */
export function setPoolLimit(bytes: number, device?: DeviceName): void {
  if (!(bytes >= 0)) {
    throw new RangeError(`setPoolLimit: expected a byte count >= 0, got ${bytes}`);
  }
  const names = device === undefined ? devices() : [device];
  for (const d of names) getDevice(d).poolLimit = bytes;
}

/** Submits pending GPU work without waiting for it. */
export function flush(device?: DeviceName): void {
  getDevice(device).flush();
}

/** Submits pending work and waits until the device has finished it. */
export async function sync(device?: DeviceName): Promise<void> {
  await getDevice(device).sync();
}
