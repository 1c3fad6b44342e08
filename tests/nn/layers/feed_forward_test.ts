import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { feedForward } from "../../../nn/layers/feed_forward.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

const gelu = (x: number) =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const relu = (x: number) => Math.max(x, 0);

/** Float64 feed-forward of rows of `d`. */
function refFF(
  x: Float32Array,
  [w1, b1, w2, b2]: Float32Array[],
  d: number,
  f: number,
  act: (v: number) => number,
) {
  const rows = x.length / d;
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const h = new Float64Array(f);
    for (let j = 0; j < f; j++) {
      let s = b1[j];
      for (let p = 0; p < d; p++) s += x[r * d + p] * w1[p * f + j];
      h[j] = act(s);
    }
    for (let j = 0; j < d; j++) {
      let s = b2[j];
      for (let p = 0; p < f; p++) s += h[p] * w2[p * d + j];
      out[r * d + j] = s;
    }
  }
  return out;
}

const shapes = (d: number, f: number) => [[d, f], [f], [f, d], [d]];
const params = ([w1, b1, w2, b2]: T.Tensor[]) => ({ in: { w: w1, b: b1 }, out: { w: w2, b: b2 } });

Deno.test("feedForward", async (t) => {
  for (const device of testDevices()) {
    await t.step(`values on ${device} (gelu and relu)`, async () => {
      await noLeaks(async () => {
        const rand = rng(8);
        for (const activation of ["gelu", "relu"] as const) {
          const [d, f] = [3, 5];
          const xv = randomArray(rand, 2 * 4 * d, -2, 2);
          const pv = shapes(d, f).map((s) => randomArray(rand, s.reduce((a, b) => a * b, 1)));
          await T.scope(async () => {
            const ff = feedForward({ dModel: d, dFF: f, activation });
            const p = params(pv.map((v, i) => T.tensor(v, { shape: shapes(d, f)[i], device })));
            const y = ff.apply(p, T.tensor(xv, { shape: [2, 4, d], device }));
            assert.deepEqual(y.shape, [2, 4, d]);
            await T.assertAllClose(y, refFF(xv, pv, d, f, activation === "gelu" ? gelu : relu), {
              rtol: 1e-4,
              atol: 1e-5,
            });
          });
        }
      });
    });

    await t.step(`init on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const p = feedForward({ dModel: 4, dFF: 6 }).init(random.key(2, { device }));
          assert.deepEqual(p.in.w.shape, [4, 6]);
          assert.deepEqual(p.in.b!.shape, [6]);
          assert.deepEqual(p.out.w.shape, [6, 4]);
          assert.deepEqual(p.out.b!.shape, [4]);
          assert.notDeepEqual(await p.in.w.data(), (await p.out.w.data()).slice(0, 24));
        });
      });
    });

    await t.step(
      `gradients on ${device} by finite differences, with replayed dropout`,
      async () => {
        const ff = feedForward({ dModel: 3, dFF: 4 });
        await checkGrad(
          {
            name: "feedForward",
            inputs: [{ shape: [2, 2, 3] }, ...shapes(3, 4).map((shape) => ({ shape }))],
            fn: ([x, ...p]) => ff.apply(params(p), x),
          },
          device,
          rng(9),
        );
        const dropped = feedForward({ dModel: 3, dFF: 4, dropout: 0.5 });
        await checkGrad(
          {
            name: "feedForward with dropout",
            inputs: [{ shape: [2, 2, 3] }, ...shapes(3, 4).map((shape) => ({ shape }))],
            fn: ([x, ...p], dev) =>
              dropped.apply(params(p), x, { key: random.key(5, { device: dev }), training: true }),
          },
          device,
          rng(10),
        );
      },
    );
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      assert.throws(() => feedForward({ dModel: 0, dFF: 2 }), /feedForward: dModel/);
      assert.throws(
        // deno-lint-ignore no-explicit-any
        () => feedForward({ dModel: 2, dFF: 2, activation: "swish2" as any }),
        /feedForward: activation must be a function or one of "relu", "gelu"/,
      );
      assert.throws(() => feedForward({ dModel: 2, dFF: 2, dropout: 1 }), /\[0, 1\)/);
      const ff = feedForward({ dModel: 2, dFF: 3 });
      T.scope(() => {
        const p = params(shapes(2, 3).map((s) => T.zeros(s)));
        assert.throws(
          () => ff.apply(p, T.zeros([1, 3])),
          /feedForward: x \[1,3\] must have last axis 2/,
        );
        assert.throws(
          () => ff.apply({ ...p, out: { w: T.zeros([2, 3]) } }, T.zeros([1, 2])),
          /feedForward: param out.w has shape \[2,3\], expected \[3,2\]/,
        );
      });
    });
  });
});
