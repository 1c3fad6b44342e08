/**
 * Tests of scatterSet, scatterMax, scatterMin and scatter against a float64 reference on
 * every device (duplicates, negative and clamped indices, inner axes, dtypes, NaN), and
 * finite-difference checks of their gradients.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { checkGrad, type Gen } from "../autodiff/gradcheck.ts";

type Mode = "set" | "max" | "min";
const FNS = { set: T.scatterSet, max: T.scatterMax, min: T.scatterMin };
const COMBINE: Record<Mode, (a: number, b: number) => number> = {
  set: (_a, b) => b,
  max: Math.max,
  min: Math.min,
};

/** Reference over x [outer, n, inner] and updates [outer, m, inner], in update order. */
function ref(
  mode: Mode,
  x: ArrayLike<number>,
  idx: number[],
  upd: ArrayLike<number>,
  [outer, n, inner]: number[],
): number[] {
  const out = Array.from(x);
  const m = idx.length;
  for (let a = 0; a < outer; a++) {
    for (let k = 0; k < m; k++) {
      let j = idx[k] < 0 ? idx[k] + n : idx[k];
      j = Math.min(Math.max(j, 0), n - 1);
      for (let b = 0; b < inner; b++) {
        const to = (a * n + j) * inner + b;
        out[to] = COMBINE[mode](out[to], upd[(a * m + k) * inner + b]);
      }
    }
  }
  return out;
}

Deno.test("combining scatters match the reference", async (t) => {
  const rand = rng(71);
  for (const device of testDevices()) {
    for (const mode of ["set", "max", "min"] as const) {
      await t.step(`${mode} on ${device}`, async () => {
        await noLeaks(() =>
          T.scope(async () => {
            // [outer, n, inner] with axis 1; m updates with many duplicates, -1 and 9 (clamped).
            for (const [outer, n, inner, m] of [[1, 5, 1, 12], [3, 4, 2, 9], [2, 70, 3, 300]]) {
              const xv = randomArray(rand, outer * n * inner, -2, 2);
              const idx = Array.from({ length: m }, () => Math.floor(rand() * (n + 2)) - 1);
              const uv = randomArray(rand, outer * m * inner, -2, 2);
              const x = T.tensor(xv, { shape: [outer, n, inner], device });
              const ix = T.tensor(Int32Array.from(idx), { device });
              const u = T.tensor(uv, { shape: [outer, m, inner], device });
              const y = FNS[mode](x, ix, u, 1);
              assert.deepEqual(y.shape, [outer, n, inner]);
              assert.deepEqual(
                Array.from(await y.data()),
                ref(mode, xv, idx, uv, [outer, n, inner]).map(Math.fround),
              );
            }
          })
        );
      });
    }
    await t.step(`dtypes, NaN, index shapes and empty updates on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const i = (v: number[]) => T.tensor(Int32Array.from(v), { device });
          const xi = T.tensor(new Int32Array([5, 5, 5]), { device });
          const ui = T.tensor(new Int32Array([7, -3, 9, 1]), { device });
          assert.deepEqual(await T.scatterMax(xi, i([0, 1, 0, 2]), ui).array(), [9, 5, 5]);
          assert.deepEqual(await T.scatterMin(xi, i([0, 1, 0, 2]), ui).array(), [5, -3, 1]);
          const xu = T.tensor(new Uint32Array([1, 2]), { device });
          const iu = T.tensor(new Uint32Array([1, 5]), { device });
          assert.deepEqual(
            await T.scatterSet(xu, iu, T.tensor(new Uint32Array([8, 9]), { device })).array(),
            [1, 9],
          );
          const xb = T.tensor([false, false, true], { device });
          assert.deepEqual(
            await T.scatterSet(xb, i([0, 2]), T.tensor([true, false], { device })).array(),
            [true, false, false],
          );
          const xn = T.tensor([0, 0, NaN], { device });
          const un = T.tensor([NaN, 1, 2], { device });
          assert.deepEqual(
            Array.from(await T.scatterMax(xn, i([0, 1, 2]), un).data()),
            [NaN, 1, NaN],
          );
          assert.deepEqual(
            Array.from(await T.scatterMin(xn, i([0, 1, 2]), un).data()),
            [NaN, 0, NaN],
          );
          // 2-D indices: updates [...I] along axis 0.
          const x2 = T.zeros([3, 2], { device });
          const idx2 = T.tensor(new Int32Array([2, 0, 2, 1]), { shape: [2, 2], device });
          const u2 = T.reshape(T.arange(8, undefined, 1, { dtype: "f32", device }), [2, 2, 2]);
          assert.deepEqual(await T.scatterSet(x2, idx2, u2).array(), [[2, 3], [6, 7], [4, 5]]);
          assert.deepEqual(await T.scatter(x2, idx2, u2, { mode: "add" }).array(), [
            [2, 3],
            [6, 7],
            [4, 6],
          ]);
          assert.deepEqual(await T.scatter(x2, idx2, u2, { mode: "min" }).array(), [
            [0, 0],
            [0, 0],
            [0, 0],
          ]);
          const none = T.scatterSet(x2, i([]), T.zeros([0, 2], { device }));
          assert.deepEqual(await none.array(), [[0, 0], [0, 0], [0, 0]]);
        })
      );
    });
    await t.step(`gradient values: set winners and max ties on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([1, 1, 1], { device });
          const idx = T.tensor(new Int32Array([0, 2, 0]), { device });
          const u = T.tensor([3, 4, 5], { device });
          const w = T.tensor([10, 20, 30], { device });
          const f = (mode: Mode) => (a: T.Tensor, b: T.Tensor) =>
            T.sum(T.mul(FNS[mode](a, idx, b), w));
          const [gx, gu] = T.grad(f("set"), { argnums: [0, 1] })(x, u) as T.Tensor[];
          assert.deepEqual(await gx.array(), [0, 20, 0]);
          assert.deepEqual(await gu.array(), [0, 30, 10]);
          // max: target 0 gets max(1, 3, 5) = 5 from update 2; target 1 keeps x; target 2 ties.
          const [mx, mu] = T.grad(f("max"), { argnums: [0, 1] })(
            x,
            T.tensor([3, 1, 5], {
              device,
            }),
          ) as T.Tensor[];
          assert.deepEqual(await mx.array(), [0, 20, 15]);
          assert.deepEqual(await mu.array(), [0, 15, 10]);
        })
      );
    });
  }
  await t.step("errors name the op and the rule", () => {
    T.scope(() => {
      const x = T.zeros([3, 2]);
      const idx = T.tensor(new Int32Array([0, 1]));
      assert.throws(
        () => T.scatterSet(x, idx, T.zeros([3, 2])),
        /scatterSet: updates shape \[3,2\] must be \[2,2\]/,
      );
      assert.throws(
        () => T.scatterMax(x, T.tensor([0, 1]), T.zeros([2, 2])),
        /scatterMax: indices/,
      );
      assert.throws(
        () => T.scatterMin(x, idx, T.zeros([2, 2], { dtype: "i32" })),
        /scatterMin: updates dtype i32 differs from x dtype f32/,
      );
      assert.throws(
        () => T.scatterMax(T.tensor([true]), idx, T.tensor([true, false])),
        /scatterMax: bool x/,
      );
      assert.throws(
        () => T.scatter(x, idx, T.zeros([2, 2]), { mode: "mul" as never }),
        /scatter: mode/,
      );
      assert.throws(() => T.scatterSet(x, idx, T.zeros([3, 2]), 2), /scatterSet: axis 2/);
    });
  });
});

/** A shuffled ladder `0.2 i + off + 0.02 r`: values of two ladders with off 0, 0.1 are >= 0.06 apart. */
const ladder = (off: number): Gen => (rand, n) => {
  const v = Array.from({ length: n }, (_, i) => 0.2 * (i - n / 2) + off + 0.02 * rand());
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
};

Deno.test("gradients of the combining scatters", async (t) => {
  const rand = rng(72);
  for (const device of testDevices()) {
    for (const mode of ["set", "max", "min"] as const) {
      await t.step(`${mode} on ${device}`, () =>
        checkGrad(
          {
            name: `scatter ${mode}`,
            inputs: [{ shape: [2, 5, 2], gen: ladder(0.1) }, { shape: [2, 6, 2], gen: ladder(0) }],
            fn: ([x, u], dev) =>
              T.scope(() =>
                FNS[mode](x, T.tensor(new Int32Array([1, 3, 1, -1, 0, 1]), { device: dev }), u, 1)
              ),
          },
          device,
          rand,
        ));
    }
  }
});
