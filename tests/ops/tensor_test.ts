import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { noLeaks, testDevices } from "../util.ts";
import { SCALAR_CACHE_SIZE, storageOf, Tensor } from "../../ops/tensor.ts";
import { getDevice } from "../../ops/device.ts";

const { memory } = T;

Deno.test("creation on every device", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const a = T.tensor([[1, 2, 3], [4, 5, 6]], { device });
          assert.deepEqual(a.shape, [2, 3]);
          assert.equal(a.dtype, "f32");
          assert.equal(a.size, 6);
          assert.equal(a.device, device);
          assert.deepEqual(await a.array(), [[1, 2, 3], [4, 5, 6]]);
          assert.deepEqual(
            await T.tensor([1, 2, 3, 4], { shape: [2, 2], dtype: "i32", device }).array(),
            [[1, 2], [3, 4]],
          );
          assert.deepEqual(await T.tensor([true, false], { device }).array(), [true, false]);
          assert.equal(T.tensor(new Uint32Array([7]), { device }).dtype, "u32");
          assert.deepEqual(await T.tensor(5, { device }).array(), 5);
          assert.deepEqual(T.tensor([], { device }).shape, [0]);
          assert.deepEqual(
            await T.tensor(new Float32Array(0), { device }).data(),
            new Float32Array(0),
          );
          assert.deepEqual(await T.zeros([2, 0, 3], { device }).data(), new Float32Array(0));
          assert.deepEqual(await T.zeros([2], { device }).array(), [0, 0]);
          assert.deepEqual(await T.ones([2], { dtype: "i32", device }).array(), [1, 1]);
          assert.deepEqual(await T.full([2, 1], 2.5, { device }).array(), [[2.5], [2.5]]);
          assert.deepEqual(await T.full([1], true, { device }).array(), [true]);
          assert.deepEqual(await T.arange(5, undefined, undefined, { device }).array(), [
            0,
            1,
            2,
            3,
            4,
          ]);
          assert.deepEqual(await T.arange(1, 2, 0.25, { device }).array(), [1, 1.25, 1.5, 1.75]);
          assert.deepEqual(await T.arange(5, 0, -2, { device }).array(), [5, 3, 1]);
          assert.deepEqual(await T.eye(2, 3, 1, { device }).array(), [[0, 1, 0], [0, 0, 1]]);
          const moved = await T.toDevice(a, "cpu-reference");
          assert.equal(moved.device, "cpu-reference");
          assert.deepEqual(await moved.array(), await a.array());
          assert.match(a.toString(), new RegExp(`Tensor\\(f32\\[2,3\\] on ${device}\\)`));
        })
      ));
  }
});

Deno.test("creation validates its input", () => {
  assert.throws(() => T.tensor([[1, 2], [3]]), {
    name: "RangeError",
    message: /tensor: ragged nested array/,
  });
  assert.throws(() => T.tensor([1, 2, 3], { shape: [2, 2] }), {
    name: "RangeError",
    message: /3 values do not fill shape \[2,2\]/,
  });
  assert.throws(() => T.zeros([2, -1]), {
    name: "TypeError",
    message: /full: shape must be an array of non-negative integers/,
  });
  assert.throws(() => T.arange(0, 5, 0), RangeError);
  assert.throws(() => T.tensor([1], { dtype: "f64" as T.DType }), {
    name: "TypeError",
    message: /unknown dtype "f64"/,
  });
  assert.throws(() => T.tensor(["a" as unknown as number]), TypeError);
});

Deno.test("dispose, using and disposed errors", async () => {
  await noLeaks(async () => {
    const a = T.tensor([1, 2]);
    a.dispose();
    a.dispose(); // idempotent
    assert.equal(a.disposed, true);
    assert.throws(() => storageOf(a), { name: "TypeError", message: /f32\[2\] was disposed/ });
    await assert.rejects(() => a.data(), /was disposed/);
    assert.throws(() => T.add(a, 1), /was disposed/);
    assert.match(a.toString(), /disposed/);
    {
      using b = T.ones([3]);
      assert.equal(b.disposed, false);
    }
    // A reshape shares storage: it outlives the disposal of its source.
    const src = T.arange(6);
    const r = T.reshape(src, [2, 3]);
    src.dispose();
    assert.deepEqual(await r.array(), [[0, 1, 2], [3, 4, 5]]);
    r.dispose();
  });
});

Deno.test("scope frees everything but its result, sync and async", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const before = T.memory(device);
      const y = T.scope(() => T.add(T.mul(T.ones([4], { device }), 2), 1));
      assert.equal(T.memory(device).liveTensors, before.liveTensors + 1);
      assert.equal(T.memory(device).liveBytes, before.liveBytes + 16);
      const tree = await T.scope(async () => {
        const a = T.ones([2], { device });
        await a.data();
        return { a, list: [T.neg(a)], n: 3 };
      });
      assert.equal(T.memory(device).liveTensors, before.liveTensors + 3);
      assert.throws(() =>
        T.scope(() => {
          T.ones([8], { device });
          throw new Error("boom");
        }), /boom/);
      assert.equal(T.memory(device).liveTensors, before.liveTensors + 3);
      [y, tree.a, tree.list[0]].forEach((x) => x.dispose());
      assert.equal(T.memory(device).liveBytes, before.liveBytes);
      assert.equal(T.memory(device).liveTensors, before.liveTensors);
    });
  }
});

Deno.test("1,000 iterations of an op loop in scope end with the live bytes they started with", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      let x = T.zeros([64], { device });
      const start = T.memory(device);
      for (let i = 0; i < 1000; i++) {
        const next = T.scope(() => T.add(T.mul(T.tanh(x), 0.5), 1));
        x.dispose();
        x = next;
      }
      const end = T.memory(device);
      assert.equal(end.liveBytes, start.liveBytes);
      assert.equal(end.liveTensors, start.liveTensors);
      let ref = 0;
      for (let i = 0; i < 1000; i++) ref = Math.tanh(ref) * 0.5 + 1;
      await T.assertAllClose(x, new Float64Array(64).fill(ref));
      x.dispose();
    });
  }
});

Deno.test("memory() reports peaks and resets them", () => {
  for (const device of testDevices()) {
    T.resetPeakMemory(device);
    const base = T.memory(device);
    assert.equal(base.peakBytes, base.liveBytes);
    const big = T.zeros([1024], { device });
    big.dispose();
    const after = T.memory(device);
    assert.equal(after.liveBytes, base.liveBytes);
    assert.ok(after.peakBytes >= base.liveBytes + 4096);
    T.resetPeakMemory(device);
    assert.equal(T.memory(device).peakBytes, base.liveBytes);
  }
});

Deno.test("init rejects unknown backends", async () => {
  await assert.rejects(() => T.init({ backend: "tpu" as T.DeviceName }), TypeError);
});

Deno.test("scalar constants are cached per device, evicted oldest first, and never leak", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const dev = getDevice(device);
      const m0 = memory(device);
      // A value no other test uses, so the first call misses the cache.
      const a = Tensor.scalar(dev, 0.8125, "f32");
      const m1 = memory(device);
      const grew = m0.constantBytes < SCALAR_CACHE_SIZE * 4 ? 4 : 0;
      assert.equal(m1.constantBytes, m0.constantBytes + grew);
      assert.equal(m1.liveBytes, m0.liveBytes);
      const b = Tensor.scalar(dev, 0.8125, "f32");
      assert.equal(memory(device).constantBytes, m1.constantBytes);
      assert.deepEqual([await a.array(), await b.array()], [0.8125, 0.8125]);
      a.dispose();
      b.dispose();
      assert.equal(memory(device).liveTensors, m0.liveTensors);

      // -0 and 0 are different constants; values are coerced to the dtype.
      const nz = Tensor.scalar(dev, -0, "f32");
      assert.equal(1 / (await nz.data())[0], -Infinity);
      const i = Tensor.scalar(dev, -2.7, "i32");
      assert.equal(await i.array(), -2);
      nz.dispose();
      i.dispose();

      // Fill the cache past its size while holding the first entry: it survives eviction.
      const held = Tensor.scalar(dev, 12345.5, "f32");
      for (let k = 0; k < SCALAR_CACHE_SIZE; k++) Tensor.scalar(dev, 1e6 + k, "f32").dispose();
      const full = memory(device);
      assert.equal(full.constantBytes, SCALAR_CACHE_SIZE * 4);
      assert.equal(await held.array(), 12345.5);
      assert.equal(full.liveBytes, m0.liveBytes + 4, "the evicted scalar is live while held");
      held.dispose();
      assert.equal(memory(device).liveBytes, m0.liveBytes);
    });
  }
});
