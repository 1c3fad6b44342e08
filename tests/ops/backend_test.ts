import * as assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { type DType, dtypeInfo, type TypedArray } from "../../kernels/dtype.ts";
import type { Device, DeviceName, MemoryInfo, Storage } from "../../kernels/device.ts";
import { type Backend, registerBackend, unregisterBackend } from "../../kernels/backend.ts";
import type { ElementwiseSpec } from "../../kernels/specs/elementwise.ts";
import { kernelSupported } from "../../ops/primitive.ts";
import { CPU_KERNELS } from "../../kernels/cpu/mod.ts";
import { WEBGPU_KERNELS } from "../../kernels/webgpu/mod.ts";
import { CPU_ELEMENTWISE } from "../../kernels/cpu/elementwise_ops.ts";
import { WGSL_ELEMENTWISE } from "../../kernels/webgpu/elementwise_ops.ts";

/** A tiny host-memory backend for tests: its own storage class and accounting. */
class BoxStorage implements Storage {
  constructor(readonly data: TypedArray) {}
  get byteLength(): number {
    return this.data.byteLength;
  }
}

class BoxDevice implements Device {
  readonly description = "test box";
  readonly maxBytes = 2 ** 31 - 1;
  poolLimit = 0;
  elementBytes(dtype: DType): number {
    return dtypeInfo(dtype).bytes;
  }
  releasePooled(): number {
    return 0;
  }
  liveBytes = 0;
  liveTensors = 0;
  constructor(readonly name: DeviceName) {}
  alloc(dtype: DType, size: number): BoxStorage {
    const s = new BoxStorage(dtypeInfo(dtype).create(size));
    this.liveBytes += s.byteLength;
    return s;
  }
  upload(data: TypedArray, dtype: DType): BoxStorage {
    const s = this.alloc(dtype, data.length);
    s.data.set(data);
    return s;
  }
  read(storage: Storage, _dtype: DType, size: number): Promise<TypedArray> {
    return Promise.resolve((storage as BoxStorage).data.slice(0, size));
  }
  free(storage: Storage): void {
    this.liveBytes -= storage.byteLength;
  }
  flush(): void {}
  sync(): Promise<void> {
    return Promise.resolve();
  }
  memory(): MemoryInfo {
    const { liveTensors, liveBytes } = this;
    return { liveTensors, liveBytes, peakBytes: 0, pooledBytes: 0, constantBytes: 0 };
  }
  resetPeak(): void {}
  countTensor(delta: 1 | -1): void {
    this.liveTensors += delta;
  }
  countConstant(storage: Storage, delta: 1 | -1): void {
    this.liveBytes -= delta * storage.byteLength;
  }
}

/** A backend with one kernel of its own (a contiguous same-shape `add`) and a fallback. */
function boxBackend(name: string, fallback?: DeviceName) {
  const calls: string[] = [];
  const device = new BoxDevice(name as DeviceName);
  const backend: Backend = {
    name: device.name,
    device,
    kernels: {
      add: (d: BoxDevice, [a, b]: BoxStorage[], s: ElementwiseSpec) => {
        calls.push("add");
        const out = d.alloc(s.dtype, a.data.length);
        for (let i = 0; i < out.data.length; i++) out.data[i] = a.data[i] + b.data[i];
        return out;
      },
    },
    fallback,
    toHost: (storage, _dtype, size) => (storage as BoxStorage).data.subarray(0, size),
  };
  return { backend, device, calls };
}

Deno.test("a backend runs its own kernels and falls back for the others", async (t) => {
  const { backend, device, calls } = boxBackend("box", "cpu-reference");
  registerBackend(backend);
  try {
    const dev = device.name;
    await t.step("own kernel", async () => {
      using x = T.tensor([1, 2, 3], { device: dev });
      using y = T.tensor([10, 20, 30], { device: dev });
      using z = T.add(x, y);
      assert.deepEqual(calls, ["add"]);
      assert.equal(z.device, dev);
      assert.deepEqual(await z.array(), [11, 22, 33]);
    });
    await t.step(
      "fallback kernels run on copies, results come back, copies are freed",
      async () => {
        const cpuBefore = T.memory("cpu-reference");
        using x = T.tensor([[1, 2], [3, 4]], { device: dev });
        const boxBefore = device.liveBytes;
        using m = T.matmul(x, x);
        using s = T.sum(x, 0);
        using e = T.exp(x);
        using c = T.cumsum(x, 1);
        assert.deepEqual(await m.array(), [[7, 10], [15, 22]]);
        assert.deepEqual(await s.array(), [4, 6]);
        assert.deepEqual(await c.array(), [[1, 3], [3, 7]]);
        assert.ok(Math.abs((await e.data())[3] - Math.exp(4)) < 1e-3);
        for (const r of [m, s, e, c]) assert.equal(r.device, dev);
        assert.equal(device.liveBytes - boxBefore, 4 * (4 + 2 + 4 + 4));
        const cpuAfter = T.memory("cpu-reference");
        assert.equal(cpuAfter.liveBytes, cpuBefore.liveBytes, "no CPU copy outlives its launch");
        assert.equal(cpuAfter.liveTensors, cpuBefore.liveTensors);
        assert.ok(kernelSupported(device, "matmul"));
      },
    );
    await t.step("gradients flow through fallback kernels", async () => {
      using x = T.tensor([1, 2, 3], { device: dev });
      using g = T.grad((v: T.Tensor) => T.sum(T.mul(v, v)))(x) as T.Tensor;
      assert.equal(g.device, dev);
      assert.deepEqual(await g.array(), [2, 4, 6]);
    });
  } finally {
    unregisterBackend(backend.name);
  }
});

Deno.test("a missing kernel without a fallback names the kernel and the backend", () => {
  const { backend, device } = boxBackend("bare");
  registerBackend(backend);
  try {
    using x = T.tensor([1, 2], { device: device.name });
    assert.throws(() => T.neg(x), {
      name: "TypeError",
      message: /backend bare has no kernel "neg" and declares no fallback backend/,
    });
    assert.equal(kernelSupported(device, "neg"), false);
    assert.equal(kernelSupported(device, "add"), true);
  } finally {
    unregisterBackend(backend.name);
  }
  assert.throws(() => T.tensor([1], { device: "bare" as DeviceName }), /unknown device "bare"/);
});

Deno.test("the built-in backends list the same kernels under the same names", () => {
  const names = (t: object) => Object.keys(t).sort();
  assert.deepEqual(names(CPU_KERNELS), names(WEBGPU_KERNELS));
  assert.deepEqual(names(CPU_ELEMENTWISE), names(WGSL_ELEMENTWISE));
  for (const k of ["matmul", "sum", "cumsum", "cumprod", "take", "sort", "place", "random"]) {
    assert.ok(k in CPU_KERNELS, k);
  }
});
