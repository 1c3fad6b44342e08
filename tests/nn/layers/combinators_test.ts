import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { residual, serial } from "../../../nn/layers/combinators.ts";
import { dropout } from "../../../nn/layers/dropout.ts";
import { layerNorm } from "../../../nn/layers/layer_norm.ts";
import { linear } from "../../../nn/layers/linear.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

Deno.test("serial and residual", async (t) => {
  for (const device of testDevices()) {
    await t.step(`serial composes and splits keys on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const l1 = linear({ inFeatures: 3, outFeatures: 4 });
          const ln = layerNorm({ dim: 4 });
          const drop = dropout({ rate: 0.5 });
          const model = serial(l1, drop, ln);
          const params = model.init(random.key(0, { device })) as [
            ReturnType<typeof l1.init>,
            Record<string, never>,
            ReturnType<typeof ln.init>,
          ];
          assert.equal(params.length, 3);
          assert.deepEqual(params[0].w.shape, [3, 4]);
          assert.deepEqual(params[1], {});
          const x = T.tensor(randomArray(rng(1), 6), { shape: [2, 3], device });
          const y = model.apply(params, x);
          const want = ln.apply(params[2], l1.apply(params[0], x));
          assert.deepEqual(await y.data(), await want.data());
          // Training: replayable from the one key; each layer got its own key.
          const opts = () => ({ key: random.key(9, { device }), training: true });
          const a = await model.apply(params, x, opts()).data();
          assert.deepEqual(await model.apply(params, x, opts()).data(), a);
          const keys = random.splitN(random.key(9, { device }), 3);
          const manual = ln.apply(
            params[2],
            drop.apply({}, l1.apply(params[0], x), { key: keys[1], training: true }),
          );
          assert.deepEqual(await manual.data(), a);
        });
      });
    });

    await t.step(`residual adds the input on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const inner = linear({ inFeatures: 2, outFeatures: 2 });
          const block = residual(inner);
          const p = block.init(random.key(1, { device }));
          const x = T.tensor([[1, 2], [3, 4]], { device });
          const y = block.apply(p, x);
          await T.assertAllClose(y, T.add(x, inner.apply(p, x)), { rtol: 0, atol: 0 });
        });
      });
    });

    await t.step(`gradients through serial and residual on ${device}`, async () => {
      const l1 = linear({ inFeatures: 3, outFeatures: 3 });
      const model = serial(residual(l1), layerNorm({ dim: 3 }));
      await checkGrad(
        {
          name: "serial(residual(linear), layerNorm)",
          inputs: [{ shape: [2, 3] }, { shape: [3, 3] }, { shape: [3] }, { shape: [3] }, {
            shape: [3],
          }],
          fn: ([x, w, b, scale, bias]) => model.apply([{ w, b }, { scale, bias }], x),
        },
        device,
        rng(13),
      );
    });
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      assert.throws(
        () => (serial as (...l: unknown[]) => unknown)(),
        /serial: needs at least one layer/,
      );
      // deno-lint-ignore no-explicit-any
      assert.throws(() => serial({} as any), /serial: layer 0 must be a layer/);
      // deno-lint-ignore no-explicit-any
      assert.throws(() => residual(null as any), /residual: layer must be a layer/);
      T.scope(() => {
        const l = linear({ inFeatures: 2, outFeatures: 3 });
        const p = { w: T.zeros([2, 3]), b: T.zeros([3]) };
        assert.throws(
          () => serial(l).apply([p, p] as never, T.zeros([2])),
          /params must be an array of 1/,
        );
        assert.throws(
          () => residual(l).apply(p, T.zeros([1, 2])),
          /residual: the inner layer maps \[1,2\] to \[1,3\]; it must keep the shape/,
        );
      });
    });
  });
});

Deno.test("serial: params, input and output types follow the layers", () => {
  const a = linear({ inFeatures: 2, outFeatures: 3 });
  const norm = layerNorm({ dim: 3 });
  const b = linear({ inFeatures: 3, outFeatures: 1 });
  const net = serial(a, norm, b);
  // Compile-time checks: each entry of the params tuple has its layer's params type.
  type P = Parameters<typeof net.apply>[0];
  type Equal<A, B> = (<V>() => V extends A ? 1 : 2) extends (<V>() => V extends B ? 1 : 2) ? true
    : false;
  const exact: Equal<P, [T.nn.LinearParams, T.nn.LayerNormParams, T.nn.LinearParams]> = true;
  assert.ok(exact);
  T.scope(() => {
    const params = net.init(T.random.key(0));
    const y: T.Tensor = net.apply(params, T.ones([4, 2]));
    assert.deepEqual(y.shape, [4, 1]);
    assert.deepEqual(params[1].scale.shape, [3]);
  });
});
