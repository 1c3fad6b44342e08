import assert from "node:assert/strict";
import { WasmDevice } from "../../../kernels/wasm/device.ts";
import { sizeClass } from "../../../kernels/wasm/alloc.ts";
import { elementwiseWasm } from "../../../kernels/wasm/elementwise.ts";

Deno.test("size classes round up and are 64-byte multiples", () => {
  for (const n of [0, 1, 63, 64, 65, 4095, 4097, 10000, 1 << 20, (1 << 20) + 1]) {
    const c = sizeClass(n);
    assert.ok(c >= n && c % 64 === 0, `${n} -> ${c}`);
  }
  assert.equal(sizeClass(4097), 5120);
});

Deno.test("WasmDevice stores, reads copies, frees to the pool and counts bytes", async (t) => {
  const dev = await WasmDevice.create({ threads: 1 });
  try {
    assert.equal(dev.name, "cpu");
    assert.equal(dev.threads, 1);
    await t.step("upload and read every dtype", async () => {
      const arrays = [
        [new Float32Array([1.5, -2, 3]), "f32"],
        [new Int32Array([-7, 8]), "i32"],
        [new Uint32Array([4e9]), "u32"],
        [new Uint8Array([1, 0, 1, 1, 0]), "bool"],
      ] as const;
      for (const [data, dtype] of arrays) {
        const s = dev.upload(data, dtype);
        const r = await dev.read(s, dtype, data.length);
        assert.deepEqual(r, data);
        assert.ok(!(r.buffer instanceof SharedArrayBuffer), "read returns a plain copy");
        dev.free(s);
      }
    });
    await t.step("accounting and pooling", () => {
      const before = dev.memory();
      const s = dev.alloc("f32", 1000);
      assert.equal(dev.memory().liveBytes, before.liveBytes + 4000);
      dev.free(s);
      const after = dev.memory();
      assert.equal(after.liveBytes, before.liveBytes);
      assert.ok(after.pooledBytes >= 4000);
      assert.ok(after.peakBytes >= 4000);
      const again = dev.alloc("f32", 1000);
      assert.equal(again.offset, s.offset, "a freed block is reused for its size class");
      dev.free(again);
      assert.throws(() => dev.free(again), /twice/);
    });
    await t.step("growing the memory keeps earlier data", async () => {
      const small = dev.upload(new Float32Array([1, 2, 3]), "f32");
      const big = dev.alloc("f32", 3 << 20); // past the initial 4 MiB
      assert.deepEqual(await dev.read(small, "f32", 3), new Float32Array([1, 2, 3]));
      dev.free(big);
      dev.free(small);
      assert.equal(dev.memory().liveBytes, 0);
    });
  } finally {
    dev.dispose();
  }
});

Deno.test("workers see storage placed after the memory grew", async () => {
  const dev = await WasmDevice.create({ threads: 2 });
  try {
    const n = 1 << 17; // large enough to run on both threads
    const pad = dev.alloc("f32", 3 << 20); // grow past the initial 4 MiB first
    const data = Float32Array.from({ length: n }, (_, i) => i);
    const x = dev.upload(data, "f32");
    const y = elementwiseWasm(dev, "add", [
      { storage: x, dtype: "f32", strides: [1], offset: 0 },
      { storage: x, dtype: "f32", strides: [1], offset: 0 },
    ], [n]);
    assert.deepEqual(await dev.read(y, "f32", n), data.map((v) => 2 * v));
    for (const s of [pad, x, y]) dev.free(s);
  } finally {
    dev.dispose();
  }
});
