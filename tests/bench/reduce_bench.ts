/**
 * Softmax and row/column sums on the default device, with `exp` as an elementwise baseline.
 * Each name carries the bytes moved per iteration (one read of the input, one write of the
 * output); GB/s = bytes / time. Every bench iteration waits for the GPU (`sync`), so its time
 * includes the kernels and one round trip. Before the benches run, each case's throughput
 * without the round trip is printed: the time of `k + 100` back-to-back runs minus that of `k`
 * runs (each followed by one `sync`), over 100. Results are disposed at once, so the buffer
 * pool reuses their storage as it would in a training loop.
 */
import { exp, init, sync, zeros } from "../../mod.ts";
import { sum } from "../../ops/reduce.ts";
import { softmax } from "../../ops/softmax.ts";
import type { Tensor } from "../../ops/tensor.ts";

const { backend, adapter } = await init({ quiet: true });
const software = /llvmpipe|software|cpu/i.test(adapter) || backend === "cpu-reference";
// The software adapter runs at about 1 GFLOP/s: keep its cases small.
const sizes = software ? [256, 1024] : [1024, 4096];

interface Case {
  name: string;
  bytes: number;
  run: (x: Tensor) => Tensor;
}

const cases = (n: number): Case[] => [
  { name: `softmax f32[${n},${n}]`, bytes: 8 * n * n, run: (x) => softmax(x) },
  { name: `sum rows f32[${n},${n}]`, bytes: 4 * n * n + 4 * n, run: (x) => sum(x, 1) },
  { name: `sum cols f32[${n},${n}]`, bytes: 4 * n * n + 4 * n, run: (x) => sum(x, 0) },
  { name: `sum all f32[${n},${n}]`, bytes: 4 * n * n + 4, run: (x) => sum(x) },
  { name: `exp f32[${n},${n}]`, bytes: 8 * n * n, run: (x) => exp(x) },
];

async function timed(x: Tensor, c: Case, iters: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) c.run(x).dispose();
  await sync();
  return performance.now() - t0;
}

async function gbps(x: Tensor, c: Case): Promise<number> {
  const [k, extra] = software ? [1, 4] : [5, 100];
  await timed(x, c, k);
  const base = await timed(x, c, k);
  const ms = (await timed(x, c, k + extra)) - base;
  return (c.bytes * extra) / (ms / 1000) / 1e9;
}

for (const n of sizes) {
  const x = zeros([n, n]);
  for (const c of cases(n)) {
    console.log(`${c.name} on ${backend}: ${(await gbps(x, c)).toFixed(1)} GB/s`);
    Deno.bench(`${c.name} (${(c.bytes / 1e6).toFixed(1)} MB moved) on ${backend}`, {
      group: `${c.name.split(" f32")[0]} ${n}`,
    }, async () => {
      c.run(x).dispose();
      await sync();
    });
  }
}
