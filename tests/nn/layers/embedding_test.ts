import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { embedding } from "../../../nn/layers/embedding.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, rng, testDevices } from "../../util.ts";

Deno.test("embedding", async (t) => {
  for (const device of testDevices()) {
    await t.step(`lookup on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const emb = embedding({ vocab: 4, dim: 3 });
          const table = T.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]], { device });
          const ids = T.tensor(new Int32Array([3, 0, 0, 2, 1, 3]), { shape: [2, 3], device });
          const y = emb.apply({ table }, ids);
          assert.deepEqual(y.shape, [2, 3, 3]);
          assert.deepEqual(await y.array(), [
            [[9, 10, 11], [0, 1, 2], [0, 1, 2]],
            [[6, 7, 8], [3, 4, 5], [9, 10, 11]],
          ]);
          const u = emb.apply({ table }, T.tensor(new Uint32Array([1]), { device }));
          assert.deepEqual(await u.array(), [[3, 4, 5]]);
        });
      });
    });

    await t.step(`init on ${device}: N(0, initStd^2), replayable`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const p = embedding({ vocab: 50, dim: 40, initStd: 0.5 }).init(random.key(1, { device }));
          assert.deepEqual(p.table.shape, [50, 40]);
          assert.equal(p.table.device, device);
          const v = await p.table.data();
          let s = 0, s2 = 0;
          for (const x of v) (s += x, s2 += x * x);
          const m = s / v.length, std = Math.sqrt(s2 / v.length - m * m);
          assert.ok(Math.abs(m) < 0.05 && Math.abs(std - 0.5) < 0.05, `mean ${m}, std ${std}`);
        });
      });
    });

    await t.step(
      `gradient on ${device}: repeated ids accumulate (finite differences)`,
      async () => {
        const emb = embedding({ vocab: 5, dim: 3 });
        await checkGrad(
          {
            name: "embedding",
            inputs: [{ shape: [5, 3] }],
            fn: ([table], dev) =>
              emb.apply({ table }, T.tensor(new Int32Array([1, 4, 1, 0, 1]), { device: dev })),
          },
          device,
          rng(4),
        );
        await noLeaks(async () => {
          await T.scope(async () => {
            const table = T.zeros([3, 2], { device });
            const ids = T.tensor(new Int32Array([2, 2, 0]), { device });
            const small = embedding({ vocab: 3, dim: 2 });
            const g = T.grad((tb: T.Tensor) => T.sum(small.apply({ table: tb }, ids)))(table);
            assert.deepEqual(await g.array(), [[1, 1], [0, 0], [2, 2]]);
          });
        });
      },
    );
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      assert.throws(() => embedding({ vocab: 0, dim: 2 }), /embedding: vocab/);
      assert.throws(() => embedding({ vocab: 2, dim: -1 }), /embedding: dim/);
      const emb = embedding({ vocab: 3, dim: 2 });
      T.scope(() => {
        const table = T.zeros([3, 2]);
        assert.throws(() => emb.apply({ table }, T.zeros([2])), /ids must be i32 or u32, got f32/);
        assert.throws(
          () => emb.apply({ table: T.zeros([4, 2]) }, T.tensor(new Int32Array([0]))),
          /param table has shape \[4,2\], expected \[3,2\]/,
        );
      });
    });
  });
});
