import assert from "node:assert/strict";
import { elementwiseCpu } from "../../../kernels/cpu/elementwise.ts";
import type { StridedInput } from "../../../kernels/strided.ts";
import type { WasmDevice } from "../../../kernels/wasm/device.ts";
import {
  elementwiseSupported,
  elementwiseWasm,
  type WasmElementwiseOp,
} from "../../../kernels/wasm/elementwise.ts";
import { geluErf64, geluErfGrad64, geluTanh64, geluTanhGrad64 } from "../../../kernels/gelu.ts";
import { assertClose, cpu, randomArray, rng, sameBits, withDevices } from "./helpers.ts";

/** The f32 ops (the integer ones are tested through the public ops in tests/ops). */
const FNS: Partial<Record<WasmElementwiseOp, (...x: number[]) => number>> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => Math.max(a, b),
  min: (a, b) => Math.min(a, b),
  exp: Math.exp,
  tanh: Math.tanh,
  neg: (a) => -a,
  abs: Math.abs,
  sqrt: Math.sqrt,
  relu: (a) => (a > 0 ? a : 0),
  gelu: geluTanh64,
  geluErf: geluErf64,
  geluGrad: geluTanhGrad64,
  geluErfGrad: geluErfGrad64,
  reluGrad: (a, b) => (a > 0 ? b : 0),
};

/** An input: its data and how it is read over the output shape. */
interface Input {
  data: Float32Array;
  strides: number[];
  offset: number;
}

const input = (data: Float32Array, strides: number[], offset = 0): Input => ({
  data,
  strides,
  offset,
});

async function run(dev: WasmDevice, op: WasmElementwiseOp, ins: Input[], shape: number[]) {
  const stores = ins.map((x) => dev.upload(x.data, "f32"));
  const views: StridedInput[] = ins.map((x, i) => ({
    storage: stores[i],
    dtype: "f32",
    strides: x.strides,
    offset: x.offset,
  }));
  const size = shape.reduce((x, y) => x * y, 1);
  const out = elementwiseWasm(dev, op, views, shape);
  const r = await dev.read(out, "f32", size) as Float32Array;
  for (const s of [...stores, out]) dev.free(s);
  return r;
}

function reference(op: WasmElementwiseOp, ins: Input[], shape: number[]) {
  const views: StridedInput[] = ins.map((x) => ({
    storage: cpu.upload(x.data, "f32"),
    dtype: "f32",
    strides: x.strides,
    offset: x.offset,
  }));
  return elementwiseCpu(cpu, FNS[op]!, views, shape, "f32").data as Float32Array;
}

Deno.test("wasm elementwise ops match the CPU reference over strided inputs", async (t) => {
  const rand = rng(11);
  const r = (n: number, lo = -3, hi = 3) => randomArray(rand, n, lo, hi);
  // [name, output shape, binary inputs]
  const layouts: [string, number[], Input[]][] = [
    ["contiguous odd", [3, 37], [input(r(111), [37, 1]), input(r(111), [37, 1])]],
    ["row broadcast", [5, 7], [input(r(35), [7, 1]), input(r(7), [0, 1])]],
    ["column broadcast", [5, 7], [input(r(35), [7, 1]), input(r(5), [1, 0])]],
    ["scalar first", [9], [input(r(1), [0]), input(r(9), [1])]],
    ["transposed", [7, 5], [input(r(35), [1, 7]), input(r(35), [5, 1])]],
    ["sliced with offset", [2, 6], [input(r(40), [10, 1], 3), input(r(12), [6, 1])]],
    ["scalar output", [], [input(r(1), []), input(r(1), [])]],
    ["size-1 axes", [1, 4, 1], [input(r(4), [0, 1, 0]), input(r(1), [0, 0, 0])]],
    ["empty", [0, 3], [input(r(0), [3, 1]), input(r(3), [0, 1])]],
    ["parallel rows", [260, 260], [input(r(67600), [260, 1]), input(r(260), [0, 1])]],
    // Planes of 151 rows, the second thread starting inside one; a strided, b a broadcast row.
    ["parallel planes", [3, 151, 150], [
      input(r(67950), [22650, 1, 151]),
      input(r(150), [0, 0, 1]),
    ]],
  ];
  await withDevices(async (one, two) => {
    for (const [name, shape, ins] of layouts) {
      await t.step(name, async () => {
        for (const op of Object.keys(FNS) as WasmElementwiseOp[]) {
          const args = FNS[op]!.length === 2 ? ins : [ins[0]];
          if (op === "sqrt") args[0] = { ...args[0], data: args[0].data.map(Math.abs) };
          const want = reference(op, args, shape);
          const r1 = await run(one, op, args, shape);
          const r2 = await run(two, op, args, shape);
          // exp and tanh are polynomials; the rest are one correctly rounded f32 operation.
          if (op === "exp") assertClose(r1, want, 0, 1e-6, `${name} ${op}`);
          else if (op === "tanh") assertClose(r1, want, 2e-7, 1e-6, `${name} ${op}`);
          // GELU values to a few ulps; a derivative times dy (|dy| < 3) cancels near its root.
          else if (op.startsWith("gelu")) {
            assertClose(r1, want, op.endsWith("Grad") ? 1e-6 : 1e-7, 2e-6, `${name} ${op}`);
          } else assert.ok(sameBits(r1, want), `${name} ${op}: differs from the reference`);
          assert.ok(sameBits(r1, r2), `${name} ${op}: 1 and 2 threads differ`);
        }
      });
    }
    await t.step("exp at the edges of f32", async () => {
      const xs = new Float32Array([0, -0, 1, -1, 88, 88.7, 89, -87, -100, -104, -200, 1e-8]);
      const special = new Float32Array([Infinity, -Infinity, NaN]);
      const got = await run(one, "exp", [input(xs, [1])], [xs.length]);
      assertClose(got, xs.map(Math.exp), 1e-44, 1e-6, "exp");
      const sp = await run(one, "exp", [input(special, [1])], [3]);
      assert.deepEqual([...sp], [Infinity, 0, NaN]);
    });
    await t.step("relu: NaN and -0 give +0, as the reference", async () => {
      const xs = new Float32Array([NaN, -0, 0, -Infinity, Infinity, -1e-40, 1e-40, 3]);
      const got = await run(one, "relu", [input(xs, [1])], [xs.length]);
      assert.ok(sameBits(got, new Float32Array([0, 0, 0, 0, Infinity, 0, 1e-40, 3])));
    });
    await t.step("tanh: signs, zeros, saturation, NaN", async () => {
      const xs = new Float32Array([
        0,
        -0,
        1e-6,
        -1e-6,
        0.5,
        -3,
        9,
        -20,
        100,
        Infinity,
        -Infinity,
        NaN,
      ]);
      const got = await run(one, "tanh", [input(xs, [1])], [xs.length]);
      assertClose(got, xs.map(Math.tanh), 2e-7, 1e-6, "tanh");
      assert.ok(Object.is(got[1], -0), "tanh(-0) is -0");
    });
    await t.step("unsupported inputs are reported, not run", () => {
      const s = one.upload(new Int32Array(3), "i32");
      const view: StridedInput = { storage: s, dtype: "i32", strides: [1], offset: 0 };
      assert.equal(elementwiseSupported("add", [view, view]), false);
      assert.equal(elementwiseSupported("log", [view]), false);
      assert.throws(() => elementwiseWasm(one, "add", [view, view], [3]), TypeError);
      one.free(s);
    });
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});
