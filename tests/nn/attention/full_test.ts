import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { attention } from "../../../nn/attention/full.ts";
import { localAttention } from "../../../nn/attention/local.ts";
import { maskValues } from "../../../nn/attention/core.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";
import { refAttention, type RefConfig } from "./attention_ref.ts";
import { assertCausal, assertFinite, disposeParams, makeParams } from "./attention_util.ts";

const maskOf = (m: boolean[][], device: T.DeviceName) => T.tensor(m, { device });

/** Random padding masks with at least one real token per row, plus one fully padded row. */
function randomMask(rand: () => number, b: number, n: number, fullyPadded = false): boolean[][] {
  return Array.from(
    { length: b },
    (_, bi) =>
      Array.from(
        { length: n },
        (_, j) => fullyPadded && bi === b - 1 ? false : j === 0 || rand() < 0.7,
      ),
  );
}

Deno.test("attention matches a float64 reference", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(11);
        const cases = [
          { b: 2, n: 7, dModel: 8, heads: 2, sharedQK: false, causal: false, masked: false },
          { b: 2, n: 6, dModel: 8, heads: 2, sharedQK: true, causal: true, masked: false },
          { b: 3, n: 5, dModel: 6, heads: 3, sharedQK: true, causal: false, masked: true },
          { b: 2, n: 9, dModel: 4, heads: 1, sharedQK: false, causal: true, masked: true },
          { b: 1, n: 1, dModel: 4, heads: 2, sharedQK: true, causal: true, masked: false },
        ];
        for (const cs of cases) {
          const dHead = cs.dModel / cs.heads;
          const { ref, params } = makeParams(rand, cs.dModel, cs.heads, dHead, cs.sharedQK, device);
          const xData = randomArray(rand, cs.b * cs.n * cs.dModel);
          const mask = cs.masked ? randomMask(rand, cs.b, cs.n) : undefined;
          const c: RefConfig = { ...cs, dHead, mask };
          const layer = attention(cs);
          const y = T.scope(() => {
            const x = T.tensor(xData, { shape: [cs.b, cs.n, cs.dModel], device });
            return layer.apply(params, x, mask ? { mask: maskOf(mask, device) } : {});
          });
          assert.deepEqual(y.shape, [cs.b, cs.n, cs.dModel]);
          await T.assertAllClose(y, refAttention(xData, ref, c), { rtol: 1e-4, atol: 1e-5 });
          y.dispose();
          disposeParams(params);
        }
      }));
  }
});

Deno.test("attention: sharedQK with selfMask false lets a token attend to itself", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(12);
        const cases = [
          { b: 2, n: 6, dModel: 8, heads: 2, causal: true, masked: false },
          { b: 3, n: 5, dModel: 6, heads: 3, causal: false, masked: true },
          { b: 1, n: 1, dModel: 4, heads: 2, causal: true, masked: false },
        ];
        for (const cs of cases) {
          const dHead = cs.dModel / cs.heads;
          const { ref, params } = makeParams(rand, cs.dModel, cs.heads, dHead, true, device);
          const xData = randomArray(rand, cs.b * cs.n * cs.dModel);
          const mask = cs.masked ? randomMask(rand, cs.b, cs.n) : undefined;
          const run = (selfMask?: boolean) =>
            T.scope(() => {
              const x = T.tensor(xData, { shape: [cs.b, cs.n, cs.dModel], device });
              const layer = attention({ ...cs, sharedQK: true, selfMask });
              return layer.apply(params, x, mask ? { mask: maskOf(mask, device) } : {});
            });
          const c: RefConfig = { ...cs, dHead, mask, sharedQK: true };
          const [free, masked, dflt] = [run(false), run(true), run()];
          const want = refAttention(xData, ref, { ...c, selfMask: false });
          await T.assertAllClose(free, want, { rtol: 1e-4, atol: 1e-5 });
          await T.assertAllClose(masked, refAttention(xData, ref, c), { rtol: 1e-4, atol: 1e-5 });
          await T.assertAllClose(dflt, masked, { rtol: 0, atol: 0 });
          if (cs.n > 1) {
            // The self mask matters: the two differ.
            const [a, b] = [await free.data(), await masked.data()];
            assert.ok(a.some((v, i) => Math.abs(v - b[i]) > 1e-3), "selfMask made no difference");
          }
          for (const y of [free, masked, dflt]) y.dispose();
          disposeParams(params);
        }
      }));
  }
});

Deno.test("localAttention matches windowed attention", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(12);
        const cases = [
          { n: 10, chunkLen: 3, chunksBefore: 1, chunksAfter: 0, causal: true, sharedQK: false },
          { n: 9, chunkLen: 3, chunksBefore: 1, chunksAfter: 1, causal: false, sharedQK: false },
          { n: 7, chunkLen: 2, chunksBefore: 2, chunksAfter: 0, causal: false, sharedQK: true },
          { n: 5, chunkLen: 8, chunksBefore: 1, chunksAfter: 0, causal: true, sharedQK: true },
          { n: 6, chunkLen: 2, chunksBefore: 0, chunksAfter: 0, causal: true, sharedQK: false },
          { n: 8, chunkLen: 2, chunksBefore: 5, chunksAfter: 1, causal: false, sharedQK: false },
          { n: 1, chunkLen: 4, chunksBefore: 1, chunksAfter: 0, causal: true, sharedQK: false },
        ];
        for (const cs of cases) {
          const b = 2, dModel = 4, heads = 2, dHead = 2;
          const { ref, params } = makeParams(rand, dModel, heads, dHead, cs.sharedQK, device);
          const xData = randomArray(rand, b * cs.n * dModel);
          const mask = randomMask(rand, b, cs.n);
          const chunk = (i: number) => Math.floor(i / cs.chunkLen);
          const c: RefConfig = {
            b,
            n: cs.n,
            dModel,
            heads,
            dHead,
            sharedQK: cs.sharedQK,
            causal: cs.causal,
            mask,
            window: (i, j) =>
              chunk(j) - chunk(i) >= -cs.chunksBefore && chunk(j) - chunk(i) <= cs.chunksAfter,
          };
          const layer = localAttention({ dModel, heads, ...cs });
          const y = T.scope(() => {
            const x = T.tensor(xData, { shape: [b, cs.n, dModel], device });
            return layer.apply(params, x, { mask: maskOf(mask, device) });
          });
          await T.assertAllClose(y, refAttention(xData, ref, c), { rtol: 1e-4, atol: 1e-5 });
          y.dispose();
          disposeParams(params);
        }
      }));
  }
});

Deno.test("attention: causality by gradients (full and local)", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(13);
        const b = 1, n = 6, dModel = 4;
        const layers = [
          attention({ dModel, heads: 2, causal: true }),
          attention({ dModel, heads: 2, causal: true, sharedQK: true }),
          localAttention({ dModel, heads: 2, causal: true, chunkLen: 2 }),
          localAttention({ dModel, heads: 2, causal: true, chunkLen: 4, sharedQK: true }),
        ];
        for (const [i, layer] of layers.entries()) {
          const { params } = makeParams(rand, dModel, 2, 2, i % 2 === 1, device);
          const f = (x: T.Tensor) => layer.apply(params, x);
          await assertCausal(f, randomArray(rand, b * n * dModel), [b, n, dModel], device, rand);
          disposeParams(params);
        }
      }));
  }
});

Deno.test("attention: gradients match finite differences", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(14);
      const b = 1, n = 3, dModel = 4, heads = 2, inner = 4;
      const w = [dModel, inner], wo = [inner, dModel];
      const mask = T.keep(T.tensor([[true, true, false]], { device }));
      const full = attention({ dModel, heads, causal: true });
      const shared = attention({ dModel, heads, sharedQK: true });
      const local = localAttention({ dModel, heads, chunkLen: 2, chunksAfter: 1 });
      await checkGrad(
        {
          name: "attention causal",
          inputs: [{ shape: [b, n, dModel] }, { shape: w }, { shape: w }, { shape: w }, {
            shape: wo,
          }],
          fn: ([x, wq, wk, wv, o]) => full.apply({ wq, wk, wv, wo: o }, x, { mask }),
        },
        device,
        rand,
      );
      await checkGrad(
        {
          name: "attention sharedQK",
          inputs: [{ shape: [b, n, dModel] }, { shape: w }, { shape: w }, { shape: wo }],
          fn: ([x, wqk, wv, o]) => shared.apply({ wqk, wv, wo: o }, x),
        },
        device,
        rand,
      );
      await checkGrad(
        {
          name: "localAttention",
          inputs: [{ shape: [b, 5, dModel] }, { shape: w }, { shape: w }, { shape: w }, {
            shape: wo,
          }],
          fn: ([x, wq, wk, wv, o]) => local.apply({ wq, wk, wv, wo: o }, x),
        },
        device,
        rand,
      );
      mask.dispose();
    });
  }
});

Deno.test("attention: odd lengths, length 1 and fully padded rows give no NaN", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(15);
        const dModel = 4;
        for (const n of [1, 3, 7]) {
          const mask = randomMask(rand, 2, n, true);
          for (const shared of [false, true]) {
            const { params } = makeParams(rand, dModel, 2, 2, shared, device);
            for (
              const layer of [
                attention({ dModel, heads: 2, causal: true, sharedQK: shared }),
                localAttention({ dModel, heads: 2, chunkLen: 2, sharedQK: shared }),
              ]
            ) {
              const y = T.scope(() => {
                const x = T.tensor(randomArray(rand, 2 * n * dModel), {
                  shape: [2, n, dModel],
                  device,
                });
                return layer.apply(params, x, { mask: maskOf(mask, device) });
              });
              await assertFinite(y, `n=${n} shared=${shared}`);
              y.dispose();
            }
            disposeParams(params);
          }
        }
      }));
  }
});

Deno.test("attention: init, dropout replay and validation", async (t) => {
  await t.step("init shapes", () =>
    noLeaks(() => {
      const key = random.key(0);
      const p = attention({ dModel: 8, heads: 2 }).init(key);
      assert.deepEqual(Object.keys(p).sort(), ["wk", "wo", "wq", "wv"]);
      assert.deepEqual(p.wq!.shape, [8, 8]);
      const s = localAttention({ dModel: 6, heads: 2, dHead: 4, chunkLen: 2, sharedQK: true })
        .init(key);
      assert.deepEqual(Object.keys(s).sort(), ["wo", "wqk", "wv"]);
      assert.deepEqual(s.wo.shape, [8, 6]);
      disposeParams(p);
      disposeParams(s);
      key.dispose();
    }));
  await t.step("dropout is replayed from the key", () =>
    noLeaks(async () => {
      const layer = attention({ dModel: 4, heads: 2, dropout: 0.5 });
      const rand = rng(16);
      // The default device: keys (and so dropout masks) live there.
      using probe = T.zeros([1]);
      const { params } = makeParams(rand, 4, 2, 2, false, probe.device);
      const x = T.tensor(randomArray(rand, 24), { shape: [1, 6, 4] });
      const k1 = random.key(1), k2 = random.key(2);
      const a = layer.apply(params, x, { key: k1, training: true });
      const b = layer.apply(params, x, { key: k1, training: true });
      const c = layer.apply(params, x, { key: k2, training: true });
      const e = layer.apply(params, x);
      assert.deepEqual(await a.data(), await b.data());
      assert.notDeepEqual(await a.data(), await c.data());
      assert.notDeepEqual(await a.data(), await e.data());
      assert.throws(() => layer.apply(params, x, { training: true }), TypeError);
      for (const u of [a, b, c, e, x, k1, k2]) u.dispose();
      disposeParams(params);
    }));
  await t.step("errors", () =>
    noLeaks(() =>
      T.scope(() => {
        assert.throws(() => attention({ dModel: 6, heads: 4 }), /not divisible/);
        assert.throws(() => attention({ dModel: 4, heads: 2, dropout: 1 }), RangeError);
        assert.throws(() => localAttention({ dModel: 4, heads: 2, chunkLen: 0 }), RangeError);
        const layer = attention({ dModel: 4, heads: 2 });
        const { params } = makeParams(rng(1), 4, 2, 2, false, "cpu-reference");
        const shared = makeParams(rng(1), 4, 2, 2, true, "cpu-reference").params;
        const x = T.zeros([2, 3, 4], { device: "cpu-reference" });
        assert.throws(
          () => layer.apply(params, T.zeros([2, 3, 5], { device: "cpu-reference" })),
          /dModel/,
        );
        assert.throws(
          () => layer.apply(params, T.zeros([3, 4], { device: "cpu-reference" })),
          RangeError,
        );
        assert.throws(
          () => layer.apply(params, T.zeros([2, 0, 4], { device: "cpu-reference" })),
          /empty/,
        );
        assert.throws(() => layer.apply(shared, x), /params.wq/);
        assert.throws(
          () =>
            layer.apply(params, x, {
              mask: T.ones([2, 4], { dtype: "bool", device: "cpu-reference" }),
            }),
          /mask/,
        );
      })
    ));
  await t.step("mask constants are dtype-aware", () => {
    assert.deepEqual(maskValues("f32"), { mask: -1e9, self: -1e5 });
    assert.deepEqual(maskValues("f16"), { mask: -1e4, self: -1e3 });
  });
});
