/**
 * Test setup shared by every test file: the devices to run on (both backends), random inputs
 * and a leak check.
 */
import { devices, init, memory } from "../mod.ts";
import type { DeviceName } from "../mod.ts";

/**
 * `LONGSEQ_TEST_DEVICES=cpu-reference,cpu` runs every test on the devices listed instead (the
 * first one other than the reference also becomes the default device), e.g. the whole suite on
 * the CPU backend: `LONGSEQ_TEST_DEVICES=cpu-reference,cpu deno task test`.
 */
const listed = Deno.env.get("LONGSEQ_TEST_DEVICES")?.split(",").filter(Boolean) as
  | DeviceName[]
  | undefined;
const listedDefault = listed?.find((d) => d !== "cpu-reference") ?? "cpu-reference";
// WebGPU explicitly: on a software adapter the automatic choice would be the CPU backend.
const result = listed
  ? await init({ backend: listedDefault, quiet: true, threads: 2 })
  : await init({ backend: "webgpu", quiet: true }).catch(() =>
    init({ backend: "cpu-reference", quiet: true })
  );
if (listed) {
  for (const d of listed) if (d !== listedDefault) await init({ backend: d, quiet: true });
}
if (listed) await init({ backend: listedDefault, quiet: true });
if (Deno.env.get("CI") === "true" && !listed && result.backend !== "webgpu") {
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
    if (listed) console.log(`Tests run on: ${listed.join(", ")} (LONGSEQ_TEST_DEVICES)`);
    else if (result.backend === "webgpu") console.log(`WebGPU tests run on: ${result.adapter}`);
    else console.log("No WebGPU adapter: WebGPU tests are skipped (CPU only)");
  }
  if (listed) return [...listed];
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
