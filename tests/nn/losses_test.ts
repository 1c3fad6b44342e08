import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { linear, type LinearParams } from "../../nn/layers/linear.ts";
import { layerNorm, type LayerNormParams } from "../../nn/layers/layer_norm.ts";
import {
  bitsPerToken,
  chunkedLmLoss,
  perplexity,
  softmaxCrossEntropy,
  softmaxCrossEntropyStats,
} from "../../nn/losses.ts";
import { checkGrad } from "../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";

/** Per-position float64 cross-entropy of `[n, v]` logits. */
function refNll(logits: Float32Array, targets: Int32Array, v: number): number[] {
  return Array.from(targets, (tgt, i) => {
    let m = -Infinity;
    for (let j = 0; j < v; j++) m = Math.max(m, logits[i * v + j]);
    let s = 0;
    for (let j = 0; j < v; j++) s += Math.exp(logits[i * v + j] - m);
    return m + Math.log(s) - logits[i * v + tgt];
  });
}

function randomTargets(rand: () => number, n: number, v: number) {
  return Int32Array.from({ length: n }, () => Math.floor(rand() * v));
}

Deno.test("softmaxCrossEntropy", async (t) => {
  for (const device of testDevices()) {
    await t.step(`values with masks on ${device}, incl. a fully masked row`, async () => {
      await noLeaks(async () => {
        const rand = rng(20);
        const [b, len, v] = [2, 3, 5];
        const lv = randomArray(rand, b * len * v, -4, 4);
        const tv = randomTargets(rand, b * len, v);
        const mv = [true, false, true, false, false, false]; // row 1 fully masked
        const nll = refNll(lv, tv, v);
        await T.scope(async () => {
          const logits = T.tensor(lv, { shape: [b, len, v], device });
          const targets = T.tensor(tv, { shape: [b, len], device });
          const mask = T.tensor(mv, { shape: [b, len], device });
          const mean = nll.reduce((a, x) => a + x, 0) / nll.length;
          const tol = { rtol: 1e-5, atol: 1e-5 };
          await T.assertAllClose(softmaxCrossEntropy(logits, targets), mean, tol);
          const kept = nll.filter((_, i) => mv[i]);
          const ksum = kept.reduce((a, x) => a + x, 0);
          await T.assertAllClose(softmaxCrossEntropy(logits, targets, { mask }), ksum / 2, tol);
          await T.assertAllClose(
            softmaxCrossEntropy(logits, targets, { mask, reduction: "sum" }),
            ksum,
            tol,
          );
          const none = softmaxCrossEntropy(logits, targets, { mask, reduction: "none" });
          assert.deepEqual(none.shape, [b, len]);
          await T.assertAllClose(none, nll.map((x, i) => (mv[i] ? x : 0)), tol);
          const f32Mask = T.tensor(mv.map(Number), { shape: [b, len], device });
          await T.assertAllClose(
            softmaxCrossEntropy(logits, targets, { mask: f32Mask }),
            ksum / 2,
            tol,
          );
          const stats = softmaxCrossEntropyStats(logits, targets, { mask });
          await T.assertAllClose(stats.sum, ksum, tol);
          assert.equal(await stats.count.array(), 2);
          // Everything masked: 0, with a zero (not NaN) gradient.
          const none0 = T.zeros([b, len], { dtype: "bool", device });
          const f = (lg: T.Tensor) => softmaxCrossEntropy(lg, targets, { mask: none0 });
          const [val, g] = T.valueAndGrad(f)(logits);
          assert.equal(await val.array(), 0);
          assert.ok((await g.data()).every((x: number) => x === 0));
          const c0 = softmaxCrossEntropyStats(logits, targets, { mask: none0 }).count;
          assert.equal(await c0.array(), 0);
          // Huge logits stay finite.
          const big = T.mul(logits, 1e4);
          const vb = await softmaxCrossEntropy(big, targets).array() as number;
          assert.ok(Number.isFinite(vb));
        });
      });
    });

    await t.step(`gradients on ${device} by finite differences`, async () => {
      const tgt = Int32Array.from([0, 3, 2, 1, 3, 0]);
      const mask = [true, true, false, true, false, true];
      for (const reduction of ["mean", "none"] as const) {
        await checkGrad(
          {
            name: `softmaxCrossEntropy (${reduction})`,
            inputs: [{ shape: [2, 3, 4] }],
            fn: ([logits], dev) =>
              softmaxCrossEntropy(logits, T.tensor(tgt, { shape: [2, 3], device: dev }), {
                mask: T.tensor(mask, { shape: [2, 3], device: dev }),
                reduction,
              }),
          },
          device,
          rng(21),
        );
      }
    });
  }

  await t.step("bits per token and perplexity", async () => {
    await noLeaks(async () => {
      assert.equal(bitsPerToken(Math.LN2), 1);
      assert.ok(Math.abs(bitsPerToken(1) - 1.4426950408889634) < 1e-12);
      assert.ok(Math.abs(perplexity(Math.log(50)) - 50) < 1e-9);
      await T.scope(async () => {
        await T.assertAllClose(bitsPerToken(T.tensor([Math.LN2, 0])), [1, 0]);
        await T.assertAllClose(perplexity(T.tensor([0, 1])), [1, Math.E]);
      });
    });
  });

  await t.step("errors", async () => {
    await noLeaks(() => {
      T.scope(() => {
        const logits = T.zeros([2, 3]);
        const tg = T.tensor(new Int32Array([0, 1]));
        assert.throws(
          () => softmaxCrossEntropy(logits, T.tensor(new Int32Array([0, 1, 2]))),
          /softmaxCrossEntropy: targets \[3\] must have the shape of logits \[2,3\] without its last/,
        );
        assert.throws(
          () => softmaxCrossEntropy(logits, T.zeros([2])),
          /targets must be i32 or u32/,
        );
        assert.throws(
          () => softmaxCrossEntropy(logits, tg, { mask: T.ones([3]) }),
          /mask \[3\] cannot broadcast to the shape of targets \[2\]/,
        );
        assert.throws(
          () => softmaxCrossEntropy(T.zeros([2, 0]), tg),
          /non-empty last \(class\) axis/,
        );
        assert.throws(
          // deno-lint-ignore no-explicit-any
          () => softmaxCrossEntropy(logits, tg, { reduction: "max" as any }),
          /reduction must be "mean", "sum" or "none"/,
        );
      });
    });
  });
});

Deno.test("chunkedLmLoss", async (t) => {
  const unchunked = (h: T.Tensor, head: LinearParams, tg: T.Tensor, mask?: T.Tensor) =>
    softmaxCrossEntropy(
      linear({ inFeatures: h.shape[2], outFeatures: head.w.shape[1] }).apply(head, h),
      tg,
      { mask },
    );

  for (const device of testDevices()) {
    await t.step(`equals the unchunked loss (value and gradients) on ${device}`, async () => {
      await noLeaks(async () => {
        const rand = rng(22);
        const [b, len, d, v] = [2, 7, 3, 6];
        await T.scope(async () => {
          const hidden = T.tensor(randomArray(rand, b * len * d), { shape: [b, len, d], device });
          const head = {
            w: T.tensor(randomArray(rand, d * v), { shape: [d, v], device }),
            b: T.tensor(randomArray(rand, v), { device }),
          };
          const targets = T.tensor(randomTargets(rand, b * len, v), { shape: [b, len], device });
          const mask = T.tensor(Array.from({ length: b * len }, (_, i) => i % 3 !== 1), {
            shape: [b, len],
            device,
          });
          for (const [m, chunkSize] of [[undefined, 3], [mask, 2], [mask, 10]] as const) {
            const f0 = (h: T.Tensor, p: LinearParams) => unchunked(h, p, targets, m);
            const f1 = (h: T.Tensor, p: LinearParams) =>
              chunkedLmLoss(h, p, targets, { chunkSize, mask: m });
            const [v0, g0] = T.valueAndGrad(f0, { argnums: [0, 1] })(hidden, head);
            const [v1, g1] = T.valueAndGrad(f1, { argnums: [0, 1] })(hidden, head);
            const tol = { rtol: 1e-5, atol: 1e-6 };
            await T.assertAllClose(v1, v0, tol);
            const a = T.treeTensors(g1), c = T.treeTensors(g0);
            assert.equal(a.length, 3);
            for (let i = 0; i < 3; i++) {
              await T.assertAllClose(a[i], c[i], { ...tol, message: `grad ${i}` });
            }
          }
          const s = chunkedLmLoss(hidden, head, targets, { chunkSize: 4, mask, reduction: "sum" });
          const n = await T.sum(T.cast(mask, "f32")).array() as number;
          await T.assertAllClose(s, T.mul(unchunked(hidden, head, targets, mask), n), {
            rtol: 1e-5,
          });
          // Fully masked: 0 and zero gradients.
          const off = T.zeros([b, len], { dtype: "bool", device });
          const [z, gz] = T.valueAndGrad((h: T.Tensor) =>
            chunkedLmLoss(h, head, targets, { chunkSize: 3, mask: off })
          )(hidden);
          assert.equal(await z.array(), 0);
          assert.ok((await gz.data()).every((x: number) => x === 0));
          // A layer norm run per slice (`before`) equals the norm applied to all of hidden
          // first, in the value and in the gradients of hidden, the head and the norm.
          const ln = layerNorm({ dim: d });
          const norm = ln.init(T.random.key(3, { device }));
          const fb0 = (h: T.Tensor, p: LinearParams, q: LayerNormParams) =>
            chunkedLmLoss(ln.apply(q, h), p, targets, { chunkSize: 3, mask });
          const fb1 = (h: T.Tensor, p: LinearParams, q: LayerNormParams) =>
            chunkedLmLoss(h, p, targets, {
              chunkSize: 3,
              mask,
              before: { params: q, apply: ln.apply },
            });
          const [vb0, gb0] = T.valueAndGrad(fb0, { argnums: [0, 1, 2] })(hidden, head, norm);
          const [vb1, gb1] = T.valueAndGrad(fb1, { argnums: [0, 1, 2] })(hidden, head, norm);
          await T.assertAllClose(vb1, vb0, { rtol: 1e-6 });
          const gs1 = T.treeTensors(gb1), gs0 = T.treeTensors(gb0);
          assert.equal(gs1.length, 5);
          for (let i = 0; i < gs1.length; i++) {
            await T.assertAllClose(gs1[i], gs0[i], { rtol: 1e-5, atol: 1e-6, message: `${i}` });
          }
          assert.throws(
            () => chunkedLmLoss(hidden, head, targets, { chunkSize: 3, before: {} as never }),
            /before must be \{ params, apply/,
          );
          // No bias.
          const noBias = { w: head.w };
          await T.assertAllClose(
            chunkedLmLoss(hidden, noBias, targets, { chunkSize: 3 }),
            softmaxCrossEntropy(T.matmul(hidden, head.w), targets),
            { rtol: 1e-5 },
          );
        });
      });
    });

    await t.step(`lower peak bytes than the unchunked loss on ${device}`, async () => {
      await noLeaks(() => {
        const rand = rng(23);
        const [b, len, d, v] = [1, 64, 4, 128];
        T.scope(() => {
          const hidden = T.tensor(randomArray(rand, b * len * d), { shape: [b, len, d], device });
          const head = {
            w: T.tensor(randomArray(rand, d * v), { shape: [d, v], device }),
            b: T.tensor(randomArray(rand, v), { device }),
          };
          const targets = T.tensor(randomTargets(rand, b * len, v), { shape: [b, len], device });
          const peak = (f: (h: T.Tensor, p: LinearParams) => T.Tensor) => {
            T.resetPeakMemory(device);
            const base = T.memory(device).liveBytes;
            T.scope(() => T.grad(f, { argnums: [0, 1] })(hidden, head));
            return T.memory(device).peakBytes - base;
          };
          const full = peak((h, p) => unchunked(h, p, targets));
          const part = peak((h, p) => chunkedLmLoss(h, p, targets, { chunkSize: 8 }));
          const logitsBytes = b * len * v * 4;
          assert.ok(full > logitsBytes, `unchunked peak ${full}`);
          assert.ok(part < full / 3 && part < logitsBytes, `chunked peak ${part} vs ${full}`);
        });
      });
    });

    await t.step(`gradients on ${device} by finite differences`, async () => {
      const tg = Int32Array.from([0, 2, 1, 2, 0]);
      await checkGrad(
        {
          name: "chunkedLmLoss",
          inputs: [{ shape: [1, 5, 2] }, { shape: [2, 3] }, { shape: [3] }],
          fn: ([h, w, bb], dev) =>
            chunkedLmLoss(h, { w, b: bb }, T.tensor(tg, { shape: [1, 5], device: dev }), {
              chunkSize: 2,
            }),
        },
        device,
        rng(24),
      );
    });
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      T.scope(() => {
        const h = T.zeros([1, 4, 2]);
        const head = { w: T.zeros([2, 5]) };
        const tg = T.zeros([1, 4], { dtype: "i32" });
        assert.throws(
          () => chunkedLmLoss(T.zeros([4, 2]), head, tg, { chunkSize: 2 }),
          /hidden must be a \[batch, len, d\] tensor, got \[4,2\]/,
        );
        assert.throws(
          () => chunkedLmLoss(h, { w: T.zeros([3, 5]) }, tg, { chunkSize: 2 }),
          /param head.w has shape \[3,5\], expected \[2,5\]/,
        );
        assert.throws(
          () => chunkedLmLoss(h, { w: head.w, b: T.zeros([4]) }, tg, { chunkSize: 2 }),
          /param head.b/,
        );
        assert.throws(
          () => chunkedLmLoss(h, head, T.zeros([1, 3], { dtype: "i32" }), { chunkSize: 2 }),
          /targets must have shape \[1,4\]/,
        );
        assert.throws(
          () => chunkedLmLoss(h, head, tg, { chunkSize: 0 }),
          /chunkSize must be a positive integer/,
        );
        assert.throws(
          () => chunkedLmLoss(h, head, tg, { chunkSize: 2, mask: T.ones([3]) }),
          /mask \[3\] cannot broadcast to the shape of targets \[1,4\]/,
        );
      });
    });
  });
});
