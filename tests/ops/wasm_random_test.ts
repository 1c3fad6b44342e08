/**
 * The CPU backend's `random` kernel against the reference, bit for bit: every mode, odd, empty
 * and size-1 outputs, counters that carry into the high word; and 1 and 2 threads giving the
 * same bits.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { random } from "../../ops/random.ts";
import { run } from "../../ops/random_keys.ts";
import { f32Words, RANDOM_DTYPE, type RandomMode } from "../../kernels/specs/random.ts";
import { wasmAccepts } from "../../kernels/wasm/backend.ts";
import { noLeaks, startWasm } from "../util.ts";
import { bits, sameOnThreads } from "./wasm_bits.ts";

await startWasm();

const rawKey = (words: number[], device: T.DeviceName) =>
  T.tensor(Uint32Array.from(words), { dtype: "u32", device });

/** Mode parameter words as the samplers in `ops/random.ts` make them. */
const WORDS: Record<RandomMode, Uint32Array> = {
  keys: new Uint32Array(4),
  bits: new Uint32Array(4),
  uniform: f32Words(-2, 5, 2.9999998),
  normal: f32Words(0.5, 2),
  truncatedNormal: f32Words(-0.95, 1.9, -1.9999999, 1.9999999),
  bernoulli: f32Words(0.3),
  randint: Uint32Array.of(1000, (2 ** 16 % 1000) ** 2 % 1000, -500 >>> 0, 0),
};
const MODES = Object.keys(WORDS) as RandomMode[];

Deno.test("wasm random equals the reference bit for bit in every mode", async (t) => {
  // Counters from 0, and from just below 2^32 so that the low word wraps into the high one.
  const counters: [number, number][] = [[0, 0], [7, 2 ** 32 - 5]];
  for (const mode of MODES) {
    for (const size of [0, 1, 2, 7, 1001]) {
      for (const counter of counters) {
        await t.step(`${mode} of ${size} from [${counter}]`, () =>
          noLeaks(async () => {
            const shape = mode === "keys" ? [size, 2] : [size];
            const keyWords = mode === "randint" ? [1, 2, 0xdeadbeef, 3] : [0x12345678, 9];
            const go = async (device: T.DeviceName) => {
              using k = rawKey(keyWords, device);
              using y = run(k, mode, shape, WORDS[mode], counter);
              assert.equal(y.device, device);
              assert.equal(y.dtype, RANDOM_DTYPE[mode]);
              return await bits(y);
            };
            assert.deepEqual(await go("cpu"), await go("cpu-reference"));
          }));
      }
    }
  }
  await t.step("the public samplers", () =>
    noLeaks(async () => {
      const go = (device: T.DeviceName) =>
        T.scope(async () => {
          const key = random.key(42, { device });
          const [k1, k2, k3] = random.splitN(key, 3);
          return await Promise.all([
            random.uniform(k1, [33, 3]),
            random.normal(k2, [5000]),
            random.truncatedNormal(k3, [17]),
            random.bernoulli(key, 0.7, [9]),
            random.randint(key, [4097], -3, 11),
            random.permutation(key, 37),
            random.split(k1, 5000),
          ].map((y) => bits(y)));
        });
      assert.deepEqual(await go("cpu"), await go("cpu-reference"));
    }));
});

Deno.test("wasm random: 1 and 2 threads give the same bits", async (t) => {
  for (const mode of MODES) {
    await t.step(mode, () => {
      const n = 10007;
      const keys = Uint32Array.of(5, 6, 7, 8).subarray(0, mode === "randint" ? 4 : 2);
      const spec = { mode, n, counterHi: 3, counterLo: 2 ** 32 - 5000, words: WORDS[mode] };
      const bytes = mode === "keys" ? 8 * n : mode === "bernoulli" ? n : 4 * n;
      sameOnThreads("random", [{ data: keys, dtype: "u32" }], spec, [bytes]);
    });
  }
});

Deno.test("wasm random takes u32 keys only", () => {
  assert.equal(wasmAccepts("random", {}, ["u32"]), true);
  assert.equal(wasmAccepts("random", {}, ["i32"]), false);
});
