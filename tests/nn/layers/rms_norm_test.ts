import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { rmsNorm } from "../../../nn/layers/rms_norm.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

/** Float64 RMS norm of rows of `d`. */
function refRmsNorm(x: Float32Array, d: number, scale: Float32Array, eps: number) {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let ms = 0;
    for (let j = 0; j < d; j++) ms += x[r * d + j] ** 2;
    ms /= d;
    for (let j = 0; j < d; j++) out[r * d + j] = x[r * d + j] / Math.sqrt(ms + eps) * scale[j];
  }
  return out;
}

Deno.test("rmsNorm", async (t) => {
  for (const device of testDevices()) {
    await t.step(`values on ${device} against float64`, async () => {
      await noLeaks(async () => {
        const rand = rng(51);
        for (const [shape, eps] of [[[2, 3, 5], 1e-6], [[1, 1], 1e-6], [[4, 7], 0.5]] as const) {
          const d = shape[shape.length - 1];
          const n = shape.reduce((a: number, b: number) => a * b, 1);
          const xv = randomArray(rand, n, -3, 3);
          const sv = randomArray(rand, d);
          await T.scope(async () => {
            const norm = rmsNorm({ dim: d, eps });
            const y = norm.apply(
              { scale: T.tensor(sv, { device }) },
              T.tensor(xv, { shape, device }),
            );
            assert.deepEqual(y.shape, shape);
            await T.assertAllClose(y, refRmsNorm(xv, d, sv, eps), { rtol: 1e-4, atol: 1e-5 });
          });
        }
      });
    });

    await t.step(`init on ${device}: scale ones`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const p = rmsNorm({ dim: 3 }).init(random.key(0, { device }));
          assert.equal(p.scale.device, device);
          assert.deepEqual(Object.keys(p), ["scale"]);
          assert.deepEqual(await p.scale.array(), [1, 1, 1]);
        })
      );
    });

    await t.step(`gradients on ${device} by finite differences`, async () => {
      const norm = rmsNorm({ dim: 4, eps: 1e-3 });
      await checkGrad(
        {
          name: "rmsNorm",
          inputs: [{ shape: [3, 4] }, { shape: [4] }],
          fn: ([x, scale]) => norm.apply({ scale }, x),
        },
        device,
        rng(52),
      );
    });
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      assert.throws(() => rmsNorm({ dim: 0 }), /rmsNorm: dim/);
      assert.throws(() => rmsNorm({ dim: 2, eps: -1 }), /rmsNorm: eps/);
      const norm = rmsNorm({ dim: 3 });
      T.scope(() => {
        assert.throws(
          () => norm.apply({ scale: T.ones([3]) }, T.ones([2, 4])),
          /rmsNorm: x \[2,4\]/,
        );
        assert.throws(() => norm.apply({ scale: T.ones([4]) }, T.ones([3])), /param scale/);
      });
    });
  });
});
