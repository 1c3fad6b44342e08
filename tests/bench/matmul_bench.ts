/**
 * f32 matmul throughput on the default device: ours against tfjs-backend-webgpu, side by side
 * in one group per size. Each name carries the FLOP count (2 n^3), so GFLOP/s = GFLOP / time;
 * `tests/bench/matmul_table.ts` prints GFLOP/s and the ratio directly. Every iteration waits
 * for the GPU (ours: `sync()`; tfjs: reading back one element of the product). Sizes 2048 and
 * 4096 run only on a hardware adapter, so a software (llvmpipe) run stays short.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-webgpu";
import { init, sync, tensor } from "../../mod.ts";
import { matmul } from "../../ops/matmul.ts";

const { backend, adapter } = await init({ quiet: true });
const software = backend === "cpu-reference" ||
  /software|llvmpipe|swiftshader|lavapipe/i.test(adapter);
const sizes = software ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096];
const tfReady = backend === "webgpu" && await tf.setBackend("webgpu").catch(() => false);

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

for (const n of sizes) {
  const group = `matmul ${n}^3 (${(2 * n ** 3 / 1e9).toFixed(3)} GFLOP)`;
  const opts = { group, n: software ? 3 : 30, warmup: software ? 1 : 5 };
  const av = values(n * n, 1), bv = values(n * n, 2);
  const a = tensor(av, { shape: [n, n] }), b = tensor(bv, { shape: [n, n] });
  Deno.bench(`ours f32[${n},${n}] @ f32[${n},${n}] on ${backend}`, {
    ...opts,
    baseline: true,
  }, async () => {
    matmul(a, b).dispose();
    await sync();
  });
  if (tfReady) {
    const ta = tf.tensor2d(av, [n, n]), tb = tf.tensor2d(bv, [n, n]);
    Deno.bench(`tfjs-backend-webgpu f32[${n},${n}] @ f32[${n},${n}]`, opts, async () => {
      const c = tf.matMul(ta, tb);
      const one = tf.slice(c, [0, 0], [1, 1]);
      await one.data();
      tf.dispose([c, one]);
    });
  }
}
