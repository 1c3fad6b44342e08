import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import {
  alongLayout,
  INDEXING_PRIMITIVES as P,
  oneHot,
  scatterAdd,
  scatterAddAlongAxis,
  take,
  takeAlongAxis,
} from "../../ops/indexing.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";

type Shape = number[];
const size = (s: Shape) => s.reduce((a, b) => a * b, 1);
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
/** The documented index rule, written out independently of the kernels. */
const clampIdx = (v: number, n: number) => Math.min(n - 1, Math.max(0, v < 0 ? v + n : v));

function coords(i: number, shape: Shape): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) (c[d] = i % shape[d], i = Math.floor(i / shape[d]));
  return c;
}
function flatAt(c: number[], shape: Shape): number {
  return c.reduce((acc, v, d) => acc * shape[d] + (shape[d] === 1 ? 0 : v), 0);
}

function randInts(rand: () => number, m: number, lo: number, hi: number, unsigned = false) {
  const a = unsigned ? new Uint32Array(m) : new Int32Array(m);
  for (let i = 0; i < m; i++) a[i] = lo + Math.floor(rand() * (hi - lo));
  return a;
}

/** Flat positions of x read by take: out element -> x element. */
function takeMap(xs: Shape, idx: ArrayLike<number>, is: Shape, axis: number): [Shape, number[]] {
  const out = [...xs.slice(0, axis), ...is, ...xs.slice(axis + 1)];
  const map = Array.from({ length: size(out) }, (_, i) => {
    const c = coords(i, out);
    const k = flatAt(c.slice(axis, axis + is.length), is);
    const xc = [...c.slice(0, axis), clampIdx(idx[k], xs[axis]), ...c.slice(axis + is.length)];
    return flatAt(xc, xs);
  });
  return [out, map];
}

/** Flat positions of x read by takeAlongAxis. */
function alongMap(xs: Shape, idx: ArrayLike<number>, is: Shape, axis: number): [Shape, number[]] {
  const out = xs.map((n, d) => (d === axis || n === 1 ? is[d] : n));
  const map = Array.from({ length: size(out) }, (_, i) => {
    const c = coords(i, out);
    const xc = c.map((v, d) => (d === axis ? clampIdx(idx[flatAt(c, is)], xs[axis]) : v));
    return flatAt(xc, xs);
  });
  return [out, map];
}

function scatterRef(x: ArrayLike<number>, upd: ArrayLike<number>, map: number[]): Float64Array {
  const out = Float64Array.from(x);
  map.forEach((to, u) => (out[to] += upd[u]));
  return out;
}

const TAKE_CASES: [Shape, Shape, number][] = [
  [[7], [5], 0],
  [[4, 3], [2, 3], 0],
  [[3, 5, 2], [4], 1],
  [[3, 5, 2], [1], -1],
  [[2, 1, 3], [6], 1],
  [[5, 8], [3], -1],
  [[6, 8], [9], 0],
  [[3, 4, 4], [2, 2], 1],
  [[4, 3], [], 0],
  [[0, 3], [2], 1],
  [[3], [0], 0],
];

const ALONG_CASES: [Shape, Shape, number][] = [
  [[5], [7], 0],
  [[3, 5], [3, 4], 1],
  [[3, 5], [1, 4], -1],
  [[1, 5], [3, 2], 1],
  [[4, 3, 2], [4, 3, 2], -2],
  [[2, 3, 4], [2, 5, 1], 1],
  [[2, 1, 3], [2, 4, 3], 0],
];

Deno.test("take and takeAlongAxis match JS references", async (t) => {
  const rand = rng(11);
  for (const device of testDevices()) {
    for (
      const [name, cases, op, mapper] of [
        ["take", TAKE_CASES, take, takeMap],
        ["takeAlongAxis", ALONG_CASES, takeAlongAxis, alongMap],
      ] as const
    ) {
      for (const [xs, is, axis] of cases) {
        for (const unsigned of [false, true]) {
          const label = `${name} ${JSON.stringify(xs)} ${JSON.stringify(is)} axis ${axis}`;
          await t.step(`${label} ${unsigned ? "u32" : "i32"} on ${device}`, async () => {
            await noLeaks(() =>
              T.scope(async () => {
                const n = xs[norm(axis, xs.length)];
                const x = randomArray(rand, size(xs), -2, 2);
                const idx = randInts(rand, size(is), unsigned ? 0 : -n - 2, n + 2, unsigned);
                const y = op(
                  T.tensor(x, { shape: xs, device }),
                  T.tensor(idx, { shape: is, device }),
                  axis,
                );
                const [shape, map] = mapper(xs, idx, is, norm(axis, xs.length));
                assert.deepEqual(y.shape, shape);
                assert.deepEqual(await y.data(), Float32Array.from(map, (j) => x[j]));
              })
            );
          });
        }
      }
    }
    await t.step(`gathers keep integer and bool dtypes on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const idx = T.tensor(new Int32Array([2, -3, 1]), { device });
          const xi = T.tensor(new Int32Array([-5, 7, 9]), { device });
          assert.deepEqual(await take(xi, idx).data(), new Int32Array([9, -5, 7]));
          const xb = T.tensor([true, false, true], { device });
          assert.deepEqual(await take(xb, idx).array(), [true, true, false]);
          const along = takeAlongAxis(xi.view([1, 3]), idx.view([1, 3]));
          assert.deepEqual(await along.data(), new Int32Array([9, -5, 7]));
        })
      );
    });
  }
});

Deno.test("scatterAdd and scatterAddAlongAxis match JS references", async (t) => {
  const rand = rng(12);
  for (const device of testDevices()) {
    for (
      const [name, cases, op, mapper] of [
        ["scatterAdd", TAKE_CASES, scatterAdd, takeMap],
        ["scatterAddAlongAxis", ALONG_CASES, scatterAddAlongAxis, alongMap],
      ] as const
    ) {
      for (const [xs, is, axis] of cases) {
        const label = `${name} ${JSON.stringify(xs)} ${JSON.stringify(is)} axis ${axis}`;
        await t.step(`${label} on ${device}`, async () => {
          await noLeaks(() =>
            T.scope(async () => {
              const n = xs[norm(axis, xs.length)];
              // A narrow range makes duplicates; the ends exercise negatives and clamping.
              const idx = randInts(rand, size(is), -n - 1, Math.max(1, n - 1));
              const [us, map] = mapper(xs, idx, is, norm(axis, xs.length));
              const x = randomArray(rand, size(xs), -2, 2);
              const upd = randomArray(rand, size(us), -2, 2);
              const y = op(
                T.tensor(x, { shape: xs, device }),
                T.tensor(idx, { shape: is, device }),
                T.tensor(upd, { shape: us, device }),
                axis,
              );
              assert.deepEqual(y.shape, xs);
              await T.assertAllClose(y, scatterRef(x, upd, map), { rtol: 1e-5, atol: 1e-5 });
            })
          );
        });
      }
    }
    await t.step(`integer scatter is exact on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor(new Int32Array([1, 2, 3]), { device });
          const idx = T.tensor(new Uint32Array([2, 0, 2, 9]), { device });
          const upd = T.tensor(new Int32Array([10, 20, 30, 40]), { device });
          assert.deepEqual(await scatterAdd(x, idx, upd).data(), new Int32Array([21, 2, 83]));
        })
      );
    });
    await t.step(`large and duplicate-heavy scatters on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          // 300 rows need two radix passes; 70000 along-axis targets need three.
          for (
            const [xs, m, lo, hi, width] of [
              [[300, 4], 2000, -300, 300, 4],
              [[40, 3], 3000, 7, 8, 3],
              [[70000], 5000, 0, 70000, 1],
            ] as const
          ) {
            const x = randomArray(rand, size([...xs]), -1, 1);
            const idx = randInts(rand, m, lo, hi);
            const upd = randomArray(rand, m * width, -1, 1);
            const [, map] = takeMap([...xs], idx, [m], 0);
            const run = () =>
              scatterAdd(
                T.tensor(x, { shape: [...xs], device }),
                T.tensor(idx, { device }),
                T.tensor(upd, { shape: [m, ...xs.slice(1)], device }),
              );
            const y = run();
            await T.assertAllClose(y, scatterRef(x, upd, map), { rtol: 1e-5, atol: 1e-4 });
            assert.deepEqual(await run().data(), await y.data(), "bitwise deterministic");
          }
          const xs = [70000], idx = randInts(rand, 5000, -70000, 70000);
          const upd = randomArray(rand, 5000);
          const [, map] = alongMap(xs, idx, [5000], 0);
          const y = scatterAddAlongAxis(
            T.zeros(xs, { device }),
            T.tensor(idx, { device }),
            T.tensor(upd, { device }),
          );
          await T.assertAllClose(y, scatterRef(new Float32Array(70000), upd, map), { atol: 1e-5 });
        })
      );
    });
  }
});

Deno.test("oneHot", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const i = T.tensor(new Int32Array([0, 2, -1, 3, 1, 7]), { shape: [2, 3], device });
          const y = oneHot(i, 3);
          assert.equal(y.dtype, "f32");
          assert.deepEqual(y.shape, [2, 3, 3]);
          assert.deepEqual(await y.array(), [
            [[1, 0, 0], [0, 0, 1], [0, 0, 0]],
            [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
          ]);
          const u = T.tensor(new Uint32Array([1, 4]), { device });
          assert.deepEqual(
            await oneHot(u, 2, { dtype: "i32" }).data(),
            new Int32Array([0, 1, 0, 0]),
          );
          assert.deepEqual(await oneHot(u, 2, { dtype: "bool" }).array(), [[false, true], [
            false,
            false,
          ]]);
          assert.deepEqual(oneHot(u, 0).shape, [2, 0]);
        })
      );
    });
  }
});

async function dot(a: T.Tensor, b: T.Tensor): Promise<number> {
  const [x, y] = [await a.data(), await b.data()];
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  return s;
}

Deno.test("VJP rules are the adjoints of their primitives", async (t) => {
  const rand = rng(14);
  const f = (s: Shape, device: T.DeviceName) =>
    T.tensor(randomArray(rand, size(s)), { shape: s, device });
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const close = async (a: number, b: number) =>
            await T.assertAllClose(a, b, { rtol: 1e-4, atol: 1e-4 });
          const idx = T.tensor(new Int32Array([3, -1, 0, 3, 9]), { device });
          // take: <take(x), g> = <x, vjp(g)>.
          const x = f([2, 4, 3], device), g = f([2, 5, 3], device);
          const y = take(x, idx, 1);
          const [dx, di] = P.take.vjp === "none" ? [] : P.take.vjp([g], {
            inputs: [x, idx],
            outputs: [y],
            params: { axis: 1 },
          });
          assert.equal(di, null);
          await close(await dot(y, g), await dot(x, dx!));
          // scatterAdd: cotangents g for x and take(g) for updates.
          const u = f([2, 5, 3], device), gx = f([2, 4, 3], device);
          const s = scatterAdd(x, idx, u, 1);
          const rule = P.scatterAdd.vjp === "none" ? [] : P.scatterAdd.vjp([gx], {
            inputs: [x, idx, u],
            outputs: [s],
            params: { axis: 1 },
          });
          assert.equal(rule[0], gx);
          assert.equal(rule[1], null);
          const s0 = scatterAdd(T.zerosLike(x), idx, u, 1);
          await close(await dot(s0, gx), await dot(u, rule[2]!));
          // takeAlongAxis and its scatter, with broadcasting on axis 0.
          const ai = T.tensor(new Int32Array([2, 0, 0, -1, 5, 1]), { shape: [1, 6], device });
          const xa = f([3, 4], device), ga = f([3, 6], device);
          const layout = alongLayout("test", xa, ai, 1);
          const ya = takeAlongAxis(xa, ai, 1);
          const ra = P.takeAlongAxis.vjp === "none" ? [] : P.takeAlongAxis.vjp([ga], {
            inputs: [xa, ai],
            outputs: [ya],
            params: { layout },
          });
          assert.equal(ra[1], null);
          await close(await dot(ya, ga), await dot(xa, ra[0]!));
          const sa = scatterAddAlongAxis(T.zerosLike(xa), ai, ga, 1);
          const rs = P.scatterAddAlongAxis.vjp === "none" ? [] : P.scatterAddAlongAxis.vjp([xa], {
            inputs: [T.zerosLike(xa), ai, ga],
            outputs: [sa],
            params: { layout },
          });
          assert.equal(rs[0], xa);
          await close(await dot(sa, xa), await dot(ga, rs[2]!));
        })
      );
    });
  }
});

Deno.test("indexing ops validate before running", async (t) => {
  const x = T.zeros([2, 3]);
  const i32 = T.tensor(new Int32Array([0, 1]));
  const f32 = T.tensor([0, 1]);
  await t.step("errors name the op and the rule", () => {
    T.scope(() => {
      assert.throws(() => take(x, f32), {
        name: "TypeError",
        message: /take: indices must be i32 or u32, got f32\[2\]/,
      });
      assert.throws(() => take(x, T.tensor([true])), TypeError);
      assert.throws(() => take(x, [0] as unknown as T.Tensor), /take: indices must be a Tensor/);
      assert.throws(() => take(x, i32, 2), {
        name: "RangeError",
        message: /take: axis 2 is out of range for rank 2/,
      });
      assert.throws(() => take(T.zeros([]), i32), RangeError);
      assert.throws(() => take(T.zeros([0, 2]), i32), /take: cannot index axis 0 of \[0,2\]/);
      assert.throws(() => takeAlongAxis(x, i32), {
        name: "RangeError",
        message: /takeAlongAxis: indices \[2\] must have the rank of x \[2,3\]/,
      });
      assert.throws(() => takeAlongAxis(x, i32.view([1, 2]), 0), /cannot be broadcast on axis 1/);
      assert.throws(() => scatterAdd(x, i32, T.zeros([3, 3])), {
        name: "RangeError",
        message: /scatterAdd: updates shape \[3,3\] must be \[2,3\]/,
      });
      assert.throws(() => scatterAdd(x, i32, T.zeros([2, 3], { dtype: "i32" })), {
        name: "TypeError",
        message: /updates dtype i32 differs from x dtype f32/,
      });
      assert.throws(
        () => scatterAdd(T.zeros([2], { dtype: "bool" }), i32, T.zeros([2])),
        TypeError,
      );
      assert.throws(
        () => scatterAddAlongAxis(x, i32.view([1, 2]), T.zeros([2, 3]), 1),
        /scatterAddAlongAxis: updates shape \[2,3\] must be \[2,2\]/,
      );
      assert.throws(() => scatterAdd(x, f32, T.zeros([2, 3])), TypeError);
      for (const depth of [-1, 2.5, NaN]) {
        assert.throws(() => oneHot(i32, depth), {
          name: "RangeError",
          message: /oneHot: depth must be a non-negative integer/,
        });
      }
      assert.throws(() => oneHot(f32, 3), TypeError);
      assert.throws(() => oneHot(i32, 3, { dtype: "f64" as T.DType }), /unknown dtype "f64"/);
    });
  });
  if (testDevices().includes("webgpu")) {
    await t.step("mixed devices are rejected", () => {
      T.scope(() => {
        const g = T.tensor(new Int32Array([0]), { device: "webgpu" });
        assert.throws(
          () => take(T.zeros([2], { device: "cpu-reference" }), g),
          /different devices/,
        );
      });
    });
  }
  await t.step("failed ops leak nothing", async () => {
    const zi = T.zeros([2, 3], { dtype: "i32" }), row = i32.view([1, 2]);
    await noLeaks(() => {
      assert.throws(() => take(x, f32));
      assert.throws(() => scatterAdd(x, i32, zi));
      assert.throws(() => takeAlongAxis(x, row, 0));
      assert.throws(() => oneHot(i32, -1));
    });
    [zi, row].forEach((a) => a.dispose());
  });
  [x, i32, f32].forEach((a) => a.dispose());
});
