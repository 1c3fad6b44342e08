import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { matmul, MATMUL_PRIMITIVE } from "../../ops/matmul.ts";
import { getDevice } from "../../ops/device.ts";
import { fromStorage, storageOf } from "../../ops/tensor.ts";
import { TILES } from "../../kernels/webgpu/matmul.ts";
import { matmulGpu } from "../../kernels/webgpu/matmul_split.ts";
import type { GpuDevice, GpuStorage } from "../../kernels/webgpu/device.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";

await startWasm();

type Shape = number[];
const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** Index of `coords` (aligned to the end) in a row-major `shape`, broadcasting size-1 axes. */
function bIndex(shape: Shape, coords: Shape): number {
  let at = 0;
  const pad = coords.length - shape.length;
  for (let d = 0; d < shape.length; d++) {
    at = at * shape[d] + (shape[d] === 1 ? 0 : coords[d + pad]);
  }
  return at;
}

/** NumPy matmul in float64, written from the definition (independent of the library). */
function matmulRef(
  a: ArrayLike<number>,
  sa: Shape,
  b: ArrayLike<number>,
  sb: Shape,
  ta = false,
  tb = false,
): { shape: Shape; data: Float64Array } {
  const A = sa.length === 1 ? [1, sa[0]] : sa, B = sb.length === 1 ? [sb[0], 1] : sb;
  ta &&= sa.length > 1;
  tb &&= sb.length > 1;
  const ra = A.length, rb = B.length;
  const [m, k] = ta ? [A[ra - 1], A[ra - 2]] : [A[ra - 2], A[ra - 1]];
  const n = tb ? B[rb - 2] : B[rb - 1];
  const ba = A.slice(0, -2), bb = B.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const bo = Array.from({ length: rank }, (_, d) => {
    const x = ba[d - rank + ba.length] ?? 1, y = bb[d - rank + bb.length] ?? 1;
    return x === 1 ? y : x;
  });
  const data = new Float64Array(size(bo) * m * n);
  for (let z = 0; z < size(bo); z++) {
    const coords: Shape = [];
    for (let d = rank - 1, r = z; d >= 0; d--) (coords[d] = r % bo[d], r = Math.floor(r / bo[d]));
    const za = bIndex(ba, coords), zb = bIndex(bb, coords);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const x = a[za * m * k + (ta ? p * m + i : i * k + p)];
          const y = b[zb * k * n + (tb ? j * k + p : p * n + j)];
          s += x * y;
        }
        data[(z * m + i) * n + j] = s;
      }
    }
  }
  const shape = [...bo];
  if (sa.length > 1) shape.push(m);
  if (sb.length > 1) shape.push(n);
  return { shape, data };
}

/** Stored shape of a logical `[..., r, c]` operand read with `t`. */
const stored = (batch: Shape, r: number, c: number, t: boolean): Shape =>
  t ? [...batch, c, r] : [...batch, r, c];

const tol = (k: number) => ({ rtol: 1e-4, atol: 2e-6 * Math.max(8, k) });

async function check(
  device: T.DeviceName,
  rand: () => number,
  sa: Shape,
  sb: Shape,
  ta: boolean,
  tb: boolean,
) {
  const a = randomArray(rand, size(sa)), b = randomArray(rand, size(sb));
  const { shape, data } = matmulRef(a, sa, b, sb, ta, tb);
  await T.scope(async () => {
    const y = matmul(T.tensor(a, { shape: sa, device }), T.tensor(b, { shape: sb, device }), {
      transposeA: ta,
      transposeB: tb,
    });
    assert.equal(y.dtype, "f32");
    assert.deepEqual(y.shape, shape);
    await T.assertAllClose(y, data, tol(sa.at(-1)!));
  });
}

const TRANSPOSES: [boolean, boolean][] = [[false, false], [true, false], [false, true], [
  true,
  true,
]];

Deno.test("matmul matches a float64 reference on odd sizes and every transpose", async (t) => {
  const rand = rng(31);
  const mkn: [number, number, number][] = [
    [1, 1, 1],
    [3, 17, 1],
    [1, 65, 3],
    [17, 3, 65],
    [65, 129, 17],
    [129, 17, 65],
    [4, 8, 12],
    [33, 64, 7],
  ];
  for (const device of testDevices({ wasm: true })) {
    for (const [ta, tb] of TRANSPOSES) {
      await t.step(`${device} transposeA=${ta} transposeB=${tb}`, async () => {
        await noLeaks(async () => {
          for (const [m, k, n] of mkn) {
            await check(device, rand, stored([], m, k, ta), stored([], k, n, tb), ta, tb);
          }
        });
      });
    }
  }
});

Deno.test("matmul covers full tiles (256x192 @ 192x320)", async (t) => {
  const rand = rng(32);
  for (const device of testDevices({ wasm: true })) {
    for (const [ta, tb] of TRANSPOSES) {
      await t.step(`${device} transposeA=${ta} transposeB=${tb}`, async () => {
        await noLeaks(() =>
          check(device, rand, stored([], 256, 192, ta), stored([], 192, 320, tb), ta, tb)
        );
      });
    }
  }
});

Deno.test("matmul broadcasts batch dimensions and promotes 1-D operands", async (t) => {
  const rand = rng(33);
  const cases: [Shape, Shape, boolean, boolean][] = [
    [[2, 1, 3, 4], [5, 4, 6], false, false],
    [[2, 1, 4, 3], [5, 6, 4], true, true],
    [[3, 5, 7], [7, 2], false, false],
    [[4, 6], [2, 3, 6, 5], false, false],
    [[2, 1, 3, 5], [1, 4, 5, 2], false, false],
    [[1, 3, 5], [2, 1, 5, 1], false, false],
    [[3, 1, 2, 1, 4, 3], [1, 2, 1, 2, 3, 2], false, false],
    [[5], [5], false, false],
    [[5], [5, 3], false, false],
    [[4, 5], [5], false, false],
    [[5], [2, 5, 3], false, false],
    [[2, 4, 5], [5], false, false],
    [[5], [3, 5], false, true],
    [[5, 4], [5], true, false],
    [[1, 1], [1, 1], false, false],
  ];
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, async () => {
      await noLeaks(async () => {
        for (const [sa, sb, ta, tb] of cases) await check(device, rand, sa, sb, ta, tb);
      });
    });
  }
});

Deno.test("matmul handles empty dimensions, integer operands and 1-D results", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const z = matmul(T.zeros([0, 3], { device }), T.zeros([3, 4], { device }));
          assert.deepEqual(z.shape, [0, 4]);
          const k0 = matmul(T.zeros([2, 0], { device }), T.zeros([0, 3], { device }));
          assert.deepEqual(await k0.array(), [[0, 0, 0], [0, 0, 0]]);
          assert.deepEqual(
            matmul(T.zeros([0, 2, 3], { device }), T.zeros([3, 1], { device })).shape,
            [
              0,
              2,
              1,
            ],
          );
          const i = T.tensor(new Int32Array([1, 2, 3, 4]), { shape: [2, 2], device });
          const y = matmul(i, T.tensor([true, false], { device }));
          assert.equal(y.dtype, "f32");
          assert.deepEqual(await y.array(), [1, 3]);
          const dot = matmul(T.tensor([1, 2, 3], { device }), T.tensor([4, 5, 6], { device }));
          assert.deepEqual(dot.shape, []);
          assert.deepEqual(await dot.array(), 32);
        })
      );
    });
  }
});

Deno.test("every WebGPU tile config is exact on aligned and ragged shapes", async (t) => {
  if (!T.devices().includes("webgpu")) return;
  const dev = getDevice("webgpu") as GpuDevice;
  const rand = rng(34);
  const shapes: [number, number, number][] = [[128, 32, 128], [65, 19, 130]];
  const configs = {
    ...TILES,
    uneven: { wx: 4, wy: 2, tm: 8, tn: 4, bk: 4 },
    square128: { wx: 16, wy: 16, tm: 8, tn: 8, bk: 8, group: 2 },
  };
  for (const [name, tile] of Object.entries(configs)) {
    await t.step(name, async () => {
      await noLeaks(async () => {
        for (const [m, k, n] of shapes) {
          for (const [ta, tb] of TRANSPOSES) {
            const sa = stored([2], m, k, ta), sb = stored([], k, n, tb);
            const a = randomArray(rand, size(sa)), b = randomArray(rand, size(sb));
            const { data } = matmulRef(a, sa, b, sb, ta, tb);
            await T.scope(async () => {
              const ga = T.tensor(a, { shape: sa, device: "webgpu" });
              const gb = T.tensor(b, { shape: sb, device: "webgpu" });
              const spec = {
                batchShape: [2],
                aStrides: [m * k],
                bStrides: [0],
                m,
                n,
                k,
                transA: ta,
                transB: tb,
              };
              const out = matmulGpu(
                dev,
                storageOf(ga) as GpuStorage,
                storageOf(gb) as GpuStorage,
                spec,
                tile,
              );
              const y = fromStorage(dev, out, [2, m, n], "f32");
              await T.assertAllClose(y, data, tol(k));
            });
          }
        }
      });
    });
  }
});

Deno.test("matmul VJP rule: dA = g B^T, dB = A^T g, in the broadcast shape", async (t) => {
  const rand = rng(35);
  const cases: [Shape, Shape][] = [[[2, 1, 3, 4], [5, 4, 6]], [[3, 5], [5, 2]], [[4, 3, 5], [
    5,
    1,
  ]]];
  const rule = MATMUL_PRIMITIVE.vjp;
  assert.notEqual(rule, "none");
  if (rule === "none") return;
  for (const device of testDevices({ wasm: true })) {
    for (const [sa0, sb0] of cases) {
      for (const [ta, tb] of TRANSPOSES) {
        await t.step(`${device} ${fmt(sa0)} @ ${fmt(sb0)} ${ta} ${tb}`, async () => {
          await noLeaks(() =>
            T.scope(async () => {
              const [m, k] = sa0.slice(-2), n = sb0.at(-1)!;
              const sa = stored(sa0.slice(0, -2), m, k, ta),
                sb = stored(sb0.slice(0, -2), k, n, tb);
              const a = randomArray(rand, size(sa)), b = randomArray(rand, size(sb));
              const A = T.tensor(a, { shape: sa, device }), B = T.tensor(b, { shape: sb, device });
              const y = matmul(A, B, { transposeA: ta, transposeB: tb });
              const g = randomArray(rand, y.size);
              const G = T.tensor(g, { shape: [...y.shape], device });
              const [dA, dB] = rule([G], {
                inputs: [A, B],
                outputs: [y],
                params: { transA: ta, transB: tb },
              });
              // d<y, g>/dA summed over broadcast axes equals the rule's cotangent summed down.
              for (const [d, s, grad] of [[dA!, sa, 0], [dB!, sb, 1]] as const) {
                const got = sumTo(await d.data(), [...d.shape], s);
                const want = numericGrad(a, sa, b, sb, ta, tb, g, grad);
                await T.assertAllClose(got, want, { rtol: 1e-4, atol: 1e-5 });
              }
            })
          );
        });
      }
    }
  }
});

Deno.test("matmul gradients through vjp: 1-D promotion undone, broadcast axes summed", async (t) => {
  const rand = rng(36);
  const cases: [Shape, Shape, boolean, boolean][] = [
    [[5], [5], false, false],
    [[5], [2, 5, 3], false, false],
    [[2, 4, 5], [5], false, false],
    [[5, 4], [5], true, false],
    [[2, 1, 3, 4], [5, 4, 6], false, false],
    [[2, 1, 4, 3], [5, 6, 4], true, true],
  ];
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          for (const [sa, sb, ta, tb] of cases) {
            const a = randomArray(rand, size(sa)), b = randomArray(rand, size(sb));
            const A = T.tensor(a, { shape: sa, device }), B = T.tensor(b, { shape: sb, device });
            const opts = { transposeA: ta, transposeB: tb };
            const [y, pullback] = T.vjp((x: T.Tensor, w: T.Tensor) => matmul(x, w, opts), A, B);
            const g = randomArray(rand, y.size);
            const [dA, dB] = pullback(T.tensor(g, { shape: [...y.shape], device }));
            assert.deepEqual(dA.shape, sa);
            assert.deepEqual(dB.shape, sb);
            const close = { rtol: 1e-4, atol: 1e-5 };
            await T.assertAllClose(dA, numericGrad(a, sa, b, sb, ta, tb, g, 0), close);
            await T.assertAllClose(dB, numericGrad(a, sa, b, sb, ta, tb, g, 1), close);
          }
        })
      );
    });
  }
});

const fmt = (s: Shape) => `[${s.join(",")}]`;

/** Sums `x` (shape `from`) over broadcast axes down to `to`. */
function sumTo(x: ArrayLike<number>, from: Shape, to: Shape): Float64Array {
  const out = new Float64Array(size(to));
  for (let i = 0; i < x.length; i++) {
    const coords: Shape = [];
    for (let d = from.length - 1, r = i; d >= 0; d--) {
      (coords[d] = r % from[d], r = Math.floor(r / from[d]));
    }
    out[bIndex(to, coords)] += x[i];
  }
  return out;
}

/** Exact gradient of `<matmul(a, b), g>` w.r.t. `a` (0) or `b` (1): linear, so one-hot probes. */
function numericGrad(
  a: Float32Array,
  sa: Shape,
  b: Float32Array,
  sb: Shape,
  ta: boolean,
  tb: boolean,
  g: Float32Array,
  which: 0 | 1,
): Float64Array {
  const x = which === 0 ? a : b;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const e = new Float64Array(x.length);
    e[i] = 1;
    const y = which === 0 ? matmulRef(e, sa, b, sb, ta, tb) : matmulRef(a, sa, e, sb, ta, tb);
    out[i] = y.data.reduce((s, v, j) => s + v * g[j], 0);
  }
  return out;
}

Deno.test("matmul validates shapes, ranks and devices before running", async () => {
  const a = T.zeros([2, 3], { device: "cpu-reference" }),
    b = T.zeros([4, 5], { device: "cpu-reference" });
  const s = T.zeros([], { device: "cpu-reference" });
  await noLeaks(() =>
    T.scope(() => {
      assert.throws(() => matmul(a, b), {
        name: "RangeError",
        message: "matmul: inner dimensions differ: [2,3] @ [4,5] (3 vs 4)",
      });
      assert.throws(() => matmul(a, b, { transposeA: true, transposeB: true }), {
        name: "RangeError",
        message:
          "matmul: inner dimensions differ: [2,3] (transposeA) @ [4,5] (transposeB) (2 vs 5)",
      });
      assert.throws(() => matmul(T.zeros([2, 2, 3]), T.zeros([3, 3, 4])), {
        name: "RangeError",
        message: /matmul: batch dimensions of \[2,2,3\] and \[3,3,4\] do not broadcast/,
      });
      assert.throws(() => matmul(s, a), { name: "RangeError", message: /matmul: a is a scalar/ });
      assert.throws(() => matmul(a, s), { name: "RangeError", message: /matmul: b is a scalar/ });
      assert.throws(
        () => matmul(T.zeros([3]), T.zeros([4])),
        /inner dimensions differ: \[3\] @ \[4\]/,
      );
      if (T.devices().includes("webgpu")) {
        assert.throws(() => matmul(a, T.zeros([3, 2], { device: "webgpu" })), {
          name: "TypeError",
          message: /matmul: tensors are on different devices/,
        });
      }
    })
  );
  for (const x of [a, b, s]) x.dispose();
});
