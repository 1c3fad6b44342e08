import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { activation, ACTIVATION_NAMES } from "../../../nn/layers/activation.ts";
import { feedForward } from "../../../nn/layers/feed_forward.ts";
import { serial } from "../../../nn/layers/combinators.ts";
import { linear } from "../../../nn/layers/linear.ts";
import * as random from "../../../ops/random.ts";
import { erf64 } from "../../../kernels/erf.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

const geluTanh = (x: number) =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const REF: Record<string, (x: number) => number> = {
  relu: (x) => Math.max(x, 0),
  gelu: geluTanh,
  geluTanh,
  gelu_new: geluTanh,
  geluExact: (x) => 0.5 * x * (1 + erf64(x / Math.SQRT2)),
  gelu_exact: (x) => 0.5 * x * (1 + erf64(x / Math.SQRT2)),
  silu: (x) => x / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  softplus: (x) => Math.log1p(Math.exp(x)),
  elu: (x) => (x > 0 ? x : Math.expm1(x)),
  leakyRelu: (x) => (x >= 0 ? x : 0.01 * x),
};

Deno.test("activation layers", async (t) => {
  assert.deepEqual([...ACTIVATION_NAMES].sort(), Object.keys(REF).sort());
  for (const device of testDevices()) {
    await t.step(`every name on ${device}`, async () => {
      await noLeaks(async () => {
        const xv = randomArray(rng(61), 40, -4, 4);
        for (const name of ACTIVATION_NAMES) {
          await T.scope(async () => {
            const layer = activation(name);
            const params = layer.init(random.key(0, { device }));
            assert.deepEqual(params, {});
            const y = layer.apply(params, T.tensor(xv, { shape: [5, 8], device }));
            await T.assertAllClose(y, Array.from(xv, REF[name]), { rtol: 1e-5, atol: 1e-6 });
          });
        }
      });
    });

    await t.step(`in serial and in feedForward on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const key = random.key(3, { device });
          const mlp = serial(linear({ inFeatures: 3, outFeatures: 4 }), activation("softplus"));
          const p = mlp.init(key);
          const x = T.tensor(randomArray(rng(62), 6, -1, 1), { shape: [2, 3], device });
          const lin = linear({ inFeatures: 3, outFeatures: 4 });
          const want = T.softplus(lin.apply(p[0] as never, x));
          await T.assertAllClose(mlp.apply(p, x), want);
          // A name and the same function given directly agree.
          const byName = feedForward({ dModel: 3, dFF: 5, activation: "silu" });
          const byFn = feedForward({ dModel: 3, dFF: 5, activation: T.silu });
          const fp = byName.init(key);
          await T.assertAllClose(byName.apply(fp, x), byFn.apply(fp, x));
          const custom = feedForward({ dModel: 3, dFF: 5, activation: (h) => T.leakyRelu(h, 0.3) });
          const h = T.leakyRelu(T.add(T.matmul(x, fp.in.w), fp.in.b!), 0.3);
          await T.assertAllClose(custom.apply(fp, x), T.add(T.matmul(h, fp.out.w), fp.out.b!), {
            rtol: 1e-5,
            atol: 1e-6,
          });
        })
      );
    });

    await t.step(`feedForward gradient with a named activation on ${device}`, async () => {
      const ff = feedForward({ dModel: 3, dFF: 4, activation: "elu" });
      await checkGrad(
        {
          name: "feedForward elu",
          inputs: [{ shape: [2, 3] }, { shape: [3, 4] }, { shape: [4] }, { shape: [4, 3] }, {
            shape: [3],
          }],
          fn: ([x, w1, b1, w2, b2]) => ff.apply({ in: { w: w1, b: b1 }, out: { w: w2, b: b2 } }, x),
        },
        device,
        rng(63),
      );
    });
  }

  await t.step("errors", () => {
    assert.throws(
      () => activation("swish" as never),
      /activation: activation must be a function or one of "relu"/,
    );
    assert.throws(() => activation(3 as never), /got number/);
  });
});
