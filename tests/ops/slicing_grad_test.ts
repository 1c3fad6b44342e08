import * as T from "../../mod.ts";
import { concat, pad, slice, split, stack } from "../../ops/slicing.ts";
import { rng, testDevices } from "../util.ts";
import { type Case, checkGrad } from "../autodiff/gradcheck.ts";
import { grad } from "../../autodiff/mod.ts";
import { sum } from "../../ops/reduce.ts";

type Shape = number[];

const f32 = (values: number[], shape: Shape, device: T.DeviceName) =>
  T.tensor(Float32Array.from(values), { shape, device });

const GRADS: Case[] = [
  {
    name: "slice with negative steps",
    inputs: [{ shape: [4, 5] }],
    fn: ([x]) => slice(x, [-1, 4], [undefined, 0], [-2, -3]),
  },
  { name: "slice of some axes", inputs: [{ shape: [3, 4, 2] }], fn: ([x]) => slice(x, [1], [-1]) },
  {
    name: "concat along axis -1",
    inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }],
    fn: (xs) => concat(xs, -1),
  },
  {
    name: "stack along axis 1",
    inputs: [{ shape: [3, 2] }, { shape: [3, 2] }],
    fn: (xs) => stack(xs, 1),
  },
  {
    name: "split parts recombined",
    inputs: [{ shape: [5, 2] }],
    fn: ([x], device) => {
      const [a, b, c] = split(x, [1, 3]);
      return concat([T.mul(c, f32([2], [], device)), a, T.square(b)]);
    },
  },
  {
    name: "pad",
    inputs: [{ shape: [2, 3] }],
    fn: ([x]) => T.mul(pad(x, [[1, 0], [2, 1]], 0.5), pad(x, [[0, 1], [0, 3]])),
  },
  {
    name: "pad of a reversed slice",
    inputs: [{ shape: [6] }],
    fn: ([x]) => T.square(slice(pad(slice(x, [5], [undefined], [-2]), 1, 2), [], [], [-1])),
  },
  {
    // Differentiates the slice VJP (a strided embed into zeros), whose VJP is a slice again.
    name: "second order through a strided slice",
    inputs: [{ shape: [3, 7] }],
    fn: ([x]) =>
      grad((y: T.Tensor) => sum(T.square(T.square(slice(y, [2, -1], [0], [-1, -3])))))(x),
  },
  {
    name: "second order through concat and pad",
    inputs: [{ shape: [2, 3] }, { shape: [1, 3] }],
    fn: ([a, b]) =>
      grad(
        (p: T.Tensor, q: T.Tensor) =>
          sum(T.square(T.mul(pad(concat([p, q]), [[1, 0], [0, 2]]), pad(q, [[3, 0], [1, 1]])))),
        { argnums: [0, 1] },
      )(a, b)[0],
  },
];

Deno.test("slicing VJPs match finite differences", async (t) => {
  const rand = rng(33);
  for (const device of testDevices()) {
    for (const c of GRADS) await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
  }
});
