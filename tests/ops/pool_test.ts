import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { DEFAULT_POOL_LIMIT } from "../../kernels/webgpu/pool.ts";
import { getDevice } from "../../ops/device.ts";
import { testDevices } from "../util.ts";

const MiB = 2 ** 20;
const gpu = testDevices().includes("webgpu");

Deno.test({
  name: "releasePooledMemory gives a disposed 120 MB temporary back",
  ignore: !gpu,
  fn: async () => {
    const device = "webgpu";
    const big = T.zeros([30 * MiB], { device }); // 120 MiB
    await T.sync(device);
    big.dispose();
    assert.ok(T.memory(device).pooledBytes >= 120 * MiB);
    assert.ok(T.releasePooledMemory() >= 120 * MiB);
    assert.equal(T.memory(device).pooledBytes, 0);
    assert.equal(getDevice(device).poolLimit, DEFAULT_POOL_LIMIT);
  },
});

Deno.test({
  name: "the WebGPU pool keeps at most its limit, evicting the least recently freed",
  ignore: !gpu,
  fn: async () => {
    const device = "webgpu";
    T.releasePooledMemory(device);
    T.setPoolLimit(9 * MiB, device);
    try {
      // Three 4 MiB tensors freed in order a, b, c: a is evicted, b and c stay pooled.
      const [a, b, c] = [1, 2, 3].map((v) => T.full([MiB], v, { device }));
      const ab = T.add(a, b);
      const sum = T.add(ab, c);
      for (const t of [a, b, c]) t.dispose();
      assert.equal(T.memory(device).pooledBytes, 8 * MiB);
      // Pending work that read the evicted buffer still sees its values.
      assert.deepEqual((await sum.data()).slice(0, 2), Float32Array.of(6, 6));
      sum.dispose();
      ab.dispose();
      assert.ok(T.memory(device).pooledBytes <= 9 * MiB);
      // New allocations reuse the pooled buffers and compute correctly.
      const d = T.full([MiB], 5, { device });
      assert.ok(T.memory(device).pooledBytes <= 5 * MiB);
      assert.deepEqual((await d.data()).slice(0, 2), Float32Array.of(5, 5));
      d.dispose();
      // Lowering the limit releases the excess at once; 0 disables pooling.
      T.setPoolLimit(0, device);
      assert.equal(T.memory(device).pooledBytes, 0);
      T.ones([1024], { device }).dispose();
      assert.equal(T.memory(device).pooledBytes, 0);
      await T.sync(device);
      assert.throws(() => T.setPoolLimit(-1), RangeError);
    } finally {
      T.setPoolLimit(DEFAULT_POOL_LIMIT, device);
    }
  },
});
