/**
 * Table-driven finite-difference checks of the VJP rule of every differentiable op, on random
 * shapes with broadcasting, on every device.
 */
import * as T from "../../mod.ts";
import { logSoftmax, logsumexp, softmax } from "../../ops/softmax.ts";
import { max, mean, min, sum, variance } from "../../ops/reduce.ts";
import { matmul } from "../../ops/matmul.ts";
import { scatterAdd, scatterAddAlongAxis, take, takeAlongAxis } from "../../ops/indexing.ts";
import { cumsum } from "../../ops/cumsum.ts";
import { gatherByIndex, scatterByIndex, sort, sortWithIndices } from "../../ops/sort.ts";
import { concat, pad, slice, split, stack } from "../../ops/slicing.ts";
import { rng, testDevices } from "../util.ts";
import { away, type Case, checkGrad, distinct, frac, type Gen, uniform } from "./gradcheck.ts";

type U = (x: T.Tensor) => T.Tensor;
type B = (a: T.Tensor, b: T.Tensor) => T.Tensor;

const unary = (name: string, f: U, gen?: Gen, shape = [2, 3]): Case => ({
  name,
  inputs: [{ shape, gen }],
  fn: ([x]) => f(x),
});

const binary = (name: string, f: B, sa: number[], sb: number[], ga?: Gen, gb?: Gen): Case => ({
  name: `${name} [${sa}] [${sb}]`,
  inputs: [{ shape: sa, gen: ga }, { shape: sb, gen: gb }],
  fn: ([a, b]) => f(a, b),
});

const i32 = (values: number[], shape: number[], device: T.DeviceName) =>
  T.tensor(Int32Array.from(values), { shape, device });

const ELEMENTWISE: Case[] = [
  unary("neg", T.neg),
  unary("abs", T.abs, away()),
  unary("sign", T.sign, away()),
  unary("exp", T.exp),
  unary("log", T.log, uniform(0.2, 3)),
  unary("log1p", T.log1p, uniform(-0.5, 2)),
  unary("sqrt", T.sqrt, uniform(0.2, 3)),
  unary("rsqrt", T.rsqrt, uniform(0.2, 3)),
  unary("square", T.square),
  unary("tanh", T.tanh, uniform(-2, 2)),
  unary("sigmoid", T.sigmoid, uniform(-3, 3)),
  unary("relu", T.relu, away()),
  unary("erf", T.erf, uniform(-2, 2)),
  unary("sin", T.sin, uniform(-3, 3)),
  unary("cos", T.cos, uniform(-3, 3)),
  unary("gelu (tanh)", (x) => T.gelu(x), uniform(-3, 3)),
  unary("gelu (erf)", (x) => T.gelu(x, { approximate: false }), uniform(-3, 3)),
  unary("cast f32", (x) => T.cast(x, "f32")),
  binary("add", T.add, [3, 1, 4], [2, 4]),
  binary("sub", T.sub, [2, 3], []),
  binary("mul", T.mul, [1, 3], [2, 1]),
  binary("div", T.div, [2, 3], [3], uniform(), away(0.5, 2)),
  binary("pow", T.pow, [2, 3], [2, 1], uniform(0.5, 2), uniform(-1.5, 1.5)),
  binary("maximum", T.maximum, [3, 1, 2], [4, 2], frac(0), frac(0.5)),
  binary("minimum", T.minimum, [2, 3], [3], frac(0.5), frac(0)),
  {
    name: "scalar number operands",
    inputs: [{ shape: [5] }],
    fn: ([x]) => T.scope(() => T.add(T.mul(T.sub(2, x), 3), T.div(1, T.add(T.square(x), 1)))),
  },
  {
    name: "where with broadcast condition",
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    fn: ([a, b], device) =>
      T.scope(() => T.where(T.tensor([[true], [false]], { device }), T.mul(a, 2), b)),
  },
  {
    name: "clip numbers",
    // |x| in [0, 0.35] or [0.55, 1]: at least 0.1 from the bounds +-0.45.
    inputs: [{
      shape: [3, 4],
      gen: (r, n) =>
        Array.from(
          { length: n },
          () => (r() < 0.5 ? -1 : 1) * (r() < 0.5 ? 0.35 * r() : 0.55 + 0.45 * r()),
        ),
    }],
    fn: ([x]) => T.clip(x, -0.45, 0.45),
  },
  {
    name: "clip tensor bounds",
    inputs: [{ shape: [2, 3], gen: frac(0) }, { shape: [3], gen: frac(0.5) }],
    fn: ([x, lo]) => T.scope(() => T.clip(x, lo, T.add(lo, 1.2))),
  },
];

const SHAPE: Case[] = [
  unary("reshape", (x) => T.reshape(x, [3, -1]), undefined, [2, 3, 2]),
  unary("transpose", (x) => T.transpose(x, [2, 0, 1]), undefined, [2, 3, 4]),
  unary("transpose default", (x) => T.transpose(x), undefined, [2, 3]),
  unary("expandDims", (x) => T.expandDims(x, [0, 2]), undefined, [2, 3]),
  unary("squeeze", (x) => T.squeeze(x), undefined, [1, 3, 1]),
  unary("broadcastTo", (x) => T.broadcastTo(x, [2, 3, 4]), undefined, [3, 1]),
];

const REDUCE: Case[] = [
  unary("sum all", (x) => sum(x), undefined, [2, 3]),
  unary("sum axes keepdims", (x) => sum(x, [0, 2], { keepdims: true }), undefined, [2, 3, 4]),
  unary("sum axis -1", (x) => sum(x, -1), undefined, [3, 5]),
  unary("mean", (x) => mean(x, 1), undefined, [2, 3, 2]),
  unary("max", (x) => max(x, 1), distinct, [3, 4]),
  unary("max all", (x) => max(x), distinct, [2, 5]),
  unary("min keepdims", (x) => min(x, 0, { keepdims: true }), distinct, [4, 3]),
  unary("variance", (x) => variance(x, -1), undefined, [3, 5]),
  unary("logsumexp", (x) => logsumexp(x, 1), uniform(-3, 3), [2, 4, 3]),
  unary("softmax", (x) => softmax(x), uniform(-2, 2), [3, 5]),
  unary("softmax axis 0", (x) => softmax(x, 0), uniform(-2, 2), [4, 3]),
  unary("logSoftmax", (x) => logSoftmax(x), uniform(-2, 2), [2, 6]),
];

const MATMUL: Case[] = [
  binary("matmul", (a, b) => matmul(a, b), [3, 4], [4, 2]),
  binary("matmul batched broadcast", (a, b) => matmul(a, b), [2, 3, 4], [4, 5]),
  binary("matmul transposeA", (a, b) => matmul(a, b, { transposeA: true }), [4, 3], [1, 4, 2]),
  binary("matmul transposeB", (a, b) => matmul(a, b, { transposeB: true }), [2, 1, 3], [2, 5, 3]),
  binary("matmul vector", (a, b) => matmul(a, b), [4], [4, 3]),
  binary("matmul matrix-vector", (a, b) => matmul(a, b), [2, 4], [4]),
];

const INDEXING: Case[] = [
  {
    name: "take with repeats and negatives",
    inputs: [{ shape: [4, 3] }],
    fn: ([x], device) => T.scope(() => take(x, i32([2, 0, -1, 2, 1], [5], device), 0)),
  },
  {
    name: "take axis 1, 2-D indices",
    inputs: [{ shape: [2, 4, 2] }],
    fn: ([x], device) => T.scope(() => take(x, i32([3, 3, 0, 1], [2, 2], device), 1)),
  },
  {
    name: "takeAlongAxis",
    inputs: [{ shape: [3, 4] }],
    fn: ([x], device) =>
      T.scope(() => takeAlongAxis(x, i32([0, 3, 3, 1, 2, 2, 0, 0, 1], [3, 3], device), 1)),
  },
  {
    name: "scatterAdd (x and updates)",
    inputs: [{ shape: [4, 2] }, { shape: [3, 2] }],
    fn: ([x, u], device) => T.scope(() => scatterAdd(x, i32([1, 3, 1], [3], device), u, 0)),
  },
  {
    name: "scatterAddAlongAxis (x and updates)",
    inputs: [{ shape: [2, 3] }, { shape: [2, 2] }],
    fn: ([x, u], device) =>
      T.scope(() => scatterAddAlongAxis(x, i32([2, 2, 0, 1], [2, 2], device), u, 1)),
  },
  unary("cumsum", (x) => cumsum(x, 1), undefined, [2, 5]),
  unary(
    "cumsum reverse exclusive",
    (x) => cumsum(x, 0, { reverse: true, exclusive: true }),
    undefined,
    [4, 3],
  ),
  unary("sort", (x) => sort(x), distinct, [3, 5]),
  unary("sort descending", (x) => sort(x, { descending: true }), distinct, [2, 6]),
  unary("sortWithIndices values", (x) => T.scope(() => sortWithIndices(x)[0]), distinct, [7]),
  {
    name: "gatherByIndex / scatterByIndex",
    inputs: [{ shape: [2, 3, 2] }],
    fn: ([x], device) =>
      T.scope(() => {
        const idx = i32([2, 0, 1, 1, 2, 0], [2, 3], device);
        return T.mul(gatherByIndex(x, idx), scatterByIndex(x, idx));
      }),
  },
];

const SLICING: Case[] = [
  unary("slice", (x) => slice(x, [1, 0], [3, undefined], [1, 2]), undefined, [4, 5]),
  unary("slice negative step", (x) => slice(x, [-1, 2], [undefined, 0], [-2, -1]), undefined, [
    5,
    4,
  ]),
  unary("slice whole (a view)", (x) => slice(x, [0]), undefined, [2, 3]),
  {
    name: "concat with broadcast use",
    inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }],
    fn: ([a, b, c]) => T.scope(() => T.mul(concat([a, b, c], 1), concat([c, b, a], 1))),
  },
  {
    name: "stack axis 1",
    inputs: [{ shape: [3, 2] }, { shape: [3, 2] }],
    fn: ([a, b]) => stack([a, T.mul(b, a), b], 1),
  },
  {
    name: "split (all parts used)",
    inputs: [{ shape: [2, 7] }],
    fn: ([x]) =>
      T.scope(() => {
        const [p, q, r] = split(x, [2, -2], 1);
        return concat([T.sin(r), p, T.square(q)], 1);
      }),
  },
  {
    name: "split (one part unused)",
    inputs: [{ shape: [6, 2] }],
    fn: ([x]) => T.scope(() => T.exp(split(x, 3, 0)[1])),
  },
  unary("pad", (x) => pad(x, [[1, 0], [2, 1]], 0.5), undefined, [2, 3]),
];

const GROUPS: [string, Case[]][] = [
  ["elementwise", ELEMENTWISE],
  ["shape", SHAPE],
  ["reduce and softmax", REDUCE],
  ["matmul", MATMUL],
  ["indexing, cumsum and sort", INDEXING],
  ["slicing", SLICING],
];

for (const [group, cases] of GROUPS) {
  Deno.test(`gradients of ${group} ops match finite differences`, async (t) => {
    const rand = rng(group.length * 7919);
    for (const device of testDevices()) {
      for (const c of cases) {
        await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
      }
    }
  });
}
