/**
 * Helpers of the tests for tensors larger than one WebGPU storage binding: they lower the
 * device's binding limit (`GpuDevice.maxBindingBytes`) so small tensors take the split paths,
 * and compare the split results with the unsplit WebGPU run (bit for bit) and with the CPU
 * reference (within a tolerance).
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { getDevice } from "../../ops/device.ts";
import type { GpuBindable, GpuDevice } from "../../kernels/webgpu/device.ts";
import { testDevices } from "../util.ts";

/** The WebGPU device when the tests run on one, else null (the tests then skip). */
export const gpu: GpuDevice | null = testDevices().includes("webgpu")
  ? getDevice("webgpu") as GpuDevice
  : null;

/** What the dispatches recorded under {@linkcode lowered} bound. */
export interface Bindings {
  /** Dispatches recorded. */
  dispatches: number;
  /** Windows (sub-ranges of a storage) bound. */
  windows: number;
  /** The largest binding's bytes (a window's size or a whole storage's length). */
  largest: number;
}

/**
 * Runs `f` with the WebGPU binding limit at `bytes`, restoring it afterwards; resolves to its
 * result and what the dispatches bound.
 */
export async function lowered<R>(
  device: GpuDevice,
  bytes: number,
  f: () => R | Promise<R>,
): Promise<[R, Bindings]> {
  const seen: Bindings = { dispatches: 0, windows: 0, largest: 0 };
  const run = device.run;
  device.run = function (kernel, buffers: GpuBindable[], groups, params) {
    seen.dispatches++;
    for (const b of buffers) {
      const windowed = "storage" in b;
      if (windowed) seen.windows++;
      seen.largest = Math.max(seen.largest, windowed ? b.size : b.byteLength);
    }
    return run.call(this, kernel, buffers, groups, params);
  };
  device.maxBindingBytes = bytes;
  try {
    return [await f(), seen];
  } finally {
    device.maxBindingBytes = undefined;
    device.run = run;
  }
}

/** The values of tensors (disposing them). */
export async function values(xs: T.Tensor | T.Tensor[]): Promise<number[][]> {
  const list = Array.isArray(xs) ? xs : [xs];
  const out = [];
  for (const x of list) out.push(Array.from(await x.data(), Number));
  for (const x of list) x.dispose();
  return out;
}

/**
 * Checks that `f` on WebGPU under a binding limit of `limit` bytes splits its work (binds
 * windows, none over the limit), gives the same bits as without the limit (unless `reorders`:
 * a split that sums in another order, then within `tol`), and matches the CPU reference within
 * `tol` (relative to the largest magnitude, 0: exactly).
 */
export async function splitMatches(
  device: GpuDevice,
  limit: number,
  f: (device: T.DeviceName) => T.Tensor | T.Tensor[],
  tol = 0,
  reorders = false,
): Promise<Bindings> {
  const whole = await values(T.scope(() => f("webgpu")));
  const [split, seen] = await lowered(device, limit, async () => {
    const out = T.scope(() => f("webgpu"));
    await T.sync("webgpu");
    return await values(out);
  });
  assert.ok(seen.windows > 0, "the work was split");
  assert.ok(seen.largest <= limit, `a binding of ${seen.largest} bytes passed the limit`);
  if (!reorders) assert.deepEqual(split, whole, "split and whole runs agree bit for bit");
  else close(whole, split, tol);
  close(await values(T.scope(() => f("cpu-reference"))), split, tol);
  return seen;
}

/** Asserts `got` matches `ref` within `tol` relative to each output's largest magnitude. */
function close(ref: number[][], got: number[][], tol: number) {
  assert.equal(ref.length, got.length);
  ref.forEach((r, k) => {
    assert.equal(r.length, got[k].length);
    const scale = Math.max(1, ...r.map(Math.abs));
    r.forEach((v, i) => {
      const d = Math.abs(v - got[k][i]);
      if (!(d <= tol * scale) && !(Number.isNaN(v) && Number.isNaN(got[k][i]))) {
        assert.fail(`output ${k}[${i}]: ${got[k][i]} vs reference ${v}`);
      }
    });
  });
}

/** Asserts that `f` throws a RangeError naming `op` and the binding limit. */
export function refusesBinding(device: GpuDevice, op: string, f: () => unknown): void {
  assert.throws(f, (e: Error) => {
    assert.ok(e instanceof RangeError, String(e));
    assert.ok(e.message.startsWith(`${op}: `), e.message);
    assert.ok(e.message.includes(`limit of ${device.maxBindingBytes} bytes`), e.message);
    return true;
  });
}
