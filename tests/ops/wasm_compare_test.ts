/**
 * The CPU backend's comparisons (`equal`, `notEqual`, `less`, `lessEqual`, `greater`,
 * `greaterEqual`) of f32, i32 and u32 against the reference, bit for bit: NaN, -0/+0 and
 * infinities, signed and unsigned extremes, broadcasting, transposes, empty and scalar shapes;
 * and 1 and 2 threads giving the same bits.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { wasmAccepts } from "../../kernels/wasm/backend.ts";
import type { ElementwiseSpec } from "../../kernels/specs/elementwise.ts";
import { contiguousStrides } from "../../kernels/strided.ts";
import { noLeaks, rng, startWasm } from "../util.ts";
import { bits, sameOnThreads } from "./wasm_bits.ts";

await startWasm();

type Data = "f32" | "i32" | "u32";
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** `n` values of `dtype` drawn from a few, so that ties are common, with the edge values. */
function values(seed: number, n: number, dtype: Data): Float32Array | Int32Array | Uint32Array {
  const rand = rng(seed);
  const pick = <V>(vs: V[]) => vs[Math.floor(rand() * vs.length)];
  if (dtype === "f32") {
    const vs = [NaN, -0, 0, 1, -1, 0.5, Infinity, -Infinity, 3e38];
    return Float32Array.from({ length: n }, () => pick(vs));
  }
  const w = Uint32Array.from(
    { length: n },
    () => pick([0, 1, 2, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32 - 2]),
  );
  return dtype === "i32" ? new Int32Array(w.buffer) : w;
}

const OPS = {
  equal: T.equal,
  notEqual: T.notEqual,
  less: T.less,
  lessEqual: T.lessEqual,
  greater: T.greater,
  greaterEqual: T.greaterEqual,
};

Deno.test("wasm comparisons equal the reference bit for bit", async (t) => {
  const pairs: [number[], number[]][] = [
    [[41], [41]],
    [[5, 7], [7]],
    [[5, 1], [1, 9]],
    [[], [6]],
    [[6], []],
    [[0, 3], [3]],
    [[2, 300], [2, 300]],
  ];
  for (const dtype of ["f32", "i32", "u32"] as const) {
    for (const [name, f] of Object.entries(OPS)) {
      await t.step(`${dtype} ${name}`, async () => {
        for (const [sa, sb] of pairs) {
          await noLeaks(async () => {
            const a = values(sa.length + 2, size(sa), dtype);
            const b = values(sb.length + 5, size(sb), dtype);
            const run = async (device: T.DeviceName) => {
              using x = T.tensor(a, { shape: sa, dtype, device });
              using y = T.tensor(b, { shape: sb, dtype, device });
              // Also each against the other transposed: strided, one lane at a time.
              using z = f(x, y);
              using w = T.scope(() => f(T.transpose(T.broadcastTo(x, [3, ...x.shape])), 0));
              assert.equal(z.dtype, "bool");
              return [z.shape, await bits(z), await bits(w)];
            };
            assert.deepEqual(await run("cpu"), await run("cpu-reference"), `[${sa}] [${sb}]`);
          });
        }
      });
    }
  }
});

Deno.test("wasm comparisons: 1 and 2 threads give the same bits", async (t) => {
  const shape = [300, 301];
  for (const dtype of ["f32", "i32", "u32"] as const) {
    for (const name of Object.keys(OPS)) {
      await t.step(`${dtype} ${name}`, () => {
        const a = { data: values(1, size(shape), dtype), dtype };
        const b = { data: values(2, shape[1], dtype), dtype };
        const spec: ElementwiseSpec = {
          shape,
          dtype: "bool",
          inputs: [
            { dtype, strides: contiguousStrides(shape), offset: 0 },
            { dtype, strides: [0, 1], offset: 0 },
          ],
        };
        sameOnThreads(name, [a, b], spec, [size(shape)]);
      });
    }
  }
});

Deno.test("wasm comparisons decline bool, f16 and mixed inputs", () => {
  const spec = (inputs: T.DType[]) => ({
    shape: [3],
    dtype: "bool",
    inputs: inputs.map((d) => ({ dtype: d, strides: [1], offset: 0 })),
  });
  assert.equal(wasmAccepts("less", spec(["f32", "f32"]), []), true);
  assert.equal(wasmAccepts("less", spec(["u32", "u32"]), []), true);
  assert.equal(wasmAccepts("less", spec(["bool", "bool"]), []), false);
  assert.equal(wasmAccepts("less", spec(["f16", "f16"]), []), false);
  assert.equal(wasmAccepts("equal", spec(["i32", "u32"]), []), false);
});
