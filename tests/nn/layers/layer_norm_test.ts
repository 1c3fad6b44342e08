import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { layerNorm } from "../../../nn/layers/layer_norm.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

/** Float64 layer norm of rows of `d`. */
function refLayerNorm(
  x: Float32Array,
  d: number,
  scale: Float32Array,
  bias: Float32Array,
  eps: number,
) {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let m = 0;
    for (let j = 0; j < d; j++) m += x[r * d + j];
    m /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[r * d + j] - m) ** 2;
    v /= d;
    for (let j = 0; j < d; j++) {
      out[r * d + j] = (x[r * d + j] - m) / Math.sqrt(v + eps) * scale[j] + bias[j];
    }
  }
  return out;
}

Deno.test("layerNorm", async (t) => {
  for (const device of testDevices()) {
    await t.step(`values on ${device} against float64`, async () => {
      await noLeaks(async () => {
        const rand = rng(5);
        for (const [shape, eps] of [[[2, 3, 5], 1e-6], [[1, 1], 1e-6], [[4, 7], 0.5]] as const) {
          const d = shape[shape.length - 1];
          const n = shape.reduce((a: number, b: number) => a * b, 1);
          const xv = randomArray(rand, n, -3, 3);
          const sv = randomArray(rand, d), bv = randomArray(rand, d);
          await T.scope(async () => {
            const ln = layerNorm({ dim: d, eps });
            const y = ln.apply({
              scale: T.tensor(sv, { device }),
              bias: T.tensor(bv, { device }),
            }, T.tensor(xv, { shape, device }));
            assert.deepEqual(y.shape, shape);
            await T.assertAllClose(y, refLayerNorm(xv, d, sv, bv, eps), { rtol: 1e-4, atol: 1e-5 });
          });
        }
      });
    });

    await t.step(`init on ${device}: scale ones, bias zeros`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const p = layerNorm({ dim: 3 }).init(random.key(0, { device }));
          assert.equal(p.scale.device, device);
          assert.deepEqual(await p.scale.array(), [1, 1, 1]);
          assert.deepEqual(await p.bias.array(), [0, 0, 0]);
        });
      });
    });

    await t.step(`gradients on ${device} by finite differences`, async () => {
      const ln = layerNorm({ dim: 4 });
      await checkGrad(
        {
          name: "layerNorm",
          inputs: [{ shape: [3, 4] }, { shape: [4] }, { shape: [4] }],
          fn: ([x, scale, bias]) => ln.apply({ scale, bias }, x),
        },
        device,
        rng(6),
      );
    });
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      assert.throws(() => layerNorm({ dim: 0 }), /layerNorm: dim/);
      assert.throws(() => layerNorm({ dim: 2, eps: -1 }), /layerNorm: eps/);
      const ln = layerNorm({ dim: 3 });
      T.scope(() => {
        const scale = T.ones([3]), bias = T.zeros([3]);
        assert.throws(() => ln.apply({ scale, bias }, T.ones([2, 4])), /layerNorm: x \[2,4\]/);
        assert.throws(() => ln.apply({ scale: T.ones([4]), bias }, T.ones([3])), /param scale/);
      });
    });
  });
});
