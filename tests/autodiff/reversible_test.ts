import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import {
  grad,
  type Halves,
  reversible,
  reversibleStack,
  type RevFn,
  type RevOpts,
  type RevParams,
  valueAndGrad,
} from "../../autodiff/mod.ts";
import { sum } from "../../ops/reduce.ts";
import { matmul } from "../../ops/matmul.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { checkGrad } from "./gradcheck.ts";

type Tn = T.Tensor;
interface Dense {
  w: Tn;
  b: Tn;
}
interface DropOpts {
  key?: Tn;
  rate?: number;
}

/**
 * Dropout from an explicit key (an f32 scalar seed), so a recomputation with the same key
 * draws the same mask: a hash of (position, key), as GPU shaders do.
 */
function dropout(x: Tn, key: Tn | undefined, rate = 0.25): Tn {
  if (!key) return T.mul(x, 1);
  return T.scope(() => {
    const pos = T.reshape(T.arange(x.size, undefined, 1, { dtype: "f32", device: x.device }), [
      ...x.shape,
    ]);
    const h = T.abs(T.mul(T.sin(T.add(T.mul(pos, 12.9898), T.mul(key, 78.233))), 43758.5453));
    const u = T.sub(h, T.cast(T.cast(h, "i32"), "f32"));
    const keep = T.cast(T.greaterEqual(u, rate), "f32");
    return T.mul(x, T.mul(keep, 1 / (1 - rate)));
  });
}

/** `dropout(tanh(x @ w + b))`: the residual function used for both F and G. */
const mlp: RevFn<Dense, DropOpts> = (p, x, o) =>
  dropout(T.tanh(T.add(matmul(x, p.w), p.b)), o?.key, o?.rate);

const block = reversible(mlp, mlp);

function randomTensor(rand: () => number, shape: number[], device: T.DeviceName, s = 1) {
  return T.tensor(randomArray(rand, shape.reduce((a, b) => a * b), -s, s), { shape, device });
}

function makeParams(rand: () => number, n: number, d: number, device: T.DeviceName) {
  const dense = () => ({
    w: randomTensor(rand, [d, d], device, 1.2 / Math.sqrt(d)),
    b: randomTensor(rand, [d], device, 0.1),
  });
  return Array.from({ length: n }, () => ({ f: dense(), g: dense() }));
}

function makeKeys(n: number, device: T.DeviceName): RevOpts<DropOpts, DropOpts>[] {
  return Array.from({ length: n }, (_, i) => ({
    f: { key: T.tensor(2 * i + 0.5, { device }) },
    g: { key: T.tensor(2 * i + 1.25, { device }) },
  }));
}

/** The same network evaluated as an ordinary residual stack (all activations stored). */
function ordinary(
  params: RevParams<Dense, Dense>[],
  [x1, x2]: Halves,
  opts?: RevOpts<DropOpts, DropOpts>[],
  fns: { f: RevFn<Dense, DropOpts>; g: RevFn<Dense, DropOpts> }[] = params.map(() => block),
): Halves {
  params.forEach((p, i) => {
    const y1 = T.add(x1, fns[i].f(p.f, x2, opts?.[i]?.f ?? {}) as Tn);
    const y2 = T.add(x2, fns[i].g(p.g, y1, opts?.[i]?.g ?? {}) as Tn);
    [x1, x2] = [y1, y2];
  });
  return [x1, x2];
}

function flat(t: unknown): Tn[] {
  if (t instanceof T.Tensor) return [t];
  if (Array.isArray(t)) return t.flatMap(flat);
  if (t && typeof t === "object") return Object.values(t).flatMap(flat);
  return [];
}

/** max |a - b| / max |b| over a pair of pytrees. */
async function relError(a: unknown, b: unknown): Promise<number> {
  const fa = flat(a), fb = flat(b);
  assert.equal(fa.length, fb.length);
  let num = 0, den = 0;
  for (let i = 0; i < fa.length; i++) {
    const [x, y] = [await fa[i].data(), await fb[i].data()];
    for (let j = 0; j < y.length; j++) {
      num = Math.max(num, Math.abs(x[j] - y[j]));
      den = Math.max(den, Math.abs(y[j]));
    }
  }
  return num / den;
}

const loss = (y1: Tn, y2: Tn, c: Tn) => T.add(sum(T.mul(y1, c)), sum(T.square(y2)));

Deno.test("reversible: inverse(forward(x)) reconstructs x", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(11);
      const d = 8, shape = [2, 6, d];
      await noLeaks(() =>
        T.scope(async () => {
          const x: Halves = [randomTensor(rand, shape, device), randomTensor(rand, shape, device)];
          const p1 = makeParams(rand, 1, d, device)[0];
          const [y, saved] = block.forwardSaved(p1, x, makeKeys(1, device)[0]);
          const back = block.inverse(p1, y, makeKeys(1, device)[0], saved);
          const e1 = await relError(back, x);
          assert.ok(e1 <= 1e-5, `one block: relative error ${e1}`);
          const p12 = makeParams(rand, 12, d, device), keys = makeKeys(12, device);
          const stack = reversibleStack(p12.map(() => block));
          const [y12, s12] = stack.forwardSaved(p12, x, keys);
          const e12 = await relError(stack.inverse(p12, y12, keys, s12), x);
          assert.ok(e12 <= 1e-4, `12 blocks: relative error ${e12}`);
          // apply without tracing computes the same forward pass.
          assert.ok((await relError(stack.apply(p12, x, keys), y12)) === 0);
        })
      );
    });
  }
});

Deno.test("reversible: one block matches finite differences", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      checkGrad(
        {
          name: "reversible block",
          inputs: [{ shape: [3, 4] }, { shape: [3, 4] }, { shape: [4, 4] }, { shape: [4] }],
          fn: ([x1, x2, w, b]) =>
            T.scope(() => {
              const [y1, y2] = block.apply({ f: { w, b }, g: { w: T.mul(w, -1), b } }, [x1, x2]);
              return T.add(y1, T.mul(y2, 2));
            }),
        },
        device,
        rng(12),
      ));
  }
});

Deno.test("reversible: 12-block stack gradients equal the ordinary residual stack's, with dropout", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(13);
      const n = 12, d = 8, shape = [2, 5, d];
      await noLeaks(() =>
        T.scope(async () => {
          const params = makeParams(rand, n, d, device), keys = makeKeys(n, device);
          const x: Halves = [randomTensor(rand, shape, device), randomTensor(rand, shape, device)];
          const c = randomTensor(rand, shape, device);
          const stack = reversibleStack(params.map(() => block));
          const rev = valueAndGrad((p: typeof params, x: Halves) => {
            const [y1, y2] = stack.apply(p, x, keys);
            return loss(y1, y2, c);
          }, { argnums: [0, 1] })(params, x);
          const ord = valueAndGrad((p: typeof params, x: Halves) => {
            const [y1, y2] = ordinary(p, x, keys);
            return loss(y1, y2, c);
          }, { argnums: [0, 1] })(params, x);
          await T.assertAllClose(rev[0], ord[0], { rtol: 1e-6 });
          const e = await relError(rev[1], ord[1]);
          assert.ok(e <= 1e-4, `gradients differ by ${e} relative`);
          // Dropout is active: other keys give other gradients.
          const other = makeKeys(n, device).map((k) => ({ f: k.g, g: k.f }));
          const [, gOther] = valueAndGrad((p: typeof params) => {
            const [y1, y2] = stack.apply(p, x, other);
            return loss(y1, y2, c);
          })(params);
          assert.ok((await relError(gOther, rev[1][0])) > 1e-2);
        })
      );
    });
  }
});

Deno.test("reversible: saved state is replayed in the recomputation and the inverse", async () => {
  const device = "cpu-reference";
  const rand = rng(14);
  const n = 4, d = 6, shape = [3, d];
  let calls = 0, replays = 0;
  // An impure "hash" (a call counter) stands in for LSH buckets: recomputing it would give
  // other values, so the gradients are right only if the saved ones are replayed.
  const hashed: RevFn<Dense, DropOpts> = (p, x, _o, saved) => {
    const h = T.tanh(T.add(matmul(x, p.w), p.b));
    if (saved !== undefined) {
      replays++;
      return T.mul(h, saved as Tn);
    }
    const sign = T.tensor([(calls++ % 3) - 1], { device });
    return { out: T.mul(h, sign), saved: sign };
  };
  const fixed = (s: number): RevFn<Dense, DropOpts> => (p, x) =>
    T.mul(T.tanh(T.add(matmul(x, p.w), p.b)), s);
  await noLeaks(() =>
    T.scope(async () => {
      const params = makeParams(rand, n, d, device);
      const x: Halves = [randomTensor(rand, shape, device), randomTensor(rand, shape, device)];
      const c = randomTensor(rand, shape, device);
      const stack = reversibleStack(params.map(() => reversible(hashed, mlp)));
      const g = grad((p: typeof params) => loss(...stack.apply(p, x), c))(params);
      assert.equal(calls, n);
      assert.equal(replays, n);
      const signs = Array.from({ length: n }, (_, i) => (i % 3) - 1);
      const fns = signs.map((s) => ({ f: fixed(s), g: mlp }));
      const gRef = grad((p: typeof params) => loss(...ordinary(p, x, undefined, fns), c))(params);
      assert.ok((await relError(g, gRef)) <= 1e-5);
      const [y, saved] = stack.forwardSaved(params, x);
      assert.deepEqual(await (saved[1].f as Tn).array(), [((n + 1) % 3) - 1]);
      assert.ok((await relError(stack.inverse(params, y, undefined, saved), x)) <= 1e-5);
    })
  );
});

Deno.test("reversible: grad of grad through a stack equals the ordinary network's", async () => {
  await noLeaks(() =>
    T.scope(async () => {
      const f: RevFn<Tn, unknown> = (p, x) => T.tanh(T.mul(x, p));
      const stack = reversibleStack([reversible(f, f), reversible(f, f)]);
      const x: Halves = [T.tensor([0.3, -0.5]), T.tensor([0.7, 0.1])];
      const ps = [{ f: T.tensor([0.5]), g: T.tensor([-1.2]) }, {
        f: T.tensor([0.8]),
        g: T.tensor([1.1]),
      }];
      const fns = ps.map(() => ({ f, g: f }));
      type Run = (p: typeof ps) => Halves;
      const hessianish = (run: Run) =>
        grad((p: typeof ps) => {
          const g = grad((q: typeof ps) => {
            const [a, b] = run(q);
            return sum(T.mul(a, T.square(b)));
          })(p);
          return sum(T.add(T.square(g[0].f), T.mul(g[1].g, g[0].g)));
        })(ps);
      const rev = hessianish((p) => stack.apply(p, x));
      const ord = hessianish((p) => ordinary(p as never, x, undefined, fns as never));
      assert.ok((await relError(rev, ord)) <= 1e-5);
    })
  );
});

/** Peak bytes of one training step minus parameter and gradient bytes. */
function stepPeak(
  device: T.DeviceName,
  n: number,
  reversibleRun: boolean,
): { peak: number; paramBytes: number } {
  const rand = rng(100 + n);
  const d = 16, shape = [2, 16, d];
  const params = makeParams(rand, n, d, device), keys = makeKeys(n, device);
  const x: Halves = [randomTensor(rand, shape, device), randomTensor(rand, shape, device)];
  const c = randomTensor(rand, shape, device);
  const stack = reversibleStack(params.map(() => block));
  const f = (p: typeof params) =>
    loss(...(reversibleRun ? stack.apply(p, x, keys) : ordinary(p, x, keys)), c);
  const paramBytes = flat(params).reduce((s, t) => s + t.size * 4, 0);
  T.resetPeakMemory(device);
  const base = T.memory(device).liveBytes;
  const [value, grads] = valueAndGrad(f)(params);
  const peak = T.memory(device).peakBytes - base - paramBytes; // minus the gradients
  flat([value, grads, params, keys, x, c]).forEach((t) => t.dispose());
  return { peak, paramBytes };
}

Deno.test("reversible: training-step memory is flat in depth", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() => {
        const rows: string[] = [];
        const rev: Record<number, number> = {}, ord: Record<number, number> = {};
        for (const n of [2, 4, 8, 16]) {
          const r = stepPeak(device, n, true), o = stepPeak(device, n, false);
          rev[n] = r.peak;
          ord[n] = o.peak;
          rows.push(
            `N=${n}: reversible ${r.peak} B, ordinary ${o.peak} B (params ${r.paramBytes} B)`,
          );
        }
        console.log(`peak activation bytes of one step on ${device}:\n  ${rows.join("\n  ")}`);
        assert.ok(rev[16] / rev[2] <= 1.3, `reversible ${rev[16]} / ${rev[2]} > 1.3`);
        assert.ok(ord[16] / ord[2] >= 4, `ordinary ${ord[16]} / ${ord[2]} should grow ~linearly`);
      });
    });
  }
});

/** `[max |a - b| / max |b|, ||a - b|| / ||b||]` over a pair of pytrees. */
async function errors(a: unknown, b: unknown): Promise<[number, number]> {
  const fa = flat(a), fb = flat(b);
  let mx = 0, mb = 0, ss = 0, sb = 0;
  for (let i = 0; i < fa.length; i++) {
    const [x, y] = [await fa[i].data(), await fb[i].data()];
    for (let j = 0; j < y.length; j++) {
      const e = Math.abs(x[j] - y[j]);
      [mx, mb, ss, sb] = [
        Math.max(mx, e),
        Math.max(mb, Math.abs(y[j])),
        ss + e * e,
        sb + y[j] * y[j],
      ];
    }
  }
  return [mx / mb, Math.sqrt(ss / sb)];
}

async function maxAbs(tree: unknown): Promise<number> {
  let m = 0;
  for (const t of flat(tree)) for (const v of await t.data()) m = Math.max(m, Math.abs(v));
  return m;
}

Deno.test("reversible: reconstruction error through 12 and 48 blocks", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(15);
      const d = 16, shape = [2, 16, d];
      await noLeaks(() =>
        T.scope(async () => {
          const x: Halves = [randomTensor(rand, shape, device), randomTensor(rand, shape, device)];
          const lines: string[] = [];
          for (const n of [12, 48]) {
            const params = makeParams(rand, n, d, device), keys = makeKeys(n, device);
            const stack = reversibleStack(params.map(() => block));
            const [y, saved] = stack.forwardSaved(params, x, keys);
            const [maxRel, normRel] = await errors(stack.inverse(params, y, keys, saved), x);
            const growth = (await maxAbs(y)) / (await maxAbs(x));
            lines.push(
              `${n} blocks: max-relative ${maxRel.toExponential(2)}, norm-relative ` +
                `${normRel.toExponential(2)} (max |y| / max |x| = ${growth.toFixed(1)})`,
            );
            if (n === 12) assert.ok(maxRel <= 1e-4, `12 blocks: relative error ${maxRel}`);
            else assert.ok(normRel <= 1e-4, `48 blocks: norm-relative error ${normRel}`);
          }
          console.log(`reconstruction error on ${device} (dropout on):\n  ${lines.join("\n  ")}`);
        })
      );
    });
  }
});

Deno.test("reversible errors", async () => {
  await noLeaks(() =>
    T.scope(() => {
      const x: Halves = [T.zeros([2, 3]), T.zeros([2, 3])];
      const bad = reversible((_p, h) => sum(h, -1), mlp);
      assert.throws(() => bad.apply({ f: null, g: { w: T.zeros([3, 3]), b: T.zeros([3]) } }, x), {
        name: "RangeError",
        message: /reversible: F returned \[2\], but the half it is added to is \[2,3\]/,
      });
      const stack = reversibleStack([block, block]);
      assert.throws(() => stack.apply([], x), /one entry per block \(2\), got 0/);
      assert.throws(() => stack.apply([{ f: 1, g: 1 }, { f: 1, g: 1 }], [x[0]] as never), /pair/);
      assert.throws(() => reversible(3 as never, mlp), TypeError);
      assert.throws(() => reversibleStack([{ f: mlp } as never]), TypeError);
    })
  );
});
