import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { chunkBounds, chunked, chunkedSum } from "../../../nn/layers/chunked.ts";
import { feedForward, type FeedForwardParams } from "../../../nn/layers/feed_forward.ts";
import { linear, type LinearParams } from "../../../nn/layers/linear.ts";
import * as random from "../../../ops/random.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

const shapes = (d: number, f: number) => [[d, f], [f], [f, d], [d]];
const asParams = ([w1, b1, w2, b2]: T.Tensor[]): FeedForwardParams => ({
  in: { w: w1, b: b1 },
  out: { w: w2, b: b2 },
});

function makeInputs(device: T.DeviceName, seed: number, [b, len, d, f]: number[]) {
  const rand = rng(seed);
  const x = T.tensor(randomArray(rand, b * len * d), { shape: [b, len, d], device });
  const p = asParams(
    shapes(d, f).map((s) =>
      T.tensor(randomArray(rand, s.reduce((u, v) => u * v, 1)), { shape: s, device })
    ),
  );
  const w = T.tensor(randomArray(rand, b * len * d), { shape: [b, len, d], device });
  return { x, p, w };
}

const flatGrads = (g: unknown) => T.treeTensors(g);

Deno.test("chunked", async (t) => {
  await t.step("slice bounds", () => {
    assert.deepEqual(chunkBounds("t", { chunks: 3 }, 7), [[0, 3], [3, 6], [6, 7]]);
    assert.deepEqual(chunkBounds("t", { chunks: 4 }, 8), [[0, 2], [2, 4], [4, 6], [6, 8]]);
    assert.deepEqual(chunkBounds("t", { chunks: 5 }, 2), [[0, 1], [1, 2]]);
    assert.deepEqual(chunkBounds("t", { chunkSize: 4 }, 7), [[0, 4], [4, 7]]);
    assert.deepEqual(chunkBounds("t", { chunkSize: 9 }, 7), [[0, 7]]);
    assert.deepEqual(chunkBounds("t", { chunkSize: 2 }, 0), [[0, 0]]);
  });

  for (const device of testDevices()) {
    await t.step(`feed-forward equals the unchunked layer on ${device}`, async () => {
      await noLeaks(async () => {
        const ff = feedForward({ dModel: 3, dFF: 8 });
        // CPU: bit for bit (values and input cotangent); WebGPU: to rounding.
        const exact = device === "cpu-reference";
        for (
          const [len, spec] of [
            [7, { chunks: 3 }],
            [8, { chunkSize: 2 }],
            [5, { chunkSize: 8 }],
            [1, { chunks: 4 }],
          ] as const
        ) {
          await T.scope(async () => {
            const { x, p, w } = makeInputs(device, len, [2, len, 3, 8]);
            const cff = chunked(ff, spec);
            const y0 = ff.apply(p, x), y1 = cff.apply(p, x);
            assert.deepEqual(y1.shape, [2, len, 3]);
            if (exact) assert.deepEqual(await y1.data(), await y0.data());
            else await T.assertAllClose(y1, y0, { rtol: 1e-5, atol: 1e-6 });
            const loss = (layer: typeof ff) => (pp: FeedForwardParams, xx: T.Tensor) =>
              T.sum(T.mul(layer.apply(pp, xx), w));
            const [v0, g0] = T.valueAndGrad(loss(ff), { argnums: [0, 1] })(p, x);
            const [v1, g1] = T.valueAndGrad(loss(cff), { argnums: [0, 1] })(p, x);
            await T.assertAllClose(v1, v0, { rtol: 1e-5, atol: 1e-5 });
            if (exact) assert.deepEqual(await g1[1].data(), await g0[1].data(), "dx");
            const a = flatGrads(g1), b = flatGrads(g0);
            assert.equal(a.length, 5);
            for (let i = 0; i < a.length; i++) {
              assert.deepEqual(a[i].shape, b[i].shape);
              await T.assertAllClose(a[i], b[i], { rtol: 1e-5, atol: 1e-5, message: `grad ${i}` });
            }
          });
        }
      });
    });

    await t.step(`lower peak bytes in forward and backward on ${device}`, async () => {
      await noLeaks(() => {
        T.scope(() => {
          const ff = feedForward({ dModel: 4, dFF: 64 });
          const cff = chunked(ff, { chunks: 8 });
          const { x, p, w } = makeInputs(device, 1, [1, 64, 4, 64]);
          const peak = (layer: typeof ff, backward: boolean) => {
            T.resetPeakMemory(device);
            const base = T.memory(device).liveBytes;
            T.scope(() => {
              const loss = (pp: FeedForwardParams) => T.sum(T.mul(layer.apply(pp, x), w));
              return backward ? T.grad(loss)(p) : loss(p);
            });
            return T.memory(device).peakBytes - base;
          };
          const hidden = 64 * 64 * 4; // one [len, dFF] f32 activation
          for (const backward of [false, true]) {
            const full = peak(ff, backward), part = peak(cff, backward);
            assert.ok(full > hidden, `unchunked peak ${full} holds the hidden activation`);
            // 8 slices: every hidden-sized temporary shrinks eightfold.
            assert.ok(
              part < full / 4,
              `${backward ? "backward" : "forward"}: chunked peak ${part} vs unchunked ${full}`,
            );
          }
        });
      });
    });

    await t.step(`gradients on ${device} by finite differences, with dropout`, async () => {
      const ff = chunked(feedForward({ dModel: 2, dFF: 3, dropout: 0.3 }), { chunkSize: 2 });
      await checkGrad(
        {
          name: "chunked feedForward",
          inputs: [{ shape: [1, 5, 2] }, ...shapes(2, 3).map((shape) => ({ shape }))],
          fn: ([x, ...p], dev) =>
            ff.apply(asParams(p), x, { key: random.key(4, { device: dev }), training: true }),
        },
        device,
        rng(11),
      );
    });

    await t.step(`as G of a reversible block, with dropout, on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const cff = chunked(feedForward({ dModel: 3, dFF: 6, dropout: 0.3 }), { chunkSize: 2 });
          const lin = linear({ inFeatures: 3, outFeatures: 3 });
          const F = (p: LinearParams, x: T.Tensor) => lin.apply(p, x);
          const G = (p: FeedForwardParams, x: T.Tensor, o: { key: T.Tensor; training: boolean }) =>
            cff.apply(p, x, o);
          const block = T.reversible(F, G);
          const { x, p: pg, w } = makeInputs(device, 30, [1, 5, 3, 6]);
          const pf = lin.init(random.key(31, { device }));
          const x2 = T.mul(x, -0.5);
          const opts = { g: { key: random.key(32, { device }), training: true } };
          const loss = (rev: boolean) => (params: { f: LinearParams; g: FeedForwardParams }) => {
            let y1: T.Tensor, y2: T.Tensor;
            if (rev) [y1, y2] = block.apply(params, [x, x2], opts);
            else {
              y1 = T.add(x, F(params.f, x2));
              y2 = T.add(x2, G(params.g, y1, opts.g));
            }
            return T.add(T.sum(T.mul(y1, w)), T.sum(T.mul(y2, T.square(w))));
          };
          const [v0, g0] = T.valueAndGrad(loss(false))({ f: pf, g: pg });
          const [v1, g1] = T.valueAndGrad(loss(true))({ f: pf, g: pg });
          await T.assertAllClose(v1, v0, { rtol: 1e-5, atol: 1e-5 });
          const a = T.treeTensors(g1), b = T.treeTensors(g0);
          assert.equal(a.length, 6);
          for (let i = 0; i < a.length; i++) {
            await T.assertAllClose(a[i], b[i], { rtol: 1e-4, atol: 1e-5, message: `grad ${i}` });
          }
        });
      });
    });

    await t.step(`pytree inputs, other axes and chunkedSum on ${device}`, async () => {
      await noLeaks(async () => {
        await T.scope(async () => {
          const rand = rng(12);
          const a = T.tensor(randomArray(rand, 12), { shape: [6, 2], device });
          const b = T.tensor(randomArray(rand, 6), { shape: [6], device });
          const f = (s: T.Tensor, x: { a: T.Tensor; b: T.Tensor }) =>
            T.mul(T.tanh(T.mul(x.a, s)), T.expandDims(x.b, -1));
          const s = T.tensor([0.5, -2], { device });
          const cf = chunked(f, { chunks: 4 }, 0);
          assert.deepEqual(await cf(s, { a, b }).data(), await f(s, { a, b }).data());
          const g0 = T.grad((ss: T.Tensor, x: typeof a) => T.sum(f(ss, { a: x, b })), {
            argnums: [0, 1],
          })(s, a);
          const g1 = T.grad((ss: T.Tensor, x: typeof a) => T.sum(cf(ss, { a: x, b })), {
            argnums: [0, 1],
          })(s, a);
          await T.assertAllClose(g1[0], g0[0], { rtol: 1e-5, atol: 1e-6 });
          await T.assertAllClose(g1[1], g0[1], { rtol: 1e-5, atol: 1e-6 });
          // Negative axis: the last axis of a [2, 5] input.
          const m = T.tensor(randomArray(rand, 10), { shape: [2, 5], device });
          const sq = (_: null, x: T.Tensor) => T.square(x);
          assert.deepEqual(
            await chunked(sq, { chunkSize: 2 }, -1)(null, m).data(),
            await T.square(m).data(),
          );
          const total = chunkedSum((_: null, x: T.Tensor) => T.sum(T.square(x)), { chunkSize: 2 });
          await T.assertAllClose(total(null, m), T.sum(T.square(m)), { rtol: 1e-6 });
          const gs = T.grad((x: T.Tensor) => total(null, x))(m);
          await T.assertAllClose(gs, T.mul(m, 2), { rtol: 1e-6 });
        });
      });
    });
  }

  await t.step("errors", async () => {
    await noLeaks(() => {
      const f = (_: null, x: T.Tensor) => T.square(x);
      // deno-lint-ignore no-explicit-any
      assert.throws(() => chunked(f, {} as any), /chunked: give exactly one of/);
      // deno-lint-ignore no-explicit-any
      assert.throws(() => chunked(f, { chunks: 2, chunkSize: 2 } as any), /exactly one/);
      assert.throws(() => chunked(f, { chunks: 0 }), /chunks must be a positive integer, got 0/);
      assert.throws(() => chunked(f, { chunkSize: 1.5 }), /chunkSize must be a positive integer/);
      // deno-lint-ignore no-explicit-any
      assert.throws(() => chunked(42 as any, { chunks: 2 }), /f must be a function or a layer/);
      T.scope(() => {
        const x = T.ones([2, 6]);
        const cf = chunked((s: T.Tensor, t: T.Tensor) => T.mul(T.square(t), s), { chunks: 2 });
        const inner = (s: T.Tensor) => T.grad((tt: T.Tensor) => T.sum(cf(s, tt)))(x);
        assert.throws(
          () => T.grad((s: T.Tensor) => T.sum(inner(s)))(T.ones([1])),
          /customVjp\(chunked\): cannot differentiate the backward pass/,
        );
        assert.throws(
          () => chunked((_: null, t: T.Tensor) => T.sum(t, 1), { chunks: 2 })(null, x),
          /chunked: f must be position-wise along axis 1: a slice of 3 positions gave an output of shape \[2\]/,
        );
        assert.throws(
          () => chunked(f, { chunks: 2 }, 2)(null, x),
          /chunked: axis 2 is out of range for rank 2/,
        );
        assert.throws(
          () =>
            chunked((_: null, t: { a: T.Tensor }) => t.a, { chunks: 2 })(null, {
              a: x,
              b: T.ones([2, 5]),
            } as { a: T.Tensor }),
          /same length along axis 1, got \[2,6\] and \[2,5\]/,
        );
      });
    });
  });
});
