/**
 * The wasm block-sparse attention kernels (forward and backward) against the CPU reference:
 * batch 1, 4 heads of width 64, the strided pattern's union with stride 64 and blocks of 32
 * (or the fixed one with `fixed`), best of several runs in wall and CPU milliseconds (the
 * calling thread's: the workers are left out). The machine may be shared, so note its load.
 *
 *   XDG_RUNTIME_DIR=/tmp deno run -A tests/bench/wasm_block_sparse_bench.ts [len] [fixed]
 */
import process from "node:process";
import { blockSparseBackwardCpu, blockSparseForwardCpu } from "../../kernels/cpu/block_sparse.ts";
import { CpuDevice } from "../../kernels/cpu/device.ts";
import type { BlockSparseSpec, PatternSpec } from "../../kernels/specs/block_sparse.ts";
import {
  blockSparseBackwardWasm,
  blockSparseForwardWasm,
} from "../../kernels/wasm/block_sparse.ts";
import { WasmDevice } from "../../kernels/wasm/device.ts";
import { blockLayout } from "../../nn/attention/sparse_patterns.ts";

const n = Number(Deno.args[0] ?? 2048);
const kind = Deno.args[1] === "fixed" ? "fixed" : "strided";
const heads = 4, d = 64;
const pattern: PatternSpec = { kind, stride: 64, c: 8, part: "union" };
const spec: BlockSparseSpec = {
  groups: heads,
  heads,
  n,
  d,
  pattern,
  layout: blockLayout(pattern, n, 32),
};
const data = (k: number) => Float32Array.from({ length: heads * n * d }, (_, i) => Math.sin(i * k));
const [q, k, v, dout] = [0.37, 0.11, 0.73, 0.29].map(data);
const delta = Float32Array.from({ length: heads * n }, (_, i) => Math.cos(i));

/** Best wall and calling-thread CPU milliseconds of `runs` calls. */
function best(runs: number, f: () => void): string {
  let ms = Infinity, cpuMs = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    ms = Math.min(ms, performance.now() - t0);
    cpuMs = Math.min(cpuMs, (c.user + c.system) / 1000);
  }
  return `${ms.toFixed(1).padStart(8)} ms, ${cpuMs.toFixed(1).padStart(8)} ms CPU`;
}

console.log(`${kind} union, stride 64, blocks of 32: ${n} tokens, ${spec.layout.tiles} tiles`);
const cpu = new CpuDevice();
const [cq, ck, cv, cdo, cdl] = [q, k, v, dout, delta].map((x) => cpu.upload(x, "f32"));
const [, lse] = blockSparseForwardCpu(cpu, cq, ck, cv, null, spec);
console.log(
  `cpu forward             ${best(1, () => blockSparseForwardCpu(cpu, cq, ck, cv, null, spec))}`,
);
console.log(
  `cpu backward            ${
    best(1, () => blockSparseBackwardCpu(cpu, [cq, ck, cv, cdo, lse, cdl], null, spec))
  }`,
);
for (const threads of [1, 2]) {
  const dev = await WasmDevice.create({ threads });
  const [wq, wk, wv, wdo, wdl, wl] = [q, k, v, dout, delta, lse.data as Float32Array].map((x) =>
    dev.upload(x, "f32")
  );
  const free = (outs: unknown[]) => outs.forEach((o) => dev.free(o as never));
  const f = () => free(blockSparseForwardWasm(dev, [wq, wk, wv, null], spec));
  const b = () => free(blockSparseBackwardWasm(dev, [wq, wk, wv, wdo, wl, wdl, null], spec));
  console.log(`wasm forward, ${threads} thread(s) ${best(5, f)}`);
  console.log(`wasm backward, ${threads} thread(s) ${best(5, b)}`);
  dev.dispose();
}
