/**
 * Sparse Transformer attention, forward + backward (gradients of a scalar loss with respect to
 * the params and the input), block-sparse (fused kernels) vs the gather composition vs dense
 * masked attention, at lengths 256 to 2048 on the default device: batch 1, dModel 32, 2 heads,
 * blocks of 16, stride `l` the power of two at or above `sqrt(len)` (16, 32, 32, 64), the fixed
 * pattern merged into every head (`c = l / 8`) and the strided pattern split across heads.
 * Before the timed runs, one step per configuration is measured once and a table of wall time,
 * peak bytes (above what was live before the step) and score tiles computed (block-sparse,
 * per head group) vs the `nBlocks (nBlocks + 1) / 2` causal tiles is printed: the tile
 * fraction falls like `blockSize / l`, so work grows like `len^1.5`. Set
 * `SPARSE_BENCH_LENS=256,512,...` to choose the lengths.
 */
import * as T from "../../mod.ts";
import { valueAndGrad } from "../../autodiff/mod.ts";
import type { AttentionParams } from "../../nn/attention/core.ts";
import { sparseAttention, type SparseAttentionConfig } from "../../nn/attention/sparse.ts";
import { blockLayout } from "../../nn/attention/sparse_patterns.ts";
import * as random from "../../ops/random.ts";

const { backend, adapter } = await T.init({ quiet: true });
const dModel = 32, heads = 2, blockSize = 16;
const lens = (Deno.env.get("SPARSE_BENCH_LENS") ?? "256,512,1024,2048").split(",").map(Number);
const impls = ["blockSparse", "gather", "dense"] as const;
type Impl = typeof impls[number];

const strideFor = (n: number) => 2 ** Math.ceil(Math.log2(Math.sqrt(n)));
const configs: Record<string, (n: number) => SparseAttentionConfig> = {
  "fixed merged": (n) => ({
    dModel,
    heads,
    pattern: "fixed",
    stride: strideFor(n),
    c: strideFor(n) / 8,
    mode: "merged",
    blockSize,
  }),
  "strided split": (n) => ({
    dModel,
    heads,
    pattern: "strided",
    stride: strideFor(n),
    mode: "split",
    blockSize,
  }),
};

const params: AttentionParams = T.keep(
  T.scope(() => sparseAttention(configs["fixed merged"](256)).init(random.key(0))),
);

/** One forward + backward step; waits for the device and frees everything it made. */
async function step(cfg: SparseAttentionConfig, impl: Impl, x: T.Tensor): Promise<void> {
  const layer = sparseAttention({ ...cfg, impl });
  const out = T.scope(() => {
    const f = (p: AttentionParams, xx: T.Tensor) => T.sum(T.square(layer.apply(p, xx)));
    return valueAndGrad(f, { argnums: [0, 1] })(params, x);
  });
  await out[0].data();
  T.scope(() => {
    for (const t of [out[0], ...Object.values(out[1][0]), out[1][1]]) (t as T.Tensor).dispose();
  });
}

/** Tiles the block-sparse kernels compute per head group, and the causal tile count. */
function tiles(cfg: SparseAttentionConfig, n: number): string {
  const parts = cfg.mode === "merged" ? ["union"] as const : ["a", "b"] as const;
  const t = parts.map((part) =>
    blockLayout({ kind: cfg.pattern, stride: cfg.stride, c: cfg.c ?? 0, part }, n, blockSize).tiles
  );
  const nb = Math.ceil(n / blockSize);
  return `${t.join(" + ")} of ${(nb * (nb + 1)) / 2}`;
}

const inputs = new Map(
  lens.map((n) => [n, T.keep(T.scope(() => random.normal(random.key(n), [1, n, dModel])))]),
);
const rows: string[] = [];
for (const [name, make] of Object.entries(configs)) {
  for (const n of lens) {
    const cfg = make(n);
    for (const impl of impls) {
      await step(cfg, impl, inputs.get(n)!); // compiles the pipelines for this shape
      await T.sync();
      T.resetPeakMemory();
      const base = T.memory().liveBytes;
      const t0 = performance.now();
      await step(cfg, impl, inputs.get(n)!);
      const ms = performance.now() - t0;
      const peak = (T.memory().peakBytes - base) / 2 ** 20;
      const tl = impl === "dense" ? "-" : tiles(cfg, n);
      rows.push(
        `| ${name} | ${cfg.stride} | ${impl} | ${n} | ${ms.toFixed(0)} | ${
          peak.toFixed(2)
        } | ${tl} |`,
      );
    }
  }
}
console.log(`\nsparse attention forward + backward on ${backend} (${adapter})`);
console.log(
  "| pattern | stride | impl | length | ms | peak MiB | tiles |\n|---|---|---|---|---|---|---|\n" +
    rows.join("\n"),
);

for (const [name, make] of Object.entries(configs)) {
  for (const n of lens) {
    const cfg = make(n);
    for (const impl of impls) {
      Deno.bench({
        name: `${name} ${impl} fwd+bwd L=${n}`,
        group: `${name} L=${n}`,
        baseline: impl === "dense",
        n: n >= 1024 ? 1 : 3,
        warmup: 0,
        fn: () => step(cfg, impl, inputs.get(n)!),
      });
    }
  }
}
