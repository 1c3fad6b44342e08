import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { vjp } from "../../../autodiff/mod.ts";
import * as random from "../../../ops/random.ts";
import { sparseAttention, type SparseAttentionConfig } from "../../../nn/attention/sparse.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";
import { assertFinite, disposeParams, makeParams } from "./attention_util.ts";

type Dev = T.DeviceName;
const KINDS = ["strided", "fixed"] as const;
const MODES: [SparseAttentionConfig["mode"], (0 | 1)?][] = [
  ["alternate", 0],
  ["alternate", 1],
  ["merged"],
  ["split"],
];

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
