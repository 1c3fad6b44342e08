import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { getDevice } from "../../ops/device.ts";
import type { GpuDevice } from "../../kernels/webgpu/device.ts";
import { formatProfile } from "../../kernels/webgpu/profiler.ts";
import { profileHostKernels } from "../../kernels/host_profile.ts";
import { findBackend } from "../../kernels/backend.ts";
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
  assert.match(
    formatProfile(times),
    /^GPU time by kernel \(timestamp-query\), total .*\n\| kernel \| calls \| ms \| share \|/,
  );
  // Off again: nothing more is recorded.
  await T.ones([4], { device: "webgpu" }).data();
  assert.deepEqual(await gpu.stopProfile(), []);
});

Deno.test("host profile: wall time per kernel on the CPU backends, untimed again afterwards", async () => {
  const before = findBackend("cpu-reference");
  const profile = profileHostKernels(["cpu-reference", "cpu", "webgpu"], "cpu-reference");
  assert.notEqual(findBackend("cpu-reference"), before, "a timed copy is registered");
  const out = T.scope(() => {
    const a = T.ones([16, 16], { device: "cpu-reference" });
    return T.keep(T.sum(T.exp(T.matmul(a, a))));
  });
  assert.equal((await out.data())[0], Math.fround(256 * Math.fround(Math.exp(16))));
  out.dispose();
  const times = profile.stop();
  assert.equal(findBackend("cpu-reference"), before, "the original backend is back");
  const names = times.map((t) => t.name);
  for (const k of ["matmul", "exp", "sum"]) assert.ok(names.includes(k), JSON.stringify(names));
  for (const t of times) assert.ok(t.count >= 1 && t.ms >= 0, JSON.stringify(t));
  assert.match(formatProfile(times, 15, "wall time"), /^wall time, total .*\n\| kernel \| calls/);
});
