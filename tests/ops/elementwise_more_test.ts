/**
 * Tests of the rounding, transcendental, activation and classification ops against float64
 * references on every device, and finite-difference checks of their gradients.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { floorMod, roundHalfEven } from "../../kernels/cpu/elementwise_ops.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { away, checkGrad, frac, uniform } from "../autodiff/gradcheck.ts";

type U = (x: T.Tensor) => T.Tensor;
const softplusRef = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

const UNARY: [string, U, (x: number) => number, [number, number], number?][] = [
  ["floor", T.floor, Math.floor, [-5, 5]],
  ["ceil", T.ceil, Math.ceil, [-5, 5]],
  ["round", T.round, roundHalfEven, [-5, 5]],
  ["expm1", T.expm1, Math.expm1, [-3, 3]],
  ["log2", T.log2, Math.log2, [0.01, 100]],
  ["tan", T.tan, Math.tan, [-1.4, 1.4], 1e-5],
  ["atan", T.atan, Math.atan, [-20, 20], 5e-5],
  ["silu", T.silu, (x) => x / (1 + Math.exp(-x)), [-10, 10]],
  ["softplus", T.softplus, softplusRef, [-30, 30]],
  ["leakyRelu", (x) => T.leakyRelu(x, 0.2), (x) => (x >= 0 ? x : 0.2 * x), [-3, 3]],
  ["elu", (x) => T.elu(x, 1.5), (x) => (x > 0 ? x : 1.5 * Math.expm1(x)), [-4, 4]],
];

Deno.test("new unary ops match float64 references", async (t) => {
  const rand = rng(11);
  for (const device of testDevices()) {
    for (const [name, op, ref, [lo, hi], rtol] of UNARY) {
      await t.step(`${name} on ${device}`, async () => {
        await noLeaks(async () => {
          const x = randomArray(rand, 64, lo, hi);
          const y = T.scope(() => op(T.tensor(x, { shape: [8, 8], device })));
          assert.deepEqual(y.shape, [8, 8]);
          assert.equal(y.dtype, "f32");
          await T.assertAllClose(y, Array.from(x, ref), { rtol: rtol ?? 4e-6, atol: 1e-6 });
          y.dispose();
        });
      });
    }
  }
});

Deno.test("rounding, mod and classification edge cases", async (t) => {
  for (const device of testDevices()) {
    await t.step(`round halves to even on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997, 2 ** 23 + 0.5], {
            device,
          });
          assert.deepEqual(await T.round(x).array(), [-2, -2, -0, 0, 2, 2, 4, 0, 2 ** 23]);
          const i = T.tensor(new Int32Array([-3, 4]), { device });
          assert.equal(T.floor(i).dtype, "i32");
          assert.deepEqual(await T.round(i).array(), [-3, 4]);
          assert.deepEqual(await T.ceil(i).array(), [-3, 4]);
        })
      );
    });
    await t.step(`mod takes the divisor's sign on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const a = [-7, -1, 0, 1, 7, 5.5, -5.5];
          const b = [3, -3];
          const x = T.tensor(a, { shape: [7, 1], device });
          const y = T.tensor(b, { device });
          const want = a.flatMap((u) => b.map((v) => floorMod(u, v)));
          await T.assertAllClose(T.mod(x, y), want, { atol: 1e-6 });
          const xi = T.tensor(new Int32Array([-7, -1, 0, 1, 7, 3]), { device });
          const m = T.mod(xi, T.tensor(new Int32Array([3, -3, 2, 0, -2, 3]), { device }));
          assert.equal(m.dtype, "i32");
          assert.deepEqual(await m.array(), [2, -1, 0, 0, -1, 0]);
          const xu = T.tensor(new Uint32Array([7, 9]), { device });
          assert.deepEqual(await T.mod(xu, T.tensor(new Uint32Array([3, 0]), { device })).array(), [
            1,
            0,
          ]);
          assert.ok(Number.isNaN((await T.mod(T.tensor([1], { device }), 0).data())[0]));
          assert.deepEqual(await T.mod(5, T.tensor([3], { device })).array(), [2]);
        })
      );
    });
    await t.step(`isnan, isfinite and logicalXor on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([0, NaN, Infinity, -Infinity, -1e-40, 3.4e38], { device });
          assert.equal(T.isnan(x).dtype, "bool");
          assert.deepEqual(await T.isnan(x).array(), [false, true, false, false, false, false]);
          assert.deepEqual(await T.isfinite(x).array(), [true, false, false, false, true, true]);
          const i = T.tensor(new Int32Array([1, 2]), { device });
          assert.deepEqual(await T.isnan(i).array(), [false, false]);
          assert.deepEqual(await T.isfinite(T.tensor([true], { device })).array(), [true]);
          const xor = T.logicalXor(T.tensor([[0], [2]], { device }), T.tensor([0, -1], { device }));
          assert.deepEqual(await xor.array(), [[false, true], [true, false]]);
          assert.deepEqual(await T.logicalXor(T.tensor([1, 0], { device }), 1).array(), [
            false,
            true,
          ]);
        })
      );
    });
    await t.step(`extreme inputs stay finite on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([-100, -1e-7, 1e-7, 100], { device });
          await T.assertAllClose(T.softplus(x), [
            3.720076e-44,
            softplusRef(-1e-7),
            softplusRef(1e-7),
            100,
          ]);
          await T.assertAllClose(T.expm1(x), [-1, Math.expm1(-1e-7), Math.expm1(1e-7), Infinity], {
            rtol: 1e-6,
            atol: 0,
          });
          await T.assertAllClose(T.elu(x), [Math.expm1(-100), Math.expm1(-1e-7), 1e-7, 100]);
        })
      );
    });
  }
  await t.step("errors name the op", () => {
    assert.throws(() => T.floor(T.tensor([true])), /floor: bool input/);
    assert.throws(() => T.mod(T.tensor([1, 2]), T.tensor([1, 2, 3])), /mod: /);
    assert.throws(() => T.leakyRelu(T.tensor([1]), NaN), /leakyRelu: negativeSlope/);
  });
});

Deno.test("gradients of the new elementwise ops", async (t) => {
  const rand = rng(12);
  const cases = [
    {
      name: "floor",
      inputs: [{ shape: [2, 3], gen: frac(0.35) }],
      fn: ([x]: T.Tensor[]) => T.floor(x),
    },
    {
      name: "ceil",
      inputs: [{ shape: [2, 3], gen: frac(0.35) }],
      fn: ([x]: T.Tensor[]) => T.ceil(x),
    },
    {
      name: "round",
      inputs: [{ shape: [3], gen: frac(0.1) }],
      fn: ([x]: T.Tensor[]) => T.round(x),
    },
    {
      name: "mod",
      // x / y keeps away from integers: |x| < 0.9 |y| with y in +-[1, 2].
      inputs: [{ shape: [2, 3], gen: uniform(-0.8, 0.8) }, { shape: [3], gen: away(1, 2) }],
      fn: ([x, y]: T.Tensor[]) => T.mod(T.add(x, T.mul(y, 3)), y),
    },
    { name: "expm1", inputs: [{ shape: [2, 3] }], fn: ([x]: T.Tensor[]) => T.expm1(x) },
    {
      name: "log2",
      inputs: [{ shape: [4], gen: uniform(0.3, 3) }],
      fn: ([x]: T.Tensor[]) => T.log2(x),
    },
    { name: "tan", inputs: [{ shape: [4] }], fn: ([x]: T.Tensor[]) => T.tan(x) },
    {
      name: "atan",
      inputs: [{ shape: [4], gen: uniform(-3, 3) }],
      fn: ([x]: T.Tensor[]) => T.atan(x),
    },
    {
      name: "silu",
      inputs: [{ shape: [2, 3], gen: uniform(-4, 4) }],
      fn: ([x]: T.Tensor[]) => T.silu(x),
    },
    {
      name: "softplus",
      inputs: [{ shape: [2, 3], gen: uniform(-4, 4) }],
      fn: ([x]: T.Tensor[]) => T.softplus(x),
    },
    {
      name: "leakyRelu",
      inputs: [{ shape: [2, 3], gen: away() }],
      fn: ([x]: T.Tensor[]) => T.leakyRelu(x, 0.1),
    },
    {
      name: "elu",
      inputs: [{ shape: [2, 3], gen: away() }],
      fn: ([x]: T.Tensor[]) => T.elu(x, 0.7),
    },
  ];
  for (const device of testDevices()) {
    for (const c of cases) await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
  }
});
