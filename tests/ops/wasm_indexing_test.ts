/**
 * The CPU backend's indexing kernels (`take`, `scatterAdd`, `takeAlongAxis`,
 * `scatterAddAlongAxis`, `oneHot`) against the reference, bit for bit: f32, i32 and u32 data,
 * i32 and u32 indices with repeats, negative and out-of-range values, broadcasting, empty and
 * size-1 axes, float64 sums and integer wrapping; and 1 and 2 threads giving the same bits.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { contiguousStrides } from "../../kernels/strided.ts";
import { wasmAccepts } from "../../kernels/wasm/backend.ts";
import type { AlongIndexSpec, AxisIndexSpec } from "../../kernels/specs/indexing.ts";
import { noLeaks, rng, startWasm } from "../util.ts";
import { bits, sameOnThreads } from "./wasm_bits.ts";

await startWasm();

type Data = "f32" | "i32" | "u32";
const DATA: Data[] = ["f32", "i32", "u32"];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/**
 * `count` values of `dtype`: f32 of very different magnitudes (so that float64 and float32
 * sums differ) with a NaN and a signalling NaN; integers near the wrap-around.
 */
function values(seed: number, count: number, dtype: Data): Float32Array | Int32Array | Uint32Array {
  const rand = rng(seed);
  if (dtype === "f32") {
    const out = Float32Array.from(
      { length: count },
      () => (rand() - 0.5) * 10 ** Math.floor(rand() * 9),
    );
    const w = new Uint32Array(out.buffer);
    if (count > 3) w[3] = 0x7f800001;
    if (count > 5) w[5] = 0xffc01234;
    return out;
  }
  const w = Uint32Array.from(
    { length: count },
    () => rand() < 0.5 ? Math.floor(rand() * 100) : Math.floor(rand() * 2 ** 32),
  );
  return dtype === "i32" ? new Int32Array(w.buffer) : w;
}

/** `count` indices into an axis of `n`: repeats, negative, past either end; u32 wraps. */
function indices(seed: number, count: number, n: number, u32: boolean): Int32Array | Uint32Array {
  const rand = rng(seed);
  const pick = [() => Math.floor(rand() * n), () => -1 - Math.floor(rand() * 2 * n), () => n + 3];
  const out = Int32Array.from({ length: count }, () => pick[Math.floor(rand() * 3)]());
  if (count > 1) out[1] = -(2 ** 31);
  return u32 ? new Uint32Array(out.buffer) : out;
}

/**
 * Runs `f` on both devices; asserts the result bytes are equal (NaNs as one pattern with
 * `anyNaN`, for sums: see `bits`).
 */
async function same(f: (device: T.DeviceName) => T.Tensor, anyNaN = false): Promise<void> {
  await noLeaks(async () => {
    const run = async (device: T.DeviceName) => {
      using y = T.scope(() => f(device));
      assert.equal(y.device, device);
      return { shape: y.shape, bits: await bits(y, anyNaN) };
    };
    assert.deepEqual(await run("cpu"), await run("cpu-reference"));
  });
}

const tensor = (data: ArrayLike<number>, shape: number[], dtype: T.DType, device: T.DeviceName) =>
  T.tensor(data as Float32Array, { shape, dtype, device });

Deno.test("wasm take and scatterAdd equal the reference bit for bit", async (t) => {
  const cases: [number[], number, number[]][] = [
    [[7], 0, [5]],
    [[5, 7, 3], 1, [4, 2]],
    [[5, 7, 3], 0, [9]],
    [[5, 7, 3], 2, [6]],
    [[1, 1], 1, [3]],
    [[4, 3], 0, [0]],
    [[0, 3], 1, [2]],
    [[6, 40], 0, [50]],
  ];
  for (const dtype of DATA) {
    for (const [shape, axis, ishape] of cases) {
      for (const u32 of [false, true]) {
        await t.step(
          `${dtype} x [${shape}] axis ${axis} by ${u32 ? "u32" : "i32"} [${ishape}]`,
          async () => {
            const ix = indices(shape.length + ishape[0], size(ishape), shape[axis], u32);
            const xs = values(1, size(shape), dtype);
            const ushape = [...shape.slice(0, axis), ...ishape, ...shape.slice(axis + 1)];
            const up = values(2, size(ushape), dtype);
            const idx = (d: T.DeviceName) => tensor(ix, ishape, u32 ? "u32" : "i32", d);
            await same((d) => T.take(tensor(xs, shape, dtype, d), idx(d), axis));
            await same(
              (d) =>
                T.scatterAdd(
                  tensor(xs, shape, dtype, d),
                  idx(d),
                  tensor(up, ushape, dtype, d),
                  axis,
                ),
              true,
            );
          },
        );
      }
    }
  }
});

Deno.test("wasm takeAlongAxis and scatterAddAlongAxis equal the reference bit for bit", async (t) => {
  // x and indices broadcast against each other off the axis.
  const cases: [number[], number[], number][] = [
    [[7], [9], 0],
    [[3, 6], [3, 4], 1],
    [[3, 1, 6], [3, 4, 2], 2],
    [[5, 6], [1, 6], 0],
    [[2, 5, 3], [2, 5, 1], 1],
    [[4, 1], [4, 3], 1],
    [[2, 3], [2, 0], 1],
    [[1, 1, 1], [1, 1, 1], 0],
    [[40, 30], [40, 50], 1],
  ];
  for (const dtype of DATA) {
    for (const [shape, ishape, axis] of cases) {
      for (const u32 of [false, true]) {
        await t.step(
          `${dtype} x [${shape}] by ${u32 ? "u32" : "i32"} [${ishape}] axis ${axis}`,
          async () => {
            const ix = indices(size(ishape), size(ishape), shape[axis], u32);
            const xs = values(3, size(shape), dtype);
            const out = shape.map((n, d) => (d === axis || n === 1 ? ishape[d] : n));
            const up = values(4, size(out), dtype);
            const idx = (d: T.DeviceName) => tensor(ix, ishape, u32 ? "u32" : "i32", d);
            await same((d) => T.takeAlongAxis(tensor(xs, shape, dtype, d), idx(d), axis));
            await same((d) =>
              T.scatterAddAlongAxis(
                tensor(xs, shape, dtype, d),
                idx(d),
                tensor(up, out, dtype, d),
                axis,
              ), true);
          },
        );
      }
    }
  }
});

Deno.test("wasm oneHot equals the reference bit for bit", async (t) => {
  for (const dtype of ["f32", "i32", "u32", "bool"] as const) {
    for (const [count, depth] of [[7, 5], [1, 1], [0, 3], [4, 0], [300, 64]]) {
      await t.step(`${dtype} ${count} x ${depth}`, async () => {
        for (const u32 of [false, true]) {
          const ix = indices(count, count, depth, u32);
          await same((d) =>
            T.oneHot(tensor(ix, [count], u32 ? "u32" : "i32", d), depth, { dtype })
          );
        }
      });
    }
  }
});

Deno.test("wasm indexing: 1 and 2 threads give the same bits", async (t) => {
  const [outer, n, inner, m] = [3, 500, 40, 700];
  for (const dtype of DATA) {
    await t.step(`take and scatterAdd ${dtype}`, () => {
      for (const indexDtype of ["i32", "u32"] as const) {
        const spec: AxisIndexSpec = { layout: { outer, n, inner }, count: m, dtype, indexDtype };
        const idx = { data: indices(9, m, n, indexDtype === "u32"), dtype: indexDtype };
        const x = { data: values(5, outer * n * inner, dtype), dtype };
        const upd = { data: values(6, outer * m * inner, dtype), dtype };
        // take splits only gathers of at least 2^20 elements.
        const many = { data: indices(10, 30 * m, n, indexDtype === "u32"), dtype: indexDtype };
        const big = { ...spec, layout: { outer: 2, n, inner }, count: 30 * m };
        sameOnThreads("take", [x, many], big, [4 * 2 * 30 * m * inner]);
        sameOnThreads("scatterAdd", [x, idx, upd], spec, [4 * outer * n * inner], true);
      }
    });
    await t.step(`takeAlongAxis and scatterAddAlongAxis ${dtype}`, () => {
      // x [30, 1, 200] and indices [30, 7, 300] along the last axis: x broadcasts on axis 1.
      const [xs, is, axis] = [[30, 1, 200], [30, 7, 300], 2];
      const shape = [30, 7, 300];
      for (const indexDtype of ["i32", "u32"] as const) {
        const layout = {
          shape,
          xStrides: contiguousStrides(xs),
          iStrides: contiguousStrides(is),
          axis,
          n: xs[axis],
        };
        const spec: AlongIndexSpec = { layout, size: size(xs), dtype, indexDtype };
        const idx = {
          data: indices(8, size(is), xs[axis], indexDtype === "u32"),
          dtype: indexDtype,
        };
        const x = { data: values(7, size(xs), dtype), dtype };
        const upd = { data: values(8, size(shape), dtype), dtype };
        sameOnThreads("takeAlongAxis", [x, idx], spec, [4 * size(shape)]);
        sameOnThreads("scatterAddAlongAxis", [x, idx, upd], spec, [4 * size(xs)], true);
      }
    });
  }
});

Deno.test("wasm indexing declines f16 and bool data, which run on the reference", async () => {
  const spec = (dtype: T.DType) => ({ dtype, indexDtype: "i32" });
  assert.equal(wasmAccepts("take", spec("f32"), ["f32", "i32"]), true);
  assert.equal(wasmAccepts("take", spec("f16"), ["f16", "i32"]), false);
  assert.equal(wasmAccepts("scatterAdd", spec("f32"), ["f32", "i32", "f32"]), true);
  assert.equal(wasmAccepts("oneHot", { ...spec("f16"), depth: 2, count: 1 }, ["i32"]), false);
  await noLeaks(async () => {
    using x = T.tensor([1, 2, 3], { dtype: "f16", device: "cpu" });
    using i = T.tensor(new Int32Array([2, -1, 0]), { device: "cpu" });
    using y = T.take(x, i);
    assert.deepEqual(Array.from(await y.data()), [3, 3, 1]);
  });
});
