/**
 * Layer norm forward + backward (gradients of `sum(y * w)` for `x`, scale and bias) on `init()`'s
 * device, the fused primitive against the nine-op composition it replaced: milliseconds per
 * step (median of `--steps` after one untimed) and peak bytes above what was live before.
 *
 * Run: `deno run -A tests/bench/layer_norm_step.ts --rows 8192 --dim 256`;
 * `LONGSEQ_BACKEND=cpu`, `=webgpu` or `=cpu` picks the device.
 */
import * as T from "../../mod.ts";
import { fusedLayerNorm } from "../../ops/layer_norm.ts";
import { parseFlags, runMain } from "../../train/mod.ts";

const spec = {
  rows: { type: "int", default: 8192, help: "Rows (tokens)" },
  dim: { type: "int", default: 256, help: "Row length (model width)" },
  steps: { type: "int", default: 5, help: "Timed steps (after one untimed)" },
} as const;

/** The composition `nn.layerNorm` used before the fused primitive. */
function composed(x: T.Tensor, g: T.Tensor, b: T.Tensor): T.Tensor {
  return T.scope(() => {
    const mu = T.mean(x, -1, { keepdims: true });
    const c = T.sub(x, mu);
    const inv = T.rsqrt(T.add(T.mean(T.square(c), -1, { keepdims: true }), 1e-6));
    return T.add(T.mul(T.mul(c, inv), g), b);
  });
}

const fused = (x: T.Tensor, g: T.Tensor, b: T.Tensor) => fusedLayerNorm(x, { scale: g, bias: b });

async function main() {
  const flags = parseFlags("usage: deno run -A tests/bench/layer_norm_step.ts [flags]", spec);
  const { backend } = await T.init({ quiet: true });
  const { rows, dim, steps } = flags;
  const x = T.keep(T.random.normal(T.random.key(0), [rows, dim]));
  const w = T.keep(T.random.normal(T.random.key(1), [rows, dim]));
  const g = T.keep(T.ones([dim])), b = T.keep(T.zeros([dim]));
  console.log(`layer norm [${rows}, ${dim}] forward + backward on ${backend}`);
  console.log("| version | ms/step | peak above inputs MiB |\n|---|---:|---:|");
  for (const [name, ln] of [["composed", composed], ["fused", fused]] as const) {
    const times: number[] = [];
    let peak = 0;
    for (let s = 0; s <= steps; s++) {
      const live = T.memory().liveBytes;
      T.resetPeakMemory();
      const t0 = performance.now();
      const grads = T.scope(() => {
        const loss = (a: T.Tensor, c: T.Tensor, d: T.Tensor) => T.sum(T.mul(ln(a, c, d), w));
        return T.grad(loss, { argnums: [0, 1, 2] })(x, g, b) as T.Tensor[];
      });
      await Promise.all(grads.map((t) => t.data()));
      if (s > 0) times.push(performance.now() - t0);
      peak = Math.max(peak, T.memory().peakBytes - live);
      T.disposeTree(grads);
    }
    times.sort((p, q) => p - q);
    const ms = times[Math.floor(times.length / 2)];
    console.log(`| ${name} | ${ms.toFixed(1)} | ${(peak / 2 ** 20).toFixed(1)} |`);
  }
}

await runMain("layer_norm_step", main);
