/**
 * LSH attention vs full attention, forward + backward (gradients of a scalar loss with respect
 * to the params and the input), at lengths 512 to 4096 on the default device: batch 1,
 * dModel 32, 2 heads, causal, shared QK; LSH with 2 hash rounds and chunks of 64. Before the
 * timed runs, one step per configuration is measured once and a table of wall time and peak
 * bytes (above what was live before the step) is printed: LSH grows as `O(L)` in memory and
 * `O(L log L)` in time, full attention as `O(L^2)`. Lengths are capped on the software adapter
 * so the whole file runs in about a minute; set `ATTN_BENCH_LENS=512,1024,...` to choose.
 */
import * as T from "../../mod.ts";
import { valueAndGrad } from "../../autodiff/mod.ts";
import { attention } from "../../nn/attention/full.ts";
import { lshAttention } from "../../nn/attention/lsh.ts";
import type { AttentionParams } from "../../nn/attention/core.ts";
import * as random from "../../ops/random.ts";

const { backend, adapter } = await T.init({ quiet: true });
const dModel = 32, heads = 2;
const lens = (Deno.env.get("ATTN_BENCH_LENS") ?? "512,1024,2048,4096").split(",").map(Number);

const layers = {
  lsh: lshAttention({ dModel, heads, nHashes: 2, chunkLen: 64, causal: true }),
  full: attention({ dModel, heads, sharedQK: true, causal: true }),
};
type Kind = keyof typeof layers;

const key = T.keep(random.key(2));
const params: AttentionParams = T.keep(layers.lsh.init(random.key(0)));

/** One forward + backward step; waits for the device and frees everything it made. */
async function step(kind: Kind, x: T.Tensor): Promise<void> {
  const layer = layers[kind];
  const out = T.scope(() => {
    const f = (p: AttentionParams, xx: T.Tensor) => T.sum(T.square(layer.apply(p, xx, { key })));
    return valueAndGrad(f, { argnums: [0, 1] })(params, x);
  });
  await out[0].data();
  T.scope(() => {
    for (const t of [out[0], ...Object.values(out[1][0]), out[1][1]]) (t as T.Tensor).dispose();
  });
}

const inputs = new Map(lens.map((n) => [n, T.keep(random.normal(random.key(n), [1, n, dModel]))]));
const rows: string[] = [];
for (const n of lens) {
  for (const kind of ["lsh", "full"] as Kind[]) {
    await step(kind, inputs.get(n)!); // compiles the pipelines for this shape
    await T.sync();
    T.resetPeakMemory();
    const base = T.memory().liveBytes;
    const t0 = performance.now();
    await step(kind, inputs.get(n)!);
    const ms = performance.now() - t0;
    const peak = (T.memory().peakBytes - base) / 2 ** 20;
    rows.push(`| ${kind} | ${n} | ${ms.toFixed(0)} | ${peak.toFixed(1)} |`);
  }
}
console.log(`\nattention forward + backward on ${backend} (${adapter})`);
console.log("| attention | length | ms | peak MiB |\n|---|---|---|---|\n" + rows.join("\n"));

for (const n of lens) {
  for (const kind of ["lsh", "full"] as Kind[]) {
    // Long full-attention steps take seconds on a software adapter: time them once.
    const slow = kind === "full" && n >= 2048;
    Deno.bench({
      name: `${kind} attention fwd+bwd L=${n}`,
      group: `L=${n}`,
      baseline: kind === "full",
      n: slow ? 1 : 3,
      warmup: 0,
      fn: () => step(kind, inputs.get(n)!),
    });
  }
}
