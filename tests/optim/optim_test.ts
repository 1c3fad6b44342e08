import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import * as optim from "../../optim/mod.ts";
import type { GradientTransformation } from "../../optim/mod.ts";
import { noLeaks, testDevices } from "../util.ts";
import { arr, type Host, mk, TOL, with_ } from "./optim_util.ts";

/** Runs an optimizer for `grads.length` steps; returns each step's updates as flat arrays. */
function run(
  // deno-lint-ignore no-explicit-any
  opt: GradientTransformation<any>,
  p0: Host,
  grads: Record<string, number[]>[],
  device: T.DeviceName,
): Promise<Record<string, number[]>[]> {
  return T.scope(async () => {
    let params = mk(p0, device);
    let state = opt.init(params);
    const out: Record<string, number[]>[] = [];
    for (const g of grads) {
      const [u, s] = opt.update(mk(with_(p0, g), device), state, params);
      const step: Record<string, number[]> = {};
      for (const [k, t] of Object.entries(u)) step[k] = Array.from(await t.data());
      out.push(step);
      params = optim.applyUpdates(params, u);
      state = s;
    }
    return out;
  });
}

async function expectSteps(
  got: Record<string, number[]>[],
  want: Record<string, number[]>[],
  tol = TOL,
) {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    for (const k of Object.keys(want[i])) {
      await T.assertAllClose(got[i][k], want[i][k], { ...tol, message: `step ${i + 1} ${k}` });
    }
  }
}

// ---- float64 references -------------------------------------------------------------------

function sgdRef(gs: number[][], lr: (s: number) => number, momentum = 0, nesterov = false) {
  let tr = gs[0].map(() => 0);
  return gs.map((g, s) => {
    tr = g.map((x, i) => x + momentum * tr[i]);
    return g.map((x, i) => -lr(s) * (nesterov ? x + momentum * tr[i] : tr[i]));
  });
}

function adamRef(
  p0: number[],
  gs: number[][],
  lr: number,
  b1 = 0.9,
  b2 = 0.999,
  eps = 1e-8,
  wd = 0,
  decay = true,
) {
  let mu = p0.map(() => 0), nu = p0.map(() => 0), p = [...p0];
  return gs.map((g, s) => {
    const t = s + 1;
    mu = g.map((x, i) => b1 * mu[i] + (1 - b1) * x);
    nu = g.map((x, i) => b2 * nu[i] + (1 - b2) * x * x);
    const u = g.map((_, i) => {
      const a = mu[i] / (1 - b1 ** t) / (Math.sqrt(nu[i] / (1 - b2 ** t)) + eps);
      return -lr * (a + (decay ? wd * p[i] : 0));
    });
    p = p.map((x, i) => x + u[i]);
    return u;
  });
}

interface AfOpts {
  lr?: number;
  scale?: boolean;
  clip?: number | null;
  beta1?: number;
  wd?: number;
  factored?: boolean;
}

function adafactorRef(p0: number[], shape: number[], gs: number[][], o: AfOpts = {}) {
  const { scale = true, clip = 1, wd = 0, factored = true } = o;
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const rms = (a: number[]) => Math.sqrt(mean(a.map((x) => x * x)));
  const fac = factored && shape.length >= 2;
  const R = fac ? shape[shape.length - 2] : 1, C = fac ? shape[shape.length - 1] : p0.length;
  const B = p0.length / (R * C);
  let vr = new Array(B * R).fill(0), vc = new Array(B * C).fill(0), v = p0.map(() => 0);
  let m = p0.map(() => 0), p = [...p0];
  return gs.map((g, s) => {
    const t = s + 1, mix = t ** -0.8, dec = 1 - mix;
    const g2 = g.map((x) => x * x + 1e-30);
    let u: number[];
    if (fac) {
      vr = vr.map((x, bi) => {
        const [b, i] = [Math.floor(bi / R), bi % R];
        return dec * x + mix * mean(g2.slice((b * R + i) * C, (b * R + i + 1) * C));
      });
      vc = vc.map((x, bj) => {
        const [b, j] = [Math.floor(bj / C), bj % C];
        const col = Array.from({ length: R }, (_, i) => g2[(b * R + i) * C + j]);
        return dec * x + mix * mean(col);
      });
      u = g.map((x, idx) => {
        const b = Math.floor(idx / (R * C)), i = Math.floor(idx / C) % R, j = idx % C;
        const rmean = mean(vr.slice(b * R, (b + 1) * R));
        return x / Math.sqrt((vr[b * R + i] / rmean) * vc[b * C + j]);
      });
    } else {
      v = v.map((x, i) => dec * x + mix * g2[i]);
      u = g.map((x, i) => x / Math.sqrt(v[i]));
    }
    if (clip !== null) {
      const d = Math.max(1, rms(u) / clip);
      u = u.map((x) => x / d);
    }
    let rate = o.lr ?? Math.min(1e-2, 1 / Math.sqrt(t));
    if (scale) rate *= Math.max(1e-3, rms(p));
    let st = u.map((x) => rate * x);
    if (o.beta1 !== undefined) {
      m = st.map((x, i) => o.beta1! * m[i] + (1 - o.beta1!) * x);
      st = m;
    }
    const upd = st.map((x, i) => -x - wd * p[i]);
    p = p.map((x, i) => x + upd[i]);
    return upd;
  });
}

const away = (n: number) => arr(n).map((x) => (x < 0 ? x - 0.2 : x + 0.2));

// ---- two-step values ----------------------------------------------------------------------

Deno.test("sgd matches float64 for two steps (plain, momentum, nesterov, schedule)", async (t) => {
  const p0: Host = {
    w: { shape: [2, 2], data: [1, -2, 3, 0.5] },
    b: { shape: [3], data: [0, 1, -1] },
  };
  const g = [{ w: [0.5, -1, 2, 0.1], b: [1, 2, -3] }, { w: [-0.3, 0.4, 1, -2], b: [0.5, 0, 1] }];
  const col = (k: string) => g.map((s) => s[k as "w"]);
  const cases: [string, GradientTransformation<unknown>, (s: number) => number, number, boolean][] =
    [
      ["plain", optim.sgd(0.1), () => 0.1, 0, false],
      ["momentum", optim.sgd(0.1, { momentum: 0.9 }), () => 0.1, 0.9, false],
      ["nesterov", optim.sgd(0.1, { momentum: 0.9, nesterov: true }), () => 0.1, 0.9, true],
      [
        "schedule",
        optim.sgd(optim.linearSchedule(0.1, 0.05, 1)),
        (s) => (s ? 0.05 : 0.1),
        0,
        false,
      ],
    ];
  for (const device of testDevices()) {
    for (const [name, opt, lr, mom, nest] of cases) {
      await t.step(`${name} on ${device}`, () =>
        noLeaks(async () => {
          const got = await run(opt, p0, g, device);
          const w = sgdRef(col("w"), lr, mom, nest), b = sgdRef(col("b"), lr, mom, nest);
          await expectSteps(got, [{ w: w[0], b: b[0] }, { w: w[1], b: b[1] }]);
        }));
    }
  }
});

Deno.test("adam and adamw match float64 for two steps (bias correction, decay, mask)", async (t) => {
  const p0: Host = { w: { shape: [2, 3], data: arr(6) }, b: { shape: [3], data: arr(3) } };
  const g = [0, 1].map(() => ({ w: away(6), b: away(3) }));
  const gw = g.map((s) => s.w), gb = g.map((s) => s.b);
  for (const device of testDevices()) {
    await t.step(`adam on ${device}`, () =>
      noLeaks(async () => {
        const got = await run(optim.adam(0.01, { b1: 0.8, b2: 0.9, eps: 1e-6 }), p0, g, device);
        const w = adamRef(p0.w.data, gw, 0.01, 0.8, 0.9, 1e-6);
        const b = adamRef(p0.b.data, gb, 0.01, 0.8, 0.9, 1e-6);
        await expectSteps(got, [{ w: w[0], b: b[0] }, { w: w[1], b: b[1] }]);
      }));
    await t.step(`adamw on ${device}`, () =>
      noLeaks(async () => {
        const got = await run(optim.adamw(0.01, { weightDecay: 0.5 }), p0, g, device);
        const w = adamRef(p0.w.data, gw, 0.01, 0.9, 0.999, 1e-8, 0.5);
        const b = adamRef(p0.b.data, gb, 0.01, 0.9, 0.999, 1e-8, 0.5);
        await expectSteps(got, [{ w: w[0], b: b[0] }, { w: w[1], b: b[1] }]);
      }));
    for (
      const [name, mask] of [
        ["predicate", (_: string, p: T.Tensor) => p.rank >= 2],
        ["tree", { w: true, b: false }],
      ] as const
    ) {
      await t.step(`adamw with a ${name} mask on ${device}`, () =>
        noLeaks(async () => {
          const got = await run(optim.adamw(0.01, { weightDecay: 0.5, mask }), p0, g, device);
          const w = adamRef(p0.w.data, gw, 0.01, 0.9, 0.999, 1e-8, 0.5);
          const b = adamRef(p0.b.data, gb, 0.01, 0.9, 0.999, 1e-8, 0.5, false);
          await expectSteps(got, [{ w: w[0], b: b[0] }, { w: w[1], b: b[1] }]);
        }));
    }
  }
});

Deno.test("adafactor matches float64 for two steps (factored and unfactored)", async (t) => {
  const p0: Host = {
    w: { shape: [3, 4], data: arr(12) },
    b: { shape: [5], data: arr(5) },
    k: { shape: [2, 3, 2], data: arr(12) },
  };
  const g = [0, 1].map(() => ({ w: arr(12, -2, 2), b: arr(5, -2, 2), k: arr(12) }));
  const cases: [string, GradientTransformation<unknown>, AfOpts][] = [
    ["defaults (relative step, parameter scale, clipping)", optim.adafactor(), {}],
    [
      "lr, momentum, decay, tight clipping",
      optim.adafactor(0.05, {
        multiplyByParameterScale: false,
        clippingThreshold: 0.5,
        beta1: 0.9,
        weightDecay: 0.01,
      }),
      { lr: 0.05, scale: false, clip: 0.5, beta1: 0.9, wd: 0.01 },
    ],
    [
      "unfactored, no clipping",
      optim.adafactor(undefined, { factored: false, clippingThreshold: null }),
      { factored: false, clip: null },
    ],
  ];
  for (const device of testDevices()) {
    for (const [name, opt, o] of cases) {
      await t.step(`${name} on ${device}`, () =>
        noLeaks(async () => {
          const got = await run(opt, p0, g, device);
          const ref = Object.fromEntries(
            Object.entries(p0).map(([k, v]) => [
              k,
              adafactorRef(v.data, v.shape, g.map((s) => s[k as "w"]), o),
            ]),
          );
          await expectSteps(got, [0, 1].map((s) => ({ w: ref.w[s], b: ref.b[s], k: ref.k[s] })));
        }));
    }
    await t.step(`state shapes on ${device}`, () =>
      noLeaks(() =>
        T.scope(() => {
          const params = mk(p0, device);
          const s = optim.adafactor(undefined, { beta1: 0.5 }).init(params) as optim.AdafactorState;
          const shapes = (tree: unknown) =>
            Object.fromEntries(
              Object.entries(tree as Record<string, T.Tensor | null>).map((
                [k, v],
              ) => [k, v?.shape ?? null]),
            );
          assert.deepEqual(shapes(s.vRow), { w: [3], b: null, k: [2, 3] });
          assert.deepEqual(shapes(s.vCol), { w: [4], b: null, k: [2, 2] });
          assert.deepEqual(shapes(s.v), { w: null, b: [5], k: null });
          assert.deepEqual(shapes(s.m), { w: [3, 4], b: [5], k: [2, 3, 2] });
        })
      ));
  }
});

Deno.test("clipByGlobalNorm above and below the threshold", async (t) => {
  const p0: Host = { a: { shape: [2], data: [0, 0] }, b: { shape: [1, 2], data: [0, 0] } };
  const g = { a: [3, 0], b: [0, 4] }; // global norm 5
  for (const device of testDevices()) {
    for (const [maxNorm, f] of [[1, 0.2], [5, 1], [10, 1]]) {
      await t.step(`maxNorm ${maxNorm} on ${device}`, () =>
        noLeaks(async () => {
          const got = await run(optim.clipByGlobalNorm(maxNorm), p0, [g], device);
          await expectSteps(got, [{ a: [3 * f, 0], b: [0, 4 * f] }]);
          await T.scope(async () => {
            const n = optim.globalNorm(mk(with_(p0, g), device));
            assert.deepEqual(n.shape, []);
            await T.assertAllClose(n, 5);
          });
        }));
    }
  }
});

Deno.test("schedules at a few steps", () => {
  const close = (a: number, b: number) =>
    assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
  const c = optim.constant(0.3);
  close(c(0), 0.3), close(c(1e6), 0.3);
  const w = optim.linearWarmup(2, 4);
  [0, 0.5, 1, 1.5, 2, 2].forEach((v, s) => close(w(s), v));
  const l = optim.linearSchedule(1, 0.5, 2);
  close(l(0), 1), close(l(1), 0.75), close(l(2), 0.5), close(l(7), 0.5);
  const r = optim.rsqrtDecay(0.01, 100);
  close(r(0), 0),
    close(r(50), 0.005),
    close(r(100), 0.01),
    close(r(400), 0.005),
    close(r(10000), 0.001);
  // The Transformer's schedule (1-based step s): dModel^-0.5 min(s^-0.5, s warmup^-1.5).
  const vaswani = (s: number) => 512 ** -0.5 * Math.min(s ** -0.5, s * 4000 ** -1.5);
  const tr = optim.rsqrtDecay(512 ** -0.5 * 4000 ** -0.5, 4000);
  for (const s of [1, 100, 3999, 4000, 4001, 20000]) close(tr(s), vaswani(s));
  const cd = optim.cosineDecay(2, 10, 0.1);
  close(cd(0), 2), close(cd(5), 2 * (0.9 * 0.5 + 0.1)), close(cd(10), 0.2), close(cd(50), 0.2);
  const j = optim.joinSchedules([
    optim.constant(1),
    optim.linearSchedule(2, 0, 4),
    optim.constant(5),
  ], [3, 5]);
  close(j(0), 1), close(j(2), 1), close(j(3), 2), close(j(4), 1.5), close(j(5), 5);
  const wt = optim.warmupThen(10, optim.cosineDecay(1, 100));
  close(wt(0), 0), close(wt(5), 0.5), close(wt(10), 1), close(wt(60), 0.5), close(wt(110), 0);
});

// ---- composition, structure, convergence, memory ------------------------------------------

Deno.test("chain composes transformations", async (t) => {
  const p0: Host = { w: { shape: [3], data: [1, 2, 3] } };
  const g = [{ w: [3, 0, 4] }, { w: [1, 1, 1] }];
  for (const device of testDevices()) {
    await t.step(`scales multiply on ${device}`, () =>
      noLeaks(async () => {
        const got = await run(
          optim.chain(optim.scale(2), optim.chain(optim.scale(3))),
          p0,
          g,
          device,
        );
        await expectSteps(got, [{ w: [18, 0, 24] }, { w: [6, 6, 6] }]);
        const none = await run(optim.chain(), p0, g, device);
        await expectSteps(none, [{ w: [3, 0, 4] }, { w: [1, 1, 1] }]);
      }));
    await t.step(`clip then sgd on ${device}`, () =>
      noLeaks(async () => {
        const opt = optim.chain(optim.clipByGlobalNorm(1), optim.sgd(0.1, { momentum: 0.5 }));
        const got = await run(opt, p0, g, device);
        const c1 = [0.6, 0, 0.8], c2 = [1, 1, 1].map((x) => x / Math.sqrt(3));
        await expectSteps(got, sgdRef([c1, c2], () => 0.1, 0.5).map((w) => ({ w })));
      }));
    await t.step(
      `adam is scaleByAdam then scaleByLearningRate on ${device}`,
      () =>
        noLeaks(async () => {
          const a = await run(optim.adam(0.1), p0, g, device);
          const b = await run(optim.chain(optim.scaleByAdam(), optim.scale(-0.1)), p0, g, device);
          await expectSteps(a, b);
        }),
    );
  }
});
