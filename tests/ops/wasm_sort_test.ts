/**
 * The CPU backend's `sort` against the reference, bit for bit: f32 keys with NaN, -0/+0 and
 * ties, i32 and u32 keys over their whole range, both directions, odd, empty and size-1 axes;
 * and 1 and 2 threads giving the same bits.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { wasmAccepts } from "../../kernels/wasm/backend.ts";
import type { SortSpec } from "../../kernels/specs/sort.ts";
import { noLeaks, rng, startWasm } from "../util.ts";
import { bits, sameOnThreads } from "./wasm_bits.ts";

await startWasm();

type KeyType = "f32" | "i32" | "u32";

/** `size` keys of `dtype` with many ties and, for f32, NaN (two payloads), ±0 and ±inf. */
function keys(seed: number, size: number, dtype: KeyType): Float32Array | Int32Array | Uint32Array {
  const rand = rng(seed);
  if (dtype === "f32") {
    const special = [NaN, -0, 0, Infinity, -Infinity, 1, -1];
    const out = Float32Array.from(
      { length: size },
      () =>
        rand() < 0.3
          ? special[Math.floor(rand() * special.length)]
          : Math.round(rand() * 20 - 10) / 4,
    );
    // A NaN with a payload and the sign bit set, which the values must carry unchanged.
    if (size > 2) new Uint32Array(out.buffer)[1] = 0xffc01234;
    return out;
  }
  const words = Uint32Array.from(
    { length: size },
    () => rand() < 0.5 ? Math.floor(rand() * 8) : Math.floor(rand() * 2 ** 32),
  );
  return dtype === "i32" ? new Int32Array(words.buffer) : words;
}

Deno.test("wasm sort and argsort equal the reference bit for bit", async (t) => {
  const shapes = [[1], [7], [3, 1], [2, 0], [0, 5], [5, 33], [2, 3, 129], [2, 600]];
  for (const dtype of ["f32", "i32", "u32"] as const) {
    for (const shape of shapes) {
      for (const descending of [false, true]) {
        const name = `${dtype} [${shape}]${descending ? " descending" : ""}`;
        await t.step(name, () =>
          noLeaks(async () => {
            const data = keys(
              shape.length * 100 + shape[shape.length - 1],
              shape.reduce(
                (a, b) => a * b,
                1,
              ),
              dtype,
            );
            const run = async (device: T.DeviceName) => {
              using x = T.tensor(data, { shape, dtype, device });
              const [v, i] = T.sortWithIndices(x, { descending });
              using _v = v, _i = i;
              using a = T.argsort(x, { descending });
              assert.equal(i.device, device);
              return [await bits(v), await bits(i), await bits(a)];
            };
            assert.deepEqual(await run("cpu"), await run("cpu-reference"));
          }));
      }
    }
  }
});

Deno.test("wasm sort: 1 and 2 threads give the same bits", async (t) => {
  for (const dtype of ["f32", "i32", "u32"] as const) {
    for (const [rows, n] of [[9, 1000], [3, 4097], [64, 200], [3001, 5]]) {
      await t.step(`${dtype} [${rows}, ${n}]`, () => {
        for (const descending of [false, true]) {
          const spec: SortSpec = { dtype, rows, n, descending, withValues: true };
          sameOnThreads("sort", [{ data: keys(rows + n, rows * n, dtype), dtype }], spec, [
            4 * rows * n,
            4 * rows * n,
          ]);
        }
      });
    }
  }
});

Deno.test("wasm sort takes 4-byte keys and leaves f16 to the reference", async () => {
  const spec = (dtype: "f16" | "f32") => ({ dtype, rows: 1, n: 3, descending: false });
  assert.equal(wasmAccepts("sort", spec("f32"), ["f32"]), true);
  assert.equal(wasmAccepts("sort", spec("f16"), ["f16"]), false);
  await noLeaks(async () => {
    using x = T.tensor([3, -0, 0, 1], { dtype: "f16", device: "cpu" });
    using i = T.argsort(x);
    assert.deepEqual(Array.from(await i.data()), [1, 2, 3, 0]);
  });
});
