/**
 * The wasm fused chunk-attention kernels (forward and backward) at the shape of one Reformer
 * LSH layer at 1024 tokens (4 heads, 2 hashes, chunks of 64 looking one back, head width 64,
 * causal, self mask), against the CPU reference's backward: best of several runs in ms, and
 * GFLOP/s counting `2 D` flops per query-slot pair and matrix product (2 forward, 5 backward).
 * The machine may be shared, so note its load with the figures. The CPU time is the calling
 * thread's (Deno's `process.cpuUsage` leaves the workers out): with one thread it is the
 * kernel's own, steadier than wall time on a busy machine.
 *
 *   XDG_RUNTIME_DIR=/tmp deno run -A tests/bench/wasm_attention_bench.ts [tokens]
 */
import process from "node:process";
import { chunkAttentionCpu, chunkAttentionGradCpu } from "../../kernels/cpu/chunk_attention.ts";
import { CpuDevice } from "../../kernels/cpu/device.ts";
import type { ChunkAttnSpec } from "../../kernels/specs/chunk_attention.ts";
import { chunkAttentionWasm } from "../../kernels/wasm/chunk_attention.ts";
import { chunkAttentionGradWasm } from "../../kernels/wasm/chunk_attention_grad.ts";
import { WasmDevice } from "../../kernels/wasm/device.ts";

const tokens = Number(Deno.args[0] ?? 1024);
const heads = 4, hashes = 2, kc = 64, dim = 64;
const chunks = (tokens * hashes) / kc, rows = heads * chunks, nk = 2 * kc;
const spec: ChunkAttnSpec = {
  rows,
  nq: kc,
  nk,
  kc,
  offsets: [0, -1],
  chunks,
  dim,
  causal: true,
  selfMask: true,
  hasBias: false,
  maskValue: -1e9,
  selfValue: -1e5,
};
const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
const qpos = Int32Array.from({ length: rows * kc }, (_, i) => i % (chunks * kc));
const kcode = Int32Array.from({ length: rows * nk }, (_, i) => {
  const r = Math.floor(i / nk), j = i % nk, c = r % chunks;
  return (((c + (j < kc ? 0 : -1)) % chunks + chunks) % chunks) * kc + (j % kc);
});
const fwd = [rand(rows * kc * dim), rand(rows * kc * dim), rand(rows * kc * dim), qpos, kcode];
const cpu = new CpuDevice();
/** Uploads `xs` to `d`, positions and codes (inputs 3 and 4) as i32. */
function up<S>(
  d: { upload(x: Float32Array | Int32Array, t: "f32" | "i32"): S },
  xs: (Float32Array | Int32Array)[],
): S[] {
  return xs.map((x, i) => d.upload(x, i === 3 || i === 4 ? "i32" : "f32"));
}
const [, , stat] = chunkAttentionCpu(cpu, [...up(cpu, fwd), null], spec).map((s) => s.data);
const grad = [...fwd, stat as Float32Array, rand(rows * kc * dim), rand(rows * kc)];
const pairs = rows * kc * nk;

/** Best wall and calling-thread CPU milliseconds of `runs` calls. */
function best(runs: number, f: () => void): [number, number] {
  let ms = Infinity, cpuMs = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    ms = Math.min(ms, performance.now() - t0);
    cpuMs = Math.min(cpuMs, (c.user + c.system) / 1000);
  }
  return [ms, cpuMs];
}

function report(name: string, [ms, cpuMs]: [number, number], products: number) {
  const gflops = (2 * dim * pairs * products) / ms / 1e6;
  console.log(
    `${name.padEnd(28)} ${ms.toFixed(1).padStart(8)} ms ${gflops.toFixed(2).padStart(6)} ` +
      `GFLOP/s, ${cpuMs.toFixed(1).padStart(8)} ms CPU`,
  );
}

console.log(`${tokens} tokens: rows ${rows}, ${kc} queries by ${nk} slots, dim ${dim}`);
const cs = [...up(cpu, grad.slice(0, 5)), null, ...up(cpu, grad.slice(5))];
report("cpu backward", best(1, () => void chunkAttentionGradCpu(cpu, cs, spec)), 5);
for (const threads of [1, 2]) {
  const dev = await WasmDevice.create({ threads });
  const ws = [...up(dev, grad.slice(0, 5)), null, ...up(dev, grad.slice(5))];
  const free = (outs: unknown[]) => outs.forEach((o) => dev.free(o as never));
  const f = () => free(chunkAttentionWasm(dev, ws.slice(0, 6), spec));
  const b = () => free(chunkAttentionGradWasm(dev, ws, spec));
  report(`wasm forward, ${threads} thread(s)`, best(8, f), 2);
  report(`wasm backward, ${threads} thread(s)`, best(8, b), 5);
  dev.dispose();
}
