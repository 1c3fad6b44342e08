/**
 * Device selection: `init()` picks the default device; both backends can be used side by side.
 * @module
 */
import { CpuDevice } from "../kernels/cpu/device.ts";
import type { Device, DeviceName, MemoryInfo } from "../kernels/device.ts";
import { GpuDevice } from "../kernels/webgpu/device.ts";

const cpu = new CpuDevice();
let gpu: GpuDevice | null = null;
let fallback: Device = cpu;
/** Whether `init` has run, or the one line about not calling it has been printed. */
let initSeen = false;

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
 * called the default device is the CPU, and the first tensor created on it says so once on
 * stderr.
 *
 * @example
 * ```ts
 * import { init } from "@longseq/tensor";
 * const { backend, adapter } = await init({ quiet: true });
 * console.log(backend, adapter);
 * ```
 */
export async function init(options: InitOptions = {}): Promise<InitResult> {
  const { quiet = false } = options;
  initSeen = true;
  const backend = options.backend ?? envBackend();
  if (backend !== undefined && backend !== "cpu" && backend !== "webgpu") {
    throw new TypeError(
      `init: unknown backend ${JSON.stringify(backend)}; expected "webgpu" or "cpu"`,
    );
  }
  if (backend === "cpu") {
    fallback = cpu;
    return { backend: "cpu", adapter: cpu.description };
  }
  gpu ??= await GpuDevice.create();
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

/**
 * The device named, or the default device. Throws if WebGPU was asked for but not initialised.
 * The first call for the default device before any `init()` prints one line on stderr saying the
 * CPU backend is in use (never again in the process; not with `LONGSEQ_BACKEND=cpu`).
 */
export function getDevice(name?: DeviceName): Device {
  if (name === undefined) {
    if (!initSeen) {
      initSeen = true; // LONGSEQ_BACKEND=cpu chose the CPU explicitly: nothing to say
      if (envBackendNoPrompt() !== "cpu") {
        console.warn(
          "longseq: init() was not called; running on the CPU backend. " +
            "Call `await init()` to use WebGPU.",
        );
      }
    }
    return fallback;
  }
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

/** {@linkcode envBackend} only where env access is already granted (never a prompt). */
function envBackendNoPrompt(): DeviceName | undefined {
  try {
    const q = Deno.permissions.querySync({ name: "env", variable: "LONGSEQ_BACKEND" });
    return q.state === "granted" ? envBackend() : undefined;
  } catch {
    return undefined;
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
  return (device === undefined ? fallback : getDevice(device)).memory();
}

/** Sets a device's peak-bytes figure to its current live bytes. */
export function resetPeakMemory(device?: DeviceName): void {
  (device === undefined ? fallback : getDevice(device)).resetPeak();
}

/** Submits pending GPU work without waiting for it. */
export function flush(device?: DeviceName): void {
  (device === undefined ? fallback : getDevice(device)).flush();
}

/** Submits pending work and waits until the device has finished it. */
export async function sync(device?: DeviceName): Promise<void> {
  await (device === undefined ? fallback : getDevice(device)).sync();
}
