/**
 * Shared helpers of the wasm backend's tests: a seeded PRNG, devices with 1 and 2 threads,
 * and comparison against the CPU reference.
 */
import { CpuDevice } from "../../../kernels/cpu/device.ts";
import { WasmDevice } from "../../../kernels/wasm/device.ts";

/** mulberry32: a small deterministic PRNG returning floats in [0, 1) (the library's own). */
export { mulberry32 as rng } from "../../../ops/testing.ts";

/** `n` uniform values in `[lo, hi)`. */
export function randomArray(rand: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

/** The CPU reference device. */
export const cpu: CpuDevice = new CpuDevice();

/** Runs `fn` with wasm devices of 1 and 2 threads, disposing them afterwards. */
export async function withDevices(
  fn: (one: WasmDevice, two: WasmDevice) => Promise<void>,
): Promise<void> {
  const one = await WasmDevice.create({ threads: 1 });
  const two = await WasmDevice.create({ threads: 2 });
  try {
    await fn(one, two);
  } finally {
    one.dispose();
    two.dispose();
  }
}

/** Largest `|got - want|` minus `tol(want)`; at most 0 when everything is within tolerance. */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol = 0,
  what = "",
): void {
  if (got.length !== want.length) {
    throw new Error(`${what}: length ${got.length}, expected ${want.length}`);
  }
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (g === w) continue;
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) {
      throw new Error(`${what}: element ${i} is ${g}, expected ${w} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** Whether two arrays hold the same bits. */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
