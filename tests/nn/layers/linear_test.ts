import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { linear } from "../../../nn/layers/linear.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

/** `x @ w + b` in float64 for x `[rows, k]`. */
function refAffine(x: Float32Array, w: Float32Array, b: Float32Array | null, k: number, n: number) {
  const rows = x.length / k;
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let s = b ? b[j] : 0;
      for (let p = 0; p < k; p++) s += x[r * k + p] * w[p * n + j];
      out[r * n + j] = s;
    }
  }
  return out;
}

Deno.test("linear", async (t) => {
  for (const device of testDevices()) {
    await t.step(`values on ${device}, with and without bias, rank 1 to 3`, async () => {
      await noLeaks(async () => {
        const rand = rng(1);
        for (const [shape, bias] of [[[2, 3, 4], true], [[5, 4], false], [[4], true]] as const) {
          const layer = linear({ inFeatures: 4, outFeatures: 3, bias });
          const xv = randomArray(rand, shape.reduce((a: number, b: number) => a * b, 1));
          const wv = randomArray(rand, 12), bv = randomArray(rand, 3);
          await T.scope(async () => {
            const x = T.tensor(xv, { shape, device });
            const w = T.tensor(wv, { shape: [4, 3], device });
            const params = bias ? { w, b: T.tensor(bv, { device }) } : { w };
            const y = layer.apply(params, x);
            assert.deepEqual(y.shape, [...shape.slice(0, -1), 3]);
            await T.assertAllClose(y, refAffine(xv, wv, bias ? bv : null, 4, 3), {
              rtol: 1e-5,
              atol: 1e-6,
            });
          });
        }
      });
    });

    await t.step(`init on ${device}: Glorot normal weights, zero bias`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const layer = linear({ inFeatures: 64, outFeatures: 32 });
          const p = layer.init(random.key(3, { device }));
          assert.equal(p.w.device, device);
          assert.deepEqual(p.w.shape, [64, 32]);
          assert.deepEqual(p.b!.shape, [32]);
          const w = await p.w.data();
          let s2 = 0;
          for (const v of w) s2 += v * v;
          const std = Math.sqrt(s2 / w.length), want = Math.sqrt(2 / 96);
          assert.ok(Math.abs(std - want) < 0.1 * want, `std ${std} vs ${want}`);
          assert.deepEqual(Array.from(await p.b!.data()), new Array(32).fill(0));
          const again = layer.init(random.key(3, { device }));
          assert.deepEqual(await again.w.data(), w, "same key, same params");
          const custom = linear({ inFeatures: 2, outFeatures: 2, bias: false, initStd: 0 });
          const q = custom.init(random.key(0, { device }));
          assert.equal(q.b, undefined);
          assert.ok((await q.w.data()).every((v) => v === 0));
        });
      });
    });

    await t.step(`gradients on ${device} by finite differences`, async () => {
      const layer = linear({ inFeatures: 3, outFeatures: 2 });
      await checkGrad(
        {
          name: "linear",
          inputs: [{ shape: [2, 3, 3] }, { shape: [3, 2] }, { shape: [2] }],
          fn: ([x, w, b]) => layer.apply({ w, b }, x),
        },
        device,
        rng(2),
      );
      const noBias = linear({ inFeatures: 3, outFeatures: 2, bias: false });
      await checkGrad(
        {
          name: "linear without bias",
          inputs: [{ shape: [3] }, { shape: [3, 2] }],
          fn: ([x, w]) => noBias.apply({ w }, x),
        },
        device,
        rng(3),
      );
    });
  }

  await t.step("errors name the layer and the rule", async () => {
    await noLeaks(() => {
      assert.throws(() => linear({ inFeatures: 0, outFeatures: 2 }), /linear: inFeatures/);
      assert.throws(() => linear({ inFeatures: 2, outFeatures: 1.5 }), /linear: outFeatures/);
      assert.throws(() => linear({ inFeatures: 2, outFeatures: 2, initStd: -1 }), /initStd/);
      const layer = linear({ inFeatures: 3, outFeatures: 2 });
      T.scope(() => {
        const w = T.zeros([3, 2]), b = T.zeros([2]);
        assert.throws(
          () => layer.apply({ w, b }, T.zeros([2, 4])),
          /linear: x \[2,4\].*last axis 3/,
        );
        assert.throws(() => layer.apply({ w: T.zeros([2, 3]), b }, T.zeros([3])), /param w/);
        assert.throws(() => layer.apply({ w }, T.zeros([3])), /param b/);
        assert.throws(
          () => layer.apply({ w, b }, T.zeros([3], { dtype: "i32" })),
          /linear: x must be f32/,
        );
      });
    });
  });
});
