import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { cumprod } from "../../ops/cumprod.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { type Case, checkGrad, type Gen, uniform } from "../autodiff/gradcheck.ts";

type Shape = number[];
const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** Sequential f32 products (rounded after each step, as both kernels do). */
function cumprodRef(x: ArrayLike<number>, xs: Shape, axis: number, rev: boolean, excl: boolean) {
  const out = new Float64Array(x.length);
  const n = xs[axis], inner = size(xs.slice(axis + 1)), outer = size(xs.slice(0, axis));
  for (let a = 0; a < outer; a++) {
    for (let b = 0; b < inner; b++) {
      let acc = 1;
      for (let q = 0; q < n; q++) {
        const at = (a * n + (rev ? n - 1 - q : q)) * inner + b;
        if (excl) out[at] = acc;
        acc = Math.fround(acc * x[at]);
        if (!excl) out[at] = acc;
      }
    }
  }
  return out;
}

const FLAGS = [[false, false], [true, false], [false, true], [true, true]] as const;

Deno.test("cumprod matches sequential f32 references", async (t) => {
  const rand = rng(21);
  const cases: [Shape, number][] = [
    [[7], -1],
    [[3, 5], 0],
    [[3, 5], 1],
    [[4, 1, 6], 1],
    [[2, 70, 3], 1],
    [[3, 100], -1],
    [[1], 0],
    [[0, 4], 1],
  ];
  for (const device of testDevices()) {
    await t.step(device, async () => {
      for (const [xs, axis] of cases) {
        for (const [reverse, exclusive] of FLAGS) {
          await noLeaks(() =>
            T.scope(async () => {
              const x = randomArray(rand, size(xs), 0.9, 1.1);
              const y = cumprod(T.tensor(x, { shape: xs, device }), axis, { reverse, exclusive });
              const a = axis < 0 ? axis + xs.length : axis;
              const ref = cumprodRef(x, xs, a, reverse, exclusive);
              assert.deepEqual(y.shape, xs);
              await T.assertAllClose(y, ref, { rtol: 1e-6, atol: 0 });
            })
          );
        }
      }
    });
    await t.step(`zeros and integers on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const z = cumprod(T.tensor([2, 0, 3], { device }));
          assert.deepEqual(await z.array(), [2, 0, 0]);
          const i = T.tensor(new Int32Array([65536, 65536, 3, -1]), { device });
          assert.deepEqual(await cumprod(i).data(), new Int32Array([65536, 0, 0, 0]));
          const j = T.tensor(new Int32Array([-2, 3, 4]), { device });
          const jr = cumprod(j, 0, { reverse: true, exclusive: true });
          assert.deepEqual(await jr.data(), new Int32Array([12, 4, 1]));
          const u = T.tensor(new Uint32Array([2 ** 31, 3, 2]), { device });
          assert.deepEqual(await cumprod(u).data(), new Uint32Array([2 ** 31, 2 ** 31, 0]));
        })
      );
    });
  }
});

/** Uniform values with about a third set to exactly 0 (often several per scan). */
const withZeros: Gen = (rand, n) => uniform()(rand, n).map((v) => (rand() < 0.35 ? 0 : v));

const CASES: Case[] = [];
for (const gen of [uniform(), withZeros]) {
  for (const [reverse, exclusive] of FLAGS) {
    CASES.push({
      name: `cumprod${
        gen === withZeros ? " with zeros" : ""
      } reverse ${reverse} exclusive ${exclusive}`,
      inputs: [{ shape: [3, 6], gen }],
      fn: ([x]) => cumprod(x, 1, { reverse, exclusive }),
    });
  }
}
CASES.push({
  name: "cumprod along a middle axis, with zeros",
  inputs: [{ shape: [2, 5, 3], gen: withZeros }],
  fn: ([x]) => cumprod(x, 1),
});

Deno.test("cumprod gradients match finite differences, zeros included", async (t) => {
  const rand = rng(22);
  for (const device of testDevices()) {
    for (const c of CASES) {
      await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
    }
  }
});

Deno.test("cumprod's gradient at zeros is JAX's", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([2, 0, 3, 0, 5], { device });
          const g = T.grad((v: T.Tensor) => T.sum(cumprod(v)))(x) as T.Tensor;
          // d/dx_i of sum_j prod_{k <= j} x_k: x_0 sees 1 + 0; x_1 sees 2 + 2*3 + 0 + 0.
          assert.deepEqual(await g.array(), [1, 8, 0, 0, 0]);
          const ge = T.grad((v: T.Tensor) => T.sum(cumprod(v, 0, { exclusive: true })))(x);
          // Exclusive: 1 + x_0 + x_0 x_1 + ...; x_1 sees 2 + 2*3 + 0.
          assert.deepEqual(await (ge as T.Tensor).array(), [1, 8, 0, 0, 0]);
        })
      );
    });
  }
});

Deno.test("cumprod validates before running", async () => {
  await noLeaks(() =>
    T.scope(() => {
      const x = T.zeros([2, 3]), b = T.tensor([true]), scalar = T.zeros([]);
      assert.throws(() => cumprod(b), { name: "TypeError", message: /cumprod: bool/ });
      assert.throws(() => cumprod(x, 2), {
        name: "RangeError",
        message: /cumprod: axis 2 is out of range for rank 2/,
      });
      assert.throws(() => cumprod(scalar), RangeError);
      assert.throws(() => cumprod([1, 2] as unknown as T.Tensor), {
        name: "TypeError",
        message: /cumprod: x must be a Tensor, got an array/,
      });
    })
  );
});
