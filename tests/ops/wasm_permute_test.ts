/** The CPU backend's `gatherByIndex` and `scatterByIndex` against the reference, bit for bit. */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { noLeaks, rng, startWasm } from "../util.ts";

await startWasm();

Deno.test("wasm gatherByIndex and scatterByIndex equal the reference bit for bit", async (t) => {
  const rand = rng(21);
  for (const [rows, n, inner] of [[1, 1, 1], [3, 7, 1], [2, 5, 3], [4, 9, 64], [0, 4, 2]]) {
    for (const dtype of ["f32", "i32", "u32"] as const) {
      await t.step(`${dtype} [${rows}, ${n}, ${inner}]`, () =>
        noLeaks(async () => {
          const size = rows * n * inner;
          const data = Array.from({ length: size }, () => Math.floor((rand() - 0.3) * 1000));
          // Indices with repeats and out-of-range entries (-1 and n), as the kernels allow.
          const idx = Int32Array.from({ length: rows * n }, () => Math.floor(rand() * (n + 2)) - 1);
          const run = async (device: T.DeviceName) => {
            using x = T.tensor(data, { shape: [rows, n, inner], dtype, device });
            using i = T.tensor(idx, { shape: [rows, n], device });
            using g = T.gatherByIndex(x, i);
            using s = T.scatterByIndex(x, i);
            assert.equal(g.device, device);
            return [Array.from(await g.data()), Array.from(await s.data())];
          };
          assert.deepEqual(await run("cpu"), await run("cpu-reference"));
        }));
    }
  }
  await t.step("f16 runs on the reference", () =>
    noLeaks(async () => {
      using x = T.tensor([1, 2, 3], { shape: [1, 3, 1], dtype: "f16", device: "cpu" });
      using i = T.tensor(new Int32Array([2, 0, 1]), { shape: [1, 3], device: "cpu" });
      using g = T.gatherByIndex(x, i);
      assert.deepEqual(Array.from(await g.data()), [3, 1, 2]);
    }));
});
