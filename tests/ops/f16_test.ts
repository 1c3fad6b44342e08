/**
 * Half precision (`f16`) on every device: creation and readback, casts with special values,
 * every elementwise op against the f32 result rounded to f16, reductions, softmax and matmul
 * over rows long enough that f16 accumulation would be visibly wrong (gradients and the wasm
 * fallback: `f16_grad_test.ts`; refusals and sorting: `f16_refusals_test.ts`; files:
 * `tests/io/f16_io_test.ts`).
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { DeviceName, Tensor } from "../../mod.ts";
import { assertAllClose } from "../../ops/testing.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";

await startWasm();

const h = Math.f16round;
/** Relative tolerance of about two f16 ulps (an ulp is 2^-10 of the leading power of two). */
const RTOL = 2 ** -9;

/** `n` values in `[lo, hi)` already rounded to f16, so f16 and f32 inputs hold the same. */
function halfValues(seed: number, n: number, lo = -1, hi = 1): number[] {
  return [...randomArray(rng(seed), n, lo, hi)].map(h);
}

/** `f` on f16 inputs, and on the same values in f32 with the result rounded to f16. */
async function againstF32(
  device: DeviceName,
  inputs: { data: number[]; shape: number[] }[],
  f: (...xs: Tensor[]) => Tensor,
): Promise<{ got: Tensor; want: number[] }> {
  const want = await T.scope(async () => {
    const xs = inputs.map((x) => T.tensor(x.data, { shape: x.shape, device: "cpu-reference" }));
    const y = f(...xs);
    const d = await y.data();
    return y.dtype === "f32" ? [...d].map(h) : [...d];
  });
  const got = T.scope(() =>
    f(...inputs.map((x) => T.tensor(x.data, { shape: x.shape, dtype: "f16", device })))
  );
  return { got, want };
}

for (const device of testDevices({ wasm: true })) {
  Deno.test(`f16 creation and readback on ${device}`, () =>
    noLeaks(async () => {
      using a = T.tensor([[1, 0.1], [-2.5, 70000]], { dtype: "f16", device });
      assert.equal(a.dtype, "f16");
      const d = await a.data();
      assert.ok(d instanceof Float16Array);
      assert.deepEqual(await a.array(), [[1, h(0.1)], [-2.5, Infinity]]);
      using z = T.zeros([3], { dtype: "f16", device });
      using o = T.ones([2, 2], { dtype: "f16", device });
      using f = T.full([3], 1 / 3, { dtype: "f16", device });
      using r = T.arange(0, 5, 1, { dtype: "f16", device });
      using e = T.eye(2, 2, 0, { dtype: "f16", device });
      using fromTyped = T.tensor(Float16Array.of(1.5, -0), { device });
      assert.deepEqual([...await z.data()], [0, 0, 0]);
      assert.deepEqual(await o.array(), [[1, 1], [1, 1]]);
      assert.deepEqual([...await f.data()], [h(1 / 3), h(1 / 3), h(1 / 3)]);
      assert.deepEqual([...await r.data()], [0, 1, 2, 3, 4]);
      assert.deepEqual(await e.array(), [[1, 0], [0, 1]]);
      assert.equal(fromTyped.dtype, "f16");
      assert.ok(Object.is((await fromTyped.data())[1], -0));
      using empty = T.tensor([], { dtype: "f16", device });
      assert.deepEqual(await empty.array(), []);
      // Odd element counts exercise the padding of 2-byte data to whole words on the GPU.
      using odd = T.tensor([1, 2, 3], { dtype: "f16", device });
      assert.deepEqual([...await odd.data()], [1, 2, 3]);
    }));

  Deno.test(`f16 casts with special values on ${device}`, async (t) => {
    const specials = [
      ...[0, -0, 1, -1, 0.1, 1 / 3, 2049, 65504, 65519, 65520, 70000, -70000, 1e10],
      ...[Infinity, -Infinity, NaN, 6e-5, 1e-5, 2 ** -24, 1.5 * 2 ** -24, 2 ** -25, 1e-8, -1e-6],
      ...[3.4e38],
    ];
    await t.step(
      "f32 -> f16 rounds to nearest even, overflows to inf, keeps subnormals",
      async () => {
        using x = T.tensor(specials, { device });
        using y = T.cast(x, "f16");
        const got = [...await y.data()];
        const want = specials.map((v) => h(Math.fround(v)));
        got.forEach((g, i) =>
          assert.ok(Object.is(g, want[i]), `${specials[i]}: ${g} vs ${want[i]}`)
        );
      },
    );
    const halfs = specials.map(h);
    await t.step("f16 -> f32 is exact", async () => {
      using x = T.tensor(halfs, { dtype: "f16", device });
      using y = T.cast(x, "f32");
      const got = [...await y.data()];
      got.forEach((g, i) => assert.ok(Object.is(g, halfs[i]), `${halfs[i]}: ${g}`));
    });
    await t.step("f16 -> integers truncates and saturates; -> bool tests non-zero", async () => {
      using x = T.tensor([1.9, -1.9, 65504, Infinity, -Infinity, NaN, -0, 0.5], {
        dtype: "f16",
        device,
      });
      using i = T.cast(x, "i32");
      using u = T.cast(x, "u32");
      using b = T.cast(x, "bool");
      assert.deepEqual([...await i.data()], [1, -1, 65504, 2 ** 31 - 1, -(2 ** 31), 0, 0, 0]);
      assert.deepEqual([...await u.data()], [1, 0, 65504, 2 ** 32 - 1, 0, 0, 0, 0]);
      assert.deepEqual([...await b.data()], [1, 1, 1, 1, 1, 1, 0, 1]);
    });
    await t.step("integers and bool -> f16", async () => {
      using i = T.tensor([2049, -65519, 65520, 2 ** 31 - 1, 7], { dtype: "i32", device });
      using u = T.tensor([2 ** 32 - 1, 3], { dtype: "u32", device });
      using b = T.tensor([true, false], { device });
      using hi = T.cast(i, "f16");
      using hu = T.cast(u, "f16");
      using hb = T.cast(b, "f16");
      assert.deepEqual([...await hi.data()], [2048, -65504, Infinity, Infinity, 7]);
      assert.deepEqual([...await hu.data()], [Infinity, 3]);
      assert.deepEqual([...await hb.data()], [1, 0]);
    });
    await t.step("promotion: f16 with f32 is f32, with integers f16", () => {
      using a = T.ones([2], { dtype: "f16", device });
      using b = T.ones([2], { device });
      using c = T.ones([2], { dtype: "i32", device });
      using ab = T.add(a, b);
      using ac = T.add(a, c);
      using as = T.mul(a, 0.5);
      using dv = T.div(c, a);
      assert.deepEqual([ab.dtype, ac.dtype, as.dtype, dv.dtype], ["f32", "f16", "f16", "f16"]);
    });
  });

  Deno.test(`f16 elementwise ops match f32 rounded to f16 on ${device}`, async (t) => {
    const unary: [string, (x: Tensor) => Tensor, [number, number]][] = [
      ["neg", T.neg, [-3, 3]],
      ["abs", T.abs, [-3, 3]],
      ["sign", T.sign, [-3, 3]],
      ["exp", T.exp, [-5, 5]],
      ["log", T.log, [0.01, 10]],
      ["log1p", T.log1p, [-0.9, 3]],
      ["sqrt", T.sqrt, [0, 9]],
      ["rsqrt", T.rsqrt, [0.1, 9]],
      ["square", T.square, [-3, 3]],
      ["tanh", T.tanh, [-5, 5]],
      ["sigmoid", T.sigmoid, [-10, 10]],
      ["relu", T.relu, [-3, 3]],
      ["erf", T.erf, [-3, 3]],
      ["sin", T.sin, [-3, 3]],
      ["cos", T.cos, [-3, 3]],
      ["floor", T.floor, [-5, 5]],
      ["ceil", T.ceil, [-5, 5]],
      ["round", T.round, [-5, 5]],
      ["expm1", T.expm1, [-2, 2]],
      ["log2", T.log2, [0.01, 10]],
      ["tan", T.tan, [-1.2, 1.2]],
      ["atan", T.atan, [-5, 5]],
      ["softplus", T.softplus, [-5, 5]],
      ["isnan", T.isnan, [-1, 1]],
      ["isfinite", T.isfinite, [-1, 1]],
      ["logicalNot", T.logicalNot, [-1, 1]],
    ];
    for (const [name, f, [lo, hi]] of unary) {
      await t.step(name, async () => {
        const data = [...halfValues(name.length, 257, lo, hi), 0, -0, Infinity, -Infinity, NaN];
        const { got, want } = await againstF32(device, [{ data, shape: [data.length] }], f);
        using _ = got;
        assert.equal(got.dtype, name.startsWith("is") || name === "logicalNot" ? "bool" : "f16");
        await assertAllClose(got, want, { rtol: RTOL, atol: 2 ** -14, message: name });
      });
    }
    const binary: [string, (a: Tensor, b: Tensor) => Tensor, [number, number]][] = [
      ["add", T.add, [-100, 100]],
      ["sub", T.sub, [-100, 100]],
      ["mul", T.mul, [-100, 100]],
      ["div", T.div, [-100, 100]],
      ["pow", T.pow, [0.1, 3]],
      ["maximum", T.maximum, [-3, 3]],
      ["minimum", T.minimum, [-3, 3]],
      ["mod", T.mod, [-10, 10]],
      ["equal", T.equal, [-2, 2]],
      ["notEqual", T.notEqual, [-2, 2]],
      ["less", T.less, [-2, 2]],
      ["lessEqual", T.lessEqual, [-2, 2]],
      ["greater", T.greater, [-2, 2]],
      ["greaterEqual", T.greaterEqual, [-2, 2]],
      ["logicalAnd", T.logicalAnd, [-1, 1]],
      ["logicalOr", T.logicalOr, [-1, 1]],
    ];
    for (const [name, f, [lo, hi]] of binary) {
      await t.step(name, async () => {
        // Rounding to a coarse grid makes ties and equal operands common (for the compares).
        const grid = (v: number) => name === "pow" || name === "div" ? v : Math.round(v * 4) / 4;
        const a = halfValues(1, 24, lo, hi).map(grid);
        const b = halfValues(2, 24, lo, hi).map(grid);
        const { got, want } = await againstF32(
          device,
          [{ data: a, shape: [24, 1] }, { data: b, shape: [1, 24] }],
          f,
        );
        using _ = got;
        const compare = !["add", "sub", "mul", "div", "pow", "maximum", "minimum", "mod"]
          .includes(name);
        assert.equal(got.dtype, compare ? "bool" : "f16");
        await assertAllClose(got, want, { rtol: RTOL, atol: 2 ** -14, message: name });
      });
    }
    await t.step("where", async () => {
      const c = halfValues(3, 40).map((v) => (v > 0 ? 1 : 0));
      const a = halfValues(4, 40), b = halfValues(5, 40);
      using cond = T.tensor(c, { dtype: "bool", device });
      using x = T.tensor(a, { dtype: "f16", device });
      using y = T.tensor(b, { dtype: "f16", device });
      using w = T.where(cond, x, y);
      assert.equal(w.dtype, "f16");
      assert.deepEqual([...await w.data()], c.map((ci, i) => (ci ? a[i] : b[i])));
    });
  });

  Deno.test(`f16 data movement on ${device}`, () =>
    noLeaks(async () => {
      const data = halfValues(6, 2 * 3 * 5);
      using x = T.tensor(data, { shape: [2, 3, 5], dtype: "f16", device });
      using x32 = T.tensor(data, { shape: [2, 3, 5], device: "cpu-reference" });
      const same = async (name: string, f: (x: Tensor) => Tensor) => {
        using got = T.scope(() => f(x));
        using want = T.scope(() => f(x32));
        assert.equal(got.dtype, "f16", name);
        assert.deepEqual(got.shape, want.shape, name);
        // Moves are exact; the scatter-adds sum a few values in f32 and round once.
        assert.deepEqual([...await got.data()], [...await want.data()].map(h), name);
      };
      await same("transpose", (v) => T.transpose(v, [2, 0, 1]));
      await same("slice", (v) => T.slice(v, [0, 1, 1], [2, 3, 5], [1, 1, 2]));
      await same("concat", (v) => T.concat([v, v], 1));
      await same("stack", (v) => T.stack([v, v], 0));
      await same("pad", (v) => T.pad(v, [[0, 0], [1, 0], [0, 3]], 0.5));
      await same("broadcastTo", (v) => T.broadcastTo(T.slice(v, [0, 0, 0], [1, 1, 5]), [4, 3, 5]));
      await same("flip", (v) => T.flip(v, 2));
      await same("take", (v) => T.take(v, T.tensor([2, 0], { dtype: "i32", device: v.device }), 1));
      await same(
        "takeAlongAxis",
        (v) => T.takeAlongAxis(v, T.zeros([2, 3, 2], { dtype: "i32", device: v.device }), 2),
      );
      const ids = (v: Tensor, i: number[]) => T.tensor(i, { dtype: "i32", device: v.device });
      await same("scatterAdd", (v) => T.scatterAdd(v, ids(v, [1, 1, 0]), v, 1));
      await same("scatterAdd of vec4 rows", (v) => {
        const rows = T.reshape(T.slice(v, [0, 0, 0], [2, 3, 4]), [6, 4]);
        return T.scatterAdd(rows, ids(v, [5, 0, 5, 5]), T.slice(rows, [0], [4]), 0);
      });
      await same("take gradient", (v) =>
        T.grad((y: Tensor) => T.sum(T.take(y, ids(v, [2, 2, 0]), 1)))(v));
      using idx = T.tensor([0, 2], { dtype: "i32", device });
      using hot = T.oneHot(idx, 3, { dtype: "f16" });
      assert.deepEqual(await hot.array(), [[1, 0, 0], [0, 0, 1]]);
    }));

  Deno.test(`f16 reductions accumulate in f32 on ${device}`, async (t) => {
    // A long row of values in [0, 1): its sum (~5000 or ~10000) has an f16 ulp of 4 or 8, and
    // summing it in f16 drifts by hundreds; f32 sums land within an ulp of the exact sum.
    for (const n of [10000, 20001]) {
      await t.step(`sum and mean of ${n} values`, async () => {
        const data = halfValues(n, n, 0, 1);
        const exact = data.reduce((s, v) => s + v, 0);
        using x = T.tensor(data, { dtype: "f16", device });
        using s = T.sum(x);
        using m = T.mean(x);
        assert.equal(s.dtype, "f16");
        assert.equal(m.dtype, "f16");
        await assertAllClose(s, h(exact), { rtol: 2 ** -10, atol: 0 });
        await assertAllClose(m, h(exact / n), { rtol: 2 ** -10, atol: 0 });
      });
    }
    await t.step("a mean whose f16 sum would overflow", async () => {
      using x = T.ones([100000], { dtype: "f16", device });
      using m = T.mean(x);
      assert.deepEqual([...await m.data()], [1]);
    });
    await t.step("columns, max, min, argmax, argmin, prod, variance, std", async () => {
      const data = halfValues(9, 300 * 7, -2, 2);
      const { got: cols, want } = await againstF32(
        device,
        [{ data, shape: [300, 7] }],
        (x) => T.sum(x, 0),
      );
      using _c = cols;
      await assertAllClose(cols, want, { rtol: RTOL, atol: 2 ** -12 });
      for (const f of [T.max, T.min, T.prod, T.variance, T.std] as const) {
        const { got, want } = await againstF32(
          device,
          [{ data: data.slice(0, 70), shape: [10, 7] }],
          (x) => f(x, 1),
        );
        using _ = got;
        assert.equal(got.dtype, "f16");
        await assertAllClose(got, want, { rtol: RTOL, atol: 2 ** -14, message: f.name });
      }
      using x = T.tensor(data, { shape: [300, 7], dtype: "f16", device });
      using x32 = T.tensor(data, { shape: [300, 7], device: "cpu-reference" });
      for (const f of [T.argmax, T.argmin]) {
        using a = f(x, 0);
        using b = f(x32, 0);
        assert.deepEqual([...await a.data()], [...await b.data()]);
      }
    });
  });

  Deno.test(`f16 softmax and logsumexp normalise in f32 on ${device}`, async (t) => {
    for (const [rows, n] of [[3, 5000], [2, 13]]) {
      await t.step(`[${rows}, ${n}]`, async () => {
        const data = halfValues(rows + n, rows * n, -3, 3);
        const shape = [rows, n];
        for (const f of [T.softmax, T.logSoftmax] as const) {
          const { got, want } = await againstF32(device, [{ data, shape }], (x) => f(x));
          using _ = got;
          assert.equal(got.dtype, "f16");
          await assertAllClose(got, want, { rtol: RTOL, atol: 2 ** -24, message: f.name });
        }
        const { got, want } = await againstF32(device, [{ data, shape }], (x) => T.logsumexp(x, 1));
        using _ = got;
        assert.equal(got.dtype, "f16");
        await assertAllClose(got, want, { rtol: RTOL, atol: 0 });
      });
    }
    await t.step("over a middle axis", async () => {
      const data = halfValues(11, 4 * 9 * 3, -3, 3);
      const { got, want } = await againstF32(
        device,
        [{ data, shape: [4, 9, 3] }],
        (x) => T.softmax(x, 1),
      );
      using _ = got;
      await assertAllClose(got, want, { rtol: RTOL, atol: 2 ** -24 });
    });
  });

  Deno.test(`f16 matmul sums in f32 on ${device}`, async (t) => {
    const cases: [string, number[], number[], T.MatmulOptions][] = [
      ["odd sizes, long k", [7, 1001], [1001, 5], {}],
      ["transposeA", [13, 7], [13, 9], { transposeA: true }],
      ["transposeB", [7, 13], [9, 13], { transposeB: true }],
      ["batch broadcast", [2, 3, 7, 9], [9, 5], {}],
      ["vector", [33], [33, 4], {}],
      ["vec4 loads and stores", [12, 64], [64, 16], {}],
      ["vec4, both transposed", [64, 12], [16, 64], { transposeA: true, transposeB: true }],
      ["vec4 with ragged tiles", [130, 64], [64, 132], {}],
    ];
    for (const [name, sa, sb, opts] of cases) {
      await t.step(name, async () => {
        const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
        const a = halfValues(size(sa), size(sa), 0, 1);
        const b = halfValues(size(sb), size(sb), 0, 1);
        const { got, want } = await againstF32(
          device,
          [{ data: a, shape: sa }, { data: b, shape: sb }],
          (x, y) => T.matmul(x, y, opts),
        );
        using _ = got;
        assert.equal(got.dtype, "f16");
        await assertAllClose(got, want, { rtol: 2 ** -10, atol: 2 ** -14, message: name });
      });
    }
  });
}
