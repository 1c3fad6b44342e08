/**
 * f32 matmul throughput on the CPU: the wasm backend (1 thread and every core) against
 * jax-js's wasm backend (`@jax-js/jax`, the baseline of each group, so the ratio column reads
 * "ours vs jax-js") and the typed-array CPU reference, one group per size. Each group name
 * carries the FLOP count (2 n^3): GFLOP/s = GFLOP / time. The machine may be shared, so take
 * the best of several runs.
 *
 *   XDG_RUNTIME_DIR=/tmp deno bench -A tests/bench/wasm_matmul_bench.ts
 */
import { defaultDevice, init as jaxInit, numpy as np } from "@jax-js/jax";
import { CpuDevice } from "../../kernels/cpu/device.ts";
import { matmulCpu } from "../../kernels/cpu/matmul.ts";
import type { MatmulSpec } from "../../kernels/specs/matmul.ts";
import { WasmDevice } from "../../kernels/wasm/device.ts";
import { matmulWasm } from "../../kernels/wasm/matmul.ts";

const cores = navigator.hardwareConcurrency;
const one = await WasmDevice.create({ threads: 1 });
const all = await WasmDevice.create({ threads: cores });
const cpu = new CpuDevice();
// jax-js names its WebAssembly backend "wasm" ("cpu" is its plain-JavaScript one).
const jax = (await jaxInit()).includes("wasm");
if (jax) defaultDevice("wasm");

function values(n: number, seed: number): Float32Array<ArrayBuffer> {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

let lastGroup = "";
for (const n of [256, 512, 1024]) {
  const group = `matmul ${n}^3 (${(2 * n ** 3 / 1e9).toFixed(3)} GFLOP)`;
  lastGroup = group;
  const opts = { group, n: n >= 1024 ? 10 : 40, warmup: 3 };
  const av = values(n * n, 1), bv = values(n * n, 2);
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
  for (const dev of [one, all]) {
    const a = dev.upload(av, "f32"), b = dev.upload(bv, "f32");
    Deno.bench(`wasm backend, ${dev.threads} thread${dev.threads > 1 ? "s" : ""}`, opts, () => {
      dev.free(matmulWasm(dev, a, b, spec));
    });
  }
  if (jax) {
    const a = np.array(av).reshape([n, n]), b = np.array(bv).reshape([n, n]);
    Deno.bench(`jax-js 0.1.25 wasm`, { ...opts, baseline: true }, async () => {
      const c = np.matmul(a.ref, b.ref);
      await c.blockUntilReady();
      c.dispose();
    });
  }
  const ca = cpu.upload(av, "f32"), cb = cpu.upload(bv, "f32");
  Deno.bench(`CPU reference (typed arrays)`, { ...opts, n: n >= 1024 ? 2 : 5, warmup: 1 }, () => {
    cpu.free(matmulCpu(cpu, ca, cb, spec));
  });
}

// The workers keep the process alive until the devices are disposed: do it in a last bench of
// the last group (ungrouped benches run first).
Deno.bench("(stop the wasm workers)", { group: lastGroup, n: 1, warmup: 0 }, () => {
  one.dispose();
  all.dispose();
});
