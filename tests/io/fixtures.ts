/** Shared fixtures of the safetensors and checkpoint tests. */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { HostTensor } from "../../io/safetensors.ts";
import { randomArray, rng } from "../util.ts";

export const bytesOf = (a: T.TypedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Host tensors of every dtype with the awkward values: -0, NaN payloads, extremes, empties. */
export function hostTensors(): [string, HostTensor][] {
  const f = new Float32Array(8);
  const bits = new Uint32Array(f.buffer);
  bits.set([0x80000000, 0x7fc00001, 0xffc12345, 0x7f800001, 0x7f800000, 0xff800000, 1, 0x3f800000]);
  return [
    ["f.special", { dtype: "f32", shape: [2, 4], data: f }],
    ["f.scalar", { dtype: "f32", shape: [], data: new Float32Array([-1.5]) }],
    ["f.empty", { dtype: "f32", shape: [2, 0], data: new Float32Array(0) }],
    // -0, a NaN with a payload, -inf, the least subnormal, 1 (odd length: GPU word padding).
    ["h", { dtype: "f16", shape: [5], data: halfBits([0x8000, 0x7e01, 0xfc00, 0x0001, 0x3c00]) }],
    ["i", { dtype: "i32", shape: [3], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, -1]) }],
    ["u", { dtype: "u32", shape: [1, 2], data: new Uint32Array([0, 2 ** 32 - 1]) }],
    ["b", { dtype: "bool", shape: [5], data: new Uint8Array([1, 0, 0, 1, 1]) }],
    ["b.empty", { dtype: "bool", shape: [0], data: new Uint8Array(0) }],
  ];
}

/** A Float16Array holding exactly these bit patterns. */
function halfBits(bits: number[]): Float16Array {
  return new Float16Array(Uint16Array.from(bits).buffer);
}

export function readHeader(bytes: Uint8Array): [number, Record<string, unknown>] {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return [n, JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)))];
}

/** A training-state-shaped tree on `device`. */
export function trainingState(device: T.DeviceName) {
  const r = rng(7);
  const params = {
    embed: T.tensor(randomArray(r, 12), { shape: [4, 3], device }),
    layers: [
      { w: T.tensor(randomArray(r, 6), { shape: [3, 2], device }), b: T.zeros([0], { device }) },
      { w: T.tensor(randomArray(r, 6), { shape: [2, 3], device }), b: null },
    ],
  };
  const opt = { count: T.full([], 5, { dtype: "i32", device }), step: 5 };
  const extra = {
    mask: T.tensor([true, false, true], { device }),
    ids: T.tensor(new Uint32Array([7, 2 ** 32 - 1]), { device }),
    note: "hi",
    flags: [true, undefined, -0, NaN, Infinity],
  };
  return { params, opt, extra };
}

export async function assertSameTree(got: unknown, want: unknown, path = "") {
  if (want instanceof T.Tensor) {
    assert.ok(got instanceof T.Tensor, `${path} is a tensor`);
    assert.equal(got.dtype, want.dtype, path);
    assert.deepEqual(got.shape, want.shape, path);
    assert.deepEqual(bytesOf(await got.data()), bytesOf(await want.data()), path);
  } else if (want !== null && typeof want === "object") {
    assert.deepEqual(Object.keys(got as object), Object.keys(want), path);
    for (const k of Object.keys(want)) {
      await assertSameTree(
        (got as Record<string, unknown>)[k],
        (want as Record<string, unknown>)[k],
        `${path}.${k}`,
      );
    }
  } else assert.ok(Object.is(got, want), `${path}: ${String(got)} vs ${String(want)}`);
}
