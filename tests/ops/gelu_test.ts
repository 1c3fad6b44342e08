/**
 * The fused GELU (both forms) and relu's fused backward on every device, the `cpu` (wasm)
 * backend included: values and gradients against float64 references of the formulas, odd and
 * empty sizes, special values, f16, non-float inputs, one kernel launch each way, and
 * finite-difference checks of the first and second derivatives.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { erf64 } from "../../kernels/erf.ts";
import { profileHostKernels } from "../../kernels/host_profile.ts";
import { grad } from "../../autodiff/mod.ts";
import { sum } from "../../ops/reduce.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";
import { away, type Case, checkGrad, uniform } from "../autodiff/gradcheck.ts";

await startWasm();

const C = Math.sqrt(2 / Math.PI), A = 0.044715;
const PHI = (x: number) => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);

/** A form: its options, and float64 references of the value and the derivative. */
interface Form {
  name: string;
  approximate: boolean;
  f: (x: number) => number;
  df: (x: number) => number;
}

const FORMS: Form[] = [
  {
    name: "tanh",
    approximate: true,
    f: (x) => 0.5 * x * (1 + Math.tanh(C * (x + A * x ** 3))),
    df: (x) => {
      const t = Math.tanh(C * (x + A * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * A * x * x);
    },
  },
  {
    name: "erf",
    approximate: false,
    f: (x) => 0.5 * x * (1 + erf64(x / Math.SQRT2)),
    df: (x) => 0.5 * (1 + erf64(x / Math.SQRT2)) + x * PHI(x),
  },
];

/** `gelu(x)` and `dy * gelu'(x)` through the library's vjp. */
async function run(device: T.DeviceName, form: Form, x: T.Tensor, dy: T.Tensor) {
  return await T.scope(async () => {
    const [y, pullback] = T.vjp((v: T.Tensor) => T.gelu(v, form), x);
    const [dx] = pullback(dy);
    assert.equal(y.device, device);
    return [await y.data(), await dx.data()];
  });
}

Deno.test("gelu and its gradient match float64 references on every device", async (t) => {
  const rand = rng(7);
  // Odd sizes; 70001 crosses the wasm backend's threading threshold.
  for (const device of testDevices({ wasm: true })) {
    for (const form of FORMS) {
      for (const n of [1, 7, 37, 70001]) {
        await t.step(`${form.name} form, ${n} values on ${device}`, async () => {
          await noLeaks(async () => {
            const xv = randomArray(rand, n, -8, 8), gv = randomArray(rand, n, -2, 2);
            using x = T.tensor(xv, { device });
            using dy = T.tensor(gv, { device });
            const [y, dx] = await run(device, form, x, dy);
            for (let i = 0; i < n; i++) {
              const want = form.f(xv[i]), wantDx = gv[i] * form.df(xv[i]);
              const tol = 4e-7 + 2e-6 * Math.abs(want);
              assert.ok(Math.abs(y[i] - want) <= tol, `gelu(${xv[i]}) = ${y[i]}, want ${want}`);
              // The derivative cancels near its root (x ~ -0.75): allow a few f32 ulps of 1.
              const tolDx = (4e-7 + 2e-6 * Math.abs(form.df(xv[i]))) * Math.abs(gv[i]);
              assert.ok(
                Math.abs(dx[i] - wantDx) <= tolDx,
                `dx at ${xv[i]} (dy ${gv[i]}) = ${dx[i]}, want ${wantDx}`,
              );
            }
          });
        });
      }
    }
  }
});

Deno.test("gelu: empty tensors, special values and huge magnitudes", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(`empty on ${device}`, async () => {
      for (const form of FORMS) {
        for (const shape of [[0], [2, 0, 3]]) {
          using x = T.zeros(shape, { device });
          const [y, dx] = await run(device, form, x, x);
          assert.deepEqual([y.length, dx.length], [0, 0]);
        }
      }
    });
    await t.step(`special values on ${device}`, async () => {
      const xs = [NaN, Infinity, -Infinity, 3e38, -3e38, 1e13, -1e13, 50, -50, 20, -20, 0, -0];
      // Past the cut the values are max(x, -0) and the derivatives the step 1 / 0.
      const big = (x: number) => [x > 0 ? Math.fround(x) : 0, x > 0 ? 1 : 0];
      for (const form of FORMS) {
        using x = T.tensor(xs, { device });
        using dy = T.onesLike(x);
        const [y, dx] = await run(device, form, x, dy);
        assert.ok(Number.isNaN(y[0]) && Number.isNaN(dx[0]), "NaN propagates");
        for (let i = 1; i < xs.length - 2; i++) {
          const [wy, wdx] = big(xs[i]);
          assert.ok(y[i] === wy && dx[i] === wdx, `${form.name} at ${xs[i]}: ${y[i]}, ${dx[i]}`);
        }
        assert.ok(y[11] === 0 && y[12] === 0, `gelu(±0) = ${y[11]}, ${y[12]}`);
        // 1/2 up to the erfc approximation's 1e-7 on the wasm and WebGPU kernels.
        assert.ok(Math.abs(dx[11] - 0.5) <= 1e-7 && dx[12] === dx[11], `gelu'(0) = ${dx[11]}`);
        assert.ok(Object.is(y[12], -0) || device === "webgpu", "gelu(-0) is -0");
      }
    });
    await t.step(`values near the cut on ${device}`, async () => {
      // Either side of |x| = 10 (tanh) and 14 (erf) the values agree with the formula.
      const xs = [-14.5, -13.9, -10.5, -9.9, -6, 6, 9.9, 10.5, 13.9, 14.5];
      for (const form of FORMS) {
        using x = T.tensor(xs, { device });
        using dy = T.onesLike(x);
        const [y, dx] = await run(device, form, x, dy);
        xs.forEach((v, i) => {
          assert.ok(Math.abs(y[i] - form.f(v)) <= 2e-6 * Math.abs(v), `${form.name}(${v})`);
          assert.ok(Math.abs(dx[i] - form.df(v)) <= 1e-6, `${form.name}'(${v}) = ${dx[i]}`);
        });
      }
    });
  }
});

Deno.test("gelu on f16 computes in f32 and rounds once", async (t) => {
  const rand = rng(9);
  for (const device of testDevices({ wasm: true })) {
    for (const form of FORMS) {
      await t.step(`${form.name} form on ${device}`, async () => {
        await noLeaks(async () => {
          const xv = Float16Array.from(randomArray(rand, 53, -6, 6));
          const gv = Float16Array.from(randomArray(rand, 53, -2, 2));
          using x = T.tensor(xv, { device });
          using dy = T.tensor(gv, { device });
          const [y, dx] = await run(device, form, x, dy);
          assert.ok(y instanceof Float16Array && dx instanceof Float16Array);
          for (let i = 0; i < xv.length; i++) {
            const want = form.f(xv[i]), wantDx = gv[i] * form.df(xv[i]);
            assert.ok(Math.abs(y[i] - want) <= 1e-3 * Math.abs(want) + 1e-7, `gelu(${xv[i]})`);
            assert.ok(Math.abs(dx[i] - wantDx) <= 1e-3 * Math.abs(wantDx) + 1e-6, `dx(${xv[i]})`);
          }
        });
      });
    }
  }
});

Deno.test("gelu casts non-float inputs to f32", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, async () => {
      for (const form of FORMS) {
        using i = T.tensor(Int32Array.of(-2, 0, 3), { device });
        using b = T.tensor([true, false], { device });
        using yi = T.gelu(i, form);
        using yb = T.gelu(b, form);
        assert.deepEqual([yi.dtype, yb.dtype], ["f32", "f32"]);
        await T.assertAllClose(yi, [-2, 0, 3].map(form.f), { rtol: 2e-6, atol: 1e-7 });
        await T.assertAllClose(yb, [form.f(1), 0], { rtol: 2e-6 });
      }
    });
  }
});

Deno.test("gelu and relu launch one kernel forward and one backward", async (t) => {
  const cases: [string, (x: T.Tensor) => T.Tensor, string[]][] = [
    ["gelu", (x) => T.gelu(x), ["gelu", "geluGrad"]],
    ["gelu exact", (x) => T.gelu(x, { approximate: false }), ["geluErf", "geluErfGrad"]],
    ["relu", T.relu, ["relu", "reluGrad"]],
  ];
  for (const device of ["cpu", "cpu-reference"] as const) {
    for (const [name, f, kernels] of cases) {
      await t.step(`${name} on ${device}`, () => {
        using x = T.tensor(randomArray(rng(3), 300, -3, 3), { device });
        using dy = T.onesLike(x);
        // Both backends, so that a kernel run on the wasm one's fallback would count too.
        const profile = profileHostKernels(["cpu", "cpu-reference"], device);
        try {
          T.scope(() => {
            const [, pullback] = T.vjp(f, x);
            pullback(dy);
          });
        } finally {
          const launched = profile.stop().flatMap((k) =>
            Array(k.count).fill(k.name.replace(/ \(.*\)$/, ""))
          );
          assert.deepEqual(launched.sort(), kernels);
        }
      });
    }
  }
});

Deno.test("relu, and its fused backward passing dy where x > 0 only", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, async () => {
      using x = T.tensor([2, -1, 0, NaN, 1e-30, -Infinity, Infinity], { device });
      using dy = T.tensor([3, NaN, Infinity, 5, 7, 1, -2], { device });
      const [y, dx] = await T.scope(async () => {
        const [y, pullback] = T.vjp(T.relu, x);
        return [await y.data(), await pullback(dy)[0].data()];
      });
      assert.deepEqual([...dx], [3, 0, 0, 0, 7, 0, -2]);
      // The forward (a wasm kernel on the cpu backend) as the reference: NaN and -0 give +0.
      assert.deepEqual([...y], [2, 0, 0, 0, Math.fround(1e-30), 0, Infinity]);
      using negZero = T.tensor([-0], { device });
      using z = T.relu(negZero);
      assert.ok(Object.is((await z.data())[0], 0) || device === "webgpu", "relu(-0) is +0");
    });
  }
});

Deno.test("gelu gradients match finite differences, to the second order", async (t) => {
  const rand = rng(21);
  const cases: Case[] = FORMS.flatMap((form) => [
    {
      name: `gelu (${form.name})`,
      inputs: [{ shape: [3, 5], gen: uniform(-4, 4) }],
      fn: ([x]) => T.gelu(x, form),
    },
    {
      name: `grad of grad: gelu (${form.name})`,
      inputs: [{ shape: [2, 3], gen: uniform(-3, 3) }],
      fn: ([x]) => grad((v: T.Tensor) => sum(T.gelu(v, form)))(x),
    },
    {
      // The backward kernel's cotangent input: d/d(dy) of dy * gelu'(x).
      name: `gelu (${form.name}) pullback in dy`,
      inputs: [{ shape: [4] }],
      fn: ([g], device) =>
        T.scope(() => {
          const x = T.tensor([-2.5, -0.5, 0.75, 3], { device });
          return T.vjp((v: T.Tensor) => T.gelu(v, form), x)[1](g)[0];
        }),
    },
  ]);
  cases.push({
    name: "grad of grad: relu",
    inputs: [{ shape: [6], gen: away() }],
    fn: ([x]) => T.mul(grad((v: T.Tensor) => sum(T.mul(T.relu(v), v)))(x), x),
  });
  for (const device of testDevices({ wasm: true })) {
    for (const c of cases) {
      await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
    }
  }
});
