/**
 * Half precision gradients (f16 against the f32 gradient, an f16 input mixed with f32) and the
 * wasm backend's fallback to the CPU reference for f16.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { assertAllClose } from "../../ops/testing.ts";
import { noLeaks, rng, startWasm, testDevices } from "../util.ts";
import { halfValues as halfFrom } from "./half_compare.ts";

await startWasm();

/** `n` f16-exact values in `[lo, hi)` from seed `seed`. */
const halfValues = (seed: number, n: number, lo = -1, hi = 1) => halfFrom(rng(seed), n, lo, hi);

for (const device of testDevices({ wasm: true })) {
  Deno.test(`f16 gradients match the f32 gradient on ${device}`, () =>
    noLeaks(async () => {
      const xs = halfValues(21, 4 * 6), ws = halfValues(22, 6 * 5), ys = halfValues(23, 4 * 5);
      const loss = (x: Tensor, w: Tensor, y: Tensor) =>
        T.add(
          T.sum(T.mul(T.softmax(T.matmul(x, w)), y)),
          T.mean(T.mul(T.tanh(x), T.sigmoid(x))),
        );
      const run = async (dtype: "f16" | "f32") => {
        using x = T.tensor(xs, { shape: [4, 6], dtype, device });
        using w = T.tensor(ws, { shape: [6, 5], dtype, device });
        using y = T.tensor(ys, { shape: [4, 5], dtype, device });
        const [value, [gx, gw]] = T.valueAndGrad(loss, { argnums: [0, 1] })(x, w, y);
        const out = {
          dtypes: [value.dtype, gx.dtype, gw.dtype],
          value: [...await value.data()],
          gx: [...await gx.data()],
          gw: [...await gw.data()],
        };
        for (const g of [value, gx, gw]) g.dispose();
        return out;
      };
      const half = await run("f16"), full = await run("f32");
      assert.deepEqual(half.dtypes, ["f16", "f16", "f16"]);
      await assertAllClose(half.value, full.value, { rtol: 5e-3, atol: 1e-3 });
      await assertAllClose(half.gx, full.gx, { rtol: 2e-2, atol: 2e-3 });
      await assertAllClose(half.gw, full.gw, { rtol: 2e-2, atol: 2e-3 });
    }));
}

Deno.test("an f16 input mixed with f32 gets an f16 gradient", () =>
  noLeaks(async () => {
    for (const device of testDevices()) {
      using x = T.tensor([0.5, -2, 3], { dtype: "f16", device });
      using w = T.tensor([1.5, 0.25, -1], { device });
      const [gx, gw] = T.grad((a: Tensor, b: Tensor) => T.sum(T.mul(T.square(a), b)), {
        argnums: [0, 1],
      })(x, w);
      using _x = gx;
      using _w = gw;
      assert.deepEqual([gx.dtype, gw.dtype], ["f16", "f32"]);
      assert.deepEqual([...await gx.data()], [1.5, -1, -6]);
      assert.deepEqual([...await gw.data()], [0.25, 4, 9]);
    }
  }));

Deno.test("f16 on the wasm backend falls back to the CPU reference", async () => {
  assert.ok(T.devices().includes("cpu"));
  const data = halfValues(31, 50, -2, 2);
  using x = T.tensor(data, { dtype: "f16", device: "cpu" });
  using y = T.exp(x);
  using s = T.sum(y);
  using cx = T.tensor(data, { dtype: "f16", device: "cpu-reference" });
  using cy = T.exp(cx);
  using cs = T.sum(cy);
  assert.equal(y.device, "cpu");
  assert.equal(y.dtype, "f16");
  assert.deepEqual([...await y.data()], [...await cy.data()]);
  assert.deepEqual([...await s.data()], [...await cs.data()]);
});
