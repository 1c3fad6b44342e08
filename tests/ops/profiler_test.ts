import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { getDevice } from "../../ops/device.ts";
import type { GpuDevice } from "../../kernels/webgpu/device.ts";
import { formatProfile } from "../../kernels/webgpu/profiler.ts";
import { testDevices } from "../util.ts";

Deno.test("GPU profile: time per kernel from timestamp queries, off again afterwards", async () => {
  if (!testDevices().includes("webgpu")) return;
  const gpu = getDevice("webgpu") as GpuDevice;
  if (!gpu.canProfile) return;
  assert.deepEqual(await gpu.stopProfile(), []);
  assert.equal(gpu.startProfile(), true);
  const out = T.scope(() => {
    const a = T.ones([64, 64], { device: "webgpu" });
    return T.keep(T.sum(T.exp(T.matmul(a, a))));
  });
  await out.data();
  out.dispose();
  const times = await gpu.stopProfile();
  assert.ok(times.length >= 2, JSON.stringify(times));
  for (const t of times) {
    assert.ok(t.count >= 1 && t.ms >= 0 && t.name.length > 0, JSON.stringify(t));
  }
  assert.ok(times.some((t) => /matmul/i.test(t.name)), JSON.stringify(times));
  assert.match(formatProfile(times), /\| kernel \| dispatches \| ms \| share \|/);
  // Off again: nothing more is recorded.
  await T.ones([4], { device: "webgpu" }).data();
  assert.deepEqual(await gpu.stopProfile(), []);
});
