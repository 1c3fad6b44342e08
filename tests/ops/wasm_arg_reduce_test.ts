/**
 * The CPU backend's `argmax` and `argmin` of f32 rows (the LSH hash's bucket choice) against
 * the reference: NaN beats every number, ties and repeated NaNs give the first index, -0 and
 * +0 tie; odd, size-1 and empty shapes; 1 and 2 threads agree; other layouts fall back.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { wasmAccepts } from "../../kernels/wasm/backend.ts";
import { noLeaks, rng, startWasm } from "../util.ts";
import { sameOnThreads } from "./wasm_bits.ts";

await startWasm();

/** `n` f32 values drawn from a few, so that ties and NaNs are common. */
function values(seed: number, n: number): Float32Array {
  const rand = rng(seed);
  const vs = [NaN, -0, 0, 1, -1, 0.5, Infinity, -Infinity, 3e38, -3e38];
  return Float32Array.from({ length: n }, () => vs[Math.floor(rand() * vs.length)]);
}

Deno.test("wasm argmax/argmin equal the reference on f32 rows", async (t) => {
  const shapes = [[1], [7], [3, 5], [2, 9, 33], [4000, 6], [3, 1], [64, 130], [0, 5]];
  for (const shape of shapes) {
    await t.step(`[${shape}]`, async () => {
      await noLeaks(async () => {
        const size = shape.reduce((a, b) => a * b, 1);
        const data = values(size, size);
        for (const op of [T.argmax, T.argmin]) {
          await T.scope(async () => {
            const want = await op(T.tensor(data, { shape, device: "cpu-reference" }), -1).data();
            const got = await op(T.tensor(data, { shape, device: "cpu" }), -1).data();
            assert.deepEqual([...got], [...want], `${op.name} [${shape}]`);
          });
        }
      });
    });
  }
  await t.step("1 and 2 threads agree", () => {
    const [outer, n] = [5000, 12];
    const data = values(9, outer * n);
    for (const name of ["argmax", "argmin"]) {
      const spec = { layout: { outer, n, inner: 1 }, dtype: "f32" };
      sameOnThreads(name, [{ data, dtype: "f32" }], spec, [4 * outer]);
    }
  });
  await t.step("other axes and dtypes run on the reference", () => {
    const f32 = (outer: number, n: number, inner: number) => ({
      layout: { outer, n, inner },
      dtype: "f32",
    });
    assert.ok(wasmAccepts("argmax", f32(3, 4, 1), ["f32"]));
    assert.ok(!wasmAccepts("argmax", f32(3, 4, 2), ["f32"]));
    assert.ok(!wasmAccepts("argmin", { ...f32(3, 4, 1), dtype: "i32" }, ["i32"]));
  });
});
