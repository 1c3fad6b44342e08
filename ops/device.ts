/**
 * Device selection: `init()` picks the default device; both backends can be used side by side.
 * @module
 */
import type { Device, DeviceName, MemoryInfo } from "../kernels/device.ts";
import { findBackend, registerBackend } from "../kernels/backend.ts";
import { DEFAULT_BACKEND, STARTABLE_BACKENDS } from "../kernels/builtin.ts";

/** The always-available backend's name and device (the CPU reference). */
const base: { name: DeviceName; device: Device } = DEFAULT_BACKEND;
/** The device ops use when none is named. */
let fallback: Device = base.device;

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
 * @example
 * ```ts
 * import { init } from "@longseq/tensor";
 * const { backend, adapter } = await init({ quiet: true });
 * console.log(backend, adapter);
 * ```
 */
export async function init(options: InitOptions = {}): Promise<InitResult> {
  const { quiet = false } = options;
  const backend = options.backend ?? envBackend();
  const known = [...Object.keys(STARTABLE_BACKENDS), base.name];
  if (backend !== undefined && !known.includes(backend)) {
    throw new TypeError(
      `init: unknown backend ${JSON.stringify(backend)}; expected ${
        known.map((k) => JSON.stringify(k)).join(" or ")
      }`,
    );
  }
  if (backend === base.name) {
    fallback = base.device;
    return { backend: base.name, adapter: base.device.description };
  }
  // Auto-detection tries the first startable backend (WebGPU).
  const wanted = backend ?? Object.keys(STARTABLE_BACKENDS)[0] as DeviceName;
  const { label, start, hint } = STARTABLE_BACKENDS[wanted];
  const started = findBackend(wanted) ?? await start();
  if (!started) {
    if (backend !== undefined) throw new Error(`init: no ${label} adapter found (${hint})`);
    if (!quiet) {
      console.log(
        `longseq: no ${label} adapter found; using the ${base.name.toUpperCase()} backend`,
      );
    }
    fallback = base.device;
    return { backend: base.name, adapter: base.device.description };
  }
  registerBackend(started);
  fallback = started.device;
  return { backend: started.name, adapter: started.device.description };
}

/** The device named, or the default device. Throws if its backend was not started. */
export function getDevice(name?: DeviceName): Device {
  if (name === undefined) return fallback;
  const found = findBackend(name);
  if (found) return found.device;
  const startable = STARTABLE_BACKENDS[name];
  if (startable) {
    throw new Error(
      `getDevice: ${startable.label} is not initialised; call \`await init()\` first`,
    );
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
  return [base.name, ...Object.keys(STARTABLE_BACKENDS) as DeviceName[]].filter((n) =>
    findBackend(n) !== undefined
  );
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

/** Submits pending GPU work without waiting for it. */
export function flush(device?: DeviceName): void {
  getDevice(device).flush();
}

/** Submits pending work and waits until the device has finished it. */
export async function sync(device?: DeviceName): Promise<void> {
  await getDevice(device).sync();
}
