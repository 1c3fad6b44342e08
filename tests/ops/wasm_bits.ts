/**
 * Helpers of the wasm kernel tests that compare bits: a tensor's bytes, and one wasm kernel
 * run on a 1-thread and a 2-thread device over the same inputs.
 */
import assert from "node:assert/strict";
import type * as T from "../../mod.ts";
import type { DType, TypedArray } from "../../kernels/dtype.ts";
import { WASM_BACKEND_KERNELS } from "../../kernels/wasm/backend.ts";
import { WasmDevice, type WasmStorage } from "../../kernels/wasm/device.ts";

/**
 * A copy of the bytes of a tensor's data (so -0, +0 and NaN payloads all differ); with
 * `anyNaN`, every f32 NaN as one pattern.
 */
export async function bits(t: T.Tensor, anyNaN = false): Promise<Uint8Array> {
  const d = await t.data();
  return bytes(d.buffer, d.byteOffset, d.byteLength, anyNaN && t.dtype === "f32");
}

/**
 * `length` bytes at `offset`, f32 NaNs all made one pattern when `anyNaN`: which payload the
 * sum of two NaNs carries depends on how the JIT orders the operands, so a float64 sum of
 * NaNs (the scatter-adds) need not repeat its payload even on one backend.
 */
function bytes(
  buf: ArrayBufferLike,
  offset: number,
  length: number,
  anyNaN: boolean,
): Uint8Array {
  const out = new Uint8Array(length);
  out.set(new Uint8Array(buf, offset, length));
  if (anyNaN) {
    const f = new Float32Array(out.buffer);
    for (let i = 0; i < f.length; i++) if (Number.isNaN(f[i])) f[i] = NaN;
  }
  return out;
}

/** A 1-thread and a 2-thread wasm device, disposed when the test process unloads. */
export const [oneThread, twoThreads] = await Promise.all(
  [1, 2].map((threads) => WasmDevice.create({ threads, blas: false })),
);
addEventListener("unload", () => (oneThread.dispose(), twoThreads.dispose()));

/** One kernel input: its data and dtype. */
export interface Input {
  data: TypedArray;
  dtype: DType;
}

/** Runs kernel `name` on `device` over `inputs`; returns each output's bytes. */
function runOn(
  device: WasmDevice,
  name: string,
  inputs: readonly Input[],
  spec: unknown,
  outBytes: readonly number[],
  anyNaN: boolean,
): Uint8Array[] {
  const xs = inputs.map((x) => device.upload(x.data, x.dtype));
  const kernel = WASM_BACKEND_KERNELS[name] as unknown as (
    d: WasmDevice,
    xs: WasmStorage[],
    s: unknown,
  ) => WasmStorage | WasmStorage[];
  const got = kernel(device, xs, spec);
  const outs = Array.isArray(got) ? got : [got];
  assert.equal(outs.length, outBytes.length, `${name}: outputs`);
  const result = outs.map((o, i) => bytes(device.wasmMemory.buffer, o.offset, outBytes[i], anyNaN));
  for (const s of [...xs, ...outs]) device.free(s);
  return result;
}

/**
 * Asserts that kernel `name` gives the same bytes on 1 and 2 threads; `outBytes` are the
 * byte lengths of its outputs, and `anyNaN` compares f32 outputs with NaNs as one pattern.
 */
export function sameOnThreads(
  name: string,
  inputs: readonly Input[],
  spec: unknown,
  outBytes: readonly number[],
  anyNaN = false,
): void {
  const a = runOn(oneThread, name, inputs, spec, outBytes, anyNaN);
  const b = runOn(twoThreads, name, inputs, spec, outBytes, anyNaN);
  assert.deepEqual(b, a, `${name}: 2 threads differ from 1`);
}
