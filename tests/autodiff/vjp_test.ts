import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { grad, stopGradient, valueAndGrad, vjp } from "../../autodiff/mod.ts";
import { mean, sum } from "../../ops/reduce.ts";
import { matmul } from "../../ops/matmul.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { type Case, checkGrad, uniform } from "./gradcheck.ts";

type Tn = T.Tensor;

/** Second derivatives: the gradient function itself is checked by finite differences. */
const gradOfGrad = (name: string, f: (x: Tn) => Tn, shape = [2, 3], lo = -1.5, hi = 1.5): Case => ({
  name: `grad of grad: ${name}`,
  inputs: [{ shape, gen: uniform(lo, hi) }],
  fn: ([x]) => grad((y: Tn) => sum(f(y)))(x),
});

const NESTED: Case[] = [
  gradOfGrad("sin", T.sin),
  gradOfGrad("exp", T.exp),
  gradOfGrad("tanh", T.tanh),
  gradOfGrad("sigmoid", T.sigmoid),
  gradOfGrad("sqrt", T.sqrt, [5], 0.3, 2),
  gradOfGrad("log", T.log, [5], 0.3, 2),
  gradOfGrad("mul and div", (x) => T.div(T.mul(x, T.square(x)), T.add(T.square(x), 1))),
  gradOfGrad("gelu", (x) => T.gelu(x)),
  {
    name: "grad of grad: matmul (both arguments)",
    inputs: [{ shape: [3, 4] }, { shape: [4, 2] }],
    fn: ([a, b]) => {
      const [ga, gb] = grad((p: Tn, q: Tn) => sum(T.tanh(matmul(p, q))), { argnums: [0, 1] })(
        a,
        b,
      ) as Tn[];
      return T.scope(() => T.add(sum(T.square(ga)), sum(T.mul(gb, gb))));
    },
  },
  {
    name: "grad of grad with broadcasting",
    inputs: [{ shape: [3, 1] }, { shape: [4] }],
    fn: ([a, b]) => {
      const g = grad((p: Tn) => sum(T.sin(T.mul(p, b))))(a);
      return T.mul(g, g);
    },
  },
];

Deno.test("grad of grad matches finite differences of the gradient", async (t) => {
  const rand = rng(33);
  for (const device of testDevices()) {
    for (const c of NESTED) {
      await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
    }
  }
});

Deno.test("third derivative of a scalar function", async () => {
  await noLeaks(async () => {
    const f = (x: Tn) => sum(T.mul(T.square(x), x)); // x^3: f''' = 6
    const d1 = (x: Tn) => sum(grad(f)(x));
    const d2 = (x: Tn) => sum(grad(d1)(x));
    const x = T.tensor([0.7]);
    const d3 = grad(d2)(x);
    await T.assertAllClose(d3, [6], { rtol: 1e-6 });
    d3.dispose();
    x.dispose();
  });
});

Deno.test("vjp over pytrees", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const params = {
            w: T.tensor([[1, 2], [3, 4]], { device }),
            layers: [{ b: T.tensor([0.5, -1], { device }) }, { b: T.tensor([2, 0], { device }) }],
            step: T.tensor(new Int32Array([3]), { device }),
            name: "net",
          };
          const x = T.tensor([[1, -1]], { device });
          const f = (p: typeof params, x: Tn) => {
            let h = matmul(x, p.w);
            for (const l of p.layers) h = T.add(h, l.b);
            return { y: h, extra: [T.mul(h, 2)], note: p.name };
          };
          const [out, pullback] = vjp(f, params, x);
          assert.equal(out.note, "net");
          assert.deepEqual(await out.y.array(), [[0.5, -3]]);
          const ones = T.tensor([[1, 1]], { device });
          // Key order may differ; null stands for zeros.
          const [dp, dx] = pullback({ note: null, extra: [ones], y: ones });
          assert.deepEqual(await dp.w.array(), [[3, 3], [-3, -3]]);
          assert.deepEqual(await dp.layers[0].b.array(), [3, 3]);
          assert.deepEqual(await dp.layers[1].b.array(), [3, 3]);
          assert.equal(dp.step, null);
          assert.equal(dp.name, null);
          assert.deepEqual(await dx.array(), [[9, 21]]);
          const [dp2] = pullback({ y: ones, extra: null, note: null });
          assert.deepEqual(await dp2.layers[1].b.array(), [1, 1]);
        })
      );
    });
  }
});

Deno.test("grad options: argnums, hasAux, zeros for unused inputs, stopGradient", async () => {
  await noLeaks(() =>
    T.scope(async () => {
      const x = T.tensor([1, 2, 3]), y = T.tensor([4, 5, 6]), unused = T.tensor([7]);
      const f = (a: Tn, b: Tn, _c: Tn) => sum(T.mul(a, b));
      assert.deepEqual(await grad(f)(x, y, unused).array(), [4, 5, 6]);
      assert.deepEqual(await grad(f, { argnums: 1 })(x, y, unused).array(), [1, 2, 3]);
      const [gx, gc] = grad(f, { argnums: [0, 2] })(x, y, unused);
      assert.deepEqual(await gx.array(), [4, 5, 6]);
      assert.deepEqual(await gc.array(), [0]);
      const [[value, aux], g] = valueAndGrad(
        (a: Tn) => [sum(T.square(a)), { double: T.mul(a, 2) }],
        { hasAux: true },
      )(x);
      assert.equal(await value.array(), 14);
      assert.deepEqual(await aux.double.array(), [2, 4, 6]);
      assert.deepEqual(await g.array(), [2, 4, 6]);
      const [g2, aux2] = grad((a: Tn) => [sum(a), 42], { hasAux: true })(x);
      assert.deepEqual(await g2.array(), [1, 1, 1]);
      assert.equal(aux2, 42);
      assert.deepEqual(await grad((a: Tn) => sum(T.mul(a, stopGradient(a))))(x).array(), [1, 2, 3]);
      // Closed-over tensors are constants.
      assert.deepEqual(await grad((a: Tn) => sum(T.mul(a, y)))(x).array(), [4, 5, 6]);
      // Scopes inside a differentiated function keep what the backward pass needs.
      const g3 = grad((a: Tn) => T.scope(() => sum(T.mul(T.sin(a), 1))))(x);
      await T.assertAllClose(g3, await T.cos(x).data());
    })
  );
});

Deno.test("a deep chain is walked without recursion", async () => {
  await noLeaks(async () => {
    const x = T.tensor([1], { device: "cpu-reference" });
    const g = grad((x: Tn) => {
      let h = x;
      for (let i = 0; i < 20000; i++) h = T.mul(h, 1);
      return sum(T.mul(h, h));
    })(x);
    assert.deepEqual(await g.array(), [2]);
    g.dispose();
    x.dispose();
  });
});

Deno.test("ops after the traced function returns record nothing", () => {
  T.scope(() => {
    const x = T.tensor([1, 2]);
    const [y, pullback] = vjp((a: Tn) => T.mul(a, 3), x);
    const z = T.add(y, 1);
    assert.equal(z.node, null);
    const [dx] = pullback(T.tensor([1, 1]));
    assert.equal(dx.node, null);
  });
});

Deno.test("200 training steps leak nothing", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(5);
      const mk = (shape: number[]) =>
        T.tensor(randomArray(rand, shape.reduce((a, b) => a * b)), { shape, device });
      let params = { w1: mk([4, 8]), b1: mk([8]), w2: mk([8, 1]) };
      const x = mk([6, 4]), target = mk([6, 1]);
      const loss = (p: typeof params) => {
        const h = T.tanh(T.add(matmul(x, p.w1), p.b1));
        return mean(T.square(T.sub(matmul(h, p.w2), target)));
      };
      const step = valueAndGrad(loss);
      let first = 0, last = 0, start = T.memory(device);
      for (let i = 0; i < 200; i++) {
        const [value, g] = step(params);
        const next = T.scope(() => ({
          w1: T.sub(params.w1, T.mul(g.w1, 0.1)),
          b1: T.sub(params.b1, T.mul(g.b1, 0.1)),
          w2: T.sub(params.w2, T.mul(g.w2, 0.1)),
        }));
        for (const k of ["w1", "b1", "w2"] as const) (params[k].dispose(), g[k].dispose());
        params = next;
        if (i === 0) first = (await value.data())[0];
        if (i === 199) last = (await value.data())[0];
        value.dispose();
        if (i === 0) start = T.memory(device);
      }
      const end = T.memory(device);
      assert.equal(end.liveBytes, start.liveBytes);
      assert.equal(end.liveTensors, start.liveTensors);
      assert.ok(last < first, `loss went from ${first} to ${last}`);
      for (const k of ["w1", "b1", "w2"] as const) params[k].dispose();
      x.dispose();
      target.dispose();
    });
  }
});

Deno.test("autodiff errors", async (t) => {
  const x = T.tensor([1, 2, 3]);
  await t.step("grad of a non-scalar output", async () => {
    await noLeaks(() => {
      assert.throws(() => grad((a: Tn) => T.mul(a, 2))(x), {
        name: "TypeError",
        message: /grad: f must return a scalar float tensor \(shape \[\]\), got f32\[3\]/,
      });
      assert.throws(() => grad((_a: Tn) => 3)(x), { name: "TypeError", message: /scalar/ });
      assert.throws(() => grad((a: Tn) => [sum(a)], { hasAux: true })(x), /\[loss, aux\]/);
    });
  });
  await t.step("cotangent shape differs from the output", async () => {
    await noLeaks(() =>
      T.scope(() => {
        const [, pullback] = vjp((a: Tn) => T.mul(a, 2), x);
        assert.throws(() => pullback(T.zeros([2])), {
          name: "RangeError",
          message: /pullback: cotangent shape \[2\] differs from output leaf 0 shape \[3\]/,
        });
        assert.throws(() => pullback(T.zeros([3], { dtype: "i32" })), /must be f32/);
      })
    );
  });
  await t.step("differentiating with respect to an integer tensor", async () => {
    const i = T.tensor(new Int32Array([1, 2]));
    await noLeaks(() => {
      assert.throws(() => grad((a: Tn, b: Tn) => sum(T.mul(a, b)), { argnums: 1 })(x, i), {
        name: "TypeError",
        message: /grad: argument 1 is a i32 tensor \[2\]; only float \(f32, f16\) tensors can be/,
      });
      assert.throws(() => grad(sum, { argnums: 3 })(x), { name: "RangeError", message: /argnums/ });
      assert.throws(() => grad(sum, { argnums: [0, 0] })(x), RangeError);
    });
    i.dispose();
  });
  await t.step("pytree structure changes between forward and pullback", async () => {
    await noLeaks(() =>
      T.scope(() => {
        const [, pullback] = vjp((a: Tn) => ({ u: T.mul(a, 2), v: [a, a] }), x);
        assert.throws(() => pullback({ u: x, w: [x, x] } as never), {
          name: "TypeError",
          message:
            /does not match the structure \{u: \*, v: \[\*, \*\]\}.*missing keys v; unexpected keys w/,
        });
        assert.throws(
          () => pullback({ u: x, v: [x] } as never),
          /at \.v, expected 2 entries, got 1/,
        );
        assert.throws(() => pullback(x as never), /expected an object/);
      })
    );
  });
  await t.step("pullback after its tensors were disposed", async () => {
    const pullback = T.scope(() => vjp((a: Tn) => T.sin(a), x)[1]);
    await noLeaks(() => {
      assert.throws(() => T.scope(() => pullback(x)), {
        name: "TypeError",
        message:
          /pullback: a tensor recorded by sin .* was disposed.*call the pullback inside that scope/,
      });
    });
  });
  await t.step("asynchronous functions and disposed arguments", async () => {
    await noLeaks(() =>
      T.scope(() => {
        assert.throws(() => vjp((a: Tn) => Promise.resolve(T.sin(a)), x), /must be synchronous/);
        const gone = T.tensor([1]);
        gone.dispose();
        assert.throws(() => vjp(T.sin, gone), /was disposed before the call/);
      })
    );
  });
  x.dispose();
});

Deno.test("a traced node keeps alive only the values its VJP rule reads", async (t) => {
  const n = 1024, bytes = n * 4, steps = 8;
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(async () => {
        const x = T.tensor(randomArray(rng(5), n), { device });
        // Held after the forward pass, above the input.
        const held = async (step: (h: Tn) => Tn) => {
          const base = T.memory(device).liveBytes;
          return await T.scope(async () => {
            // As in every layer, the function's own scope frees its intermediate handles.
            const [y, pull] = vjp((a: Tn) =>
              T.scope(() => {
                let h = a;
                for (let i = 0; i < steps; i++) h = step(h);
                return sum(T.reshape(h, [n / 2, 2]));
              }), x);
            const kept = T.memory(device).liveBytes - base;
            const [g] = pull(T.onesLike(y));
            return { kept, g: await g.data() };
          });
        };
        // add, reshape and sum read no values in their rules: only the scalar result stays.
        const adds = await held((h) => T.add(h, 1));
        assert.ok(adds.kept < bytes, `an add chain kept ${adds.kept} B`);
        assert.deepEqual([...adds.g], new Array(n).fill(1));
        // mul reads its operands: every intermediate (all but the input) stays for the pullback.
        const muls = await held((h) => T.mul(h, 1.5));
        assert.ok(muls.kept >= (steps - 1) * bytes, `a mul chain kept only ${muls.kept} B`);
        assert.ok(muls.g.every((v) => Math.abs(v - 1.5 ** steps) < 1e-3));
        x.dispose();
      });
    });
  }
});
