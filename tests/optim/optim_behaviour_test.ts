/** Optimizers beyond their values: state structure, convergence, errors and memory. */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import * as optim from "../../optim/mod.ts";
import type { GradientTransformation } from "../../optim/mod.ts";
import { noLeaks, testDevices } from "../util.ts";
import { arr, disposeTree, type Host, mk, with_ } from "./optim_util.ts";

Deno.test("state mirrors params; counters; outputs are new handles", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const params = {
            layers: [{ w: T.ones([2, 3], { device }), b: T.zeros([3], { device }) }],
            head: { w: T.ones([3], { device }), bias: null },
          };
          const grads = {
            layers: [{ w: T.ones([2, 3], { device }), b: T.ones([3], { device }) }],
            head: { w: T.ones([3], { device }), bias: null },
          };
          const opt = optim.adamw(optim.constant(0.1));
          const s0 = opt.init(params);
          const [adamState, decayState, lrState] = s0;
          const shapes = (tree: unknown): unknown =>
            JSON.parse(JSON.stringify(tree, (_k, v) => (v instanceof T.Tensor ? v.shape : v)));
          assert.deepEqual(shapes(adamState.mu), shapes(params));
          assert.deepEqual(shapes(adamState.nu), shapes(params));
          assert.deepEqual(decayState, {});
          assert.equal((lrState as optim.StepCount).step, 0);
          const [u1, s1] = opt.update(grads, s0, params);
          const [u2, s2] = opt.update(grads, s1, params);
          assert.deepEqual(shapes(u2), shapes(params));
          assert.equal(s2[0].step, 2);
          assert.deepEqual(await s2[0].count.array(), 2);
          assert.equal(s2[0].count.dtype, "i32");
          // Inputs are untouched; outputs are distinct handles that survive disposing inputs.
          assert.deepEqual(await s0[0].count.array(), 0);
          const id = optim.identity().update(grads, {})[0];
          assert.notEqual(id.layers[0].w, grads.layers[0].w);
          grads.layers[0].w.dispose();
          assert.deepEqual(await id.layers[0].w.array(), [[1, 1, 1], [1, 1, 1]]);
          assert.ok(!u1.layers[0].w.disposed);
          // restoreSteps rebuilds host mirrors from the count tensors.
          const broken: typeof s2 = [{ ...s2[0], step: 0 }, s2[1], {
            ...(s2[2] as optim.StepCount),
            step: 7,
          }];
          const fixed = await optim.restoreSteps(broken);
          assert.equal(fixed[0].step, 2);
          assert.equal((fixed[2] as optim.StepCount).step, 2);
          assert.equal(
            (fixed[0].mu as typeof params).layers[0].w,
            (s2[0].mu as typeof params).layers[0].w,
          );
        })
      ));
  }
});

const OPTIMIZERS: [string, () => GradientTransformation<unknown>][] = [
  ["sgd", () => optim.sgd(0.1)],
  ["sgd momentum", () => optim.sgd(0.05, { momentum: 0.9 })],
  ["sgd nesterov", () => optim.sgd(0.05, { momentum: 0.9, nesterov: true })],
  ["adam", () => optim.adam(optim.cosineDecay(0.2, 100, 0.05))],
  ["adamw", () => optim.adamw(optim.cosineDecay(0.2, 100, 0.05), { weightDecay: 1e-4 })],
  ["adafactor", () => optim.adafactor(0.2, { multiplyByParameterScale: false })],
  ["clip + adam", () => optim.chain(optim.clipByGlobalNorm(1), optim.adam(0.1))],
];

Deno.test("each optimizer minimises sum((x - t)^2) in 100 steps without leaking", async (t) => {
  const target: Host = {
    a: { shape: [3, 4], data: arr(12, 1, 3) },
    b: { shape: [5], data: arr(5, 1, 3) },
  };
  const start = with_(target, { a: arr(12, -1, 1), b: arr(5, -1, 1) });
  for (const device of testDevices()) {
    for (const [name, make] of OPTIMIZERS) {
      await t.step(`${name} on ${device}`, () =>
        noLeaks(async () => {
          const opt = make();
          const tgt = mk(target, device);
          let params = mk(start, device);
          let state = opt.init(params);
          let bytes = 0;
          for (let i = 0; i < 100; i++) {
            const next = T.scope(() => {
              const grads = {
                a: T.mul(T.sub(params.a, tgt.a), 2),
                b: T.mul(T.sub(params.b, tgt.b), 2),
              };
              const [u, s] = opt.update(grads, state, params);
              return { params: optim.applyUpdates(params, u), state: s };
            });
            disposeTree([params, state]);
            ({ params, state } = next);
            if (i === 0) bytes = T.memory(device).liveBytes;
          }
          assert.equal(T.memory(device).liveBytes, bytes, "live bytes grew over 100 steps");
          const err = await T.scope(async () => {
            const d = [T.sub(params.a, tgt.a), T.sub(params.b, tgt.b)];
            const vals = [...await d[0].data(), ...await d[1].data()];
            return Math.max(...vals.map(Math.abs));
          });
          assert.ok(err < 0.05, `${name}: max |x - t| = ${err} after 100 steps`);
          disposeTree([params, state, tgt]);
        }));
    }
  }
});

Deno.test("adafactor's relative step makes progress", async () => {
  // With relative steps the update is at most 1e-2 * RMS(x) per step, so 100 steps cannot
  // converge from far away; the loss must still fall steadily.
  await noLeaks(() =>
    T.scope(async () => {
      const opt = optim.adafactor();
      let x = T.tensor(arr(12, 1, 2), { shape: [3, 4] });
      let state = opt.init(x);
      const loss = async (v: T.Tensor) => Array.from(await v.data()).reduce((s, a) => s + a * a, 0);
      const l0 = await loss(x);
      for (let i = 0; i < 100; i++) {
        const [u, s] = opt.update(T.mul(x, 2), state, x);
        x = optim.applyUpdates(x, u);
        state = s;
      }
      assert.ok(await loss(x) < 0.5 * l0);
    })
  );
});

Deno.test("errors: mismatched trees, bad states, bad hyperparameters", async (t) => {
  await t.step("bad hyperparameters throw RangeError/TypeError before touching a device", () => {
    const bad: [() => unknown, RegExp][] = [
      [() => optim.sgd(NaN), /sgd: learning rate must be a finite number/],
      [() => optim.sgd(0.1, { momentum: 1.5 }), /sgd: momentum/],
      [() => optim.sgd(0.1, { nesterov: true }), /nesterov needs a momentum/],
      [() => optim.adam(0.1, { b1: 1 }), /adam: b1 must be .* in \[0, 1\)/],
      [() => optim.adam(0.1, { b2: -0.1 }), /adam: b2/],
      [() => optim.adam(0.1, { eps: -1 }), /adam: eps/],
      [() => optim.adamw(0.1, { weightDecay: -1 }), /adamw: weight decay/],
      [() => optim.adafactor(0.1, { decayRate: 0 }), /adafactor: decayRate/],
      [() => optim.adafactor(0.1, { clippingThreshold: 0 }), /adafactor: clippingThreshold/],
      [() => optim.adafactor(0.1, { beta1: 1 }), /adafactor: beta1/],
      [() => optim.clipByGlobalNorm(0), /clipByGlobalNorm: maxNorm/],
      [() => optim.scale(Infinity), /scale: factor/],
      [() => optim.linearWarmup(1, 0), /linearWarmup: warmupSteps/],
      [() => optim.rsqrtDecay(1, 1.5), /rsqrtDecay: warmupSteps must be a finite integer/],
      [() => optim.cosineDecay(1, 10, 2), /cosineDecay: alpha/],
      [() => optim.joinSchedules([optim.constant(1)], [3]), /joinSchedules: 1 schedules need 0/],
      [
        () =>
          optim.joinSchedules([optim.constant(1), optim.constant(2), optim.constant(3)], [5, 5]),
        /boundaries\[1\]/,
      ],
      [() => optim.constant(1)(-1), /constant: step must be a non-negative integer/],
      [() => optim.chain({} as GradientTransformation), /chain: argument 0/],
    ];
    for (const [f, re] of bad) assert.throws(f, re);
  });
  for (const device of testDevices()) {
    await t.step(`update errors leak nothing on ${device}`, () =>
      noLeaks(() =>
        T.scope(() => {
          const params = { w: T.ones([2, 3], { device }), b: T.ones([3], { device }) };
          const sgd = optim.sgd(0.1, { momentum: 0.9 });
          const s = sgd.init(params);
          const g = (o: Record<string, unknown>) => ({
            w: T.ones([2, 3], { device }),
            b: T.ones([3], { device }),
            ...o,
          });
          const cases: [() => unknown, RegExp | ErrorConstructor][] = [
            [
              () => sgd.update(g({ b: undefined }), s),
              /trace: state.trace does not match updates at "b"/,
            ],
            [
              () => sgd.update(g({ c: T.ones([1], { device }) }), s),
              /trace: state.trace does not match the structure .*: at the root, missing keys c/,
            ],
            [
              () => sgd.update(g({ b: T.ones([4], { device }) }), s),
              /state.trace at "b" has shape \[3\] but updates has \[4\]/,
            ],
            [() => sgd.update(g({ b: [1, 2] }), s), /updates holds a number at "b\[0\]"/],
            [
              () => sgd.update(g({ b: T.ones([3], { device, dtype: "i32" }) }), s),
              /updates at "b" are i32/,
            ],
            [
              () => sgd.update(g({}), [s[0]] as unknown as typeof s),
              /chain: expected a state array of 2/,
            ],
            [() => optim.adam(0.1).update(g({}), s as never), /trace|scaleByAdam/],
            [
              () => optim.adamw(0.1).update(g({}), optim.adamw(0.1).init(params)),
              /addDecayedWeights: update needs params/,
            ],
            [
              () => optim.adafactor().update(g({}), optim.adafactor().init(params)),
              /adafactor: update needs params/,
            ],
            [() =>
              optim.adamw(0.1, { mask: { w: true } }).update(
                g({}),
                optim.adamw(0.1).init(params),
                params,
              ), /mask/],
            [() =>
              optim.adafactor().update(
                g({}),
                optim.adafactor().init({ w: params.b, b: params.w }),
                params,
              ), /adafactor/],
            [
              () => optim.applyUpdates(params, { w: params.w }),
              /applyUpdates: updates does not match the structure .*missing keys b/,
            ],
            [() =>
              optim.sgd(() => NaN).update(
                g({}),
                optim.sgd(() => NaN).init(params),
              ), /schedule returned NaN at step 0/],
          ];
          for (const [f, re] of cases) {
            assert.throws(f, re as RegExp);
          }
        })
      ));
  }
});

Deno.test("an update's peak memory holds one leaf's temporaries, not every leaf's", async (t) => {
  const leaves = 16, size = 4096, leafBytes = size * 4, total = leaves * leafBytes;
  const cases: [string, GradientTransformation<unknown>, number][] = [
    // New mu and nu, Adam's output and its scaled copy: 4 trees, plus one leaf's temporaries.
    ["adam", optim.adam(1e-3) as GradientTransformation<unknown>, 4],
    ["adafactor", optim.adafactor(1e-3) as GradientTransformation<unknown>, 2],
    ["sgd+momentum", optim.sgd(0.1, { momentum: 0.9 }) as GradientTransformation<unknown>, 3],
  ];
  for (const device of testDevices()) {
    for (const [name, opt, trees] of cases) {
      await t.step(`${name} on ${device}`, async () => {
        await noLeaks(() =>
          T.scope(() => {
            const params = Object.fromEntries(
              Array.from({ length: leaves }, (_, i) => [`w${i}`, T.full([64, 64], i, { device })]),
            );
            const grads = Object.fromEntries(
              Object.keys(params).map((k) => [k, T.full([64, 64], 0.5, { device })]),
            );
            const state = opt.init(params);
            T.resetPeakMemory(device);
            const base = T.memory(device).liveBytes;
            opt.update(grads, state, params);
            const peak = T.memory(device).peakBytes - base;
            assert.ok(
              peak <= trees * total + 8 * leafBytes,
              `${name}: peak ${peak} B above the inputs; expected at most ${trees} trees of ` +
                `${total} B plus 8 leaves`,
            );
          })
        );
      });
    }
  }
});
