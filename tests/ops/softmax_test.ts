import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { fromTypedArray } from "../../ops/creation.ts";
import { max, sum } from "../../ops/reduce.ts";
import { logSoftmax, logsumexp, softmax } from "../../ops/softmax.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";

await startWasm();
import { refSoftmax } from "./softmax_ref.ts";

Deno.test("softmax and logSoftmax match float64 references and their compositions", async (t) => {
  const rand = rng(13);
  const cases: [number[], number][] = [
    [[7], -1],
    [[4, 1], -1],
    [[3, 257], 1],
    [[2, 3, 5], 1],
    [[2, 3, 5], 0],
    [[700, 7], -1],
    [[2, 5000], -1],
  ];
  for (const device of testDevices({ wasm: true })) {
    for (const [shape, axis] of cases) {
      await t.step(
        `${JSON.stringify(shape)} axis ${axis} on ${device}`,
        () =>
          noLeaks(() =>
            T.scope(async () => {
              const size = shape.reduce((a, b) => a * b, 1);
              const data = randomArray(rand, size, -8, 8);
              const a = (axis + shape.length) % shape.length;
              const x = fromTypedArray(data, shape, "f32", device);
              const p = softmax(x, axis), lp = logSoftmax(x, axis);
              await T.assertAllClose(p, refSoftmax(data, shape, a, false), { atol: 1e-7 });
              await T.assertAllClose(lp, refSoftmax(data, shape, a, true), { atol: 2e-6 });
              // The fused primitives equal their compositions.
              const m = max(x, axis, { keepdims: true });
              const e = T.exp(T.sub(x, m));
              await T.assertAllClose(p, T.div(e, sum(e, axis, { keepdims: true })), {
                atol: 1e-7,
              });
              await T.assertAllClose(lp, T.sub(x, logsumexp(x, axis, { keepdims: true })), {
                atol: 2e-6,
              });
            })
          ),
      );
    }
  }
});

Deno.test("softmax of large logits does not overflow", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([
            [1e4, 1e4 - 1, -1e4, 5e3],
            [3e38, 3e38, -3e38, 0],
            [-1e30, -1e30, -1e30, -1e30],
          ], { device });
          const p = await softmax(x).array() as number[][];
          for (const row of p) {
            assert.ok(row.every(Number.isFinite), `finite: ${row}`);
            assert.ok(Math.abs(row.reduce((a, b) => a + b) - 1) < 1e-6, `sums to 1: ${row}`);
          }
          await T.assertAllClose(p[0], [1 / (1 + Math.E ** -1), 1 / (1 + Math.E), 0, 0]);
          assert.deepEqual(p[1], [0.5, 0.5, 0, 0]);
          const lp = await logSoftmax(x).array() as number[][];
          await T.assertAllClose(lp[1].slice(0, 2), [-Math.LN2, -Math.LN2]);
          await T.assertAllClose(logsumexp(x, 1), [
            1e4 + Math.log1p(Math.E ** -1),
            3e38,
            -1e30 + Math.log(4),
          ]);
          const inf = T.tensor([[-Infinity, -Infinity], [Infinity, 0]], { device });
          assert.deepEqual(await logsumexp(inf, 1).array(), [-Infinity, Infinity]);
        })
      ));
  }
});
