/**
 * The wasm backend in use: ops it leaves to the reference (run on copies), gradients and a
 * short training run against the reference, 1 and 2 threads giving identical bits, no leaks,
 * and memory accounting.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { registerBackend } from "../../kernels/backend.ts";
import { createWasmBackend } from "../../kernels/wasm/backend.ts";
import { WasmDevice } from "../../kernels/wasm/device.ts";
import { noLeaks, randomArray, rng } from "../util.ts";

// Two devices; the registry holds one "cpu" backend at a time (two: the default).
const one = await WasmDevice.create({ threads: 1 });
const two = await WasmDevice.create({ threads: 2 });
const use = (d: WasmDevice) => registerBackend(createWasmBackend(d));
use(two);
addEventListener("unload", () => (one.dispose(), two.dispose()));

/** Random f32 data of `shape` on `device` (same values for the same seed). */
function input(seed: number, shape: number[], device: T.DeviceName, lo = -1, hi = 1): T.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return T.tensor(randomArray(rng(seed), size, lo, hi), { shape, device });
}

Deno.test("ops without a wasm kernel, or with other dtypes, run on the reference", async () => {
  await noLeaks(async () => {
    const x = T.tensor([3, 1, 2, 0.5], { device: "cpu" });
    const order = T.argsort(x);
    assert.equal(order.device, "cpu");
    assert.deepEqual(Array.from(await order.data()), [3, 1, 2, 0]);
    const taken = T.take(x, order);
    assert.deepEqual(Array.from(await taken.data()), [0.5, 1, 2, 3]);
    const i = T.tensor(new Int32Array([1, 2, 3]), { device: "cpu" });
    const isum = T.scope(() => T.sum(T.mul(i, i))); // i32 sum: declined, run on the reference
    assert.equal(isum.dtype, "i32");
    assert.equal((await isum.data())[0], 14);
    const b = T.greater(x, 1); // bool output, from f32 inputs
    assert.deepEqual(Array.from(await b.data()), [1, 0, 1, 0]);
    [x, order, taken, i, isum, b].forEach((t) => t.dispose());
  });
});

/** A tiny MLP's loss on `device`. */
function tinyModel(device: T.DeviceName) {
  const params = {
    w1: input(11, [6, 16], device),
    b1: T.zeros([16], { device }),
    w2: input(12, [16, 3], device),
  };
  const x = input(13, [10, 6], device);
  const y = input(14, [10, 3], device);
  const loss = (p: typeof params) =>
    T.mean(T.square(T.sub(T.matmul(T.tanh(T.add(T.matmul(x, p.w1), p.b1)), p.w2), y)));
  return { params, loss, inputs: [x, y] };
}

Deno.test("gradients of a small model on wasm match the reference", async () => {
  await noLeaks(async () => {
    const run = async (device: T.DeviceName) => {
      const { params, loss, inputs } = tinyModel(device);
      const [v, g] = T.valueAndGrad(loss)(params);
      const out = [await v.data(), await g.w1.data(), await g.b1.data(), await g.w2.data()];
      T.disposeTree([v, g, params, inputs]);
      return out;
    };
    const w = await run("cpu"), c = await run("cpu-reference");
    w.forEach((a, j) => a.forEach((z, i) => assert.ok(Math.abs(z - c[j][i]) < 1e-5, `${j}[${i}]`)));
  });
});

Deno.test("50 training steps on wasm leak nothing; 1 and 2 threads give identical bits", async () => {
  const train = async () => {
    let trained: Float32Array = new Float32Array();
    await noLeaks(async () => {
      const { params, loss, inputs } = tinyModel("cpu");
      let p = params;
      for (let step = 0; step < 50; step++) {
        const [v, g] = T.valueAndGrad(loss)(p);
        const next = T.scope(() => ({
          w1: T.sub(p.w1, T.mul(g.w1, 0.1)),
          b1: T.sub(p.b1, T.mul(g.b1, 0.1)),
          w2: T.sub(p.w2, T.mul(g.w2, 0.1)),
        }));
        T.disposeTree([v, g, p]);
        p = next;
      }
      trained = (await p.w1.data()) as Float32Array;
      T.disposeTree([p, inputs]);
    });
    return trained;
  };
  const peak = T.memory("cpu").liveBytes;
  const a = await train();
  use(one);
  try {
    const b = await train();
    assert.deepEqual(Array.from(b), Array.from(a));
  } finally {
    use(two);
  }
  assert.equal(T.memory("cpu").liveBytes, peak);
});

Deno.test("wasm memory accounting: live bytes, disposal, scopes", async () => {
  await noLeaks(() => {
    const before = T.memory("cpu");
    const x = T.zeros([1000], { device: "cpu" });
    assert.equal(T.memory("cpu").liveBytes - before.liveBytes, 4000);
    const kept = T.scope(() => T.exp(T.add(x, 1)));
    assert.equal(T.memory("cpu").liveBytes - before.liveBytes, 8000);
    x.dispose();
    kept.dispose();
    assert.throws(() => T.exp(x), /dispos/);
  });
});
