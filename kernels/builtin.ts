/**
 * The built-in backends: the CPU reference, registered at load and always available, and the
 * backends `init` starts on demand. A new backend adds its factory to
 * {@linkcode STARTABLE_BACKENDS} (and its name to `DeviceName`).
 * @module
 */
import { type Backend, registerBackend } from "./backend.ts";
import { createCpuBackend } from "./cpu/mod.ts";
import { createWebgpuBackend } from "./webgpu/mod.ts";
import { createWasmBackend } from "./wasm/backend.ts";
import { WasmDevice } from "./wasm/device.ts";

/** The backend every tensor uses until `init` picks another: the CPU reference. */
export const DEFAULT_BACKEND: Backend = registerBackend(createCpuBackend());

/** Options `init` passes to a backend it starts. */
export interface StartOptions {
  /** Threads running each kernel (the CPU backend; default: every core). */
  readonly threads?: number;
}

/** A backend `init` starts on demand. */
export interface StartableBackend {
  /** Name in messages ("WebGPU"). */
  readonly label: string;
  /** Starts the backend; resolves to null when it is unavailable (no adapter). */
  readonly start: (options: StartOptions) => Promise<Backend | null>;
  /** What to install when it is unavailable, for the error message. */
  readonly hint: string;
}

/** Backends started by `init`, by name, in the order auto-detection tries them. */
export const STARTABLE_BACKENDS: Readonly<Record<string, StartableBackend>> = {
  webgpu: {
    label: "WebGPU",
    start: createWebgpuBackend,
    hint: "on Linux without a GPU, install mesa-vulkan-drivers",
  },
  cpu: {
    label: "CPU (WebAssembly SIMD)",
    start: async ({ threads }) => createWasmBackend(await WasmDevice.create({ threads })),
    hint: "the runtime needs WebAssembly SIMD, shared memory and node:worker_threads",
  },
};

/** Whether a started WebGPU backend runs on a software (fallback) adapter such as llvmpipe. */
export function isSoftwareAdapter(backend: Backend): boolean {
  // GpuDevice.create marks a fallback adapter so in its description.
  return backend.name === "webgpu" && backend.device.description.endsWith(" (software)");
}
