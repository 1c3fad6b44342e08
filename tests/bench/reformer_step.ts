/**
 * One Reformer LM training step (loss, gradients by inversion through the reversible stack,
 * Adam update) at several lengths: milliseconds per step and peak device bytes. The defaults
 * are the configuration of issue 4's GPU comparison: 6 layers of causal LSH attention,
 * `dModel` 256, 4 heads of 64, `dFF` 512 (HuggingFace's `feed_forward_size`), 2 hash rounds,
 * chunks of 64, vocabulary 320, batch 1, axial positions shaped `[2^⌊k/2⌋, 2^⌈k/2⌉]` for a
 * length of `2^k`. The feed-forward and the LM head run over 8 slices each.
 *
 * Run: `deno run -A tests/bench/reformer_step.ts --lens 4096,16384,65536`. The device is
 * `init()`'s choice (a hardware GPU, else the wasm backend); `LONGSEQ_BACKEND=cpu`, `=webgpu`
 * or `=cpu` (the CPU reference) picks one. Peak bytes are the allocator's figure
 * (`memory().peakBytes`): every live tensor, params and Adam state included (the scalar
 * constant cache and the buffer pool's spare buffers are not). The first step at each length
 * compiles pipelines and is not timed (unless `--no-warmup`, for lengths where one step is
 * all the time there is). `--profile` times every dispatch with `timestamp-query` over the
 * timed steps and prints the top kernels per length (each dispatch then gets its own compute
 * pass, so the steps run slower than without it); on the CPU backends it prints each kernel's
 * wall time instead (the rest of a step is tracing, autodiff and copies). `--precision f16`
 * trains the layer stack in mixed precision (`precision: "f16"`, Adam wrapped in
 * `optim.dynamicLossScale`).
 */
import * as T from "../../mod.ts";
import { nn } from "../../mod.ts";
import { parseFlags, runMain } from "../../train/mod.ts";
import { getDevice } from "../../ops/device.ts";
import type { GpuDevice } from "../../kernels/webgpu/device.ts";
import { formatProfile } from "../../kernels/webgpu/profiler.ts";
import { axialShape, lmTrainingStep } from "./lm_step.ts";
import { profileHostKernels } from "../../kernels/host_profile.ts";

const spec = {
  lens: { type: "string", default: "1024,4096", help: "Comma-separated sequence lengths" },
  steps: { type: "int", default: 2, help: "Timed steps per length (after one untimed)" },
  layers: { type: "int", default: 6, help: "Reversible layers" },
  dModel: { type: "int", default: 256, help: "Model width" },
  dFF: { type: "int", default: 512, help: "Feed-forward width" },
  heads: { type: "int", default: 4, help: "Attention heads" },
  nHashes: { type: "int", default: 2, help: "LSH hash rounds" },
  chunkLen: { type: "int", default: 64, help: "LSH chunk length" },
  vocab: { type: "int", default: 320, help: "Vocabulary size" },
  batch: { type: "int", default: 1, help: "Sequences per step" },
  ffChunks: { type: "int", default: 8, help: "Feed-forward slices" },
  headChunks: { type: "int", default: 8, help: "LM head and loss slices" },
  activation: {
    type: "string",
    default: "gelu",
    choices: ["gelu", "relu", "gelu_exact"],
    help: "Feed-forward activation (Hugging Face's ReformerConfig default is relu)",
  },
  reversible: { type: "bool", default: true, help: "Reversible layers (--no-reversible: stored)" },
  precision: {
    type: "string",
    default: "f32",
    choices: ["f32", "f16"],
    help: "Layer-stack precision (f16: mixed precision, Adam with dynamic loss scaling)",
  },
  profile: {
    type: "bool",
    default: false,
    help: "Print the top kernels by GPU time over the timed steps (timestamp-query; slower steps)",
  },
  warmup: {
    type: "bool",
    default: true,
    help: "Run one untimed step first (--no-warmup: time the first step, compiles included)",
  },
} as const;

const MiB = 2 ** 20;

async function main(): Promise<void> {
  const f = parseFlags("usage: deno run -A tests/bench/reformer_step.ts [flags]", spec);
  const lens = f.lens.split(",").map(Number);
  if (lens.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new RangeError(`--lens must be positive integers, got "${f.lens}"`);
  }
  const { backend, adapter } = await T.init({ quiet: true });
  const rows: string[] = [];
  for (const len of lens) {
    const model = nn.reformerLM({
      vocab: f.vocab,
      dModel: f.dModel,
      dFF: f.dFF,
      heads: f.heads,
      layers: f.layers,
      attention: "lsh",
      nHashes: f.nHashes,
      chunkLen: f.chunkLen,
      axialShape: axialShape(len),
      ffChunks: f.ffChunks,
      activation: f.activation as nn.ReformerActivation,
      lmHeadChunks: f.headChunks,
      reversible: f.reversible,
      precision: f.precision as "f32" | "f16",
    });
    const run = lmTrainingStep(model, {
      batch: f.batch,
      len,
      vocab: f.vocab,
      half: f.precision === "f16",
    });
    const { stateBytes } = run;
    const step = (i: number) => run.step(i);
    if (f.warmup) await step(0);
    await T.sync();
    T.resetPeakMemory();
    const times: number[] = [];
    let loss = NaN;
    const gpu = f.profile && backend === "webgpu" ? getDevice("webgpu") as GpuDevice : null;
    if (gpu && !gpu.startProfile()) {
      console.log("--profile: this adapter has no timestamp-query; not profiling");
    }
    const host = f.profile && backend !== "webgpu"
      ? profileHostKernels([backend, "cpu-reference"], backend)
      : null;
    for (let i = 1; i <= f.steps; i++) {
      const t0 = performance.now();
      loss = await step(i);
      times.push(performance.now() - t0);
    }
    if (gpu?.canProfile) {
      console.log(`length ${len}, ${f.steps} step(s): ${formatProfile(await gpu.stopProfile())}`);
    }
    if (host) {
      const title = `wall time by kernel on ${backend}`;
      const stepsMs = times.reduce((a, b) => a + b, 0).toFixed(0);
      console.log(
        `length ${len}, ${f.steps} step(s) in ${stepsMs} ms: ${
          formatProfile(host.stop(), 15, title)
        }`,
      );
    }
    const peak = T.memory().peakBytes;
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)];
    rows.push(
      `| ${len} | ${ms.toFixed(0)} | ${(peak / MiB).toFixed(0)} | ${
        ((peak - stateBytes) / MiB).toFixed(0)
      } | ${(stateBytes / MiB).toFixed(1)} | ${loss.toFixed(3)} |`,
    );
    console.log(rows.at(-1));
    run.dispose();
  }
  console.log(
    `\nReformer LM training step on ${backend} (${adapter}): ${f.layers} ` +
      `${f.reversible ? "reversible" : "stored (non-reversible)"} layers, dModel ` +
      `${f.dModel}, dFF ${f.dFF}, ${f.heads} heads, ${f.nHashes} hashes, chunk ${f.chunkLen}, ` +
      `${f.activation}, ${f.ffChunks} feed-forward and ${f.headChunks} head slices, vocab ${f.vocab}, batch ${f.batch}, ${f.precision}, Adam; median of ${f.steps} step(s)`,
  );
  console.log(
    "| length | ms/step | peak MiB | peak above params+state MiB | params+state MiB | loss |\n" +
      "|---:|---:|---:|---:|---:|---:|\n" + rows.join("\n"),
  );
}

runMain("reformer_step", main);
