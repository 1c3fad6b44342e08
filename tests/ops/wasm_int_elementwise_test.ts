/**
 * The CPU backend's i32 and u32 elementwise kernels (add, sub, mul, maximum, minimum, neg,
 * abs, square and copy) against the reference, bit for bit: values at the wrap-around and
 * signedness edges, broadcasting, transposes, empty and scalar shapes; and 1 and 2 threads
 * giving the same bits.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { wasmAccepts } from "../../kernels/wasm/backend.ts";
import type { ElementwiseSpec } from "../../kernels/specs/elementwise.ts";
import { contiguousStrides } from "../../kernels/strided.ts";
import { noLeaks, rng, startWasm } from "../util.ts";
import { bits, sameOnThreads } from "./wasm_bits.ts";

await startWasm();

type Int = "i32" | "u32";
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** `n` 32-bit words: small values, the signed and unsigned extremes, and random words. */
function words(seed: number, n: number): Uint32Array {
  const rand = rng(seed);
  const edges = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 16, 46341];
  return Uint32Array.from({ length: n }, () => {
    const r = rand();
    return r < 0.3
      ? edges[Math.floor(rand() * edges.length)]
      : r < 0.6
      ? Math.floor(rand() * 200)
      : Math.floor(rand() * 2 ** 32);
  });
}

const tensor = (w: Uint32Array, shape: number[], dtype: Int, device: T.DeviceName) =>
  T.tensor(dtype === "i32" ? new Int32Array(w.buffer) : w, { shape, dtype, device });

const BINARY = { add: T.add, sub: T.sub, mul: T.mul, maximum: T.maximum, minimum: T.minimum };
const UNARY = {
  neg: T.neg,
  abs: T.abs,
  square: T.square,
  // A transposed copy and a broadcast run the `copy` kernel.
  copy: (x: T.Tensor) => T.transpose(T.broadcastTo(x, [3, ...x.shape])),
};

Deno.test("wasm integer elementwise ops equal the reference bit for bit", async (t) => {
  const pairs: [number[], number[]][] = [
    [[37], [37]],
    [[5, 7], [7]],
    [[5, 1], [1, 9]],
    [[], [4]],
    [[0, 3], [3]],
    [[3, 300], [3, 300]],
  ];
  for (const dtype of ["i32", "u32"] as const) {
    for (const [name, f] of Object.entries(BINARY)) {
      await t.step(`${dtype} ${name}`, async () => {
        for (const [sa, sb] of pairs) {
          await noLeaks(async () => {
            const a = words(sa.length + 1, size(sa)), b = words(sb.length + 7, size(sb));
            const run = async (device: T.DeviceName) => {
              using x = tensor(a, sa, dtype, device), y = tensor(b, sb, dtype, device);
              using z = f(x, y);
              assert.equal(z.dtype, dtype);
              return [z.shape, await bits(z)];
            };
            assert.deepEqual(await run("cpu"), await run("cpu-reference"), `[${sa}] [${sb}]`);
          });
        }
      });
    }
    for (const [name, f] of Object.entries(UNARY)) {
      await t.step(`${dtype} ${name}`, async () => {
        for (const shape of [[41], [4, 5], [], [0], [1, 1]]) {
          await noLeaks(async () => {
            const a = words(shape.length + 3, size(shape));
            const run = async (device: T.DeviceName) => {
              using x = tensor(a, shape, dtype, device);
              using z = T.scope(() => f(x));
              return [z.shape, await bits(z)];
            };
            assert.deepEqual(await run("cpu"), await run("cpu-reference"), `[${shape}]`);
          });
        }
      });
    }
  }
});

Deno.test("wasm integer elementwise: 1 and 2 threads give the same bits", async (t) => {
  // Large enough to split rows across threads; the second input broadcast along rows.
  const shape = [300, 301];
  for (const dtype of ["i32", "u32"] as const) {
    for (const name of ["add", "sub", "mul", "maximum", "minimum", "neg", "abs"]) {
      await t.step(`${dtype} ${name}`, () => {
        const binary = name in BINARY;
        const a = { data: words(1, size(shape)), dtype };
        const b = { data: words(2, shape[1]), dtype };
        const spec: ElementwiseSpec = {
          shape,
          dtype,
          inputs: [
            { dtype, strides: contiguousStrides(shape), offset: 0 },
            { dtype, strides: [0, 1], offset: 0 },
          ].slice(0, binary ? 2 : 1),
        };
        sameOnThreads(name, binary ? [a, b] : [a], spec, [4 * size(shape)]);
      });
    }
  }
});

Deno.test("wasm integer elementwise declines what it does not run", () => {
  const spec = (dtype: T.DType, inputs: T.DType[]) => ({
    shape: [3],
    dtype,
    inputs: inputs.map((d) => ({ dtype: d, strides: [1], offset: 0 })),
  });
  assert.equal(wasmAccepts("add", spec("i32", ["i32", "i32"]), []), true);
  assert.equal(wasmAccepts("abs", spec("u32", ["u32"]), []), true);
  // Division, mixed dtypes and bool stay on the reference.
  assert.equal(wasmAccepts("div", spec("i32", ["i32", "i32"]), []), false);
  assert.equal(wasmAccepts("add", spec("i32", ["i32", "u32"]), []), false);
  assert.equal(wasmAccepts("add", spec("bool", ["bool", "bool"]), []), false);
  assert.equal(wasmAccepts("exp", spec("i32", ["i32"]), []), false);
});
