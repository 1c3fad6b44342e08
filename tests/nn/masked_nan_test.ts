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

Deno.test("softmax, logSoftmax, logsumexp: rows of only -inf are finite with 0 gradient", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          // Short rows (registers), long rows (streamed) and a non-last axis (transposed).
          for (const [rows, n, axis] of [[3, 5, 1], [2, 5000, 1], [5, 3, 0]]) {
            const shape = [rows, n];
            const xv = randomArray(rng(n), rows * n, -3, 3);
            const along = (i: number) => (axis === 1 ? Math.floor(i / n) : i % n);
            xv.forEach((_, i) => along(i) === 1 && (xv[i] = -Infinity)); // slice 1: all -inf
            const x = T.tensor(xv, { shape, device });
            const keepShape = axis === 1 ? [rows, 1] : [1, n];
            const keepV = Array.from({ length: axis === 1 ? rows : n }, (_, i) => i !== 1);
            const keep = T.tensor(keepV, { shape: keepShape, device });
            const what = `[${shape}] axis ${axis}`;
            const sm = await T.softmax(x, axis).data();
            const lsm = await T.logSoftmax(x, axis).data();
            const lse = await T.logsumexp(x, axis, { keepdims: true }).data();
            for (let i = 0; i < xv.length; i++) {
              if (along(i) !== 1) continue;
              assert.equal(sm[i], 0, `softmax ${what}`);
              assert.equal(lsm[i], -Infinity, `logSoftmax ${what}`);
            }
            assert.equal(lse[1], -Infinity, `logsumexp ${what}`);
            const fs: [string, (y: T.Tensor) => T.Tensor][] = [
              ["softmax", (y) => T.softmax(y, axis)],
              ["logSoftmax", (y) => T.logSoftmax(y, axis)],
              ["logsumexp", (y) => T.logsumexp(y, axis, { keepdims: true })],
            ];
            for (const [name, f] of fs) {
              const loss = (y: T.Tensor) => T.sum(T.mul(T.where(keep, f(y), 0), 0.5));
              const g = await (T.grad(loss)(x) as T.Tensor).data();
              assert.ok(finite(g), `${name} ${what}: ${g.slice(0, 8)}`);
              for (let i = 0; i < xv.length; i++) {
                if (along(i) === 1) assert.equal(g[i], 0, `${name} ${what} at ${i}`);
              }
            }
          }
        })
      ));
  }
});
