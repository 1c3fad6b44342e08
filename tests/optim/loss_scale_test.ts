import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { optim } from "../../mod.ts";
import { disposeTree } from "../../autodiff/pytree.ts";
import { noLeaks, testDevices } from "../util.ts";

type State = optim.LossScaleState<unknown>;
const scalars = async (s: State) => ({
  scale: await s.scale.array(),
  good: await s.goodSteps.array(),
  skipped: await s.skipped.array(),
});

/** Runs `opt` over the gradient steps, returning each step's updates (host) and state figures. */
async function run(
  opt: T.optim.GradientTransformation<State>,
  p: number[],
  grads: number[][],
  device: T.DeviceName,
) {
  const params = { w: T.tensor(p, { device }) };
  let state = opt.init(params);
  const out = [];
  for (const g of grads) {
    const gt = { w: T.tensor(g, { device }) };
    const [u, next] = opt.update(gt, state, params);
    out.push({ u: Array.from(await u.w.data()), ...(await scalars(next)), state: next });
    disposeTree([gt, u]);
    if (out.length > 1) disposeTree(out[out.length - 2].state);
    else disposeTree(state);
    state = next;
  }
  disposeTree([params, state]);
  return out;
}

Deno.test("dynamicLossScale unscales, skips non-finite steps and adapts the scale", async (t) => {
  for (const device of testDevices()) {
    await t.step(`sgd, growth and backoff on ${device}`, () =>
      noLeaks(async () => {
        const opt = optim.dynamicLossScale(optim.sgd(0.5), {
          initScale: 8,
          growthInterval: 2,
          maxScale: 32,
          minScale: 2,
        });
        // Gradients arrive multiplied by the scale in force at their step.
        const steps = await run(opt, [1, 2], [
          [8, -16], // scale 8 -> unscaled [1, -2]
          [16, 8], // [2, 1]; second finite step: scale grows to 16
          [Infinity, 0], // skipped: scale 8
          [NaN, 1], // skipped: scale 4
          [-Infinity, 1], // skipped: scale 2 (the floor)
          [2, 2], // [1, 1]
          [4, 4], // [2, 2]; grows to 4
        ], device);
        assert.deepEqual(steps.map((s) => s.u), [
          [-0.5, 1],
          [-1, -0.5],
          [0, 0],
          [0, 0],
          [0, 0],
          [-0.5, -0.5],
          [-1, -1],
        ]);
        assert.deepEqual(steps.map((s) => s.scale), [8, 16, 8, 4, 2, 2, 4]);
        assert.deepEqual(steps.map((s) => s.good), [1, 0, 0, 0, 0, 1, 0]);
        assert.deepEqual(steps.map((s) => s.skipped), [0, 0, 1, 2, 3, 3, 3]);
      }));
    await t.step(`the scale stops at maxScale on ${device}`, () =>
      noLeaks(async () => {
        const opt = optim.dynamicLossScale(optim.sgd(1), {
          initScale: 4,
          growthInterval: 1,
          maxScale: 10,
        });
        const steps = await run(opt, [0], [[4], [8], [10], [10]], device);
        assert.deepEqual(steps.map((s) => s.scale), [8, 10, 10, 10]);
        assert.deepEqual(steps.map((s) => s.u), [[-1], [-1], [-1], [-1]]);
      }));
    await t.step(
      `a skipped step leaves adam's moments and count untouched on ${device}`,
      () =>
        noLeaks(async () => {
          const opt = optim.dynamicLossScale(optim.adam(0.1), { initScale: 2 });
          const params = { w: T.tensor([1, 2], { device }), b: null };
          const s0 = opt.init(params);
          const g1 = { w: T.tensor([2, -2], { device }), b: null };
          const [u1, s1] = opt.update(g1, s0, params);
          const g2 = { w: T.tensor([NaN, 1], { device }), b: null };
          const [u2, s2] = opt.update(g2, s1, params);
          assert.equal(u2.b, null);
          assert.deepEqual(await u2.w.array(), [0, 0]);
          const [m1, m2] = [s1.inner[0], s2.inner[0]];
          const w_ = (tree: unknown) => (tree as { w: T.Tensor }).w.array();
          assert.deepEqual(await w_(m2.mu), await w_(m1.mu));
          assert.deepEqual(await w_(m2.nu), await w_(m1.nu));
          assert.equal(await m2.count.array(), 1);
          // Host mirrors count the skipped step; restoreSteps rebuilds them from the tensors.
          assert.equal(m2.step, 2);
          assert.equal((await optim.restoreSteps(s2)).inner[0].step, 1);
          // The first step is adam's on the unscaled gradient [1, -1]: -lr * sign.
          const w = await u1.w.data();
          assert.ok(Math.abs(w[0] + 0.1) < 1e-6 && Math.abs(w[1] - 0.1) < 1e-6, `${w}`);
          disposeTree([params, s0, g1, u1, s1, g2, u2, s2]);
        }),
    );
    await t.step(
      `scaleLoss and gradients of a scaled loss on ${device}`,
      () =>
        noLeaks(async () => {
          const opt = optim.dynamicLossScale(optim.sgd(1), { initScale: 1024 });
          const params = { w: T.tensor([3], { device }) };
          const state = opt.init(params);
          const loss = (p: typeof params) => optim.scaleLoss(T.sum(T.square(p.w)), state);
          const g = T.grad(loss)(params);
          assert.deepEqual(await g.w.array(), [6 * 1024]);
          const [u, next] = opt.update(g, state, params);
          assert.deepEqual(await u.w.array(), [-6]);
          disposeTree([params, state, g, u, next]);
        }),
    );
  }
});

Deno.test("dynamicLossScale refuses bad options", () => {
  const sgd = optim.sgd(1);
  for (
    const bad of [
      { initScale: 0 },
      { initScale: Infinity },
      { growthInterval: 1.5 },
      { growthInterval: 0 },
      { growthFactor: 0.5 },
      { backoffFactor: 1.5 },
      { backoffFactor: 0 },
      { minScale: 0 },
      { minScale: 4, maxScale: 2 },
    ]
  ) {
    assert.throws(
      () => optim.dynamicLossScale(sgd, bad),
      (e: Error) => e instanceof RangeError && e.message.startsWith("dynamicLossScale: "),
      JSON.stringify(bad),
    );
  }
});
