import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { DType, Tensor, TypedArray } from "../../mod.ts";
import {
  argsort,
  gatherByIndex,
  scatterByIndex,
  sort,
  sortPrimitives,
  sortWithIndices,
} from "../../ops/sort.ts";
import { fromTypedArray } from "../../ops/creation.ts";
import type { Primitive, VjpRule } from "../../ops/primitive.ts";
import { getDevice } from "../../ops/device.ts";
import type { GpuDevice, GpuStorage } from "../../kernels/webgpu/device.ts";
import { cumsumGpu } from "../../kernels/webgpu/scan.ts";
import { noLeaks, rng, testDevices } from "../util.ts";

type Sortable = Exclude<DType, "bool">;

/** Independent reference: JS's stable sort with NumPy's order (NaN largest, -0 == +0). */
function refArgsort(row: ArrayLike<number>, descending: boolean): number[] {
  const cmp = (a: number, b: number) => {
    const na = Number.isNaN(a), nb = Number.isNaN(b);
    if (na || nb) return na === nb ? 0 : na ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  };
  const ids = Array.from({ length: row.length }, (_, i) => i);
  return ids.sort((i, j) => (descending ? cmp(row[j], row[i]) : cmp(row[i], row[j])) || i - j);
}

/** Keys of a dtype, either from a tiny set (many ties) or spread over the whole range. */
function keys(dtype: Sortable, n: number, rand: () => number, ties: boolean): TypedArray {
  const pick = <A>(xs: A[]) => xs[Math.floor(rand() * xs.length)];
  if (dtype === "f32") {
    const out = new Float32Array(n);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) {
      if (ties) {
        out[i] = pick([-1.5, -0, 0, 1, 2, NaN, -Infinity, Infinity]);
        if (rand() < 0.05) bits[i] = 0xffc00001; // NaN with the sign bit set sorts like NaN
      } else out[i] = (rand() - 0.5) * 10 ** (rand() * 12 - 4);
    }
    return out;
  }
  if (dtype === "i32") {
    return Int32Array.from(
      { length: n },
      () => ties ? pick([-2147483648, -5, -1, 0, 3, 2147483647]) : (rand() * 2 ** 32) | 0,
    );
  }
  return Uint32Array.from(
    { length: n },
    () => ties ? pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff]) : (rand() * 2 ** 32) >>> 0,
  );
}

const bitsOf = (a: TypedArray) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Checks values and indices of a sort against the reference, row by row. */
function checkRows(
  x: TypedArray,
  n: number,
  descending: boolean,
  values: TypedArray | null,
  indices: TypedArray,
  what: string,
) {
  const xb = bitsOf(x), vb = values ? bitsOf(values) : null;
  for (let base = 0; base < x.length; base += n) {
    const expected = refArgsort(x.subarray(base, base + n), descending);
    for (let j = 0; j < n; j++) {
      if (indices[base + j] !== expected[j]) {
        assert.fail(
          `${what}: row at ${base}, position ${j}: index ${indices[base + j]}, expected ` +
            `${expected[j]} (keys ${x[base + indices[base + j]]} vs ${x[base + expected[j]]})`,
        );
      }
      if (vb && vb[base + j] !== xb[base + expected[j]]) {
        assert.fail(`${what}: row at ${base}, position ${j}: value bits differ`);
      }
    }
  }
}

const SHAPES = [
  [1],
  [7],
  [255],
  [256],
  [1000],
  [4097],
  [3, 7],
  [600, 7],
  [4, 256],
  [3, 1000],
  [2, 4097],
  [2, 3, 255],
  [2, 2, 2049],
];
const DTYPES: Sortable[] = ["f32", "i32", "u32"];

Deno.test("sort, argsort and sortWithIndices match a stable reference", async (t) => {
  const rand = rng(7);
  for (const device of testDevices()) {
    for (const dtype of DTYPES) {
      for (const shape of SHAPES) {
        await t.step(`${dtype} ${JSON.stringify(shape)} on ${device}`, async () => {
          await noLeaks(async () => {
            const n = shape[shape.length - 1];
            const size = shape.reduce((a, b) => a * b, 1);
            for (const ties of [true, false]) {
              const data = keys(dtype, size, rand, ties);
              using x = fromTypedArray(data, shape, dtype, device);
              for (const descending of [false, true]) {
                const what = `${ties ? "ties" : "spread"} ${descending ? "desc" : "asc"}`;
                const [v, i] = sortWithIndices(x, { descending });
                using _v = v, _i = i;
                assert.deepEqual([v.shape, v.dtype, i.dtype], [shape, dtype, "i32"]);
                checkRows(data, n, descending, await v.data(), await i.data(), what);
                using a = argsort(x, { descending });
                checkRows(data, n, descending, null, await a.data(), `argsort ${what}`);
                using s = sort(x, { descending });
                assert.deepEqual(bitsOf(await s.data()), bitsOf(await v.data()));
              }
            }
          });
        });
      }
    }
  }
});

Deno.test("NaN sorts last ascending and first descending; -0 and +0 tie", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const data = new Float32Array([2, NaN, -1, -0, 0, NaN, -Infinity, Infinity, 0]);
          bitsOf(data)[5] = 0xffc00001;
          const x = fromTypedArray(data, [9], "f32", device);
          const [va, ia] = sortWithIndices(x);
          assert.deepEqual(Array.from(await ia.data()), [6, 2, 3, 4, 8, 0, 7, 1, 5]);
          const asc = Array.from(await va.data());
          assert.deepEqual(asc.slice(0, 7), [-Infinity, -1, -0, 0, 0, 2, Infinity]);
          assert.ok(Object.is(asc[2], -0) && Number.isNaN(asc[7]) && Number.isNaN(asc[8]));
          const [vd, id] = sortWithIndices(x, { descending: true });
          assert.deepEqual(Array.from(await id.data()), [1, 5, 7, 0, 3, 4, 8, 2, 6]);
          assert.ok(Object.is((await vd.data())[4], -0));
          // The sign-bit NaN keeps its bits: values are copied, not rebuilt from keys.
          assert.equal(bitsOf(await vd.data())[1], 0xffc00001);
        })
      );
    });
  }
});

Deno.test("argsort returns a permutation of each row; empty and size-1 axes", async (t) => {
  const rand = rng(11);
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          for (const [rows, n] of [[5, 3000], [40, 50], [1, 1], [9, 1]]) {
            const data = keys("f32", rows * n, rand, true);
            const idx = await argsort(fromTypedArray(data, [rows, n], "f32", device)).data();
            for (let r = 0; r < rows; r++) {
              const seen = new Uint8Array(n);
              for (let j = 0; j < n; j++) seen[idx[r * n + j]]++;
              assert.ok(seen.every((c) => c === 1), `row ${r} of [${rows},${n}] is a permutation`);
            }
          }
          for (const shape of [[3, 0], [0, 4], [0]]) {
            const [v, i] = sortWithIndices(T.zeros(shape, { device }));
            assert.deepEqual([v.shape, i.shape, i.dtype], [shape, shape, "i32"]);
            assert.equal((await argsort(T.zeros(shape, { device })).data()).length, 0);
          }
        })
      );
    });
  }
});

Deno.test("argsort of one 1M-key row on WebGPU equals the CPU", async () => {
  if (!testDevices().includes("webgpu")) return;
  await noLeaks(() =>
    T.scope(async () => {
      const n = 1 << 20;
      const rand = rng(5);
      // Keys on a coarse grid: many ties across tiles test stability at scale.
      const data = Float32Array.from({ length: n }, () => Math.round((rand() - 0.5) * 2e4) / 8);
      const [gv, gi] = sortWithIndices(fromTypedArray(data, [n], "f32", "webgpu"), {
        descending: true,
      });
      const [cv, ci] = sortWithIndices(fromTypedArray(data, [n], "f32", "cpu-reference"), {
        descending: true,
      });
      assert.deepEqual(await gi.data(), await ci.data());
      assert.deepEqual(await gv.data(), await cv.data());
    })
  );
});

Deno.test("the exclusive u32 scan the radix sort uses, one and several levels", async () => {
  if (!testDevices().includes("webgpu")) return;
  const dev = getDevice("webgpu") as GpuDevice;
  const rand = rng(9);
  await noLeaks(async () => {
    // one block; block totals + rescan; three levels
    for (const m of [1, 1000, 16 * 1024, 16 * 1024 + 1, 1024 * 1024 + 5]) {
      const data = Uint32Array.from({ length: m }, () => Math.floor(rand() * 5));
      const buf = dev.upload(data, "u32") as GpuStorage;
      const out = cumsumGpu(dev, buf, "u32", 1, m, 1, false, true);
      const got = await dev.read(out, "u32", m);
      dev.free(buf);
      dev.free(out);
      let acc = 0;
      for (let i = 0; i < m; i++) {
        if (got[i] !== acc) assert.fail(`m=${m}: entry ${i} is ${got[i]}, expected ${acc}`);
        acc += data[i];
      }
    }
  });
});

/** Runs a primitive's VJP rule directly (the autodiff walker is tested elsewhere). */
function rule<P>(
  prim: Primitive<P>,
  g: Tensor,
  inputs: Tensor[],
  outputs: Tensor[],
  params: P,
): (Tensor | null)[] {
  assert.notEqual(prim.vjp, "none");
  return (prim.vjp as VjpRule<P>)([g], { inputs, outputs, params });
}

Deno.test("gather/scatter by index undo each other and route sort gradients", async (t) => {
  const rand = rng(3);
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          // x [2, 5, 3] moved as whole rows by idx [2, 5]
          const keyData = keys("f32", 10, rand, true);
          const idx = argsort(fromTypedArray(keyData, [2, 5], "f32", device));
          const xd = Float32Array.from({ length: 30 }, () => rand());
          const x = T.tensor(xd, { shape: [2, 5, 3], device });
          const g = gatherByIndex(x, idx);
          const id = await idx.data();
          const expected = new Float32Array(30);
          for (let r = 0; r < 2; r++) {
            for (let j = 0; j < 5; j++) {
              for (let c = 0; c < 3; c++) {
                expected[(r * 5 + j) * 3 + c] = xd[(r * 5 + id[r * 5 + j]) * 3 + c];
              }
            }
          }
          assert.deepEqual(await g.data(), expected);
          assert.deepEqual(await scatterByIndex(g, idx).data(), xd);
          assert.deepEqual(await gatherByIndex(scatterByIndex(x, idx), idx).data(), xd);
          // gather by argsort is sort; scatter undoes it
          const k = fromTypedArray(keyData, [2, 5], "f32", device);
          assert.deepEqual(await gatherByIndex(k, idx).data(), await sort(k).data());
          assert.deepEqual(bitsOf(await scatterByIndex(sort(k), idx).data()), bitsOf(keyData));
          // integer and bool payloads move too
          const ints = T.tensor(new Int32Array([5, 6, 7, 8, 9, 0, 1, 2, 3, 4]), {
            shape: [2, 5],
            device,
          });
          assert.deepEqual(await scatterByIndex(gatherByIndex(ints, idx), idx).array(), [
            [5, 6, 7, 8, 9],
            [0, 1, 2, 3, 4],
          ]);
          const flags = T.tensor([true, false, true], { device });
          const rev = T.tensor(new Int32Array([2, 1, 0]), { device });
          assert.deepEqual(await gatherByIndex(flags, rev).array(), [true, false, true]);

          // VJP rules: sort's cotangent goes back through the permutation, dx[idx[j]] = g[j].
          const params = { descending: true, withValues: true };
          const [v, i] = sortWithIndices(k, params);
          const cot = T.tensor(Float32Array.from({ length: 10 }, () => rand()), {
            shape: [2, 5],
            device,
          });
          const [dx] = rule(sortPrimitives.sort, cot, [k], [v, i], params);
          assert.deepEqual(dx!.shape, [2, 5]);
          const si = await i.data(), cd = await cot.data(), dd = await dx!.data();
          for (let q = 0; q < 10; q++) assert.equal(dd[q - (q % 5) + si[q]], cd[q]);
          assert.equal(sortPrimitives.argsort.vjp, "none", "argsort has no gradient");
          // gather's VJP is scatter and scatter's is gather (both leave the index alone)
          const gy = gatherByIndex(x, idx);
          const [gx, gIdx] = rule(sortPrimitives.gatherByIndex, x, [x, idx], [gy], undefined);
          assert.equal(gIdx, null);
          assert.deepEqual(await gx!.data(), await scatterByIndex(x, idx).data());
          const sy = scatterByIndex(x, idx);
          const [sx] = rule(sortPrimitives.scatterByIndex, x, [x, idx], [sy], undefined);
          assert.deepEqual(await sx!.data(), await gatherByIndex(x, idx).data());
        })
      );
    });
  }
});

Deno.test("sort errors name the op and the rule, and leak nothing", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const s = T.tensor(3, { device });
          assert.throws(() => sort(s), RangeError);
          assert.throws(() => argsort(s), /argsort: expected a tensor with at least one axis/);
          assert.throws(() => sortWithIndices(s), RangeError);
          const b = T.tensor([true, false], { device });
          assert.throws(() => sort(b), /sort: bool input .* is not supported/);
          assert.throws(() => argsort(b), TypeError);
          const x = T.tensor([[1, 2], [3, 4]], { device });
          assert.throws(
            // deno-lint-ignore no-explicit-any
            () => sort(x, { descending: "yes" as any }),
            /sort: options.descending must be a boolean/,
          );
          const fidx = T.tensor([[0, 1], [1, 0]], { device });
          assert.throws(() => gatherByIndex(x, fidx), /gatherByIndex: index must be i32/);
          const idx = T.tensor(new Int32Array([1, 0, 2]), { device });
          assert.throws(
            () => scatterByIndex(x, idx),
            /scatterByIndex: index shape \[3\] must equal the leading dimensions of \[2,2\]/,
          );
          assert.throws(() => gatherByIndex(x, T.tensor(3, { dtype: "i32", device })), RangeError);
          // An index over a leading axis moves whole rows.
          const rows = gatherByIndex(x, T.tensor(new Int32Array([1, 0]), { device }));
          assert.deepEqual(await rows.array(), [[3, 4], [1, 2]]);
          if (device === "webgpu") {
            const cidx = T.tensor(new Int32Array([1, 0, 0, 1]), {
              shape: [2, 2],
              device: "cpu-reference",
            });
            assert.throws(() => gatherByIndex(x, cidx), /different devices/);
          }
        })
      );
    });
  }
});
