import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { fusedLayerNorm } from "../../ops/layer_norm.ts";
import { add, mul, sub } from "../../ops/binary.ts";
import { mean } from "../../ops/reduce.ts";
import { rsqrt, square } from "../../ops/unary.ts";
import { checkGrad } from "../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";

await startWasm();

/** Float64 layer norm and its gradients for `loss = sum(y * w)`. */
function reference(
  x: Float32Array,
  n: number,
  g: Float32Array | null,
  b: Float32Array | null,
  w: Float32Array,
  eps: number,
) {
  const rows = x.length / n;
  const y = new Float64Array(x.length), dx = new Float64Array(x.length);
  const dg = new Float64Array(n), db = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let m = 0, v = 0;
    for (let j = 0; j < n; j++) m += x[o + j];
    m /= n;
    for (let j = 0; j < n; j++) v += (x[o + j] - m) ** 2;
    const rs = 1 / Math.sqrt(v / n + eps);
    let s1 = 0, s2 = 0;
    for (let j = 0; j < n; j++) {
      const h = (x[o + j] - m) * rs, gg = w[o + j] * (g ? g[j] : 1);
      y[o + j] = h * (g ? g[j] : 1) + (b ? b[j] : 0);
      s1 += gg;
      s2 += gg * h;
      dg[j] += w[o + j] * h;
      db[j] += w[o + j];
    }
    for (let j = 0; j < n; j++) {
      const h = (x[o + j] - m) * rs, gg = w[o + j] * (g ? g[j] : 1);
      dx[o + j] = rs * (gg - s1 / n - h * s2 / n);
    }
  }
  return { y, dx, dg, db };
}

interface Case {
  name: string;
  shape: number[];
  affine: boolean;
  /** Makes the input values. */
  gen: (rand: () => number, size: number, n: number) => Float32Array;
  /** Absolute tolerance (relative to the values' scale, which is about 1). */
  atol: number;
}

const spread = (rand: () => number, size: number) => randomArray(rand, size, -2, 3);
const CASES: Case[] = [
  ...[1, 3, 5, 127, 259].map((n) => ({
    name: `width ${n}`,
    shape: [7, n],
    affine: true,
    gen: spread,
    atol: 2e-5,
  })),
  { name: "no scale or bias", shape: [2, 3, 5], affine: false, gen: spread, atol: 2e-5 },
  { name: "many rows", shape: [300, 259], affine: true, gen: spread, atol: 2e-5 },
  // Past what a WebGPU lane keeps in registers (16 elements of 256 lanes): streamed rows.
  { name: "width 4099", shape: [3, 4099], affine: true, gen: spread, atol: 2e-5 },
  { name: "size-0 leading axis", shape: [0, 3, 5], affine: true, gen: spread, atol: 0 },
  {
    name: "offset 1e4",
    shape: [5, 127],
    affine: true,
    gen: (rand, size) => randomArray(rand, size, 1e4 - 1, 1e4 + 1),
    // f32 sums of values near 1e4 lose about 1e-3 of the mean: the same as any f32 two-pass
    // mean, and nothing like the collapse of an E[x^2] - E[x]^2 variance.
    atol: 2e-2,
  },
  {
    name: "constant rows",
    shape: [4, 6],
    affine: true,
    gen: (_rand, size, n) => Float32Array.from({ length: size }, (_, i) => Math.floor(i / n) - 1.5),
    atol: 2e-5,
  },
];

function close(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, what: string) {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  const tol = atol * Math.max(1, scale);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new Error(`${what}: element ${i} is ${got[i]}, want ${want[i]} (tolerance ${tol})`);
    }
  }
}

Deno.test("fusedLayerNorm: values and gradients against float64", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    for (const c of CASES) {
      await t.step(`${c.name} on ${device}`, () =>
        noLeaks(() =>
          T.scope(async () => {
            const rand = rng(3);
            const n = c.shape[c.shape.length - 1];
            const size = c.shape.reduce((a, b) => a * b, 1);
            const xv = c.gen(rand, size, n);
            const gv = c.affine ? randomArray(rand, n, 0.5, 1.5) : null;
            const bv = c.affine ? randomArray(rand, n) : null;
            const wv = randomArray(rand, size);
            const eps = 1e-5;
            const want = reference(xv, n, gv, bv, wv, eps);
            const x = T.tensor(xv, { shape: c.shape, device });
            const w = T.tensor(wv, { shape: c.shape, device });
            const opts = (g?: T.Tensor, b?: T.Tensor) => ({ scale: g, bias: b, eps });
            const params = c.affine ? [T.tensor(gv!, { device }), T.tensor(bv!, { device })] : [];
            const y = fusedLayerNorm(x, opts(...params));
            assert.deepEqual(y.shape, c.shape);
            close(await y.data(), want.y, c.atol, "y");
            const loss = (...a: T.Tensor[]) =>
              T.sum(T.mul(fusedLayerNorm(a[0], opts(a[1], a[2])), w));
            const grads = T.grad(loss, { argnums: [0, 1, 2].slice(0, 1 + params.length) })(
              x,
              ...params,
            ) as T.Tensor[];
            close(await grads[0].data(), want.dx, c.atol * 4, "dx");
            if (c.affine) {
              // Column sums over many rows: allow for their length.
              const rows = size / n;
              close(await grads[1].data(), want.dg, c.atol * Math.sqrt(rows + 1), "dgamma");
              close(await grads[2].data(), want.db, c.atol * Math.sqrt(rows + 1), "dbeta");
            }
          })
        ));
    }
  }
});

Deno.test("fusedLayerNorm matches the composed layer norm it replaces to ~1e-6", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const rand = rng(8);
          const x = T.tensor(randomArray(rand, 6 * 33, -3, 3), { shape: [2, 3, 33], device });
          const g = T.tensor(randomArray(rand, 33), { device });
          const b = T.tensor(randomArray(rand, 33), { device });
          const mu = mean(x, -1, { keepdims: true });
          const c = sub(x, mu);
          const inv = rsqrt(add(mean(square(c), -1, { keepdims: true }), 1e-6));
          const composed = add(mul(mul(c, inv), g), b);
          await T.assertAllClose(fusedLayerNorm(x, { scale: g, bias: b }), composed, {
            rtol: 1e-6,
            atol: 2e-6,
          });
        })
      ));
  }
});

Deno.test("fusedLayerNorm gradients match finite differences", async (t) => {
  const rand = rng(12);
  for (const device of testDevices({ wasm: true })) {
    for (const [shape, affine] of [[[3, 5], true], [[2, 2, 7], true], [[4, 6], false]] as const) {
      const n = shape[shape.length - 1];
      const c = {
        name: `fusedLayerNorm ${shape} ${affine ? "with" : "without"} scale and bias`,
        inputs: [{ shape: [...shape] }, ...(affine ? [{ shape: [n] }, { shape: [n] }] : [])],
        fn: ([x, g, b]: T.Tensor[]) => fusedLayerNorm(x, { scale: g, bias: b, eps: 1e-5 }),
      };
      await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
    }
  }
});

Deno.test("fusedLayerNorm's backward keeps x, scale, mean and rstd, not y or bias", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(() => {
          const [rows, n] = [64, 128];
          const x = T.ones([rows, n], { device });
          const g = T.ones([n], { device }), b = T.zeros([n], { device });
          const before = T.memory(device).liveBytes;
          const [y, pullback] = T.vjp((x: T.Tensor) => fusedLayerNorm(x, { scale: g, bias: b }), x);
          // Held for the pullback beyond y itself: mean and rstd, two f32s per row (x and g
          // are the caller's). A centred or normalised copy would add rows * n * 4 bytes.
          const held = T.memory(device).liveBytes - before - y.size * 4;
          assert.ok(held <= 2 * rows * 4, `held ${held} bytes`);
          const node = y.node!;
          assert.deepEqual(node.outputs.map((o) => o.disposed), [true, false, false]);
          assert.deepEqual(node.inputs.map((i) => i.disposed), [false, false, true]);
          const [dx] = pullback(T.onesLike(y));
          assert.deepEqual(dx.shape, [rows, n]);
        })
      ));
  }
});

Deno.test("fusedLayerNorm: argument errors", () => {
  const x = T.tensor([[1, 2, 3]]);
  assert.throws(() => fusedLayerNorm(T.tensor(new Int32Array([1, 2]))), TypeError);
  assert.throws(() => fusedLayerNorm(T.zeros([2, 0])), RangeError);
  assert.throws(() => fusedLayerNorm(x, { eps: -1 }), RangeError);
  assert.throws(() => fusedLayerNorm(x, { bias: T.zeros([3]) }), TypeError);
  assert.throws(() => fusedLayerNorm(x, { scale: T.ones([4]) }), RangeError);
  T.disposeTree(x);
});

Deno.test("fusedLayerNorm's scale and bias gradients repeat bit for bit", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const rand = rng(30);
          const [rows, n] = [333, 70];
          const x = T.tensor(randomArray(rand, rows * n), { shape: [rows, n], device });
          const w = T.tensor(randomArray(rand, rows * n), { shape: [rows, n], device });
          const g = T.tensor(randomArray(rand, n), { device }), b = T.zeros([n], { device });
          const loss = (c: T.Tensor, d: T.Tensor) =>
            T.sum(T.mul(fusedLayerNorm(x, { scale: c, bias: d }), w));
          const once = async () =>
            await Promise.all(
              (T.grad(loss, { argnums: [0, 1] })(g, b) as T.Tensor[]).map((v) => v.data()),
            );
          const [first, second] = [await once(), await once()];
          assert.deepEqual(first, second);
        })
      ));
  }
});

Deno.test("fusedLayerNorm: first order works, second order is refused", () => {
  const x = T.tensor([[0.5, -1, 2]]);
  T.scope(() => {
    const f = (v: T.Tensor) => T.sum(T.square(fusedLayerNorm(v)));
    assert.deepEqual((T.grad(f)(x) as T.Tensor).shape, [1, 3]);
    assert.throws(() => T.grad((v: T.Tensor) => T.sum(T.grad(f)(v) as T.Tensor))(x), {
      name: "TypeError",
      message: /fusedLayerNorm: second-order gradients are not supported/,
    });
  });
  x.dispose();
});
