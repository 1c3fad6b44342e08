/**
 * Tests of prod, any, all, std and norm against float64 references on every device, and
 * finite-difference checks of their gradients (prod with zeros included).
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { away, checkGrad, type Gen, uniform } from "../autodiff/gradcheck.ts";

/** Reduces a [2, 3, 4] array (row-major) over `axes` with `f` on each group. */
function refReduce(x: ArrayLike<number>, axes: number[], f: (v: number[]) => number): number[] {
  const groups = new Map<string, number[]>();
  for (let i = 0; i < 24; i++) {
    const c = [Math.floor(i / 12), Math.floor(i / 4) % 3, i % 4];
    const key = c.filter((_, d) => !axes.includes(d)).join();
    groups.set(key, [...(groups.get(key) ?? []), x[i]]);
  }
  return [...groups.values()].map(f);
}

const AXES = [[0], [1], [2], [0, 2], [0, 1, 2], [1, 2]];
const prodRef = (v: number[]) => v.reduce((a, b) => a * b, 1);
const stdRef = (ddof: number) => (v: number[]) => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - ddof));
};

Deno.test("prod, any, all, std and vector norms over axes", async (t) => {
  const rand = rng(21);
  for (const device of testDevices()) {
    await t.step(`values on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const xv = randomArray(rand, 24, 0.5, 1.5);
          xv[5] = 0;
          const bv = Array.from({ length: 24 }, (_, i) => (i % 5 === 0 ? 1 : 0));
          const x = T.tensor(xv, { shape: [2, 3, 4], device });
          const b = T.tensor(bv, { shape: [2, 3, 4], device });
          for (const ax of AXES) {
            const opts = { rtol: 1e-5, atol: 1e-6 };
            await T.assertAllClose(T.prod(x, ax), refReduce(xv, ax, prodRef), opts);
            await T.assertAllClose(T.std(x, ax), refReduce(xv, ax, stdRef(0)), opts);
            await T.assertAllClose(T.std(x, ax, { ddof: 1 }), refReduce(xv, ax, stdRef(1)), opts);
            assert.deepEqual(
              await T.any(b, ax).data(),
              Uint8Array.from(refReduce(bv, ax, (v) => (v.some((u) => u !== 0) ? 1 : 0))),
            );
            assert.deepEqual(
              await T.all(x, ax).data(),
              Uint8Array.from(refReduce(xv, ax, (v) => (v.every((u) => u !== 0) ? 1 : 0))),
            );
            if (ax.length === 1) {
              const nrm = (p: number) => (v: number[]) =>
                v.reduce((a, u) => a + Math.abs(u) ** p, 0) ** (1 / p);
              for (const p of [1, 2, 3, 0.5]) {
                await T.assertAllClose(T.norm(x, p, ax[0]), refReduce(xv, ax, nrm(p)), opts);
              }
              await T.assertAllClose(
                T.norm(x, Infinity, ax),
                refReduce(xv, ax, (v) => Math.max(...v.map(Math.abs))),
              );
              await T.assertAllClose(
                T.norm(x, -Infinity, ax),
                refReduce(xv, ax, (v) => Math.min(...v.map(Math.abs))),
              );
              await T.assertAllClose(
                T.norm(x, 0, ax),
                refReduce(xv, ax, (v) => v.filter((u) => u !== 0).length),
              );
            }
          }
          const kd = T.prod(x, [0, 2], { keepdims: true });
          assert.deepEqual(kd.shape, [1, 3, 1]);
          assert.deepEqual(T.std(x, 1, { keepdims: true }).shape, [2, 1, 4]);
          assert.deepEqual(T.any(x, [0, 1], { keepdims: true }).shape, [1, 1, 4]);
          assert.equal(T.any(x).dtype, "bool");
          await T.assertAllClose(T.norm(x), Math.hypot(...xv), { rtol: 1e-6 });
        })
      );
    });
    await t.step(`dtypes and empty axes on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const i = T.tensor(new Int32Array([2, -3, 4]), { device });
          assert.equal(T.prod(i).dtype, "i32");
          assert.equal(await T.prod(i).array(), -24);
          assert.equal(await T.prod(T.tensor([true, true], { device })).array(), 1);
          const e = T.zeros([2, 0], { device });
          assert.deepEqual(await T.prod(e, 1).array(), [1, 1]);
          assert.deepEqual(await T.any(e, 1).array(), [false, false]);
          assert.deepEqual(await T.all(e, 1).array(), [true, true]);
          assert.deepEqual(await T.norm(e, undefined, 1).array(), [0, 0]);
          assert.deepEqual(await T.any(T.tensor([0, NaN], { device })).array(), true);
          assert.deepEqual(await T.prod(T.tensor([[5]], { device }), 1).array(), [5]);
        })
      );
    });
    await t.step(`matrix norms on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const mv = [[1, -2, 3], [-4, 5, -6]];
          const m = T.tensor(mv, { device });
          const absm = mv.map((r) => r.map(Math.abs));
          const colSums = [0, 1, 2].map((j) => absm[0][j] + absm[1][j]);
          const rowSums = absm.map((r) => r[0] + r[1] + r[2]);
          await T.assertAllClose(T.norm(m, "fro"), Math.sqrt(91));
          await T.assertAllClose(T.norm(m), Math.sqrt(91));
          assert.equal(await T.norm(m, 1).array(), Math.max(...colSums));
          assert.equal(await T.norm(m, -1).array(), Math.min(...colSums));
          assert.equal(await T.norm(m, Infinity).array(), Math.max(...rowSums));
          assert.equal(await T.norm(m, -Infinity).array(), Math.min(...rowSums));
          // The axis order picks rows and columns: [1, 0] reads the transpose.
          assert.equal(await T.norm(m, 1, [1, 0]).array(), Math.max(...rowSums));
          const batch = T.stack([m, T.mul(m, 2)]);
          assert.deepEqual(await T.norm(batch, Infinity, [-2, -1]).array(), [15, 30]);
          assert.deepEqual(T.norm(batch, "fro", [1, 2], { keepdims: true }).shape, [2, 1, 1]);
        })
      );
    });
  }
  await t.step("errors", () => {
    const m = T.ones([2, 2]);
    assert.throws(() => T.norm(m, -2), /norm: matrix order -2 is not supported.*"fro", 1, -1, 2/);
    assert.throws(() => T.norm(m, "nuc" as "fro"), /norm: matrix order "nuc" is not supported/);
    assert.throws(() => T.norm(m, "fro", 0), /norm: invalid order "fro" for a vector norm/);
    assert.throws(() => T.norm(T.ones([2, 2, 2]), 1), /norm: ord 1 without axis needs a 1-D/);
    assert.throws(() => T.norm(m, 1, [0, 1, 1]), /repeated axis/);
    assert.throws(() => T.std(m, 0, { ddof: 2 }), /std: ddof 2 leaves no degrees of freedom/);
    assert.throws(() => T.std(m, 0, { ddof: -1 }), /std: ddof must be/);
    assert.throws(() => T.prod(m, 3), /prod: axis 3 is out of range/);
    assert.throws(() => T.norm(T.zeros([0]), Infinity), /norm: cannot reduce/);
    m.dispose();
  });
});

/** Values in [0.5, 1.5) with exact zeros at every third position. */
const withZeros: Gen = (rand, n) =>
  Array.from({ length: n }, (_, i) => (i % 3 === 1 ? 0 : 0.5 + rand()));

Deno.test("gradients of prod, std and norm", async (t) => {
  const rand = rng(22);
  const cases = [
    { name: "prod all", inputs: [{ shape: [2, 3] }], fn: ([x]: T.Tensor[]) => T.prod(x) },
    {
      name: "prod axes with zeros",
      inputs: [{ shape: [3, 5, 2], gen: withZeros }],
      fn: ([x]: T.Tensor[]) => T.prod(x, [0, 1]),
    },
    {
      name: "prod two zeros in a row",
      inputs: [{
        shape: [2, 6],
        gen: (_r: () => number, n: number) =>
          Array.from({ length: n }, (_, i) => (i % 6 < 2 ? 0 : 1 + i / 8)),
      }],
      fn: ([x]: T.Tensor[]) => T.prod(x, 1),
    },
    {
      name: "std ddof 1",
      inputs: [{ shape: [3, 4] }],
      fn: ([x]: T.Tensor[]) => T.std(x, 1, { ddof: 1 }),
    },
    {
      name: "norm 2",
      inputs: [{ shape: [3, 4], gen: away() }],
      fn: ([x]: T.Tensor[]) => T.norm(x, 2, 0),
    },
    {
      name: "norm 3",
      inputs: [{ shape: [3, 4], gen: away() }],
      fn: ([x]: T.Tensor[]) => T.norm(x, 3, -1),
    },
    {
      name: "norm fro",
      inputs: [{ shape: [2, 3, 4], gen: uniform() }],
      fn: ([x]: T.Tensor[]) => T.norm(x, "fro", [1, 2]),
    },
    {
      name: "norm 2 matrix (spectral)",
      inputs: [{ shape: [2, 3, 4], gen: uniform() }],
      fn: ([x]: T.Tensor[]) => T.norm(x, 2, [1, 2]),
    },
    {
      name: "norm 1 matrix",
      inputs: [{ shape: [3, 4], gen: away(0.2) }],
      fn: ([x]: T.Tensor[]) => T.norm(x, 1),
    },
  ];
  for (const device of testDevices()) {
    for (const c of cases) await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
    await t.step(`prod gradient with zeros is exact on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([[2, 0, 3], [0, 0, 5], [1, 2, 4]], { device });
          const g = T.grad((a: T.Tensor) => T.sum(T.prod(a, 1)))(x) as T.Tensor;
          assert.deepEqual(await g.array(), [[0, 6, 0], [0, 0, 0], [8, 4, 2]]);
        })
      );
    });
  }
});

/** The largest singular value of a host matrix, in float64 (power iteration to convergence). */
function spectral(m: number[][]): number {
  const cols = m[0].length;
  let v = Array.from({ length: cols }, (_, i) => 1 + i / 7);
  let s = 0;
  for (let it = 0; it < 5000; it++) {
    const u = m.map((row) => row.reduce((a, x, j) => a + x * v[j], 0));
    const w = Array.from({ length: cols }, (_, j) => m.reduce((a, row, i) => a + row[j] * u[i], 0));
    const n = Math.hypot(...w);
    if (n === 0) return 0;
    v = w.map((x) => x / n);
    s = Math.sqrt(n);
  }
  return s;
}

Deno.test("norm ord 2 of matrices is the largest singular value", async (t) => {
  const rand = rng(11);
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          for (const [r, c] of [[4, 3], [3, 5], [1, 4], [6, 1], [5, 5]]) {
            const data = Array.from({ length: r }, () => Array.from(randomArray(rand, c)));
            const got = await T.norm(T.tensor(data, { device }), 2).array();
            assert.ok(Math.abs((got as number) - spectral(data)) <= 1e-5 * spectral(data));
          }
          // Equal and nearly equal top singular values, a zero matrix, a batch on other axes.
          assert.equal(await T.norm(T.tensor([[2, 0], [0, -2]], { device }), 2).array(), 2);
          const close = await T.norm(T.tensor([[1, 0], [0, 1 + 1e-6]], { device }), 2).array();
          assert.ok(Math.abs((close as number) - (1 + 1e-6)) < 1e-6);
          assert.equal(await T.norm(T.zeros([3, 2], { device }), 2).array(), 0);
          const a = [[3, 1], [0, 2], [1, 1]], b = [[0, 5], [1, 0], [2, 2]];
          const batch = T.moveaxis(T.tensor([a, b], { device }), 0, -1); // [3, 2, batch]
          const both = await T.norm(batch, 2, [0, 1]).data();
          assert.ok(Math.abs(both[0] - spectral(a)) < 1e-5 * spectral(a));
          assert.ok(Math.abs(both[1] - spectral(b)) < 1e-5 * spectral(b));
          assert.deepEqual(T.norm(batch, 2, [0, 1], { keepdims: true }).shape, [1, 1, 2]);
        })
      ));
  }
});
