import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { erf64 } from "../../kernels/erf.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";

await startWasm();

const UNARY: [string, (x: T.Tensor) => T.Tensor, (x: number) => number, [number, number]][] = [
  ["neg", T.neg, (x) => -x, [-3, 3]],
  ["abs", T.abs, Math.abs, [-3, 3]],
  ["sign", T.sign, Math.sign, [-3, 3]],
  ["exp", T.exp, Math.exp, [-5, 5]],
  ["log", T.log, Math.log, [0.01, 10]],
  ["log1p", T.log1p, Math.log1p, [-0.9, 3]],
  ["sqrt", T.sqrt, Math.sqrt, [0, 9]],
  ["rsqrt", T.rsqrt, (x) => 1 / Math.sqrt(x), [0.1, 9]],
  ["square", T.square, (x) => x * x, [-3, 3]],
  ["tanh", T.tanh, Math.tanh, [-20, 20]],
  ["sigmoid", T.sigmoid, (x) => 1 / (1 + Math.exp(-x)), [-30, 30]],
  ["relu", T.relu, (x) => Math.max(x, 0), [-3, 3]],
  ["erf", T.erf, erf64, [-4, 4]],
  ["sin", T.sin, Math.sin, [-6, 6]],
  ["cos", T.cos, Math.cos, [-6, 6]],
  [
    "gelu (tanh)",
    (x) => T.gelu(x),
    (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
    [-5, 5],
  ],
  [
    "gelu (erf)",
    (x) => T.gelu(x, { approximate: false }),
    (x) => 0.5 * x * (1 + erf64(x / Math.SQRT2)),
    [-5, 5],
  ],
];

const BINARY: [string, (a: T.Tensor, b: T.Tensor) => T.Tensor, (a: number, b: number) => number][] =
  [
    ["add", T.add, (a, b) => a + b],
    ["sub", T.sub, (a, b) => a - b],
    ["mul", T.mul, (a, b) => a * b],
    ["div", T.div, (a, b) => a / b],
    ["pow", T.pow, (a, b) => a ** b],
    ["maximum", T.maximum, Math.max],
    ["minimum", T.minimum, Math.min],
  ];

const SHAPE_PAIRS: [number[], number[]][] = [
  [[7], [7]],
  [[3, 1, 5], [4, 1]],
  [[1], [2, 3]],
  [[2, 3, 4], []],
  [[5, 1, 3, 1], [1, 2, 1, 6]],
  [[0, 3], [1, 3]],
];

function reference(
  shapeA: number[],
  shapeB: number[],
  a: Float32Array,
  b: Float32Array,
  f: (a: number, b: number) => number,
) {
  const rank = Math.max(shapeA.length, shapeB.length);
  const pa = [...Array(rank - shapeA.length).fill(1), ...shapeA];
  const pb = [...Array(rank - shapeB.length).fill(1), ...shapeB];
  const out = pa.map((d, i) => Math.max(d, pb[i]) * (d === 0 || pb[i] === 0 ? 0 : 1));
  const n = out.reduce((x, y) => x * y, 1);
  const res = new Float64Array(n);
  const idx = (shape: number[], coords: number[]) =>
    coords.reduce((acc, c, i) => acc * shape[i] + (shape[i] === 1 ? 0 : c), 0);
  for (let i = 0; i < n; i++) {
    let r = i;
    const coords = new Array(rank);
    for (let d = rank - 1; d >= 0; d--) (coords[d] = r % out[d], r = Math.floor(r / out[d]));
    res[i] = f(a[idx(pa, coords)], b[idx(pb, coords)]);
  }
  return { out, res };
}

Deno.test("unary ops match float64 references on every device", async (t) => {
  const rand = rng(1);
  for (const device of testDevices({ wasm: true })) {
    for (const [name, op, ref, [lo, hi]] of UNARY) {
      await t.step(`${name} on ${device}`, async () => {
        await noLeaks(async () => {
          const x = randomArray(rand, 37, lo, hi);
          const y = T.scope(() => op(T.tensor(x, { shape: [37], device })));
          const expected = Array.from(x, ref);
          await T.assertAllClose(y, expected, {
            rtol: 2e-6,
            atol: name.startsWith("gelu") || name === "erf" ? 4e-7 : 1e-6,
          });
          y.dispose();
        });
      });
    }
  }
});

Deno.test("binary ops broadcast like NumPy on every device", async (t) => {
  const rand = rng(2);
  for (const device of testDevices({ wasm: true })) {
    for (const [name, op, ref] of BINARY) {
      for (const [sa, sb] of SHAPE_PAIRS) {
        await t.step(
          `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)} on ${device}`,
          async () => {
            await noLeaks(async () => {
              const na = sa.reduce((x, y) => x * y, 1), nb = sb.reduce((x, y) => x * y, 1);
              const lo = name === "pow" ? 0.1 : -2;
              const a = randomArray(rand, na, lo, 2),
                b = randomArray(rand, nb, name === "div" ? 0.5 : -2, 2);
              const { out, res } = reference(sa, sb, a, b, ref);
              await T.scope(async () => {
                const y = op(
                  T.tensor(a, { shape: sa, device }),
                  T.tensor(b, { shape: sb, device }),
                );
                assert.deepEqual(y.shape, out);
                await T.assertAllClose(y, res, { rtol: 2e-6, atol: 1e-6 });
              });
            });
          },
        );
      }
    }
  }
});

Deno.test("integer, bool and mixed dtypes", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const i = T.tensor(new Int32Array([-3, 0, 5]), { device });
          const u = T.tensor(new Uint32Array([1, 2, 3]), { device });
          assert.equal(T.add(i, i).dtype, "i32");
          assert.deepEqual(await T.add(i, 2).array(), [-1, 2, 7]);
          assert.deepEqual(await T.mul(u, 3).array(), [3, 6, 9]);
          assert.equal(T.add(i, 0.5).dtype, "f32");
          assert.deepEqual(await T.div(i, 2).array(), [-1.5, 0, 2.5]);
          assert.deepEqual(await T.abs(i).array(), [3, 0, 5]);
          assert.deepEqual(await T.relu(i).array(), [0, 0, 5]);
          assert.deepEqual(await T.exp(T.tensor(new Int32Array([0]), { device })).array(), [1]);
          assert.deepEqual(await T.cast(T.tensor([1.7, -1.7, 0], { device }), "i32").array(), [
            1,
            -1,
            0,
          ]);
          assert.deepEqual(await T.cast(T.tensor([1.7, 0], { device }), "bool").array(), [
            true,
            false,
          ]);
          assert.deepEqual(await T.cast(T.tensor([true, false], { device }), "f32").array(), [
            1,
            0,
          ]);
          assert.deepEqual(await T.cast(i, "u32").data(), new Uint32Array([4294967293, 0, 5]));
          assert.deepEqual(
            await T.pow(
              T.tensor([-2, -2, 0, 0, 2], { device }),
              T.tensor([3, 2, 0, 2, -1], { device }),
            ).array(),
            [-8, 4, 1, 0, 0.5],
          );
          assert.ok(Number.isNaN((await T.pow(T.tensor([-2], { device }), 0.5).data())[0]));
        })
      );
    });
  }
});

Deno.test("comparisons, logical ops, where and clip", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const a = T.tensor([1, 2, 3], { device });
          const b = T.tensor([[3], [2]], { device });
          assert.deepEqual(await T.equal(a, b).array(), [[false, false, true], [
            false,
            true,
            false,
          ]]);
          assert.deepEqual(await T.notEqual(a, 2).array(), [true, false, true]);
          assert.deepEqual(await T.less(a, 2).array(), [true, false, false]);
          assert.deepEqual(await T.lessEqual(a, 2).array(), [true, true, false]);
          assert.deepEqual(await T.greater(a, 2).array(), [false, false, true]);
          assert.deepEqual(await T.greaterEqual(a, 2).array(), [false, true, true]);
          const p = T.tensor([true, true, false, false], { device });
          const q = T.tensor([true, false, true, false], { device });
          assert.deepEqual(await T.logicalAnd(p, q).array(), [true, false, false, false]);
          assert.deepEqual(await T.logicalOr(p, q).array(), [true, true, true, false]);
          assert.deepEqual(await T.logicalNot(p).array(), [false, false, true, true]);
          assert.deepEqual(await T.logicalAnd(a, T.tensor([0, 1, 2], { device })).array(), [
            false,
            true,
            true,
          ]);
          assert.deepEqual(await T.where(T.greater(a, 1), a, T.neg(a)).array(), [-1, 2, 3]);
          assert.deepEqual(await T.where(T.tensor([[true], [false]], { device }), a, 0).array(), [[
            1,
            2,
            3,
          ], [0, 0, 0]]);
          assert.deepEqual(await T.clip(T.tensor([-2, 0.5, 3], { device }), 0, 1).array(), [
            0,
            0.5,
            1,
          ]);
          assert.deepEqual(await T.clip(T.tensor([-2, 0.5, 3], { device }), undefined, 1).array(), [
            -2,
            0.5,
            1,
          ]);
        })
      );
    });
  }
});

Deno.test("elementwise ops validate before running", async (t) => {
  await t.step("incompatible broadcast names op and shapes", () => {
    T.scope(() => {
      const a = T.zeros([2, 3]), b = T.zeros([4]);
      assert.throws(() => T.add(a, b), {
        name: "RangeError",
        message: /add: shapes \[2,3\] and \[4\] cannot be broadcast/,
      });
      assert.throws(() => T.where(T.zeros([2], { dtype: "bool" }), a, 1), RangeError);
    });
  });
  await t.step("bool arithmetic is rejected", () => {
    T.scope(() => {
      const p = T.tensor([true]);
      assert.throws(() => T.add(p, p), { name: "TypeError", message: /add: bool operands/ });
      assert.throws(() => T.exp(p), TypeError);
    });
  });
  await t.step("clip bounds and dtype names", () => {
    T.scope(() => {
      assert.throws(() => T.clip(T.zeros([1]), 2, 1), RangeError);
      assert.throws(() => T.cast(T.zeros([1]), "f64" as T.DType), {
        name: "TypeError",
        message: /unknown dtype "f64"/,
      });
    });
  });
  if (testDevices().includes("webgpu")) {
    await t.step("mixed devices are rejected", () => {
      T.scope(() => {
        assert.throws(
          () =>
            T.add(T.zeros([1], { device: "cpu-reference" }), T.zeros([1], { device: "webgpu" })),
          /different devices/,
        );
      });
    });
  }
  await t.step("failed ops leak nothing", async () => {
    const a = T.zeros([2, 3]), b = T.zeros([4]);
    await noLeaks(() => {
      assert.throws(() => T.add(a, b));
      assert.throws(() => T.add(a, "x" as unknown as T.Tensor));
      assert.throws(() => T.mul(a, b));
    });
    a.dispose();
    b.dispose();
  });
});
