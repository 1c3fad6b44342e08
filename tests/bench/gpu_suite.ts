/**
 * The GPU benchmark suite, one call: a matmul 4096^3 f32 (ours and tfjs-backend-webgpu), fused
 * chunk attention forward + backward at 16K and 64K tokens (4 heads of 64, chunks of 64, one
 * look-back), a Reformer LM training step (6 layers, dModel 256, dFF 1024, 4 heads of 64, 2
 * hashes, chunk 64, batch 1, axial positions, vocab 256: ms/step and peak bytes at 4K to 1M
 * tokens) and one Sparse Transformer attention layer (fixed pattern, stride 256, c 32, 4 heads
 * of 64, batch 1) forward + backward at 16K and 64K. Prints a table, and writes it as JSON with
 * `--json FILE`. A length the device cannot hold (a buffer over its binding limit, or out of
 * memory) gets a row saying why; once `--budget-s` seconds have passed the rest are skipped
 * with a row saying so. The matmul, the LM step and the sparse layer also run in f16: the matmul
 * on f16 operands, the LM step in mixed precision (`precision: "f16"`, Adam under dynamic loss
 * scaling), the sparse layer on f16 params and input; each length runs f32 then f16.
 *
 * `--small` runs the same code on tiny sizes (seconds on an idle software adapter; the LM step
 * is then timed from its first step, compiles included): the smoke test.
 * Run: `deno run -A tests/bench/gpu_suite.ts [--small] [--json FILE]` (on a device machine,
 * bundle first as `matmul_table.ts` says).
 */
import * as T from "../../mod.ts";
import { nn, random, valueAndGrad } from "../../mod.ts";
import { fusedChunkAttention } from "../../ops/chunk_attention.ts";
import { parseFlags, runMain } from "../../train/mod.ts";
import { getDevice } from "../../ops/device.ts";
import type { GpuDevice } from "../../kernels/webgpu/device.ts";
import { attentionKernelKind } from "../../kernels/webgpu/chunk_attention_tiled.ts";
import { sparseAttention } from "../../nn/attention/sparse.ts";
import type { AttentionParams } from "../../nn/attention/core.ts";
import { initTfjs, matmulF16Gflops, matmulGflops } from "./matmul_pieces.ts";
import { axialShape, lmTrainingStep } from "./lm_step.ts";

const spec = {
  small: { type: "bool", default: false, help: "Tiny sizes (the smoke test; seconds)" },
  json: { type: "string", default: "", help: "Write the rows as JSON to this file" },
  budgetS: {
    type: "float",
    default: 420,
    help: "Skip the rows still to run once this many seconds have passed",
  },
} as const;

/** One row of the table. */
export interface SuiteRow {
  bench: string;
  size: string;
  ms?: number;
  gflops?: number;
  peakBytes?: number;
  note: string;
}

const FULL = {
  matmul: 4096,
  attnLens: [16384, 65536],
  attn: { heads: 4, dim: 64, chunk: 64 },
  lmLens: [4096, 16384, 65536, 262144, 1048576],
  lm: { layers: 6, dModel: 256, dFF: 1024, heads: 4, nHashes: 2, chunkLen: 64, vocab: 256 },
  sparseLens: [16384, 65536],
  sparse: { dModel: 256, heads: 4, stride: 256, c: 32 },
};
const SMALL: typeof FULL = {
  matmul: 64,
  attnLens: [256],
  attn: { heads: 2, dim: 16, chunk: 32 },
  lmLens: [64],
  lm: { layers: 1, dModel: 32, dFF: 64, heads: 2, nHashes: 2, chunkLen: 16, vocab: 256 },
  sparseLens: [128],
  sparse: { dModel: 32, heads: 2, stride: 16, c: 4 },
};

/** Median wall time of `reps` awaited calls after one untimed call (compiles pipelines). */
async function timeMs(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)];
}

/** Chunk attention forward + backward over `len` tokens per head (causal, one look-back). */
async function chunkAttentionMs(len: number, c: typeof FULL.attn, reps: number) {
  const nc = len / c.chunk, rows = c.heads * nc;
  const [q, k, v, w] = [1, 2, 3, 4].map((s) =>
    T.keep(T.scope(() => random.normal(random.key(s), [rows, c.chunk, c.dim])))
  );
  const pos = T.keep(T.scope(() => {
    const p = T.reshape(T.arange(0, len, 1, { dtype: "i32" }), [1, nc, c.chunk]);
    return T.reshape(T.broadcastTo(p, [c.heads, nc, c.chunk]), [rows, c.chunk]);
  }));
  // Key slots: the previous chunk's positions, then the chunk's own.
  const kcode = T.keep(T.scope(() => {
    const p = T.reshape(pos, [c.heads, nc, c.chunk]);
    const prev = T.roll(p, 1, 1);
    return T.reshape(T.concat([prev, p], 2), [rows, 2 * c.chunk]);
  }));
  const flags = { causal: true, selfMask: false, maskValue: -1e9, selfValue: -1e5 };
  const look = { offsets: [-1, 0], chunks: nc };
  const f = (qq: T.Tensor, kk: T.Tensor, vv: T.Tensor) =>
    T.sum(T.mul(fusedChunkAttention(qq, kk, vv, pos, kcode, null, flags, look)[0], w));
  const run = async () => {
    const out = T.scope(() => valueAndGrad(f, { argnums: [0, 1, 2] })(q, k, v));
    const grads = out[1] as T.Tensor[];
    await grads[2].data();
    for (const t of [out[0] as T.Tensor, ...grads]) t.dispose();
  };
  try {
    return await timeMs(run, reps);
  } finally {
    for (const t of [q, k, v, w, pos, kcode]) t.dispose();
  }
}

/** One Reformer LM training step at `len`: `[ms, peak bytes]`. */
async function reformerStep(
  len: number,
  c: typeof FULL.lm,
  warmup: boolean,
  precision: Precision,
) {
  const model = nn.reformerLM({
    ...c,
    attention: "lsh",
    axialShape: axialShape(len),
    ffChunks: 8,
    lmHeadChunks: 8,
    reversible: true,
    precision,
  });
  const run = lmTrainingStep(model, { batch: 1, len, vocab: c.vocab, half: precision === "f16" });
  try {
    if (warmup) await run.step(0);
    await T.sync();
    T.resetPeakMemory();
    const t0 = performance.now();
    await run.step(1);
    return [performance.now() - t0, T.memory().peakBytes];
  } finally {
    run.dispose();
  }
}

/** Sparse Transformer attention layer forward + backward: `[ms, peak bytes]`. */
async function sparseStep(len: number, c: typeof FULL.sparse, reps: number, precision: Precision) {
  const layer = sparseAttention({ ...c, pattern: "fixed", mode: "merged" });
  const cast = (t: T.Tensor) => T.cast(t, precision);
  const params: AttentionParams = T.keep(
    T.scope(() => T.mapTree(layer.init(random.key(0)), (t) => cast(t as T.Tensor))),
  );
  const x = T.keep(T.scope(() => cast(random.normal(random.key(len), [1, len, c.dModel]))));
  const run = async () => {
    const out = T.scope(() => {
      const f = (p: AttentionParams, xx: T.Tensor) =>
        T.sum(T.square(T.cast(layer.apply(p, xx), "f32")));
      return valueAndGrad(f, { argnums: [0, 1] })(params, x);
    });
    await (out[1][1] as T.Tensor).data();
    T.scope(() => {
      for (const t of [out[0], ...Object.values(out[1][0]), out[1][1]]) (t as T.Tensor).dispose();
    });
  };
  try {
    await run();
    await T.sync();
    T.resetPeakMemory();
    const ms = await timeMs(run, reps);
    return [ms, T.memory().peakBytes];
  } finally {
    for (const t of [x, ...Object.values(params)]) (t as T.Tensor).dispose();
  }
}

/** Why a row failed, in one line: over a buffer limit, out of memory, or the error. */
function why(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (/exceeds the adapter's|limit of \d+ bytes/.test(msg)) {
    return `skipped: over the device's buffer limit (${msg})`;
  }
  if (/out of memory|OutOfMemory|allocation/i.test(msg)) return `skipped: out of memory (${msg})`;
  return `failed: ${msg.split("\n")[0]}`;
}

async function main(): Promise<void> {
  const f = parseFlags("usage: deno run -A tests/bench/gpu_suite.ts [flags]", spec);
  const cfg = f.small ? SMALL : FULL;
  const { backend, adapter } = await T.init({ quiet: true });
  const software = backend === "cpu-reference" ||
    /software|llvmpipe|swiftshader|lavapipe/i.test(adapter);
  const kernels = backend === "webgpu"
    ? attentionKernelKind(getDevice("webgpu") as GpuDevice)
    : "cpu-reference";
  const start = performance.now();
  const rows: SuiteRow[] = [];
  const add = (r: SuiteRow) => {
    rows.push(r);
    console.log(formatRow(r));
  };
  const guarded = async (bench: string, size: string, body: () => Promise<Partial<SuiteRow>>) => {
    if ((performance.now() - start) / 1e3 > f.budgetS) {
      add({ bench, size, note: `skipped: the ${f.budgetS} s budget was spent` });
      return;
    }
    try {
      add({ bench, size, note: "", ...(await body()) });
    } catch (e) {
      add({ bench, size, note: why(e) });
      await T.sync().catch(() => {});
    }
  };
  console.log(`GPU suite on ${backend} (${adapter}), attention kernels: ${kernels}`);
  console.log(HEADER);
  const tfReady = await initTfjs(backend);
  const n = cfg.matmul;
  let f32Gflops = NaN;
  await guarded("matmul f32", `${n}^3`, async () => {
    const { ours, tfjs } = await matmulGflops(n, software, tfReady);
    f32Gflops = ours;
    const ratio = Number.isNaN(tfjs) ? "tfjs unavailable" : `tfjs ${tfjs.toPrecision(3)} GFLOP/s`;
    return { gflops: ours, note: ratio };
  });
  await guarded("matmul f16", `${n}^3`, async () => {
    const ours = await matmulF16Gflops(n, software);
    return { gflops: ours, note: `${(ours / f32Gflops).toFixed(2)}x our f32` };
  });
  const reps = f.small ? 1 : 3;
  for (const len of cfg.attnLens) {
    await guarded("chunk attention fwd+bwd", `${len}`, async () => ({
      ms: await chunkAttentionMs(len, cfg.attn, reps),
      note: `${cfg.attn.heads}x${cfg.attn.dim}, chunk ${cfg.attn.chunk}, ${kernels} kernels`,
    }));
  }
  const last = { len: 0, ms: 0 }; // the last length run (0: none yet)
  for (
    const [len, precision] of cfg.lmLens.flatMap((l) => PRECISIONS.map((p) => [l, p] as const))
  ) {
    // Past 64K one step is all the time there is: the first step is timed, compiles included.
    const warm = len <= 65536 && !f.small;
    // A step grows a little faster than the length: project from the last one, and skip a
    // length that would overrun the budget rather than start it.
    const projected = last.len ? (last.ms / 1e3) * (len / last.len) * 1.3 * (warm ? 2 : 1) : 0;
    const left = f.budgetS - (performance.now() - start) / 1e3;
    if (last.len && projected > left) {
      add({
        bench: `Reformer LM step ${precision}`,
        size: `${len}`,
        note: `skipped: projected ${projected.toFixed(0)} s (from ${last.len} tokens) exceeds ` +
          `the ${left.toFixed(0)} s left of the budget`,
      });
      continue;
    }
    await guarded(`Reformer LM step ${precision}`, `${len}`, async () => {
      const [ms, peak] = await reformerStep(len, cfg.lm, warm, precision);
      if (precision === "f32") Object.assign(last, { len, ms });
      return { ms, peakBytes: peak, note: warm ? "" : "first step (compiles included)" };
    });
  }
  for (const len of cfg.sparseLens) {
    for (const precision of PRECISIONS) {
      await guarded(`Sparse Transformer layer fwd+bwd ${precision}`, `${len}`, async () => {
        const [ms, peak] = await sparseStep(len, cfg.sparse, reps, precision);
        return { ms, peakBytes: peak, note: `fixed, stride ${cfg.sparse.stride}` };
      });
    }
  }
  console.log(`total ${((performance.now() - start) / 1e3).toFixed(1)} s`);
  if (f.json) {
    const doc = { backend, adapter, kernels, small: f.small, config: cfg, rows };
    await Deno.writeTextFile(f.json, JSON.stringify(doc, null, 2) + "\n");
    console.log(`wrote ${f.json}`);
  }
}

type Precision = "f32" | "f16";
const PRECISIONS: readonly Precision[] = ["f32", "f16"];

const HEADER = "| bench | size | ms | GFLOP/s | peak MiB | note |\n|---|---:|---:|---:|---:|---|";

function formatRow(r: SuiteRow): string {
  const num = (x: number | undefined, d: number) => x === undefined ? "-" : x.toFixed(d);
  const mib = r.peakBytes === undefined ? undefined : r.peakBytes / 2 ** 20;
  return `| ${r.bench} | ${r.size} | ${num(r.ms, 1)} | ${
    r.gflops === undefined ? "-" : r.gflops.toPrecision(3)
  } | ${num(mib, 1)} | ${r.note || ""} |`;
}

runMain("gpu_suite", main);
