/**
 * The timing pieces of `matmul_table.ts`, shared with `gpu_suite.ts`: deterministic inputs,
 * best-round GFLOP/s, and one square f32 matmul timed for ours and tfjs-backend-webgpu.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-webgpu";
import { sync, tensor } from "../../mod.ts";
import { matmul } from "../../ops/matmul.ts";

/** Whether tfjs-backend-webgpu initialised (call once, after `init`, on the WebGPU backend). */
export async function initTfjs(backend: string): Promise<boolean> {
  try {
    return backend === "webgpu" && await tf.setBackend("webgpu");
  } catch (e) {
    console.log(`tfjs-backend-webgpu did not initialise: ${e}`);
    return false;
  }
}

/** `n` deterministic values in `[-0.5, 0.5)`. */
export function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

/**
 * GFLOP/s of `run` at its best round. A wait on the GPU costs milliseconds in Deno, so a round
 * is `reps` back-to-back products and one wait, with `reps` grown until a round lasts about
 * `target` seconds; the best of a few rounds counts.
 */
export async function gflops(
  run: () => void,
  wait: () => Promise<void>,
  flop: number,
  software: boolean,
): Promise<number> {
  const target = software ? 0.05 : 0.25;
  const round = async (reps: number) => {
    const t = performance.now();
    for (let i = 0; i < reps; i++) run();
    await wait();
    return (performance.now() - t) / 1e3;
  };
  await round(1); // compiles pipelines
  let reps = 1;
  for (let el = await round(1); el < target && reps < 4096; el = await round(reps)) {
    reps = Math.min(4096, reps * Math.max(2, Math.ceil(1.2 * target / el)));
  }
  let best = Infinity;
  for (let r = 0; r < (software ? 2 : 3); r++) best = Math.min(best, (await round(reps)) / reps);
  return flop / best / 1e9;
}

/** GFLOP/s of an `n^3` f32 matmul: ours, and tfjs's (NaN without `tfReady`). */
export async function matmulGflops(
  n: number,
  software: boolean,
  tfReady: boolean,
): Promise<{ ours: number; tfjs: number }> {
  const flop = 2 * n ** 3;
  const av = values(n * n, 1), bv = values(n * n, 2);
  const a = tensor(av, { shape: [n, n] }), b = tensor(bv, { shape: [n, n] });
  const ours = await gflops(() => matmul(a, b).dispose(), () => sync(), flop, software);
  a.dispose();
  b.dispose();
  let tfjs = NaN;
  if (tfReady) {
    const ta = tf.tensor2d(av, [n, n]), tb = tf.tensor2d(bv, [n, n]);
    let last: tf.Tensor | null = null;
    tfjs = await gflops(
      () => {
        last?.dispose();
        last = tf.matMul(ta, tb);
      },
      async () => {
        const one = tf.slice(last!, [0, 0], [1, 1]);
        await one.data();
        one.dispose();
      },
      flop,
      software,
    );
    tf.dispose([ta, tb, last!]);
  }
  return { ours, tfjs };
}

/** GFLOP/s of our f16 matmul `[n, n] @ [n, n]` (f16 operands and result, f32 sums). */
export async function matmulF16Gflops(n: number, software: boolean): Promise<number> {
  const a = tensor(values(n * n, 1), { shape: [n, n], dtype: "f16" });
  const b = tensor(values(n * n, 2), { shape: [n, n], dtype: "f16" });
  try {
    return await gflops(() => matmul(a, b).dispose(), () => sync(), 2 * n ** 3, software);
  } finally {
    a.dispose();
    b.dispose();
  }
}
