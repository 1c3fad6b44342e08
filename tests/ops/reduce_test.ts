import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { fromTypedArray } from "../../ops/creation.ts";
import { closeTrace, definePrimitive, makeNode, openTrace } from "../../ops/primitive.ts";
import { argmax, argmin } from "../../ops/arg_reduce.ts";
import { max, mean, min, type ReduceOptions, sum, variance } from "../../ops/reduce.ts";
import { logSoftmax, logsumexp, softmax } from "../../ops/softmax.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";

await startWasm();
import { refLse, refSoftmax } from "./softmax_ref.ts";

type Axes = number | number[] | undefined;
type Reducer = (x: T.Tensor, axes?: Axes, o?: ReduceOptions) => T.Tensor;
type Ref = (v: number[]) => number;

const norm = (axes: Axes, rank: number): number[] =>
  axes === undefined
    ? [...Array(rank).keys()]
    : (typeof axes === "number" ? [axes] : axes).map((a) => (a + rank) % rank).sort((a, b) =>
      a - b
    );

/** Groups the elements of `data` by output position (in input order) for a reduction. */
function groups(data: ArrayLike<number>, shape: number[], axes: number[]): number[][] {
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const outSize = kept.reduce((p, i) => p * shape[i], 1);
  const out: number[][] = Array.from({ length: outSize }, () => []);
  const coords = new Array(shape.length).fill(0);
  for (let i = 0; i < data.length; i++) {
    let o = 0;
    for (const k of kept) o = o * shape[k] + coords[k];
    out[o].push(data[i]);
    for (let d = shape.length - 1; d >= 0 && ++coords[d] === shape[d]; d--) coords[d] = 0;
  }
  return out;
}

const beats = (b: number, a: number, gt: boolean) =>
  !Number.isNaN(a) && (Number.isNaN(b) || (gt ? b > a : b < a));
const refSum: Ref = (v) => v.reduce((a, b) => a + b, 0);
const refMax: Ref = (v) => v.reduce((a, b) => (beats(b, a, true) ? b : a));
const refMin: Ref = (v) => v.reduce((a, b) => (beats(b, a, false) ? b : a));
const refMean: Ref = (v) => refSum(v) / v.length;
const refVar: Ref = (v) => refMean(v.map((x) => (x - refMean(v)) ** 2));
const refArg = (gt: boolean) => (v: number[]) =>
  v.reduce((best, x, i) => (beats(x, v[best], gt) ? i : best), 0);

const OPS: [string, Reducer, Ref][] = [
  ["sum", sum, refSum],
  ["max", max, refMax],
  ["min", min, refMin],
  ["mean", mean, refMean],
  ["variance", variance, refVar],
  ["logsumexp", logsumexp, refLse],
];

// Shapes and axis sets: size-1 axes, odd sizes, negative axes, split blocks (transposes),
// long rows (two-pass on WebGPU), many short rows, and strided columns of every kind.
const CASES: [number[], Axes][] = [
  [[], undefined],
  [[7], undefined],
  [[7], -1],
  [[1, 7], 1],
  [[1, 7], [0, 1]],
  [[9, 1], 1],
  [[3, 257], -1],
  [[3, 257], 0],
  [[2, 1000], [1]],
  [[4, 1, 5], [0, 2]],
  [[4, 1, 5], -3],
  [[2, 3, 4, 5], [0, 2]],
  [[2, 3, 4, 5], [-1, -3]],
  [[2, 3, 4, 5], [1, 2]],
  [[300, 20], 0],
  [[40, 130], 0],
  [[5000, 3], 0],
  [[3, 4100], 0],
  [[2, 20000], 1],
  [[700, 7], -1],
];

Deno.test("reductions match float64 references on every device", async (t) => {
  const rand = rng(11);
  for (const device of testDevices({ wasm: true })) {
    for (const [shape, axes] of CASES) {
      await t.step(
        `${JSON.stringify(shape)} axes ${JSON.stringify(axes)} on ${device}`,
        () =>
          noLeaks(async () => {
            const size = shape.reduce((a, b) => a * b, 1);
            const data = randomArray(rand, size, -3, 3);
            const ax = norm(axes, shape.length);
            const g = groups(data, shape, ax);
            const count = g[0].length;
            await T.scope(async () => {
              const x = fromTypedArray(data, shape, "f32", device);
              for (const [name, op, ref] of OPS) {
                for (const keepdims of [false, true]) {
                  const y = op(x, axes, { keepdims });
                  const want = shape.map((d, i) => (ax.includes(i) ? 1 : d))
                    .filter((_, i) => keepdims || !ax.includes(i));
                  assert.deepEqual(y.shape, want, `${name} shape`);
                  assert.equal(y.dtype, "f32");
                  const tol = name === "sum" ? 2e-6 * count : 2e-6 * Math.sqrt(count);
                  await T.assertAllClose(y, g.map(ref), {
                    rtol: 1e-5,
                    atol: tol,
                    message: `${name} keepdims=${keepdims}`,
                  });
                }
              }
              if (!Array.isArray(axes) || axes.length === 1) {
                const a = axes === undefined
                  ? undefined
                  : typeof axes === "number"
                  ? axes
                  : axes[0];
                const flat = a === undefined ? [[...data]] : g;
                assert.deepEqual(await argmax(x, a).data(), Int32Array.from(flat, refArg(true)));
                assert.deepEqual(await argmin(x, a).data(), Int32Array.from(flat, refArg(false)));
              }
            });
          }),
      );
    }
  }
});

Deno.test("argmax, argmin and max pick the first index among ties", async (t) => {
  const rand = rng(12);
  const shapes: [number[], number | undefined][] = [
    [[6, 7], 1],
    [[6, 7], 0],
    [[50, 9], 0],
    [[3, 5000], 0],
    [[2000, 40], 0],
    [[20000, 9], 0],
    [[5000, 3], -2],
    [[4, 257], -1],
    [[2, 20000], 1],
    [[3, 4, 5], 1],
    [[3, 4, 5], undefined],
    [[30000], undefined],
  ];
  for (const device of testDevices({ wasm: true })) {
    for (const [shape, axis] of shapes) {
      await t.step(
        `${JSON.stringify(shape)} axis ${axis} on ${device}`,
        () =>
          noLeaks(() =>
            T.scope(async () => {
              const size = shape.reduce((a, b) => a * b, 1);
              // Few distinct values: every row holds many copies of its extremes.
              const vals = Array.from({ length: size }, () => Math.floor(rand() * 4) - 2);
              const g = axis === undefined
                ? [vals]
                : groups(vals, shape, [(axis + shape.length) % shape.length]);
              for (const dtype of ["f32", "i32"] as const) {
                const x = T.tensor(vals, { shape, dtype, device });
                for (const keepdims of [false, true]) {
                  const am = argmax(x, axis, { keepdims });
                  assert.equal(am.dtype, "i32");
                  const a = axis === undefined ? -1 : (axis + shape.length) % shape.length;
                  assert.deepEqual(
                    am.shape,
                    keepdims
                      ? shape.map((d, i) => (axis === undefined || i === a ? 1 : d))
                      : shape.filter((_, i) => axis !== undefined && i !== a),
                  );
                  assert.deepEqual([...await am.data()], g.map(refArg(true)));
                  assert.deepEqual(
                    [...await argmin(x, axis, { keepdims }).data()],
                    g.map(refArg(false)),
                  );
                }
                assert.deepEqual([...await max(x, axis).data()], g.map(refMax));
              }
            })
          ),
      );
    }
  }
});

Deno.test("integer and bool dtypes", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const i = T.tensor([[-3, 7, 2], [5, -9, 0]], { dtype: "i32", device });
          assert.equal(sum(i).dtype, "i32");
          assert.deepEqual(await sum(i, 1).array(), [6, -4]);
          assert.deepEqual(await max(i, 0).array(), [5, 7, 2]);
          assert.deepEqual(await min(i).array(), -9);
          assert.equal(max(i).dtype, "i32");
          assert.equal(mean(i).dtype, "f32");
          assert.deepEqual(await mean(i, 0).array(), [1, -1, 1]);
          assert.equal(softmax(i).dtype, "f32");
          // i32 sums wrap on overflow, like the GPU's integer arithmetic.
          const big = T.tensor([2147483647, 1], { dtype: "i32", device });
          assert.deepEqual(await sum(big).array(), -2147483648);
          const u = T.tensor(new Uint32Array([4000000000, 5, 3000000000]), { device });
          assert.equal(sum(u).dtype, "u32");
          assert.deepEqual(await max(u).array(), 4000000000);
          assert.deepEqual(await min(u).array(), 5);
          assert.deepEqual(await argmax(u).array(), 0);
          assert.deepEqual(await sum(u).array(), 7000000005 % 2 ** 32);
          const b = T.tensor([[true, false, true], [true, true, true]], { device });
          const n = sum(b, 1);
          assert.equal(n.dtype, "i32");
          assert.deepEqual(await n.array(), [2, 3]);
          assert.deepEqual(await sum(b).array(), 5);
          const long = T.tensor(Uint8Array.from({ length: 9000 }, (_, k) => (k % 3 ? 1 : 0)), {
            shape: [1, 9000],
            device,
          });
          assert.deepEqual(await sum(long, 1).array(), [6000]);
        })
      ));
  }
});

Deno.test("NaN propagates through max/min and wins argmax/argmin", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([[1, NaN, 3, NaN], [-1, 2, 0, 1]], { device });
          assert.ok(Number.isNaN((await max(x, 1).data())[0]));
          assert.ok(Number.isNaN((await min(x, 1).data())[0]));
          assert.deepEqual(await max(x, 1).data().then((d) => d[1]), 2);
          assert.deepEqual(await argmax(x, 1).array(), [1, 1]);
          assert.deepEqual(await argmin(x, 1).array(), [1, 0]);
          assert.deepEqual(await argmax(x).array(), 1);
          const long = new Float32Array(20000).fill(1);
          long[15000] = NaN;
          const l = T.tensor(long, { shape: [1, 20000], device });
          assert.ok(Number.isNaN((await max(l).data())[0]));
          assert.deepEqual(await argmax(l, 1).array(), [15000]);
        })
      ));
  }
});

Deno.test("empty axis lists copy; size-0 reductions", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([[1, 2], [3, 4]], { device });
          for (const op of [sum, max, min, mean, variance, logsumexp]) {
            const y = op(x, []);
            assert.notEqual(y, x);
            assert.deepEqual(y.shape, [2, 2]);
            assert.deepEqual(
              await y.array(),
              op === variance ? [[0, 0], [0, 0]] : [[1, 2], [3, 4]],
            );
          }
          const b = T.tensor([true, false], { device });
          assert.deepEqual(await sum(b, []).array(), [1, 0]);
          assert.equal(sum(b, []).dtype, "i32");
          const e = T.zeros([0, 3], { device });
          assert.deepEqual(await sum(e, 0).array(), [0, 0, 0]);
          assert.deepEqual(sum(e, 1).shape, [0]);
          assert.deepEqual(await sum(e).array(), 0);
          assert.deepEqual(max(e, 1).shape, [0]);
          assert.deepEqual(softmax(e).shape, [0, 3]);
          assert.deepEqual(softmax(T.zeros([3, 0], { device })).shape, [3, 0]);
        })
      ));
  }
});

/** Float64 softmax of each slice along `axis`. */

const leaf = definePrimitive<undefined>({ name: "leaf", forward: () => [], vjp: () => [] });
/** A view of `x` marked as traced by trace `id`, so primitives on it record their nodes. */
function traced(x: T.Tensor, id: number): T.Tensor {
  return x.view(x.shape, makeNode(leaf, [], undefined, new Set([id])), 0);
}
/** Runs `fn` with a trace open (as `vjp` would), closing it afterwards. */
async function tracing(fn: (id: number) => Promise<void>): Promise<void> {
  const id = openTrace();
  try {
    await fn(id);
  } finally {
    closeTrace(id);
  }
}
/** Runs the VJP rule of the node that produced `y` on the cotangent `g`. */
function pullback(y: T.Tensor, g: T.Tensor): (T.Tensor | null)[] {
  const node = y.node!;
  assert.notEqual(node.primitive.vjp, "none");
  const rule = node.primitive.vjp as Exclude<typeof node.primitive.vjp, "none">;
  return rule([g], { inputs: node.inputs, outputs: node.outputs, params: node.params });
}

Deno.test("VJP rules match central differences of float64 references", async (t) => {
  const rand = rng(14);
  const shape = [3, 5];
  // Each entry: the op on a traced tensor, and its float64 reference giving the flat output.
  const fns: [string, (x: T.Tensor) => T.Tensor, (d: number[]) => number[]][] = [
    ["sum axis 1", (x) => sum(x, 1), (d) => groups(d, shape, [1]).map(refSum)],
    ["sum all keepdims", (x) => sum(x, undefined, { keepdims: true }), (d) => [refSum(d)]],
    ["max axis 0", (x) => max(x, 0), (d) => groups(d, shape, [0]).map(refMax)],
    ["min axes [0,1]", (x) => min(x, [0, 1]), (d) => [refMin(d)]],
    ["softmax", (x) => softmax(x), (d) => [...refSoftmax(d, shape, 1, false)]],
    ["softmax axis 0", (x) => softmax(x, 0), (d) => [...refSoftmax(d, shape, 0, false)]],
    ["logSoftmax", (x) => logSoftmax(x), (d) => [...refSoftmax(d, shape, 1, true)]],
  ];
  for (const device of testDevices({ wasm: true })) {
    for (const [name, f, ref] of fns) {
      await t.step(`${name} on ${device}`, () =>
        noLeaks(() =>
          T.scope(() =>
            tracing(async (id) => {
              const data = [...randomArray(rand, 15, -2, 2)];
              const y = f(traced(T.tensor(data, { shape, device }), id));
              const gData = [...randomArray(rand, y.size, -1, 1)];
              const [dx] = pullback(y, T.tensor(gData, { shape: y.shape, device }));
              const loss = (d: number[]) => ref(d).reduce((a, v, i) => a + v * gData[i], 0);
              const h = 1e-4;
              const fd = data.map((_, i) => {
                const up = [...data], down = [...data];
                up[i] += h;
                down[i] -= h;
                return (loss(up) - loss(down)) / (2 * h);
              });
              assert.deepEqual(dx!.shape, shape);
              await T.assertAllClose(dx!, fd, { rtol: 1e-4, atol: 1e-5 });
            })
          )
        ));
    }
  }
});

Deno.test("max/min VJP shares the cotangent equally among ties", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(() =>
          tracing(async (id) => {
            const x = traced(T.tensor([[1, 3, 3], [2, 2, 2]], { device }), id);
            const [dx] = pullback(max(x, 1), T.tensor([1, 6], { device }));
            await T.assertAllClose(dx!, [[0, 0.5, 0.5], [2, 2, 2]]);
            const [dm] = pullback(min(x, 0, { keepdims: true }), T.tensor([[1, 2, 4]], { device }));
            await T.assertAllClose(dm!, [[1, 0, 0], [0, 2, 4]]);
            // Integer results and argmax carry no gradient.
            assert.equal(argmax(x, 1).node, null);
          })
        )
      ));
  }
});

Deno.test("reductions validate before running", async (t) => {
  const x = T.zeros([2, 3]);
  const b = T.tensor([true, false]);
  const e = T.zeros([0, 3]);
  await t.step("errors name the op and the rule, and leak nothing", () =>
    noLeaks(() => {
      for (const op of [sum, max, min, mean, variance, logsumexp]) {
        const name = op.name;
        assert.throws(() => op(x, 2), {
          name: "RangeError",
          message: new RegExp(`${name}: axis 2 is out of range for rank 2`),
        });
        assert.throws(() => op(x, [0, -2]), {
          name: "RangeError",
          message: new RegExp(`${name}: repeated axis in \\[0,-2\\]`),
        });
        assert.throws(() => op(x, 0.5), RangeError);
        assert.throws(() => op("x" as unknown as T.Tensor), TypeError);
        if (op !== sum) {
          assert.throws(() => op(b), { name: "TypeError", message: new RegExp(`${name}: bool`) });
          assert.throws(() => op(e, 0), {
            name: "RangeError",
            message: new RegExp(`${name}: cannot reduce \\[0,3\\] over empty axes \\[0\\]`),
          });
        }
      }
      for (const op of [argmax, argmin]) {
        assert.throws(() => op(x, -3), { name: "RangeError", message: /axis -3 is out of range/ });
        assert.throws(() => op(b), { name: "TypeError", message: /arg(max|min): bool/ });
        assert.throws(() => op(e, 0), RangeError);
        assert.throws(() => op(e), RangeError);
      }
      for (const op of [softmax, logSoftmax]) {
        assert.throws(() => op(x, 2), { name: "RangeError", message: /axis 2 is out of range/ });
        assert.throws(() => op(b), { name: "TypeError", message: /bool input/ });
      }
    }));
  [x, b, e].forEach((v) => v.dispose());
});
