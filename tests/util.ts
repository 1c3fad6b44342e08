/**
 * Test setup shared by every test file: the devices to run on (both backends), random inputs
 * and a leak check.
 */
import { devices, init, memory } from "../mod.ts";
import type { DeviceName } from "../mod.ts";

// WebGPU explicitly: on a software adapter the automatic choice would be the CPU backend.
const result = await init({ backend: "webgpu", quiet: true }).catch(() =>
  init({ backend: "cpu-reference", quiet: true })
);
if (Deno.env.get("CI") === "true" && result.backend !== "webgpu") {
  throw new Error(
    "CI=true but no WebGPU adapter was found: the WebGPU tests must run (install mesa-vulkan-drivers)",
  );
}
let announced = false;
/**
 * Devices every kernel test runs on (the CPU reference, plus WebGPU when an adapter exists). The
 * CPU backend (wasm kernels) runs the subset of tests that name it (its f32 kernels differ from the float64
 * reference by rounding, so it joins suites whose tolerances were checked for it).
 */
export function testDevices(options: { wasm?: boolean } = {}): DeviceName[] {
  if (!announced) {
    announced = true;
    if (result.backend === "webgpu") console.log(`WebGPU tests run on: ${result.adapter}`);
    else console.log("No WebGPU adapter: WebGPU tests are skipped (CPU only)");
  }
  return devices().filter((d) => d !== "cpu" || options.wasm);
}

/**
 * Starts the CPU backend (wasm, 2 threads) without changing the default device, for the test files
 * that pass `{ wasm: true }` to {@linkcode testDevices}.
 */
export async function startWasm(): Promise<void> {
  const { findBackend, registerBackend } = await import("../kernels/backend.ts");
  if (findBackend("cpu")) return;
  const { STARTABLE_BACKENDS } = await import("../kernels/builtin.ts");
  const backend = await STARTABLE_BACKENDS.cpu.start({ threads: 2 });
  if (backend && !findBackend("cpu")) registerBackend(backend);
}

/** A deterministic PRNG (the library's mulberry32) for test inputs. */
export { mulberry32 as rng } from "../ops/testing.ts";

/** `n` uniform values in `[lo, hi)`. */
export function randomArray(rand: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

/**
 * Runs `fn` and checks that live tensors and bytes on every device are unchanged afterwards.
 */
export async function noLeaks(fn: () => unknown | Promise<unknown>): Promise<void> {
  const before = devices().map((d) => memory(d));
  await fn();
  devices().forEach((d, i) => {
    const after = memory(d);
    if (after.liveTensors !== before[i].liveTensors || after.liveBytes !== before[i].liveBytes) {
      throw new Error(
        `leak on ${d}: live tensors ${before[i].liveTensors} -> ${after.liveTensors}, ` +
          `bytes ${before[i].liveBytes} -> ${after.liveBytes}`,
      );
    }
  });
}
