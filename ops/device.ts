/**
 * Device selection: `init()` picks the default device; both backends can be used side by side.
 * @module
 */
import type { Device, DeviceName, MemoryInfo } from "../kernels/device.ts";
import { type Backend, findBackend, registerBackend } from "../kernels/backend.ts";
import { DEFAULT_BACKEND, isSoftwareAdapter, STARTABLE_BACKENDS } from "../kernels/builtin.ts";

/** The always-available backend's name and device (the CPU reference). */
const base: { name: DeviceName; device: Device } = DEFAULT_BACKEND;
/** The device ops use when none is named. */
let fallback: Device = base.device;
/** One start request per backend, shared by every `init` call (dropped when it found none). */
const starting = new Map<DeviceName, Promise<Backend | null>>();
/** The `init` call in flight, if any, with the backend it was asked for. */
let pending: { backend: DeviceName | undefined; result: Promise<InitResult> } | null = null;
/** Whether `init` has run, or the one line about not calling it has been printed. */
let initSeen = false;

/** Options for {@linkcode init}. */
export interface InitOptions {
  /**
   * Backend to use by default: `"webgpu"`, `"cpu"` (WebAssembly SIMD kernels on every core) or
   * `"cpu-reference"` (the typed-array reference). Without it, the `LONGSEQ_BACKEND`
   * environment variable decides, else: WebGPU on a hardware adapter; the CPU backend when the
   * only adapter is a software one (llvmpipe) or there is none; the reference only where the
   * CPU backend cannot start.
   */
  backend?: DeviceName;
  /**
   * Threads of the CPU backend (the caller's included; default: the `LONGSEQ_THREADS`
   * environment variable, else every core). Applies when the CPU backend is first started;
   * it keeps that count for the rest of the process.
   */
  threads?: number;
  /** Suppresses the one line printed when the automatic choice is not a hardware GPU. */
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
 * Picks the default device: WebGPU on a hardware adapter; else the CPU backend (WebAssembly
 * SIMD on every core), printing one line saying which and why, when the only adapter is a
 * software one (llvmpipe) or there is none; else a software adapter; else the CPU reference.
 * Asking for `"webgpu"` explicitly throws when no adapter exists. Until `init` is called the
 * default device is the CPU reference, and the first tensor created on it says so once on
 * stderr. The CPU backend's workers never keep the process alive.
 *
 * Concurrency: the WebGPU device is requested once per process and never replaced, so every
 * tensor made on it stays usable whatever `init` calls follow. A call made while another is
 * in flight returns that call's result when it asks for the same backend (the same
 * `backend` option, or both without one), and throws an Error when it asks for another. Once
 * a call has finished, a later one may switch the default device (e.g. to the CPU and back).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { init } from "@longseq/tensor";
 * const { backend, adapter } = await init({ quiet: true }); // see above for the choice
 * assert.ok(["webgpu", "cpu", "cpu-reference"].includes(backend));
 * assert.equal(typeof adapter, "string");
 * assert.equal((await init({ backend: "cpu-reference" })).backend, "cpu-reference"); // explicit
 * ```
 */
export async function init(options: InitOptions = {}): Promise<InitResult> {
  initSeen = true;
  const backend = options.backend ?? envBackend();
  const known = [...Object.keys(STARTABLE_BACKENDS), base.name];
  if (backend !== undefined && !known.includes(backend)) {
    throw new TypeError(
      `init: unknown backend ${JSON.stringify(backend)}; expected ${
        known.map((k) => JSON.stringify(k)).join(" or ")
      }`,
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
  const threads = options.threads ?? envThreads();
  const result = select(backend, options.quiet ?? false, threads);
  const entry = { backend, result };
  pending = entry;
  const done = () => {
    if (pending === entry) pending = null;
  };
  result.then(done, done);
  return await result;
}

/**
 * Why the automatic choice prefers the CPU backend to a software WebGPU adapter: measured on
 * a 2-core machine with llvmpipe (see the README's "Backends").
 */
export const AUTO_CHOICE_REASON =
  "it trained the copy-task demo 10x faster than llvmpipe on a 2-core machine (24 s against " +
  "259 s for 60 steps)";

/** Starts backend `name` once per process (a failed or empty start is retried later). */
async function startBackend(
  name: DeviceName,
  threads: number | undefined,
): Promise<Backend | null> {
  let started = findBackend(name) ?? null;
  if (started) return started;
  let request = starting.get(name);
  if (!request) starting.set(name, request = STARTABLE_BACKENDS[name].start({ threads }));
  try {
    started = await request;
  } finally {
    if (!started) starting.delete(name); // none found, or the start failed: retry later
  }
  if (started && !findBackend(name)) registerBackend(started);
  return findBackend(name) ?? started;
}

/** Sets the default device for `init` (see there), starting each backend at most once. */
async function select(
  backend: DeviceName | undefined,
  quiet: boolean,
  threads: number | undefined,
): Promise<InitResult> {
  const use = (b: { name: DeviceName; device: Device }): InitResult => {
    fallback = b.device;
    return { backend: b.name, adapter: b.device.description };
  };
  if (backend === base.name) return use(base);
  if (backend !== undefined) {
    const { label, hint } = STARTABLE_BACKENDS[backend];
    let started: Backend | null;
    try {
      started = await startBackend(backend, threads);
    } catch (e) {
      throw new Error(`init: the ${label} backend failed to start (${hint})`, { cause: e });
    }
    if (!started) throw new Error(`init: no ${label} adapter found (${hint})`);
    return use(started);
  }
  // Automatic: a hardware GPU; else the CPU backend; else a software GPU; else the reference.
  const gpu = await startBackend("webgpu", threads);
  if (gpu && !isSoftwareAdapter(gpu)) return use(gpu);
  const cpu = await startBackend("cpu", threads).catch(() => null);
  const say = (line: string) => quiet || console.log(`longseq: ${line}`);
  if (cpu) {
    say(
      gpu
        ? `using the CPU backend (${cpu.device.description}), not WebGPU on the software ` +
          `adapter ${gpu.device.description}: ${AUTO_CHOICE_REASON}`
        : `no WebGPU adapter found; using the CPU backend (${cpu.device.description})`,
    );
    return use(cpu);
  }
  if (gpu) return use(gpu);
  say("no WebGPU adapter found and the CPU backend cannot start; using the CPU reference");
  return use(base);
}

/**
 * The device named, or the default device. Throws if its backend was not started. The first
 * call for the default device before any `init()` prints one line on stderr saying the CPU
 * reference is in use (never again in the process; not with `LONGSEQ_BACKEND=cpu-reference`).
 */
export function getDevice(name?: DeviceName): Device {
  if (name === undefined) {
    if (!initSeen) {
      initSeen = true; // LONGSEQ_BACKEND=cpu-reference chose the CPU explicitly: nothing to say
      if (envBackendNoPrompt() !== "cpu-reference") {
        console.warn(
          "longseq: init() was not called; running on the CPU reference. " +
            "Call `await init()` for WebGPU or the fast CPU backend.",
        );
      }
    }
    return fallback;
  }
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

/** The thread count in the `LONGSEQ_THREADS` environment variable, if readable and set. */
function envThreads(): number | undefined {
  try {
    const v = Deno.env.get("LONGSEQ_THREADS");
    if (!v) return undefined;
    const n = Number(v);
    if (!(Number.isInteger(n) && n >= 1)) {
      throw new TypeError(`init: LONGSEQ_THREADS must be a positive integer, got ${v}`);
    }
    return n;
  } catch (e) {
    if (e instanceof TypeError) throw e;
    return undefined; // no env permission
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

/**
 * Names of the devices available now (the CPU reference, plus WebGPU and the CPU backend once
 * started).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { devices } from "@longseq/tensor";
 * assert.ok(devices().includes("cpu-reference"));
 * ```
 */
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
 * import assert from "node:assert/strict";
 * import { memory, zeros } from "@longseq/tensor";
 * const before = memory().liveBytes;
 * const z = zeros([256]);
 * assert.equal(memory().liveBytes - before, 1024); // 256 f32
 * z.dispose();
 * ```
 */
export function memory(device?: DeviceName): MemoryInfo {
  return (device === undefined ? fallback : getDevice(device)).memory();
}

/**
 * Sets a device's peak-bytes figure to its current live bytes (default: the default device).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memory, resetPeakMemory, zeros } from "@longseq/tensor";
 * zeros([1024]).dispose();
 * resetPeakMemory();
 * assert.equal(memory().peakBytes, memory().liveBytes);
 * ```
 */
export function resetPeakMemory(device?: DeviceName): void {
  (device === undefined ? fallback : getDevice(device)).resetPeak();
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
 * import assert from "node:assert/strict";
 * import { memory, releasePooledMemory, zeros } from "@longseq/tensor";
 * zeros([1 << 10]).dispose();
 * releasePooledMemory();
 * assert.equal(memory().pooledBytes, 0);
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memory, setPoolLimit, zeros } from "@longseq/tensor";
 * setPoolLimit(0); // no pooling: disposed storage is given back at once
 * zeros([256]).dispose();
 * assert.equal(memory().pooledBytes, 0);
 * setPoolLimit(256 << 20); // back to the default
 * ```
 */
export function setPoolLimit(bytes: number, device?: DeviceName): void {
  if (!(bytes >= 0)) {
    throw new RangeError(`setPoolLimit: expected a byte count >= 0, got ${bytes}`);
  }
  const names = device === undefined ? devices() : [device];
  for (const d of names) getDevice(d).poolLimit = bytes;
}

/**
 * Submits pending GPU work without waiting for it (default: the default device; a no-op on
 * the CPU). Reading a tensor flushes too; call this to start queued work early.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { add, flush, tensor } from "@longseq/tensor";
 * const y = add(tensor([1, 2]), 1);
 * flush(); // the kernel starts now; y is read later
 * assert.deepEqual(await y.array(), [2, 3]);
 * ```
 */
export function flush(device?: DeviceName): void {
  (device === undefined ? fallback : getDevice(device)).flush();
}

/**
 * Submits pending work and waits until the device has finished it (default: the default
 * device), e.g. to time GPU work.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { add, sync, tensor } from "@longseq/tensor";
 * const y = add(tensor([1, 2]), 1);
 * await sync(); // y's kernel has run
 * assert.deepEqual(await y.array(), [2, 3]);
 * ```
 */
export async function sync(device?: DeviceName): Promise<void> {
  await (device === undefined ? fallback : getDevice(device)).sync();
}
