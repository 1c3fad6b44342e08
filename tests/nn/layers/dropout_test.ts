import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { applyDropout, dropout } from "../../../nn/layers/dropout.ts";
import * as random from "../../../ops/random.ts";
import { noLeaks, testDevices } from "../../util.ts";

Deno.test("dropout", async (t) => {
  for (const device of testDevices()) {
    await t.step(`identity unless training, or at rate 0, on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const x = T.tensor([1, -2, 3], { device });
          const drop = dropout({ rate: 0.5 });
          const params = drop.init(random.key(0, { device }));
          assert.deepEqual(params, {});
          const key = random.key(1, { device });
          for (const opts of [undefined, {}, { key }, { key, training: false }]) {
            const y = drop.apply(params, x, opts);
            assert.notEqual(y, x);
            assert.deepEqual(await y.array(), [1, -2, 3]);
          }
          const y0 = dropout({ rate: 0 }).apply({}, x, { training: true });
          assert.deepEqual(await y0.array(), [1, -2, 3]);
        });
      });
    });

    await t.step(`rate, scaling and replay on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const n = 4000, rate = 0.25;
          const x = T.ones([40, 100], { device });
          const k = random.key(7, { device });
          const y = applyDropout(x, rate, { key: k, training: true });
          const v = await y.data();
          let kept = 0;
          for (const e of v) {
            assert.ok(e === 0 || Math.abs(e - 1 / (1 - rate)) < 1e-6, `entry ${e}`);
            if (e !== 0) kept++;
          }
          assert.ok(Math.abs(kept / n - (1 - rate)) < 0.03, `kept ${kept / n}`);
          const again = applyDropout(x, rate, { key: random.key(7, { device }), training: true });
          assert.deepEqual(await again.data(), v, "same key, same mask");
          const other = applyDropout(x, rate, { key: random.key(8, { device }), training: true });
          assert.notDeepEqual(await other.data(), v, "another key, another mask");
          // The gradient is the mask times the scale: for x = 1 it equals the output.
          const g = T.grad((xx: T.Tensor) =>
            T.sum(applyDropout(xx, rate, { key: k, training: true }))
          )(x);
          assert.deepEqual(await g.data(), v);
        });
      });
    });

    await t.step(`a dropped inf or NaN does not leak on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const x = T.full([2000], Infinity, { device });
          const y = await applyDropout(x, 0.5, { key: random.key(3, { device }), training: true })
            .data();
          assert.ok(y.some((e) => e === 0) && y.every((e) => e === 0 || e === Infinity));
        });
      });
    });
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      assert.throws(() => dropout({ rate: 1 }), /dropout rate must be a number in \[0, 1\), got 1/);
      assert.throws(() => dropout({ rate: -0.1 }), /\[0, 1\)/);
      assert.throws(() => dropout({ rate: NaN }), /\[0, 1\)/);
      T.scope(() => {
        const x = T.ones([2, 3]);
        assert.throws(
          () => dropout({ rate: 0.1 }).apply({}, x, { training: true }),
          /dropout: training mode needs a PRNG key \(opts.key\) for the mask of x \[2,3\]/,
        );
      });
    });
  });
});
