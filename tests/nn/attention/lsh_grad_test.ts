import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { lshAttention } from "../../../nn/attention/lsh.ts";
import type { AttentionParams } from "../../../nn/attention/core.ts";
import * as random from "../../../ops/random.ts";
import { grad, reversible } from "../../../autodiff/mod.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";
import { assertCausal, disposeParams, makeParams } from "./attention_util.ts";

const dModel = 8, heads = 2, dHead = 4;

Deno.test("lshAttention: causality by gradients", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(25);
        const n = 9;
        const { params } = makeParams(rand, dModel, heads, dHead, true, device);
        for (const cs of [{ chunkLen: 2, nHashes: 2 }, { chunkLen: 4, nHashes: 1, dedup: true }]) {
          const lsh = lshAttention({ dModel, heads, causal: true, ...cs });
          using key = random.key(3, { device });
          const f = (x: T.Tensor) => lsh.apply(params, x, { key });
          await assertCausal(f, randomArray(rand, n * dModel, -2, 2), [1, n, dModel], device, rand);
        }
        disposeParams(params);
      }));
  }
});

Deno.test("lshAttention: gradients match finite differences (buckets held fixed)", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(26);
      const b = 1, n = 6, d = 4, h = 2, nh = 2;
      const lsh = lshAttention({
        dModel: d,
        heads: h,
        chunkLen: 2,
        nHashes: nh,
        causal: true,
        nBuckets: 4,
      });
      const ids = Int32Array.from({ length: b * h * nh * n }, () => Math.floor(rand() * 4));
      const saved = { buckets: T.keep(T.tensor(ids, { shape: [b, h, nh, n], device })) };
      const mask = T.keep(T.tensor([[true, true, true, false, true, true]], { device }));
      await checkGrad(
        {
          name: "lshAttention",
          inputs: [{ shape: [b, n, d] }, { shape: [d, d] }, { shape: [d, d] }, { shape: [d, d] }],
          fn: ([x, wqk, wv, wo]) => lsh.apply({ wqk, wv, wo }, x, { saved, mask }),
        },
        device,
        rand,
      );
      const dd = lshAttention({
        dModel: d,
        heads: h,
        chunkLen: 2,
        nHashes: nh,
        dedup: true,
        nBuckets: 4,
      });
      await checkGrad(
        {
          name: "lshAttention dedup",
          inputs: [{ shape: [b, 5, d] }, { shape: [d, d] }, { shape: [d, d] }, { shape: [d, d] }],
          fn: ([x, wqk, wv, wo]) => dd.apply({ wqk, wv, wo }, x, { saved }),
        },
        device,
        rand,
      );
      saved.buckets.dispose();
      mask.dispose();
    });
  }
});

Deno.test("lshAttention: saved buckets are replayed by reversible layers", async () => {
  await noLeaks(async () => {
    const rand = rng(28);
    const n = 10, d = 4;
    const lsh = lshAttention({ dModel: d, heads: 2, chunkLen: 2, nHashes: 2, causal: true });
    const { params } = makeParams(rand, d, 2, 2, true, "cpu-reference");
    const gScale = T.tensor([0.7], { device: "cpu-reference" });
    const x1 = T.tensor(randomArray(rand, n * d), { shape: [1, n, d], device: "cpu-reference" });
    const x2 = T.tensor(randomArray(rand, n * d), { shape: [1, n, d], device: "cpu-reference" });
    const g = (p: T.Tensor, x: T.Tensor) => T.tanh(T.mul(x, p));
    // Every call draws different rotations unless the saved buckets are replayed.
    let calls = 0;
    const f = (p: AttentionParams, x: T.Tensor, _o: unknown, s?: unknown) => {
      using key = random.key(1000 + calls++, { device: "cpu-reference" });
      return lsh.applyWithState(p, x, { key }, s as never);
    };
    const block = reversible(f, g);
    const loss = (p: { f: AttentionParams; g: T.Tensor }, a: T.Tensor, c: T.Tensor) => {
      const [y1, y2] = block.apply(p, [a, c]);
      return T.sum(T.mul(y1, y2));
    };
    const plain = (p: { f: AttentionParams; g: T.Tensor }, a: T.Tensor, c: T.Tensor) => {
      using key = random.key(1000, { device: "cpu-reference" });
      const y1 = T.add(a, lsh.apply(p.f, c, { key }));
      const y2 = T.add(c, g(p.g, y1));
      return T.sum(T.mul(y1, y2));
    };
    const p = { f: params, g: gScale };
    const got = grad(loss, { argnums: [0, 1, 2] })(p, x1, x2);
    assert.ok(calls >= 2, "the backward pass recomputes F");
    const want = grad(plain, { argnums: [0, 1, 2] })(p, x1, x2);
    // deno-lint-ignore no-explicit-any
    const flat = (gr: any): T.Tensor[] => [
      gr[0].f.wqk,
      gr[0].f.wv,
      gr[0].f.wo,
      gr[0].g,
      gr[1],
      gr[2],
    ];
    const [a, w] = [flat(got), flat(want)];
    for (let i = 0; i < a.length; i++) {
      await T.assertAllClose(a[i], w[i], { rtol: 1e-4, atol: 1e-5 });
    }
    for (const t of [...a, ...w, gScale, x1, x2]) t.dispose();
    disposeParams(params);
  });
});
