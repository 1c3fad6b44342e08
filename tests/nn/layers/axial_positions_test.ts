import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { axialPositions } from "../../../nn/layers/axial_positions.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, rng, testDevices } from "../../util.ts";

Deno.test("axialPositions", async (t) => {
  for (const device of testDevices()) {
    await t.step(`rows by mixed radix at several lengths on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const shape = [2, 3, 4], dims = [1, 2, 3];
          const pos = axialPositions({ shape, dims });
          const params = pos.init(random.key(0, { device }));
          assert.deepEqual(params.tables.map((e) => e.shape), [[2, 1], [3, 2], [4, 3]]);
          const tables = await Promise.all(params.tables.map((e) => e.array())) as number[][][];
          for (const len of [1, 5, 12, 13, 24]) {
            const e = pos.apply(params, len);
            assert.deepEqual(e.shape, [len, 6]);
            const rows = await e.array() as number[][];
            for (let p = 0; p < len; p++) {
              const [i, j, k] = [Math.floor(p / 12), Math.floor(p / 4) % 3, p % 4];
              assert.deepEqual(rows[p], [...tables[0][i], ...tables[1][j], ...tables[2][k]]);
            }
          }
          const one = axialPositions({ shape: [5], dims: [2] });
          const p1 = one.init(random.key(1, { device }));
          assert.deepEqual(
            await one.apply(p1, 3).array(),
            (await p1.tables[0].array() as number[][]).slice(0, 3),
          );
        });
      });
    });

    await t.step(`init N(0, 1) on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const p = axialPositions({ shape: [40, 50], dims: [30, 20] }).init(
            random.key(2, { device }),
          );
          for (const e of p.tables) {
            assert.equal(e.device, device);
            const v = await e.data();
            let s2 = 0;
            for (const x of v) s2 += x * x;
            assert.ok(Math.abs(Math.sqrt(s2 / v.length) - 1) < 0.1);
          }
          assert.notDeepEqual(
            (await p.tables[0].data()).slice(0, 100),
            (await p.tables[1].data()).slice(0, 100),
          );
        });
      });
    });

    await t.step(
      `gradients on ${device} by finite differences (len below the product)`,
      async () => {
        const pos = axialPositions({ shape: [3, 2], dims: [2, 3] });
        await checkGrad(
          {
            name: "axialPositions",
            inputs: [{ shape: [3, 2] }, { shape: [2, 3] }],
            fn: ([a, b]) => pos.apply({ tables: [a, b] }, 5),
          },
          device,
          rng(14),
        );
      },
    );
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      assert.throws(() => axialPositions({ shape: [2, 3], dims: [4] }), /one entry per factor/);
      assert.throws(() => axialPositions({ shape: [], dims: [] }), /non-empty arrays/);
      assert.throws(
        () => axialPositions({ shape: [2, 0], dims: [1, 1] }),
        /shape\[1\] must be a positive integer/,
      );
      const pos = axialPositions({ shape: [2, 3], dims: [1, 1] });
      T.scope(() => {
        const params = { tables: [T.zeros([2, 1]), T.zeros([3, 1])] };
        assert.throws(
          () => pos.apply(params, 7),
          /len must be an integer from 1 to 6 \(the product of shape \[2,3\]\), got 7/,
        );
        assert.throws(() => pos.apply(params, 0), /from 1 to 6/);
        assert.throws(() => pos.apply(params, 2.5), /from 1 to 6/);
        assert.throws(() => pos.apply({ tables: [params.tables[0]] }, 2), /must hold 2 tensors/);
        assert.throws(
          () => pos.apply({ tables: [params.tables[0], T.zeros([3, 2])] }, 2),
          /param tables\[1\] has shape \[3,2\], expected \[3,1\]/,
        );
      });
    });
  });
});
