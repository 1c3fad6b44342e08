import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { cumsum, CUMSUM_PRIMITIVE } from "../../ops/cumsum.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";

type Shape = number[];
const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

function cumsumRef(x: ArrayLike<number>, xs: Shape, axis: number, rev: boolean, excl: boolean) {
  const out = new Float64Array(x.length);
  const n = xs[axis], inner = size(xs.slice(axis + 1)), outer = size(xs.slice(0, axis));
  for (let a = 0; a < outer; a++) {
    for (let b = 0; b < inner; b++) {
      let acc = 0;
      for (let q = 0; q < n; q++) {
        const at = (a * n + (rev ? n - 1 - q : q)) * inner + b;
        out[at] = excl ? acc : acc + x[at];
        acc += x[at];
      }
    }
  }
  return out;
}

Deno.test("cumsum matches float64 references", async (t) => {
  const rand = rng(13);
  const cases: [Shape, number][] = [
    [[7], -1],
    [[3, 5], 0],
    [[3, 5], 1],
    [[4, 1, 6], 1],
    [[2, 70, 3], 1],
    [[3, 100], -1],
    [[2, 5000], -1],
    [[5000, 3], 0],
    [[1], 0],
    [[0, 4], 1],
  ];
  for (const device of testDevices()) {
    for (const [xs, axis] of cases) {
      for (
        const [reverse, exclusive] of [[false, false], [true, false], [false, true], [
          true,
          true,
        ]]
      ) {
        const label = `${
          JSON.stringify(xs)
        } axis ${axis} reverse ${reverse} exclusive ${exclusive}`;
        await t.step(`${label} on ${device}`, async () => {
          await noLeaks(() =>
            T.scope(async () => {
              const x = randomArray(rand, size(xs), -1, 1);
              const y = cumsum(T.tensor(x, { shape: xs, device }), axis, { reverse, exclusive });
              const ref = cumsumRef(x, xs, axis < 0 ? axis + xs.length : axis, reverse, exclusive);
              await T.assertAllClose(y, ref, { rtol: 1e-5, atol: 2e-5 });
            })
          );
        });
      }
    }
    await t.step(`integer cumsum is exact and wraps on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = Int32Array.from({ length: 6000 }, () => Math.floor(rand() * 2000) - 1000);
          const y = cumsum(T.tensor(x, { shape: [2, 3000], device }), 1, { exclusive: true });
          assert.deepEqual(
            await y.data(),
            Int32Array.from(cumsumRef(x, [2, 3000], 1, false, true)),
          );
          const big = T.tensor(new Int32Array([2 ** 31 - 1, 1]), { device });
          assert.deepEqual(await cumsum(big).data(), new Int32Array([2 ** 31 - 1, -(2 ** 31)]));
          const u = T.tensor(new Uint32Array([1, 2, 3]), { device });
          assert.deepEqual(
            await cumsum(u, 0, { reverse: true }).data(),
            new Uint32Array([6, 5, 3]),
          );
        })
      );
    });
  }
});

async function dot(a: T.Tensor, b: T.Tensor): Promise<number> {
  const [x, y] = [await a.data(), await b.data()];
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  return s;
}

Deno.test("cumsum VJP rule is the adjoint of cumsum", async (t) => {
  const rand = rng(15);
  const f = (s: Shape, device: T.DeviceName) =>
    T.tensor(randomArray(rand, size(s)), { shape: s, device });
  for (const device of testDevices()) {
    await t.step(device, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          // cumsum, every direction.
          for (const reverse of [false, true]) {
            for (const exclusive of [false, true]) {
              const xc = f([3, 7], device), gc = f([3, 7], device);
              const yc = cumsum(xc, 1, { reverse, exclusive });
              const [dc] = CUMSUM_PRIMITIVE.vjp === "none" ? [] : CUMSUM_PRIMITIVE.vjp([gc], {
                inputs: [xc],
                outputs: [yc],
                params: { axis: 1, reverse, exclusive },
              });
              await T.assertAllClose(await dot(yc, gc), await dot(xc, dc!), {
                rtol: 1e-4,
                atol: 1e-4,
              });
            }
          }
        })
      );
    });
  }
});

Deno.test("cumsum validates before running", async () => {
  const x = T.zeros([2, 3]), b = T.tensor([true]), scalar = T.zeros([]);
  await noLeaks(() => {
    assert.throws(() => cumsum(b), { name: "TypeError", message: /cumsum: bool/ });
    assert.throws(() => cumsum(x, -3), {
      name: "RangeError",
      message: /cumsum: axis -3 is out of range for rank 2/,
    });
    assert.throws(() => cumsum(scalar, 0), RangeError);
  });
  [x, b, scalar].forEach((a) => a.dispose());
});
