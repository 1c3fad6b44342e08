/**
 * Prints a table of square f32 matmuls on the CPU: the `cpu` backend's wasm kernel (1 thread and
 * every core), the same backend handing the product to the system BLAS where one opens (see
 * `kernels/wasm/blas.ts`), jax-js's wasm backend and the CPU reference. Two figures per cell: GFLOP/s of the best
 * wall-clock run, and GFLOP per CPU-second of the best run (`process.cpuUsage`, all threads of
 * the process), which a machine shared with other work disturbs much less: on an idle machine
 * wall-clock GFLOP/s approaches the CPU-second figure times the threads kept busy.
 *
 *   XDG_RUNTIME_DIR=/tmp deno run -A tests/bench/wasm_matmul_table.ts [sizes...]
 */
import process from "node:process";
import { defaultDevice, init as jaxInit, numpy as np } from "@jax-js/jax";
import { CpuDevice } from "../../kernels/cpu/device.ts";
import { matmulCpu } from "../../kernels/cpu/matmul.ts";
import type { MatmulSpec } from "../../kernels/specs/matmul.ts";
import { WasmDevice } from "../../kernels/wasm/device.ts";
import { matmulWasm } from "../../kernels/wasm/matmul.ts";

const sizes = Deno.args.length ? Deno.args.map(Number) : [256, 512, 1024];
const cores = navigator.hardwareConcurrency;
const one = await WasmDevice.create({ threads: 1, blas: false });
const all = await WasmDevice.create({ threads: cores, blas: false });
const blas = await WasmDevice.create({ threads: cores });
const cpu = new CpuDevice();
// jax-js names its WebAssembly backend "wasm" ("cpu" is its plain-JavaScript one).
const jax = (await jaxInit()).includes("wasm");
if (jax) defaultDevice("wasm");

/** Best wall-clock and CPU milliseconds of `reps` runs of `fn`. */
async function time(fn: () => unknown, reps: number): Promise<[number, number]> {
  await fn(); // warm up
  let wall = Infinity, cpuMs = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    await fn();
    const w = performance.now() - t0, c = process.cpuUsage(c0);
    wall = Math.min(wall, w);
    cpuMs = Math.min(cpuMs, (c.user + c.system) / 1000);
  }
  return [wall, cpuMs];
}

const rows: string[][] = [[
  "size",
  `wasm 1 thread`,
  `wasm ${cores} threads`,
  blas.blas ? `BLAS ${cores} threads` : "BLAS (none)",
  "jax-js wasm",
  "CPU ref",
]];
for (const n of sizes) {
  const values = (seed: number) =>
    Float32Array.from({ length: n * n }, (_, i) => Math.sin(seed + i)) as Float32Array<ArrayBuffer>;
  const av = values(1), bv = values(2);
  const spec: MatmulSpec = {
    batchShape: [],
    aStrides: [],
    bStrides: [],
    m: n,
    n,
    k: n,
    transA: false,
    transB: false,
  };
  const reps = n >= 1024 ? 8 : 30;
  const cells: [number, number][] = [];
  for (const dev of [one, all, blas]) {
    if (dev === blas && !blas.blas) {
      cells.push([NaN, NaN]);
      continue;
    }
    const a = dev.upload(av, "f32"), b = dev.upload(bv, "f32");
    cells.push(await time(() => dev.free(matmulWasm(dev, a, b, spec)), reps));
    dev.free(a), dev.free(b);
  }
  if (jax) {
    const a = np.array(av).reshape([n, n]), b = np.array(bv).reshape([n, n]);
    cells.push(
      await time(async () => {
        const c = np.matmul(a.ref, b.ref);
        await c.blockUntilReady();
        c.dispose();
      }, reps),
    );
    a.dispose(), b.dispose();
  } else cells.push([NaN, NaN]);
  const ca = cpu.upload(av, "f32"), cb = cpu.upload(bv, "f32");
  cells.push(await time(() => cpu.free(matmulCpu(cpu, ca, cb, spec)), n >= 1024 ? 2 : 5));
  const gflop = 2 * n ** 3 / 1e9;
  const fmt = ([w, c]: [number, number]) =>
    `${(gflop / w * 1e3).toFixed(1)} (${(gflop / c * 1e3).toFixed(1)}/cpu-s)`;
  rows.push([`${n}`, ...cells.map(fmt)]);
  console.log(rows.at(-1)!.map((c) => c.padEnd(22)).join(""));
}
one.dispose();
all.dispose();
blas.dispose();
console.log(`GFLOP/s, best wall-clock run (GFLOP per CPU-second); load ${Deno.loadavg()[0]}`);
for (const r of rows) console.log(r.map((c) => c.padEnd(22)).join(""));
// jax-js's worker pool keeps the process alive.
Deno.exit(0);
