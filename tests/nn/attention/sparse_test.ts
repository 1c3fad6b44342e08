import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { grad, vjp } from "../../../autodiff/mod.ts";
import { blockSparsePrimitive } from "../../../ops/block_sparse.ts";
import { sum } from "../../../ops/reduce.ts";
import * as random from "../../../ops/random.ts";
import {
  blockSparseAttention,
  denseMaskedAttention,
  gatherSparseAttention,
  sparseAttention,
  type SparseAttentionConfig,
} from "../../../nn/attention/sparse.ts";
import {
  blockLayout,
  patternMask,
  type PatternSpec,
} from "../../../nn/attention/sparse_patterns.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";
import { assertFinite, disposeParams, makeParams } from "./attention_util.ts";

type Dev = T.DeviceName;
type Part = PatternSpec["part"];
const PARTS = ["a", "b", "union"] as const;
const KINDS = ["strided", "fixed"] as const;
const MODES: [SparseAttentionConfig["mode"], (0 | 1)?][] = [
  ["alternate", 0],
  ["alternate", 1],
  ["merged"],
  ["split"],
];
const spec = (kind: "strided" | "fixed", part: Part, stride = 3, c = 1): PatternSpec => ({
  kind,
  stride,
  c: kind === "fixed" ? c : 0,
  part,
});
const close = { rtol: 1e-5, atol: 1e-6 };

/** Random `[b, h, n, d]` operands and, if asked, a padding mask with some padded keys. */
function operands(rand: () => number, shape: number[], device: Dev, masked: boolean) {
  const size = shape.reduce((a, b) => a * b, 1);
  const [q, k, v] = [0, 1, 2].map(() =>
    T.tensor(randomArray(rand, size, -1.5, 1.5), { shape, device })
  );
  const [b, , n] = shape;
  const bits = Uint8Array.from({ length: b * n }, () => (rand() < 0.75 ? 1 : 0));
  const keyMask = masked ? T.tensor(bits, { shape: [b, n], dtype: "bool", device }) : null;
  return { q, k, v, keyMask };
}

/** The dense boolean mask of a pattern and an optional key mask: `[b, 1, n, n]` or `[n, n]`. */
function denseMask(p: PatternSpec, n: number, keyMask: T.Tensor | null, device: Dev) {
  const m = patternMask(p, n, { device });
  return keyMask ? T.logicalAnd(m, T.reshape(keyMask, [keyMask.shape[0], 1, 1, n])) : m;
}

// [len, blockSize, stride, padded]: lengths that are and are not multiples of the block,
// blocks smaller and larger than the stride.
const CASES: [number, number, number, boolean][] = [
  [12, 4, 3, false],
  [13, 4, 3, true],
  [10, 3, 4, true],
  [9, 16, 3, false],
];

Deno.test("block-sparse attention equals dense masked attention and the gather composition", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        for (const [n, bs, stride, masked] of CASES) {
          for (const kind of KINDS) {
            for (const part of PARTS) {
              const outs = T.scope(() => {
                const { q, k, v, keyMask } = operands(rng(n + bs), [2, 2, n, 5], device, masked);
                const pattern = spec(kind, part, stride, 2);
                const o = { pattern, blockSize: bs, keyMask };
                return [
                  blockSparseAttention(q, k, v, o),
                  gatherSparseAttention(q, k, v, o),
                  denseMaskedAttention(q, k, v, denseMask(pattern, n, keyMask, device)),
                ];
              });
              await T.assertAllClose(outs[0], outs[2], close);
              await T.assertAllClose(outs[1], outs[2], close);
              outs.forEach((x) => x.dispose());
            }
          }
        }
      }));
  }
});

Deno.test("block-sparse gradients (fused VJP) equal dense masked attention's", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        for (const [n, bs, stride, masked] of CASES.slice(1, 3)) {
          for (const kind of KINDS) {
            for (const part of PARTS) {
              const rand = rng(3 * n + bs);
              const grads = T.scope(() => {
                const { q, k, v, keyMask } = operands(rand, [1, 2, n, 4], device, masked);
                const ct = T.tensor(randomArray(rand, 2 * n * 4), { shape: [1, 2, n, 4], device });
                const pattern = spec(kind, part, stride, 2);
                const mask = denseMask(pattern, n, keyMask, device);
                const fns = [
                  (a: T.Tensor, b: T.Tensor, c: T.Tensor) =>
                    blockSparseAttention(a, b, c, { pattern, blockSize: bs, keyMask }),
                  (a: T.Tensor, b: T.Tensor, c: T.Tensor) => denseMaskedAttention(a, b, c, mask),
                ];
                return fns.map((f) => vjp(f, q, k, v)[1](ct) as T.Tensor[]);
              });
              for (let i = 0; i < 3; i++) await T.assertAllClose(grads[0][i], grads[1][i], close);
              grads.flat().forEach((x) => x.dispose());
            }
          }
        }
      }));
  }
});

Deno.test("the kernels read only the tiles the layout lists", async (t) => {
  // Drop every off-diagonal tile from a union layout: the result must equal dense attention
  // with the pattern restricted to the diagonal blocks, forward and backward.
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const [n, bs] = [11, 4];
        const pattern = spec("strided", "union", 3);
        const full = blockLayout(pattern, n, bs);
        const nb = full.nBlocks;
        const diag = Int32Array.from({ length: nb }, (_, i) => i);
        const ptr = Int32Array.from({ length: nb + 1 }, (_, i) => i);
        const layout = { ...full, rowPtr: ptr, cols: diag, colPtr: ptr, rows: diag, tiles: nb };
        const rand = rng(17);
        const res = T.scope(() => {
          const { q, k, v } = operands(rand, [1, 1, n, 3], device, false);
          const ct = T.tensor(randomArray(rand, n * 3), { shape: [1, 1, n, 3], device });
          const keep = new Uint8Array(n * n);
          for (let i = 0; i < n; i++) {
            for (let j = 0; j <= i; j++) {
              const same = Math.floor(i / bs) === Math.floor(j / bs);
              keep[i * n + j] = same && (i - j < 3 || (i - j) % 3 === 0) ? 1 : 0;
            }
          }
          const mask = T.tensor(keep, { shape: [n, n], dtype: "bool", device });
          const sparse = (a: T.Tensor, b: T.Tensor, c: T.Tensor) =>
            blockSparsePrimitive(a, b, c, null, { pattern, layout })[0];
          const dense = (a: T.Tensor, b: T.Tensor, c: T.Tensor) =>
            denseMaskedAttention(a, b, c, mask);
          return [sparse, dense].map((f) => {
            const [y, pull] = vjp(f, q, k, v);
            return [y, ...(pull(ct) as T.Tensor[])];
          });
        });
        for (let i = 0; i < 4; i++) await T.assertAllClose(res[0][i], res[1][i], close);
        res.flat().forEach((x) => x.dispose());
      }));
  }
});

Deno.test("block-sparse primitive: finite differences for o and lse", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(23);
      for (
        const [kind, part, masked] of [["fixed", "b", true], ["strided", "union", false]] as const
      ) {
        const pattern = spec(kind, part, 3, 1);
        const layout = blockLayout(pattern, 7, 2);
        for (const out of [0, 1]) {
          await checkGrad(
            {
              name: `blockSparse ${kind} ${part} output ${out}`,
              inputs: [{ shape: [1, 2, 7, 3] }, { shape: [1, 2, 7, 3] }, { shape: [1, 2, 7, 3] }],
              fn: ([q, k, v], dev) => {
                const keyMask = masked
                  ? T.tensor([[true, false, true, true, false, true, true]], {
                    dtype: "bool",
                    device: dev,
                  })
                  : null;
                const [o, lse] = blockSparsePrimitive(q, k, v, keyMask, { pattern, layout });
                // Rows without keys have lse = -inf (no gradient); compare finite rows only.
                return out === 0 ? o : T.where(T.greater(lse, -1e30), lse, 0);
              },
            },
            device,
            rand,
          );
        }
      }
    });
  }
});

/** Layer output with the three implementations, for one config. */
function layerOutputs(cfg: SparseAttentionConfig, device: Dev, n: number, masked: boolean) {
  const rand = rng(n * 31 + cfg.heads);
  const dHead = cfg.dModel / cfg.heads;
  const { params } = makeParams(rand, cfg.dModel, cfg.heads, dHead, false, device);
  const xData = randomArray(rand, 2 * n * cfg.dModel);
  const maskData = Array.from({ length: 2 }, () => Array.from({ length: n }, () => rand() < 0.8));
  const ys = T.scope(() => {
    const x = T.tensor(xData, { shape: [2, n, cfg.dModel], device });
    const opts = masked ? { mask: T.tensor(maskData, { device }) } : {};
    return (["blockSparse", "gather", "dense"] as const).map((impl) =>
      sparseAttention({ ...cfg, impl }).apply(params, x, opts)
    );
  });
  disposeParams(params);
  return ys;
}

Deno.test("sparseAttention: the three head-integration modes, both patterns, three impls agree", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        for (const pattern of KINDS) {
          for (const [mode, component] of MODES) {
            for (const [n, masked] of [[8, false], [11, true]] as const) {
              const cfg = { dModel: 8, heads: 4, pattern, stride: 3, c: 1, mode, component };
              const [fused, gathered, dense] = layerOutputs(
                { ...cfg, blockSize: 4 },
                device,
                n,
                masked,
              );
              assert.deepEqual(fused.shape, [2, n, 8]);
              await T.assertAllClose(fused, dense, { rtol: 1e-5, atol: 1e-5 });
              await T.assertAllClose(gathered, dense, { rtol: 1e-5, atol: 1e-5 });
              for (const y of [fused, gathered, dense]) y.dispose();
            }
          }
        }
      }));
  }
});

Deno.test("sparseAttention: split mode gives the first half of the heads A and the rest B", async () => {
  await noLeaks(async () => {
    // With wo the identity on each head's slice, each head's output is visible on its own.
    const base = { dModel: 4, heads: 2, pattern: "fixed", stride: 2, c: 1, blockSize: 2 } as const;
    const split = sparseAttention({ ...base, mode: "split" });
    const alt = [0, 1].map((component) =>
      sparseAttention({ ...base, mode: "alternate", component: component as 0 | 1 })
    );
    using key = random.key(3);
    const params = split.init(key);
    const eye = T.eye(4);
    const x = T.tensor(randomArray(rng(2), 1 * 6 * 4), { shape: [1, 6, 4] });
    const ys = [split, ...alt].map((l) => l.apply({ ...params, wo: eye }, x));
    const [s, a, b] = await Promise.all(ys.map((y) => y.array())) as number[][][][];
    for (let i = 0; i < 6; i++) {
      assert.deepEqual(s[0][i].slice(0, 2), a[0][i].slice(0, 2));
      assert.deepEqual(s[0][i].slice(2), b[0][i].slice(2));
    }
    assert.notDeepEqual(a, b);
    for (const t of [...ys, eye, x]) t.dispose();
    disposeParams(params);
  });
});

/** Asserts `d out_i / d x_j == 0` for every `j > i`, by one pullback per output position. */
async function assertCausal(f: (x: T.Tensor) => T.Tensor, shape: number[], device: Dev) {
  const [b, n, d] = shape;
  const rand = rng(n);
  using x = T.tensor(randomArray(rand, b * n * d), { shape, device });
  let total = 0;
  for (let i = 0; i < n; i++) {
    const ctData = new Float32Array(b * n * d);
    for (let bi = 0; bi < b; bi++) {
      for (let e = 0; e < d; e++) ctData[(bi * n + i) * d + e] = 1 + rand();
    }
    const dx = T.scope(() => vjp(f, x)[1](T.tensor(ctData, { shape, device }))[0] as T.Tensor);
    const g = await dx.data();
    dx.dispose();
    for (let bi = 0; bi < b; bi++) {
      for (let j = 0; j < n; j++) {
        for (let e = 0; e < d; e++) {
          const v = g[(bi * n + j) * d + e];
          if (j > i) assert.equal(v, 0, `output ${i} depends on later input ${j}`);
          total += Math.abs(v);
        }
      }
    }
  }
  assert.ok(total > 0, "the output depends on no input at all");
}

Deno.test("sparseAttention is causal by gradients (every pattern and mode)", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        for (const pattern of KINDS) {
          for (const [mode, component] of MODES) {
            const layer = sparseAttention({
              dModel: 4,
              heads: 2,
              pattern,
              stride: 3,
              c: 1,
              mode,
              component,
              blockSize: 2,
            });
            const params = T.scope(() => layer.init(random.key(1, { device })));
            await assertCausal((x) => layer.apply(params, x), [1, 7, 4], device);
            disposeParams(params);
          }
        }
      }));
  }
});

Deno.test("sparseAttention gradients by finite differences (x and every weight)", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(41);
      for (const [pattern, mode] of [["strided", "split"], ["fixed", "merged"]] as const) {
        const layer = sparseAttention({ dModel: 4, heads: 2, pattern, stride: 2, c: 1, mode });
        await checkGrad(
          {
            name: `sparseAttention ${pattern} ${mode}`,
            inputs: [[1, 5, 4], [4, 4], [4, 4], [4, 4], [4, 4]].map((shape) => ({ shape })),
            fn: ([x, wq, wk, wv, wo]) => layer.apply({ wq, wk, wv, wo }, x),
          },
          device,
          rand,
        );
      }
    });
  }
});

Deno.test("sparseAttention: length 1, odd lengths, fully padded rows and empty rows are finite", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const base = { dModel: 4, heads: 2, stride: 4, c: 1, blockSize: 3 } as const;
        for (const pattern of KINDS) {
          for (const [mode, component] of MODES) {
            const layer = sparseAttention({ ...base, pattern, mode, component });
            const params = T.scope(() => layer.init(random.key(2, { device })));
            for (const n of [1, 5]) {
              const mask = [Array(n).fill(true), Array(n).fill(false)];
              const y = T.scope(() => {
                const x = T.tensor(randomArray(rng(n), 2 * n * 4), { shape: [2, n, 4], device });
                return layer.apply(params, x, { mask: T.tensor(mask, { device }) });
              });
              await assertFinite(y, `${pattern} ${mode} n=${n}`);
              // A fully padded row and fixed-B queries before the first summary output 0.
              const d = await y.data();
              assert.ok(d.subarray(n * 4).every((v) => v === 0));
              if (pattern === "fixed" && component === 1) {
                assert.ok(d.subarray(0, 4).every((v) => v === 0));
              }
              y.dispose();
            }
            disposeParams(params);
          }
        }
      }));
  }
});

Deno.test("sparseAttention dropout: replayable from the key, through the gather path", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const cfg = {
          dModel: 8,
          heads: 2,
          pattern: "fixed",
          stride: 4,
          c: 2,
          dropout: 0.5,
        } as const;
        for (const [mode, component] of MODES) {
          const fused = sparseAttention({ ...cfg, mode, component });
          const gather = sparseAttention({ ...cfg, mode, component, impl: "gather" });
          const params = T.scope(() => fused.init(random.key(4, { device })));
          const ys = T.scope(() => {
            const x = T.tensor(randomArray(rng(9), 2 * 9 * 8), { shape: [2, 9, 8], device });
            const run = (l: typeof fused, seed: number, training = true) =>
              l.apply(params, x, { key: random.key(seed, { device }), training });
            return [
              run(fused, 5),
              run(fused, 5),
              run(gather, 5),
              run(fused, 6),
              run(fused, 5, false),
            ];
          });
          const [a, b, c, other, evalMode] = await Promise.all(ys.map((y) => y.data()));
          assert.deepEqual(a, b);
          assert.deepEqual(a, c);
          assert.notDeepEqual(a, other);
          assert.notDeepEqual(a, evalMode);
          ys.forEach((y) => y.dispose());
          disposeParams(params);
        }
      }));
  }
});

Deno.test("sparse attention errors name the op and the rule", async () => {
  await noLeaks(() => {
    const base = { dModel: 4, heads: 2, pattern: "strided", stride: 2, mode: "merged" } as const;
    const bad = (cfg: Partial<SparseAttentionConfig>, re: RegExp) =>
      assert.throws(() => sparseAttention({ ...base, ...cfg } as SparseAttentionConfig), re);
    bad({ pattern: "dense" as "fixed" }, /sparseAttention: pattern must be "strided" or "fixed"/);
    bad({ stride: 0 }, /stride must be an integer >= 1/);
    bad({ pattern: "fixed", c: 3 }, /c \(3\) must be at most the stride/);
    bad({ mode: "both" as "merged" }, /mode must be "alternate", "merged" or "split"/);
    bad({ mode: "alternate" }, /mode "alternate" needs component 0 or 1/);
    bad({ mode: "split", heads: 1 }, /mode "split" needs heads >= 2/);
    bad({ blockSize: 0 }, /blockSize must be an integer >= 1/);
    bad({ impl: "flash" as "dense" }, /impl must be/);
    bad({ dropout: 1.5 }, /sparseAttention/);
    bad({ dModel: 5 }, /not divisible by heads/);
    const layer = sparseAttention(base);
    const params = T.scope(() => layer.init(random.key(0)));
    using x = T.ones([1, 3, 4]);
    using x5 = T.ones([1, 3, 5]);
    using m = T.ones([1, 4]);
    assert.throws(() => layer.apply(params, x5), /x must be \[batch, len, dModel\]/);
    assert.throws(() => layer.apply(params, x, { mask: m }), /opts.mask must be \[batch, len\]/);
    disposeParams(params);
    const drop = sparseAttention({ ...base, dropout: 0.1 });
    const p2 = T.scope(() => drop.init(random.key(0)));
    assert.throws(() => drop.apply(p2, x, { training: true }), /needs a PRNG key/);
    disposeParams(p2);
  });
});

Deno.test("block-sparse and dense op errors, and second-order gradients are refused", async () => {
  await noLeaks(() => {
    const pattern = spec("fixed", "a", 2, 1);
    using q = T.ones([1, 2, 6, 3]);
    using q3 = T.ones([2, 6, 3]);
    using k5 = T.ones([1, 2, 5, 3]);
    using m = T.ones([1, 6]);
    using mb = T.ones([1, 5], { dtype: "bool" });
    const o = { pattern, blockSize: 2 };
    const bsa = blockSparseAttention, gsa = gatherSparseAttention;
    assert.throws(() => bsa(q, k5, q, o), /blockSparseAttention: q, k and v must share one shape/);
    assert.throws(() => gsa(q3, q3, q3, o), /gatherSparseAttention: q, k and v must share/);
    assert.throws(() => bsa(q, q, q, { ...o, keyMask: m }), /key mask must be a bool Tensor/);
    assert.throws(() => bsa(q, q, q, { ...o, keyMask: mb }), /must be \[batch, n\] = \[1,6\]/);
    assert.throws(() => gsa(q, q, q, { ...o, keyMask: mb }), /keyMask must be \[batch, len\]/);
    assert.throws(() => bsa(q, q, q, { ...o, blockSize: 0 }), /blockSize must be an integer/);
    assert.throws(
      () => bsa(q, q, q, { ...o, pattern: { ...pattern, c: 9 } }),
      /at most the stride/,
    );
    const layout = blockLayout(pattern, 5, 2);
    assert.throws(
      () => blockSparsePrimitive(q, q, q, null, { pattern, layout }),
      /layout was made for length 5 but q has length 6/,
    );
    using mask = T.ones([6, 6], { dtype: "bool" });
    using m5 = T.ones([5, 5], { dtype: "bool" });
    assert.throws(() => denseMaskedAttention(q, q, q, m), /mask must be a bool Tensor/);
    assert.throws(() => denseMaskedAttention(q, q, q, m5), /denseMaskedAttention: shapes/);
    assert.throws(() => denseMaskedAttention(q, k5, q, mask), /k \[1,2,5,3\] and v/);
    const f = (x: T.Tensor) => sum(blockSparseAttention(x, x, x, o));
    assert.throws(
      () => T.scope(() => grad((x: T.Tensor) => sum(grad(f)(x)))(q)),
      /second-order gradients are not supported/,
    );
    if (T.devices().includes("webgpu")) {
      using g = T.ones([1, 2, 6, 3], { device: "webgpu" });
      using c = T.ones([1, 2, 6, 3], { device: "cpu" });
      assert.throws(() => bsa(g, c, g, o), /different devices/);
    }
  });
});
