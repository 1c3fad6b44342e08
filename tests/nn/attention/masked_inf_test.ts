/**
 * Padded positions holding non-finite values must not reach outputs or gradients of any
 * attention layer, and a fully padded sequence gives zero output with finite gradients.
 */
import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { nn, random } from "../../../mod.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

const finite = (d: ArrayLike<number>) => Array.from(d).every(Number.isFinite);
const [B, N, D] = [2, 8, 4];

// Sequence 0: the last 3 positions padded; sequence 1: fully padded.
const MASK = Array.from({ length: B * N }, (_, i) => i < N - 3);

Deno.test("attention layers: -inf at padded positions reaches no output or gradient", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const layers = [
            ["attention", nn.attention({ dModel: D, heads: 2, causal: true }), {}],
            ["attention sharedQK", nn.attention({ dModel: D, heads: 2, sharedQK: true }), {}],
            ["localAttention", nn.localAttention({ dModel: D, heads: 2, chunkLen: 2 }), {}],
            [
              "lshAttention",
              nn.lshAttention({ dModel: D, heads: 2, chunkLen: 2, nHashes: 2, hashSeed: 3 }),
              {},
            ],
            [
              "sparseAttention",
              nn.sparseAttention({
                dModel: D,
                heads: 2,
                pattern: "strided",
                stride: 2,
                c: 1,
                mode: "merged",
                blockSize: 2,
              }),
              {},
            ],
          ] as const;
          const xv = randomArray(rng(5), B * N * D);
          MASK.forEach((keep, i) => keep || xv.fill(-Infinity, i * D, (i + 1) * D));
          const x = T.tensor(xv, { shape: [B, N, D], device });
          const mask = T.tensor(MASK, { shape: [B, N], device });
          for (const [name, layer, extra] of layers) {
            const params = layer.init(random.key(7, { device })) as T.nn.AttentionParams;
            // deno-lint-ignore no-explicit-any
            const apply = (p: any, xx: T.Tensor) => (layer.apply as any)(p, xx, { mask, ...extra });
            const y = await apply(params, x).data();
            assert.ok(finite(y), `${name} output: ${y}`);
            assert.ok(y.slice(N * D).every((v: number) => v === 0), `${name}: padded sequence`);
            const loss = (p: unknown, xx: T.Tensor) => T.sum(T.square(apply(p, xx)));
            const [gp, gx] = T.grad(loss, { argnums: [0, 1] })(params, x) as [
              Record<string, T.Tensor>,
              T.Tensor,
            ];
            for (const [w, g] of Object.entries(gp)) {
              assert.ok(finite(await g.data()), `${name} gradient of ${w}`);
            }
            const gxv = await gx.data();
            assert.ok(finite(gxv), `${name} gradient of x`);
            MASK.forEach((keep, i) => {
              if (!keep) {
                assert.ok(gxv.slice(i * D, (i + 1) * D).every((v) => v === 0), `${name} dx ${i}`);
              }
            });
          }
        })
      ));
  }
});
