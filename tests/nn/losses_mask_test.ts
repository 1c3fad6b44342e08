/**
 * Masks that broadcast against the targets (as optax users pass them): a `[len]` mask against
 * `[batch, len]` targets, a `[batch, 1]` row mask, for `softmaxCrossEntropy` (every reduction),
 * its stats and `chunkedLmLoss`; a fully masked row gives exactly 0 loss and zero gradients,
 * even with `-inf` logits; a mask that cannot broadcast is a clear error.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { chunkedLmLoss, softmaxCrossEntropy, softmaxCrossEntropyStats } from "../../nn/losses.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";

const TOL = { rtol: 1e-5, atol: 1e-6 };

Deno.test("softmaxCrossEntropy with a broadcast mask", async (t) => {
  for (const device of testDevices()) {
    await t.step(`a [len] mask equals its [batch, len] broadcast on ${device}`, async () => {
      await noLeaks(async () => {
        const rand = rng(31);
        const [b, len, v] = [3, 4, 5];
        await T.scope(async () => {
          const logits = T.tensor(randomArray(rand, b * len * v, -3, 3), {
            shape: [b, len, v],
            device,
          });
          const targets = T.tensor(Int32Array.from({ length: b * len }, (_, i) => (i * 7) % v), {
            shape: [b, len],
            device,
          });
          const row = [true, false, true, true];
          const short = T.tensor(row, { device });
          const full = T.tensor(Array.from({ length: b }, () => row).flat(), {
            shape: [b, len],
            device,
          });
          for (const reduction of ["mean", "sum", "none"] as const) {
            await T.assertAllClose(
              softmaxCrossEntropy(logits, targets, { mask: short, reduction }),
              softmaxCrossEntropy(logits, targets, { mask: full, reduction }),
              { ...TOL, message: reduction },
            );
          }
          // Numbers as a mask, with a leading 1 axis.
          const f32 = T.tensor(row.map(Number), { shape: [1, len], device });
          await T.assertAllClose(
            softmaxCrossEntropy(logits, targets, { mask: f32 }),
            softmaxCrossEntropy(logits, targets, { mask: full }),
            TOL,
          );
          const s0 = softmaxCrossEntropyStats(logits, targets, { mask: short });
          const s1 = softmaxCrossEntropyStats(logits, targets, { mask: full });
          await T.assertAllClose(s0.sum, s1.sum, TOL);
          assert.equal(await s0.count.array(), 9);
          // Gradients match too.
          const g = (m: T.Tensor) =>
            T.grad((lg: T.Tensor) => softmaxCrossEntropy(lg, targets, { mask: m }))(logits);
          await T.assertAllClose(g(short), g(full), TOL);
        });
      });
    });

    await t.step(`a [batch, 1] mask zeroes a whole row exactly on ${device}`, async () => {
      await noLeaks(async () => {
        const rand = rng(32);
        const [b, len, v] = [2, 3, 4];
        const lv = randomArray(rand, b * len * v, -2, 2);
        lv.fill(-Infinity, len * v, len * v + 2); // the masked row holds -inf logits
        await T.scope(async () => {
          const logits = T.tensor(lv, { shape: [b, len, v], device });
          const targets = T.tensor(new Int32Array([0, 1, 2, 0, 1, 3]), {
            shape: [b, len],
            device,
          });
          const mask = T.tensor([1, 0], { shape: [b, 1], device });
          const none = await softmaxCrossEntropy(logits, targets, { mask, reduction: "none" })
            .data();
          assert.deepEqual([...none.subarray(len)], [0, 0, 0]);
          assert.ok(none.subarray(0, len).every((x: number) => Number.isFinite(x) && x > 0));
          const f = (lg: T.Tensor) => softmaxCrossEntropy(lg, targets, { mask });
          const [val, g] = T.valueAndGrad(f)(logits);
          const mean = [...none.subarray(0, len)].reduce((a, x) => a + x, 0) / len;
          await T.assertAllClose(val, mean, TOL);
          const gd = await g.data();
          assert.ok(gd.subarray(len * v).every((x: number) => x === 0), "masked row: zero grad");
          assert.ok(gd.every((x: number) => Number.isFinite(x)));
          // Everything masked by a [len] mask: exactly 0 with zero gradients.
          const off = T.zeros([len], { dtype: "bool", device });
          const [z, gz] = T.valueAndGrad((lg: T.Tensor) =>
            softmaxCrossEntropy(lg, targets, { mask: off })
          )(logits);
          assert.equal(await z.array(), 0);
          assert.ok((await gz.data()).every((x: number) => x === 0));
        });
      });
    });

    await t.step(`chunkedLmLoss takes a [len] mask on ${device}`, async () => {
      await noLeaks(async () => {
        const rand = rng(33);
        const [b, len, d, v] = [2, 5, 3, 6];
        await T.scope(async () => {
          const hidden = T.tensor(randomArray(rand, b * len * d), { shape: [b, len, d], device });
          const head = { w: T.tensor(randomArray(rand, d * v), { shape: [d, v], device }) };
          const targets = T.tensor(Int32Array.from({ length: b * len }, (_, i) => i % v), {
            shape: [b, len],
            device,
          });
          const row = [true, true, false, true, false];
          const short = T.tensor(row, { device });
          const full = T.tensor([...row, ...row], { shape: [b, len], device });
          const f = (m: T.Tensor) => (h: T.Tensor) =>
            chunkedLmLoss(h, head, targets, { chunkSize: 2, mask: m });
          const [v0, g0] = T.valueAndGrad(f(short))(hidden);
          const [v1, g1] = T.valueAndGrad(f(full))(hidden);
          await T.assertAllClose(v0, v1, TOL);
          await T.assertAllClose(g0, g1, TOL);
          const rows = T.tensor([0, 1], { shape: [b, 1], device });
          const [z, gz] = T.valueAndGrad((h: T.Tensor) =>
            chunkedLmLoss(h, head, targets, { chunkSize: 3, mask: rows, reduction: "sum" })
          )(hidden);
          assert.ok(Number.isFinite(await z.array() as number));
          assert.ok((await gz.data()).subarray(0, len * d).every((x: number) => x === 0));
        });
      });
    });
  }

  await t.step("a mask that cannot broadcast to the targets is an error", async () => {
    await noLeaks(() => {
      T.scope(() => {
        const logits = T.zeros([2, 3, 4]);
        const tg = T.zeros([2, 3], { dtype: "i32" });
        for (const shape of [[2], [3, 1], [1, 2, 3], [4]]) {
          assert.throws(
            () => softmaxCrossEntropy(logits, tg, { mask: T.ones(shape) }),
            new RegExp(
              `softmaxCrossEntropy: mask \\[${shape}\\] cannot broadcast to the shape of targets \\[2,3\\]`,
            ),
          );
        }
        assert.throws(
          () =>
            chunkedLmLoss(T.zeros([2, 3, 4]), { w: T.zeros([4, 5]) }, tg, {
              chunkSize: 2,
              mask: T.ones([2]),
            }),
          /chunkedLmLoss: mask \[2\] cannot broadcast to the shape of targets \[2,3\]/,
        );
      });
    });
  });
});
