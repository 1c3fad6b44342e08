/**
 * The wasm backend's elementwise, softmax and attention-free kernels against the CPU
 * reference on 1M-element f32 inputs, 1 thread and every core. The machine may be shared, so
 * take the best of several runs.
 *
 *   XDG_RUNTIME_DIR=/tmp deno bench -A tests/bench/wasm_ops_bench.ts
 */
import { CpuDevice } from "../../kernels/cpu/device.ts";
import { elementwiseCpu } from "../../kernels/cpu/elementwise.ts";
import { softmaxCpu } from "../../kernels/cpu/softmax.ts";
import type { StridedInput } from "../../kernels/strided.ts";
import { WasmDevice } from "../../kernels/wasm/device.ts";
import { elementwiseWasm } from "../../kernels/wasm/elementwise.ts";
import { softmaxWasm } from "../../kernels/wasm/reduce.ts";

const rows = 1024, cols = 1024;
const data = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i));
const bias = Float32Array.from({ length: cols }, (_, i) => Math.cos(i));
const layout = { outer: rows, n: cols, inner: 1 };
const one = await WasmDevice.create({ threads: 1 });
const all = await WasmDevice.create({ threads: navigator.hardwareConcurrency });
const cpu = new CpuDevice();

const view = (storage: StridedInput["storage"], strides: number[]): StridedInput => ({
  storage,
  dtype: "f32",
  strides,
  offset: 0,
});
const cases = [
  { name: "add [1024,1024] + [1024] (row broadcast)", group: "add" },
  { name: "exp [1024,1024]", group: "exp" },
  { name: "softmax rows [1024,1024]", group: "softmax" },
];
const cx = cpu.upload(data, "f32"), cb = cpu.upload(bias, "f32");
for (const c of cases) {
  for (const dev of [one, all]) {
    const x = dev.upload(data, "f32"), b = dev.upload(bias, "f32");
    const name = `wasm, ${dev.threads} thread${dev.threads > 1 ? "s" : ""}`;
    Deno.bench(name, { group: c.name }, () => {
      const out = c.group === "add"
        ? elementwiseWasm(dev, "add", [view(x, [cols, 1]), view(b, [0, 1])], [rows, cols])
        : c.group === "exp"
        ? elementwiseWasm(dev, "exp", [view(x, [cols, 1])], [rows, cols])
        : softmaxWasm(dev, x, layout, "softmax");
      dev.free(out);
    });
  }
  Deno.bench("CPU reference", { group: c.name, baseline: true }, () => {
    const out = c.group === "add"
      ? elementwiseCpu(
        cpu,
        (p, q) => p + q,
        [view(cx, [cols, 1]), view(cb, [0, 1])],
        [rows, cols],
        "f32",
      )
      : c.group === "exp"
      ? elementwiseCpu(cpu, Math.exp, [view(cx, [cols, 1])], [rows, cols], "f32")
      : softmaxCpu(cpu, cx, layout, false);
    cpu.free(out);
  });
}

// The workers keep the process alive until the devices are disposed (ungrouped benches run
// first, so this goes in the last group).
Deno.bench("(stop the wasm workers)", { group: cases[2].name, n: 1, warmup: 0 }, () => {
  one.dispose();
  all.dispose();
});
