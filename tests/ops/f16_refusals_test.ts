/**
 * f16 where kernels lack an f16 path: the missing-`shader-f16` error, WebGPU's refusal of
 * kernels without an f16 version, and sorting (keys widened exactly to f32 on every device)
 * beside the scans that run f16 on the CPU reference only.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { requireF16 } from "../../kernels/webgpu/device.ts";
import { checkF16Kernel } from "../../kernels/webgpu/mod.ts";
import { noLeaks, testDevices } from "../util.ts";

Deno.test("f16 on WebGPU needs shader-f16: a clear error without it", () => {
  const none = { has: () => false };
  assert.throws(
    () => requireF16(none, "test adapter"),
    (e: Error) =>
      e instanceof TypeError && /"shader-f16"/.test(e.message) && /test adapter/.test(e.message),
  );
  requireF16(new Set(["shader-f16"]), "test adapter");
  assert.throws(() => checkF16Kernel("cumsum", ["f16"]), /kernel "cumsum" has no f16 version/);
  assert.equal(checkF16Kernel("cumsum", ["f32"]), true);
  assert.equal(checkF16Kernel("add", ["f16", "f16"]), true);
});

Deno.test({
  name: "f16 kernels without an f16 path refuse on WebGPU",
  ignore: !testDevices().includes("webgpu"),
  fn: () =>
    noLeaks(() => {
      using x = T.ones([4], { dtype: "f16", device: "webgpu" });
      assert.throws(() => T.cumsum(x), /kernel "cumsum" has no f16 version yet/);
    }),
});

Deno.test("f16 sort and argsort on every device (keys widened exactly to f32)", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        using x = T.tensor([3, -1, NaN, 0.5, -0, 2, 65504], { dtype: "f16", device });
        using s = T.sort(x, { descending: true });
        using a = T.argsort(x);
        const [v, i] = T.sortWithIndices(x);
        assert.equal(s.dtype, "f16");
        assert.deepEqual([...await s.data()], [NaN, 65504, 3, 2, 0.5, -0, -1]);
        assert.deepEqual([...await a.data()], [1, 4, 3, 5, 0, 6, 2]);
        assert.deepEqual([...await i.data()], [1, 4, 3, 5, 0, 6, 2]);
        assert.deepEqual([...await v.data()], [-1, -0, 0.5, 2, 3, 65504, NaN]);
        v.dispose();
        i.dispose();
      }));
  }
});

Deno.test("f16 sort and scans on the CPU reference", () =>
  noLeaks(async () => {
    using x = T.tensor([3, -1, NaN, 0.5, -0, 2], { dtype: "f16", device: "cpu-reference" });
    using s = T.sort(x);
    using a = T.argsort(x);
    using p = T.scope(() => T.cumprod(T.slice(x, [0], [2])));
    using c = T.scope(() => T.cumsum(T.slice(x, [3])));
    assert.deepEqual([...await s.data()], [-1, -0, 0.5, 2, 3, NaN]);
    assert.deepEqual([...await a.data()], [1, 4, 3, 5, 0, 2]);
    assert.deepEqual([p.dtype, c.dtype], ["f16", "f16"]);
    assert.deepEqual([...await p.data()], [3, -3]);
    assert.deepEqual([...await c.data()], [0.5, 0.5, 2.5]);
  }));
