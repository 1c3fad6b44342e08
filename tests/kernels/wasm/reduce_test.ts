import assert from "node:assert/strict";
import { reduceCpu } from "../../../kernels/cpu/reduce.ts";
import { softmaxCpu } from "../../../kernels/cpu/softmax.ts";
import type { ReduceLayout } from "../../../kernels/specs/reduce.ts";
import type { WasmDevice } from "../../../kernels/wasm/device.ts";
import {
  reduceWasm,
  softmaxWasm,
  type WasmReduceOp,
  type WasmSoftmaxOp,
} from "../../../kernels/wasm/reduce.ts";
import { assertClose, cpu, randomArray, rng, sameBits, withDevices } from "./helpers.ts";

const layout = (outer: number, n: number, inner: number): ReduceLayout => ({ outer, n, inner });

const layouts: [string, ReduceLayout][] = [
  ["rows", layout(3, 37, 1)],
  ["middle axis", layout(2, 5, 7)],
  ["size-1 reduced axis", layout(4, 1, 1)],
  ["single element", layout(1, 1, 1)],
  ["empty outer", layout(0, 4, 1)],
  ["columns beyond one block, parallel", layout(1, 40, 1100)],
  ["parallel rows", layout(64, 700, 1)],
];

async function run<T extends string>(
  dev: WasmDevice,
  fn: (d: WasmDevice, x: never, l: ReduceLayout, op: T) => { offset: number },
  data: Float32Array,
  l: ReduceLayout,
  op: T,
  size: number,
) {
  const x = dev.upload(data, "f32");
  const out = fn(dev, x as never, l, op);
  const r = await dev.read(out as never, "f32", size) as Float32Array;
  dev.free(x);
  dev.free(out as never);
  return r;
}

Deno.test("wasm sum/max/min match the CPU reference; 1 and 2 threads agree", async (t) => {
  const rand = rng(5);
  await withDevices(async (one, two) => {
    for (const [name, l] of layouts) {
      await t.step(name, async () => {
        const data = randomArray(rand, l.outer * l.n * l.inner);
        if (data.length > 7) data[7] = NaN;
        for (const op of ["sum", "max", "min"] as WasmReduceOp[]) {
          const want = reduceCpu(cpu, cpu.upload(data, "f32"), l, op, "f32").data as Float32Array;
          const size = l.outer * l.inner;
          const r1 = await run(one, reduceWasm, data, l, op, size);
          const r2 = await run(two, reduceWasm, data, l, op, size);
          assertClose(r1, want, op === "sum" ? 1e-6 * l.n : 0, 0, `${name} ${op}`);
          assert.ok(sameBits(r1, r2), `${name} ${op}: 1 and 2 threads differ`);
        }
      });
    }
    await t.step("empty reduced axis gives the identity", async () => {
      const want = [0, -Infinity, Infinity];
      for (const [i, op] of (["sum", "max", "min"] as WasmReduceOp[]).entries()) {
        for (const l of [layout(2, 0, 1), layout(1, 0, 3)]) {
          const r = await run(one, reduceWasm, new Float32Array(0), l, op, l.outer * l.inner);
          assert.deepEqual([...r], new Array(l.outer * l.inner).fill(want[i]));
        }
      }
    });
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});

Deno.test("wasm softmax, log-softmax and logsumexp match the CPU reference", async (t) => {
  const rand = rng(9);
  await withDevices(async (one, two) => {
    for (const [name, l] of layouts) {
      await t.step(name, async () => {
        const data = randomArray(rand, l.outer * l.n * l.inner, -8, 8);
        if (data.length > 5) data[3] = -Infinity; // a masked logit
        const x = cpu.upload(data, "f32");
        const lse = new Float32Array(l.outer * l.inner);
        for (let o = 0; o < l.outer; o++) {
          for (let i = 0; i < l.inner; i++) {
            let m = -Infinity, s = 0;
            for (let j = 0; j < l.n; j++) m = Math.max(m, data[(o * l.n + j) * l.inner + i]);
            for (let j = 0; j < l.n; j++) s += Math.exp(data[(o * l.n + j) * l.inner + i] - m);
            lse[o * l.inner + i] = m + Math.log(s);
          }
        }
        const wants: Record<WasmSoftmaxOp, Float32Array> = {
          softmax: softmaxCpu(cpu, x, l, false).data as Float32Array,
          logSoftmax: softmaxCpu(cpu, x, l, true).data as Float32Array,
          logsumexp: lse,
        };
        for (const op of Object.keys(wants) as WasmSoftmaxOp[]) {
          const want = wants[op];
          const r1 = await run(one, softmaxWasm, data, l, op, want.length);
          const r2 = await run(two, softmaxWasm, data, l, op, want.length);
          assertClose(r1, want, 1e-6, 2e-6, `${name} ${op}`);
          assert.ok(sameBits(r1, r2), `${name} ${op}: 1 and 2 threads differ`);
        }
      });
    }
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});
