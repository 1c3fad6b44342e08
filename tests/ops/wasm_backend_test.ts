/**
 * The wasm backend through the public ops: every kernel it registers against the CPU reference
 * (odd sizes, broadcasting, transposes, size-1 and empty axes) and 1 and 2 threads giving
 * identical bits (the fallbacks, training and memory accounting: `wasm_training_test.ts`).
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { fusedChunkAttention } from "../../ops/chunk_attention.ts";
import { fusedLayerNorm } from "../../ops/layer_norm.ts";
import { blockSparsePrimitive, type PatternSpec } from "../../ops/block_sparse.ts";
import { blockLayout } from "../../nn/attention/sparse_patterns.ts";
import { registerBackend } from "../../kernels/backend.ts";
import {
  createWasmBackend,
  WASM_BACKEND_KERNELS,
  wasmAccepts,
} from "../../kernels/wasm/backend.ts";
import { WasmDevice } from "../../kernels/wasm/device.ts";
import { noLeaks, randomArray, rng } from "../util.ts";

// Two devices; the registry holds one "cpu" backend at a time (two: the default).
const one = await WasmDevice.create({ threads: 1 });
const two = await WasmDevice.create({ threads: 2 });
const use = (d: WasmDevice) => registerBackend(createWasmBackend(d));
use(two);
addEventListener("unload", () => (one.dispose(), two.dispose()));

type Shape = number[];
const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** Random f32 data of `shape` on `device` (same values for the same seed). */
function input(seed: number, shape: Shape, device: T.DeviceName, lo = -1, hi = 1): T.Tensor {
  return T.tensor(randomArray(rng(seed), size(shape), lo, hi), { shape, device });
}

/** Runs `f` on wasm and on the CPU reference over the same inputs; compares the results. */
async function same(
  name: string,
  shapes: Shape[],
  f: (...xs: T.Tensor[]) => T.Tensor,
  tol = 1e-5,
  range: [number, number] = [-1, 1],
): Promise<void> {
  await noLeaks(async () => {
    const run = async (device: T.DeviceName) => {
      const xs = shapes.map((s, i) => input(7 + i, s, device, ...range));
      const y = T.scope(() => f(...xs));
      assert.equal(y.device, device, `${name}: result on ${y.device}`);
      const out = { shape: y.shape, data: Array.from(await y.data()) };
      xs.forEach((x) => x.dispose());
      y.dispose();
      return out;
    };
    const w = await run("cpu"), c = await run("cpu-reference");
    assert.deepEqual(w.shape, c.shape, name);
    for (let i = 0; i < c.data.length; i++) {
      const d = Math.abs(w.data[i] - c.data[i]);
      if (
        !(d <= tol * (1 + Math.abs(c.data[i]))) &&
        !(Number.isNaN(w.data[i]) && Number.isNaN(c.data[i]))
      ) {
        assert.fail(`${name}: element ${i} is ${w.data[i]}, reference ${c.data[i]}`);
      }
    }
  });
}

Deno.test("wasm matmul matches the reference", async () => {
  const cases: [Shape, Shape, T.MatmulOptions?][] = [
    [[1, 1], [1, 1]],
    [[7, 13], [13, 5]],
    [[33, 65], [65, 17]],
    [[3, 9, 11], [11, 6]],
    [[2, 1, 5, 4], [3, 4, 7]],
    [[6, 5], [6, 3], { transposeA: true }],
    [[2, 5, 6], [7, 6], { transposeB: true }],
    [[4, 9, 5], [4, 3, 9], { transposeA: true, transposeB: true }],
    [[0, 4], [4, 3]],
    [[3, 0], [0, 4]],
    [[5], [5, 3]],
    [[4, 6], [6]],
  ];
  for (const [sa, sb, o] of cases) {
    await same(
      `matmul ${sa} ${sb} ${JSON.stringify(o ?? {})}`,
      [sa, sb],
      (a, b) => T.matmul(a, b, o),
      1e-5,
    );
  }
});

Deno.test("wasm elementwise kernels match the reference", async () => {
  const binary = {
    add: T.add,
    sub: T.sub,
    mul: T.mul,
    div: T.div,
    maximum: T.maximum,
    minimum: T.minimum,
  };
  const shapes: [Shape, Shape][] = [
    [[37], [37]],
    [[5, 7], [7]],
    [[5, 1], [1, 9]],
    [[3, 1, 4], [2, 1]],
    [[0, 3], [3]],
    [[1], [1]],
  ];
  for (const [name, f] of Object.entries(binary)) {
    for (const [sa, sb] of shapes) await same(`${name} ${sa} ${sb}`, [sa, sb], (a, b) => f(a, b));
    // a transposed (strided) operand and a scalar
    await same(`${name} transposed`, [[6, 5], [5, 6]], (a, b) => f(T.transpose(a), b));
    await same(`${name} scalar`, [[4, 3]], (a) => f(a, 0.5));
  }
  const unary = { exp: T.exp, tanh: T.tanh, neg: T.neg, abs: T.abs };
  for (const [name, f] of Object.entries(unary)) {
    for (const s of [[37], [3, 1, 5], [0], []]) {
      await same(`${name} ${s}`, [s], (a) => f(a), 2e-6, [-3, 3]);
    }
    await same(`${name} transposed`, [[7, 3]], (a) => f(T.transpose(a)), 2e-6, [-3, 3]);
  }
  await same("sqrt", [[41]], (a) => T.sqrt(a), 1e-6, [0, 4]);
  for (const s of [[37], [3, 1, 5], [0], []]) await same(`square ${s}`, [s], (a) => T.square(a));
  await same("square transposed", [[7, 3]], (a) => T.square(T.transpose(a)));
  // copy: making a transposed or broadcast view contiguous
  await same("copy transposed", [[7, 3, 2]], (a) => T.reshape(T.transpose(a, [2, 0, 1]), [42]));
  await same("copy sliced", [[7, 5]], (a) => T.slice(a, [1, 2], [6, 5]));
  await same("copy broadcast", [[3, 1]], (a) => T.broadcastTo(a, [3, 5]));
  await noLeaks(async () => {
    const special = T.tensor([NaN, -0, Infinity, -Infinity, 1e-45], { device: "cpu" });
    const c = T.scope(() => T.broadcastTo(T.reshape(special, [5, 1]), [5, 2]));
    const got = Array.from(await c.data());
    assert.ok(Number.isNaN(got[0]) && Number.isNaN(got[1]));
    assert.ok(Object.is(got[2], -0) && Object.is(got[3], -0));
    assert.deepEqual(
      got.slice(4),
      [Infinity, Infinity, -Infinity, -Infinity, 1e-45, 1e-45].map(Math.fround),
    );
    special.dispose();
    c.dispose();
  });
});

Deno.test("wasm reductions and softmax match the reference", async () => {
  for (const f of [T.sum, T.max, T.min]) {
    for (
      const [s, axes] of [[[37], undefined], [[5, 7], 1], [[5, 7], 0], [[3, 4, 5], [0, 2]], [[
        3,
        1,
        5,
      ], 1], [[4, 0], 0]] as [Shape, number | number[] | undefined][]
    ) {
      await same(`${f.name} ${s} ${axes}`, [s], (x) => f(x, axes), 1e-5);
    }
  }
  for (const f of [T.softmax, T.logSoftmax]) {
    for (
      const [s, axis] of [[[37], -1], [[5, 7], 0], [[3, 4, 5], 1], [[2, 1], 1]] as [Shape, number][]
    ) {
      await same(`${f.name} ${s} ${axis}`, [s], (x) => f(x, axis), 1e-5, [-4, 4]);
    }
  }
  await same("logsumexp", [[6, 9]], (x) => T.logsumexp(x, 1), 1e-5, [-4, 4]);
});

Deno.test("wasm fused layer norm and its gradients match the reference", async () => {
  await same(
    "layerNorm",
    [[5, 37], [37], [37]],
    (x, g, b) => fusedLayerNorm(x, { scale: g, bias: b }),
    1e-5,
    [-3, 3],
  );
  await same("layerNorm without scale", [[3, 4, 9]], (x) => fusedLayerNorm(x), 1e-5, [-3, 3]);
  for (const i of [0, 1, 2]) {
    await same(
      `layerNormGrad ${i}`,
      [[6, 37], [37], [37], [6, 37]],
      (x, g, b, w) => {
        const loss = (a: T.Tensor, c: T.Tensor, d: T.Tensor) =>
          T.sum(T.mul(fusedLayerNorm(a, { scale: c, bias: d }), w));
        return (T.grad(loss, { argnums: [0, 1, 2] })(x, g, b) as T.Tensor[])[i];
      },
      2e-5,
      [-3, 3],
    );
  }
  await same(
    "layerNormGrad without scale",
    [[4, 5], [4, 5]],
    (x, w) => T.grad((a: T.Tensor) => T.sum(T.mul(fusedLayerNorm(a), w)))(x) as T.Tensor,
    2e-5,
    [-3, 3],
  );
});

Deno.test("wasm fused layer norm: 1 and 2 threads give identical bits", async () => {
  // Large enough for the kernels to split rows and columns across threads.
  const run = () =>
    T.scope(async () => {
      const [x, g, b, w] = [[200, 259], [259], [259], [200, 259]].map((s, i) =>
        input(40 + i, s, "cpu", -3, 3)
      );
      const loss = (a: T.Tensor, c: T.Tensor, d: T.Tensor) =>
        T.sum(T.mul(fusedLayerNorm(a, { scale: c, bias: d }), w));
      const grads = T.grad(loss, { argnums: [0, 1, 2] })(x, g, b) as T.Tensor[];
      const y = fusedLayerNorm(x, { scale: g, bias: b });
      return await Promise.all([y, ...grads].map((t) => t.data()));
    });
  await noLeaks(async () => {
    const a = await run();
    use(one);
    try {
      assert.deepEqual(await run(), a);
    } finally {
      use(two);
    }
  });
});

Deno.test("wasm fused chunk attention and its gradients match the reference", async () => {
  const [R, C, D] = [4, 5, 3];
  await noLeaks(async () => {
    const run = async (device: T.DeviceName) => {
      const q = input(1, [R, C, D], device), k = input(2, [R, C, D], device);
      const v = input(3, [R, C, D], device), w = input(4, [R, C, D], device);
      const pos = T.tensor(new Int32Array(R * C).map((_, i) => i % C), { shape: [R, C], device });
      const code = T.tensor(new Int32Array(R * 2 * C).map((_, i) => i % C), {
        shape: [R, 2 * C],
        device,
      });
      const flags = { causal: true, selfMask: true, maskValue: -1e9, selfValue: -1e5 };
      const look = { offsets: [0, -1], chunks: 2 };
      const f = (qq: T.Tensor, kk: T.Tensor, vv: T.Tensor) => {
        const [o, lse] = fusedChunkAttention(qq, kk, vv, pos, code, null, flags, look);
        return T.add(T.sum(T.mul(o, w)), T.sum(lse));
      };
      const outs = fusedChunkAttention(q, k, v, pos, code, null, flags, look);
      const [loss, grads] = T.valueAndGrad(f, { argnums: [0, 1, 2] })(q, k, v);
      const all = [...outs.slice(0, 2), ...(grads as T.Tensor[])];
      const data = await Promise.all(all.map((o) => o.data()));
      [q, k, v, w, pos, code, ...outs, loss, ...all.slice(2)].forEach((t) => t.dispose());
      return data;
    };
    const w = await run("cpu"), c = await run("cpu-reference");
    ["o", "lse", "dq", "dk", "dv"].forEach((what, j) => {
      for (let i = 0; i < c[j].length; i++) {
        assert.ok(Math.abs(w[j][i] - c[j][i]) < 1e-5, `${what}[${i}]`);
      }
    });
  });
});

Deno.test("wasm block-sparse attention and its gradients match the reference", async () => {
  const shape = [2, 2, 19, 5];
  const pattern: PatternSpec = { kind: "fixed", stride: 4, c: 1, part: "union" };
  const layout = blockLayout(pattern, 19, 4);
  await noLeaks(async () => {
    const run = async (device: T.DeviceName) => {
      const [q, k, v, w] = [1, 2, 3, 4].map((seed) => input(seed, shape, device));
      const bits = Uint8Array.from({ length: 2 * 19 }, (_, i) => (i % 7 === 3 ? 0 : 1));
      const mask = T.tensor(bits, { shape: [2, 19], dtype: "bool", device });
      const f = (qq: T.Tensor, kk: T.Tensor, vv: T.Tensor) =>
        T.sum(T.mul(blockSparsePrimitive(qq, kk, vv, mask, { pattern, layout })[0], w));
      const [loss, grads] = T.valueAndGrad(f, { argnums: [0, 1, 2] })(q, k, v);
      const all = [loss, ...(grads as T.Tensor[])];
      const data = await Promise.all(all.map((t) => t.data()));
      [q, k, v, w, mask, ...all].forEach((t) => t.dispose());
      return data;
    };
    const w = await run("cpu"), c = await run("cpu-reference");
    ["loss", "dq", "dk", "dv"].forEach((what, j) => {
      for (let i = 0; i < c[j].length; i++) {
        assert.ok(Math.abs(w[j][i] - c[j][i]) < 1e-4, `${what}[${i}]`);
      }
    });
  });
});

Deno.test("the wasm attention kernels take their own dtypes and decline others", () => {
  const spec = { offsets: [0, -1], chunks: 4, nq: 8, nk: 16 };
  const grad = ["f32", "f32", "f32", "i32", "i32", "f32", "f32", "f32"] as const;
  assert.ok(wasmAccepts("chunkAttentionGrad", spec, grad));
  assert.ok(!wasmAccepts("chunkAttentionGrad", spec, grad.map(() => "f32")));
  assert.ok(!wasmAccepts("chunkAttentionGrad", { ...spec, offsets: new Array(200).fill(0) }, grad));
  // One row group's p and ds would not fit: the reference takes it.
  assert.ok(!wasmAccepts("chunkAttentionGrad", { ...spec, chunks: 1, nq: 8192, nk: 8192 }, grad));
  assert.ok(wasmAccepts("blockSparseAttention", {}, ["f32", "f32", "f32", "bool"]));
  assert.ok(wasmAccepts("blockSparseAttention", {}, ["f32", "f32", "f32"]));
  assert.ok(!wasmAccepts("blockSparseAttention", {}, ["f32", "f32", "f32", "f32"]));
  const back = ["f32", "f32", "f32", "f32", "f32", "f32", "bool"] as const;
  assert.ok(wasmAccepts("blockSparseAttentionBackward", {}, back));
  assert.ok(!wasmAccepts("blockSparseAttentionBackward", {}, ["i32", ...back.slice(1)]));
});

// gatherByIndex and scatterByIndex are covered by tests/ops/wasm_permute_test.ts; sort, random,
// the indexing kernels, the integer elementwise ones and the comparisons by the other
// tests/ops/wasm_*_test.ts (argmax and argmin by wasm_arg_reduce_test.ts); relu and the fused
// activations (last line) by tests/kernels/wasm/elementwise_test.ts and tests/ops/gelu_test.ts.
Deno.test("every registered wasm kernel is covered here", () => {
  const covered = [
    "matmul",
    "add",
    "sub",
    "mul",
    "div",
    "maximum",
    "minimum",
    "exp",
    "tanh",
    "neg",
    "abs",
    "sqrt",
    "relu",
    "square",
    "copy",
    "sum",
    "max",
    "min",
    "softmax",
    "logSoftmax",
    "chunkAttention",
    "layerNorm",
    "layerNormGrad",
    "chunkAttentionGrad",
    "blockSparseAttention",
    "blockSparseAttentionBackward",
    "gatherByIndex",
    "scatterByIndex",
    "sort",
    "random",
    "take",
    "scatterAdd",
    "takeAlongAxis",
    "scatterAddAlongAxis",
    "oneHot",
    "equal",
    "notEqual",
    "less",
    "lessEqual",
    "greater",
    "greaterEqual",
    "argmax",
    "argmin",
    ...["gelu", "geluErf", "geluGrad", "geluErfGrad", "reluGrad"],
  ];
  assert.deepEqual(Object.keys(WASM_BACKEND_KERNELS).sort(), covered.sort());
});
