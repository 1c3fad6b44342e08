import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { checkpoint, customVjp, grad, remat, valueAndGrad, vjp } from "../../autodiff/mod.ts";
import { sum } from "../../ops/reduce.ts";
import { matmul } from "../../ops/matmul.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { checkGrad } from "./gradcheck.ts";

type Tn = T.Tensor;

/** `tanh(x @ w + b)` with a hand-written gradient. */
const dense = (p: { w: Tn; b: Tn }, x: Tn) => T.tanh(T.add(matmul(x, p.w), p.b));
const denseCustom = customVjp(dense, {
  fwd: (p, x) => {
    const y = dense(p, x);
    return [y, { x, w: p.w, y }];
  },
  bwd: ({ x, w, y }, g) => {
    const dz = T.mul(g, T.sub(1, T.square(y)));
    return [
      { w: matmul(x, dz, { transposeA: true }), b: sum(dz, 0) },
      matmul(dz, w, { transposeB: true }),
    ];
  },
});

function params(device: T.DeviceName, rand: () => number, n = 3, d = 4) {
  const mk = (shape: number[], s = 1) =>
    T.tensor(randomArray(rand, shape.reduce((a, b) => a * b), -s, s), { shape, device });
  return {
    layers: Array.from({ length: n }, () => ({ w: mk([d, d], 0.8), b: mk([d], 0.2) })),
    x: mk([5, d]),
  };
}

async function assertTreesClose(a: unknown, b: unknown, rtol = 1e-5) {
  const fa = flat(a), fb = flat(b);
  assert.equal(fa.length, fb.length);
  for (let i = 0; i < fa.length; i++) await T.assertAllClose(fa[i], fb[i], { rtol, atol: 1e-6 });
}

function flat(t: unknown): Tn[] {
  if (t instanceof T.Tensor) return [t];
  if (Array.isArray(t)) return t.flatMap(flat);
  if (t && typeof t === "object") return Object.values(t).flatMap(flat);
  return [];
}

Deno.test("customVjp gives the plain function's gradients", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const { layers, x } = params(device, rng(1));
      await noLeaks(() =>
        T.scope(async () => {
          const net = (f: typeof dense) => (ps: typeof layers, x: Tn) =>
            sum(T.square(ps.reduce((h, p) => f(p, h), x)));
          const plain = valueAndGrad(net(dense), { argnums: [0, 1] })(layers, x);
          const custom = valueAndGrad(net(denseCustom), { argnums: [0, 1] })(layers, x);
          await T.assertAllClose(custom[0], plain[0], { rtol: 1e-6 });
          await assertTreesClose(custom[1], plain[1]);
          // Without tracing the wrapper just calls f.
          await T.assertAllClose(denseCustom(layers[0], x), dense(layers[0], x));
        })
      );
      flat({ layers, x }).forEach((t) => t.dispose());
    });
  }
});

Deno.test("customVjp with pytree outputs, null cotangents and integer arguments", async () => {
  await noLeaks(() =>
    T.scope(async () => {
      const f = customVjp(
        (x: Tn, k: Tn, scale: number) => ({ a: T.mul(x, scale), b: [T.exp(x), k] }),
        {
          fwd: (x, k, scale) => {
            const e = T.exp(x);
            return [{ a: T.mul(x, scale), b: [e, k] }, { e, scale }];
          },
          bwd: ({ e, scale }, g) => [T.add(T.mul(g.a, scale), T.mul(g.b[0], e)), null, null],
        },
      );
      const x = T.tensor([0, 1]), k = T.tensor(new Int32Array([7]));
      const g = grad((x: Tn) => {
        const out = f(x, k, 3);
        return sum(T.add(out.a, out.b[0]));
      })(x);
      await T.assertAllClose(g, [3 + 1, 3 + Math.E], { rtol: 1e-6 });
      const gOnlyA = grad((x: Tn) => sum(f(x, k, 2).a))(x);
      assert.deepEqual(await gOnlyA.array(), [2, 2]);
    })
  );
});

Deno.test("the finite-difference checker catches a wrong rule", async () => {
  const wrongSin = customVjp((x: Tn) => T.sin(x), {
    fwd: (x) => [T.sin(x), x],
    bwd: (x, g) => [T.mul(g, T.mul(T.cos(x), 1.03))], // 3% too large
  });
  await assert.rejects(
    checkGrad(
      { name: "wrong sin", inputs: [{ shape: [6] }], fn: ([x]) => wrongSin(x) },
      "cpu-reference",
      rng(3),
    ),
    /directional derivative/,
  );
});

/** A chain of blocks, each a few elementwise ops and a matmul. */
const block = (w: Tn, h: Tn) => T.gelu(T.add(matmul(h, w), T.mul(T.sin(h), 0.5)));

Deno.test("remat gives the same gradients and lowers peak memory", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(7);
      const d = 16, n = 8;
      const ws = Array.from(
        { length: n },
        () => T.tensor(randomArray(rand, d * d, -0.3, 0.3), { shape: [d, d], device }),
      );
      const x = T.tensor(randomArray(rand, 32 * d), { shape: [32, d], device });
      const plainBlock = block, ckBlock = remat(block);
      const loss = (f: typeof block) => (ws: Tn[]) =>
        sum(T.square(ws.reduce((h, w) => f(w, h), x)));
      const measure = (f: typeof block) => {
        T.resetPeakMemory(device);
        const base = T.memory(device).liveBytes;
        const out = valueAndGrad(loss(f))(ws);
        return { out, peak: T.memory(device).peakBytes - base };
      };
      await noLeaks(async () => {
        const plain = measure(plainBlock);
        const ck = measure(ckBlock);
        await T.assertAllClose(ck.out[0], plain.out[0], { rtol: 1e-6 });
        await assertTreesClose(ck.out[1], plain.out[1], 1e-5);
        console.log(
          `remat peak on ${device}: ${ck.peak} bytes vs ${plain.peak} without (${n} blocks)`,
        );
        assert.ok(ck.peak < 0.6 * plain.peak, `remat peak ${ck.peak} vs plain ${plain.peak}`);
        flat([plain.out, ck.out]).forEach((t) => t.dispose());
      });
      flat([ws, x]).forEach((t) => t.dispose());
    });
  }
});

Deno.test("remat replays randomness passed as an argument, and nests", async () => {
  await noLeaks(() =>
    T.scope(async () => {
      let calls = 0;
      // A stand-in for dropout: the mask depends only on the key argument.
      const noisy = (x: Tn, key: Tn) => {
        calls++;
        const mask = T.cast(T.greater(T.sin(T.mul(key, 10)), 0), "f32");
        return T.mul(T.tanh(x), T.add(mask, 0.5));
      };
      const ck = remat(noisy);
      const x = T.tensor([0.3, -0.2, 0.9]), key = T.tensor([0.4, -0.7, 1.1]);
      const g1 = grad((x: Tn) => sum(ck(x, key)))(x);
      assert.equal(calls, 2); // forward, then the recomputation
      const g2 = grad((x: Tn) => sum(noisy(x, key)))(x);
      await T.assertAllClose(g1, g2, { rtol: 1e-6 });
      // Grad of grad through remat.
      const f = remat((x: Tn) => T.mul(T.sin(x), T.square(x)));
      const h1 = grad((x: Tn) => sum(grad((y: Tn) => sum(f(y)))(x)))(x);
      const h2 = grad((x: Tn) => sum(grad((y: Tn) => sum(T.mul(T.sin(y), T.square(y))))(x)))(x);
      await T.assertAllClose(h1, h2, { rtol: 1e-5 });
      // A remat inside a remat.
      const inner = remat((x: Tn) => T.exp(T.sin(x)));
      const outer = remat((x: Tn) => T.mul(inner(x), x));
      const g3 = grad((x: Tn) => sum(outer(x)))(x);
      const g4 = grad((x: Tn) => sum(T.mul(T.exp(T.sin(x)), x)))(x);
      await T.assertAllClose(g3, g4, { rtol: 1e-6 });
      // The deprecated name is the same function.
      assert.equal(checkpoint, remat);
    })
  );
});

Deno.test("customVjp errors", async (t) => {
  const x = T.tensor([1, 2]);
  await t.step("bwd returns the wrong number of cotangents", async () => {
    const f = customVjp((a: Tn, b: Tn) => T.mul(a, b), {
      fwd: (a, b) => [T.mul(a, b), null],
      bwd: (_, g) => [g],
    });
    await noLeaks(() => {
      assert.throws(() => grad((a: Tn) => sum(f(a, a)))(x), {
        name: "TypeError",
        message:
          /customVjp\(anonymous\): the backward pass must return an array with one cotangent \(or null\) per argument \(2\), got 1 entries/,
      });
    });
  });
  await t.step("bwd returns the wrong structure or shape", async () => {
    const f = customVjp((p: { w: Tn }) => T.mul(p.w, 2), {
      fwd: (p) => [T.mul(p.w, 2), null],
      bwd: (_, g) => [{ v: g }],
    });
    const h = customVjp((a: Tn) => T.mul(a, 2), {
      fwd: (a) => [T.mul(a, 2), null],
      bwd: () => [T.zeros([5])],
    });
    await noLeaks(() => {
      assert.throws(() => grad((w: Tn) => sum(f({ w })))(x), /missing keys w; unexpected keys v/);
      assert.throws(() => grad((a: Tn) => sum(h(a)))(x), {
        name: "RangeError",
        message: /returned a cotangent of shape \[5\] for input 0 of shape \[2\]/,
      });
    });
  });
  await t.step("fwd closes over a traced tensor", async () => {
    await noLeaks(() => {
      assert.throws(
        () =>
          grad((a: Tn) => {
            const f = customVjp((b: Tn) => T.mul(a, b), {
              fwd: (b) => [T.mul(a, b), null],
              bwd: (_, g) => [g],
            });
            return sum(f(a));
          })(x),
        /depends on a traced tensor that is not an argument/,
      );
    });
  });
  await t.step("grad of grad through customVjp", async () => {
    const f = customVjp((a: Tn) => T.sin(a), {
      fwd: (a) => [T.sin(a), a],
      bwd: (a, g) => [T.mul(g, T.cos(a))],
    });
    await noLeaks(() => {
      assert.throws(
        () => grad((a: Tn) => sum(T.mul(grad((b: Tn) => sum(T.square(f(b))))(a), a)))(x),
        /cannot differentiate the backward pass of a customVjp function/,
      );
    });
  });
  await t.step("bad arguments", () => {
    assert.throws(() => customVjp(T.sin, {} as never), TypeError);
    assert.throws(() => remat(3 as never), TypeError);
    assert.throws(() => vjp(3 as never), TypeError);
  });
  x.dispose();
});
