/**
 * Masked positions holding `-inf` (or other non-finite values) must contribute exactly 0 to
 * losses and to every gradient: the "double where" sanitises the inputs of the unsafe op,
 * not only its output, so the backward pass never computes `0 * NaN`.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { chunkedLmLoss, softmaxCrossEntropy } from "../../nn/losses.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";

const finite = (d: ArrayLike<number>) => Array.from(d).every(Number.isFinite);

Deno.test("softmaxCrossEntropy: a masked row of -inf logits gives 0 loss and 0 gradient", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const [n, v] = [3, 4];
          const lv = randomArray(rng(3), n * v, -2, 2);
          lv.fill(-Infinity, v, 2 * v); // row 1 is all -inf and masked
          const logits = T.tensor(lv, { shape: [n, v], device });
          const targets = T.tensor(Int32Array.of(0, 2, 3), { device });
          const mask = T.tensor([true, false, true], { device });
          for (const reduction of ["mean", "sum", "none"] as const) {
            const f = (l: T.Tensor) => {
              const loss = softmaxCrossEntropy(l, targets, { mask, reduction });
              return reduction === "none" ? T.sum(loss) : loss;
            };
            const [loss, g] = T.valueAndGrad(f)(logits) as [T.Tensor, T.Tensor];
            const lossV = (await loss.data())[0];
            assert.ok(Number.isFinite(lossV), `${reduction}: loss ${lossV}`);
            const gv = await g.data();
            assert.ok(finite(gv), `${reduction}: gradient ${gv}`);
            assert.deepEqual(Array.from(gv.slice(v, 2 * v)), [0, 0, 0, 0]);
            // Unmasked rows match the loss without the masked row.
            const ref = softmaxCrossEntropy(
              T.tensor(lv.filter((_, i) => Math.floor(i / v) !== 1), { shape: [2, v], device }),
              T.tensor(Int32Array.of(0, 3), { device }),
              { reduction: reduction === "none" ? "sum" : reduction },
            );
            assert.ok(Math.abs((await ref.data())[0] - lossV) < 1e-5, reduction);
          }
        })
      ));
  }
});

Deno.test("chunkedLmLoss: masked positions with -inf hidden states give 0 gradient", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const [b, len, d, vocab] = [2, 5, 3, 6];
          const rand = rng(9);
          const hv = randomArray(rand, b * len * d);
          hv.fill(-Infinity, 2 * d, 4 * d); // batch 0, positions 2..3
          const hidden = T.tensor(hv, { shape: [b, len, d], device });
          const head = {
            w: T.tensor(randomArray(rand, d * vocab), { shape: [d, vocab], device }),
            b: T.tensor(randomArray(rand, vocab), { device }),
          };
          const targets = T.tensor(Int32Array.from({ length: b * len }, (_, i) => i % vocab), {
            shape: [b, len],
            device,
          });
          const m = Array.from({ length: b * len }, (_, i) => i !== 2 && i !== 3);
          const mask = T.tensor(m, { shape: [b, len], device });
          const f = (p: { w: T.Tensor; b: T.Tensor }, h: T.Tensor) =>
            chunkedLmLoss(h, p, targets, { chunkSize: 2, mask });
          const [loss, [gp, gh]] = T.valueAndGrad(f, { argnums: [0, 1] })(head, hidden) as [
            T.Tensor,
            [{ w: T.Tensor; b: T.Tensor }, T.Tensor],
          ];
          assert.ok(Number.isFinite((await loss.data())[0]));
          assert.ok(finite(await gp.w.data()), "head.w gradient");
          assert.ok(finite(await gp.b.data()), "head.b gradient");
          const ghv = await gh.data();
          assert.ok(finite(ghv), "hidden gradient");
          assert.deepEqual(Array.from(ghv.slice(2 * d, 4 * d)), new Array(2 * d).fill(0));
        })
      ));
  }
});
