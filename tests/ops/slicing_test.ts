import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { concat, pad, slice, split, stack } from "../../ops/slicing.ts";
import { noLeaks, rng, testDevices } from "../util.ts";

type Shape = number[];
type Opt = number | undefined;

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);
const ints = (n: number, start = 0) => Float32Array.from({ length: n }, (_, i) => start + i);
const int = (rand: () => number, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

/** Python's `range(n)[start:stop:step]`, by walking the indices. */
function pyIndices(n: number, start: Opt, stop: Opt, step: number): number[] {
  const norm = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
  const out: number[] = [];
  if (step > 0) {
    const e = stop === undefined ? n : norm(stop, 0, n);
    for (let i = start === undefined ? 0 : norm(start, 0, n); i < e; i += step) out.push(i);
  } else {
    const e = stop === undefined ? -1 : norm(stop, -1, n - 1);
    for (let i = start === undefined ? n - 1 : norm(start, -1, n - 1); i > e; i += step) {
      out.push(i);
    }
  }
  return out;
}

/** Reads `x` (row-major, `shape`) at the cartesian product of per-axis index lists. */
function gather(x: ArrayLike<number>, shape: Shape, idx: number[][]): number[] {
  const out: number[] = [];
  const walk = (d: number, at: number) => {
    if (d === shape.length) return void out.push(x[at]);
    for (const i of idx[d]) walk(d + 1, at * shape[d] + i);
  };
  walk(0, 0);
  return out;
}

/** `x` of `shape` written into a `full(outShape, value)` at per-axis index lists. */
function scatter(
  x: ArrayLike<number>,
  outShape: Shape,
  idx: number[][],
  value: number,
): number[] {
  const out = new Array<number>(size(outShape)).fill(value);
  let k = 0;
  const walk = (d: number, at: number) => {
    if (d === outShape.length) return void (out[at] = x[k++]);
    for (const i of idx[d]) walk(d + 1, at * outShape[d] + i);
  };
  walk(0, 0);
  return out;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

Deno.test("slice follows Python semantics on each axis", async (t) => {
  const r7 = Array.from(ints(7));
  // Expected values computed with CPython's list slicing of range(7).
  const PINNED: [Opt, Opt, number, number[]][] = [
    [undefined, undefined, -1, [6, 5, 4, 3, 2, 1, 0]],
    [-2, undefined, -3, [5, 2]],
    [10, -10, -2, [6, 4, 2, 0]],
    [-10, 10, 3, [0, 3, 6]],
    [5, 2, 1, []],
    [1, -1, 2, [1, 3, 5]],
    [undefined, -8, -1, [6, 5, 4, 3, 2, 1, 0]],
    [6, 0, -4, [6, 2]],
    [-8, undefined, -1, []],
  ];
  for (const [s, e, st, want] of PINNED) assert.deepEqual(pyIndices(7, s, e, st), want);
  const rand = rng(31);
  for (const device of testDevices()) {
    await t.step(`pinned cases on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor(Float32Array.from(r7), { device });
          for (const [s, e, st, want] of PINNED) {
            assert.deepEqual(Array.from(await slice(x, [s], [e], [st]).data()), want);
          }
        })
      );
    });
    const SHAPES: Shape[] = [[], [1], [9], [3, 1, 4], [2, 5, 3], [1, 4, 1, 3], [0, 3], [4, 0, 2]];
    for (const shape of SHAPES) {
      await t.step(`random slices of ${JSON.stringify(shape)} on ${device}`, async () => {
        await noLeaks(() =>
          T.scope(async () => {
            const data = ints(size(shape));
            const x = T.tensor(data, { shape, device });
            for (let trial = 0; trial < 12; trial++) {
              const given = int(rand, 0, shape.length);
              const pick = (n: number): Opt => rand() < 0.2 ? undefined : int(rand, -n - 2, n + 2);
              const starts = shape.slice(0, given).map(pick);
              const ends = shape.slice(0, int(rand, 0, given)).map(pick);
              const steps = shape.slice(0, int(rand, 0, given)).map(() =>
                [-3, -2, -1, 1, 1, 2, 3][int(rand, 0, 6)]
              );
              const idx = shape.map((n, d) => pyIndices(n, starts[d], ends[d], steps[d] ?? 1));
              const y = slice(x, starts, ends, steps);
              const label = JSON.stringify([starts, ends, steps]);
              assert.deepEqual(y.shape, idx.map((l) => l.length), label);
              assert.deepEqual(Array.from(await y.data()), gather(data, shape, idx), label);
            }
          })
        );
      });
    }
    await t.step(`slice keeps dtypes and views whole slices on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const xi = T.tensor(new Int32Array([1, -2, 3, -4]), { device });
          assert.deepEqual(
            await slice(xi, [undefined], [undefined], [-2]).data(),
            new Int32Array([-4, -2]),
          );
          const xb = T.tensor([true, false, false], { device });
          assert.deepEqual(await slice(xb, [1]).array(), [false, false]);
          const whole = slice(xi, [0], [100]);
          assert.deepEqual(await whole.data(), await xi.data());
          const before = T.memory(device).liveBytes;
          slice(xi, []);
          assert.equal(T.memory(device).liveBytes, before, "a whole slice is a view");
        })
      );
    });
  }
});

/** A reference concat of row-major arrays along `axis`. */
function concatRef(parts: { data: Float32Array; shape: Shape }[], axis: number): number[] {
  const outer = size(parts[0].shape.slice(0, axis));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const { data, shape } of parts) {
      const block = size(shape.slice(axis));
      out.push(...data.subarray(o * block, (o + 1) * block));
    }
  }
  return out;
}

Deno.test("concat and stack along every axis", async (t) => {
  const rand = rng(32);
  const BASES: Shape[] = [[5], [2, 3], [3, 1, 2], [2, 3, 1, 2]];
  for (const device of testDevices()) {
    for (const base of BASES) {
      await t.step(`concat of ${JSON.stringify(base)}-like tensors on ${device}`, async () => {
        await noLeaks(() =>
          T.scope(async () => {
            for (let axis = -base.length; axis < base.length; axis++) {
              const a = axis < 0 ? axis + base.length : axis;
              const count = int(rand, 1, 4);
              let start = 0;
              const parts = Array.from({ length: count }, () => {
                const shape = base.map((n, d) => (d === a ? int(rand, 0, 3) : n));
                const data = ints(size(shape), start);
                start += data.length;
                return { data, shape, t: T.tensor(data, { shape, device }) };
              });
              const y = concat(parts.map((p) => p.t), axis);
              const shape = base.map((n, d) =>
                d === a ? parts.reduce((s, p) => s + p.shape[d], 0) : n
              );
              assert.deepEqual(y.shape, shape, `axis ${axis}`);
              assert.deepEqual(Array.from(await y.data()), concatRef(parts, a), `axis ${axis}`);
            }
          })
        );
      });
      await t.step(`stack of ${JSON.stringify(base)} tensors on ${device}`, async () => {
        await noLeaks(() =>
          T.scope(async () => {
            for (let axis = -base.length - 1; axis <= base.length; axis++) {
              const a = axis < 0 ? axis + base.length + 1 : axis;
              const parts = [0, 1, 2].map((k) => {
                const data = ints(size(base), 100 * k);
                return { data, shape: [...base.slice(0, a), 1, ...base.slice(a)] };
              });
              const y = stack(parts.map((p) => T.tensor(p.data, { shape: base, device })), axis);
              assert.deepEqual(y.shape, [...base.slice(0, a), 3, ...base.slice(a)]);
              assert.deepEqual(Array.from(await y.data()), concatRef(parts, a), `axis ${axis}`);
            }
          })
        );
      });
    }
    await t.step(`concat keeps integer dtypes on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const a = T.tensor(new Uint32Array([1, 2]), { device });
          const b = T.tensor(new Uint32Array([4000000000]), { device });
          assert.deepEqual(await concat([a, b, a]).data(), new Uint32Array([1, 2, 4e9, 1, 2]));
          const p = T.tensor([true, false], { device });
          assert.deepEqual(await stack([p, p], 1).array(), [[true, true], [false, false]]);
          assert.deepEqual(await concat([a]).data(), new Uint32Array([1, 2]));
        })
      );
    });
  }
});

Deno.test("split into equal sections and at indices", async (t) => {
  const CASES: [Shape, number | number[], number][] = [
    [[6], 3, 0],
    [[6], 1, 0],
    [[2, 6, 1], 2, 1],
    [[4, 3], 4, -2],
    [[7], [2, 5], 0],
    [[7], [-2], 0],
    [[7], [5, 2, 9], 0],
    [[3, 7], [], 1],
    [[2, 7], [0, 3, 3, -1], -1],
    [[0, 4], 2, 1],
  ];
  for (const device of testDevices()) {
    for (const [shape, sections, axis] of CASES) {
      await t.step(`${JSON.stringify([shape, sections, axis])} on ${device}`, async () => {
        await noLeaks(() =>
          T.scope(async () => {
            const a = axis < 0 ? axis + shape.length : axis;
            const n = shape[a];
            const data = ints(size(shape));
            const parts = split(T.tensor(data, { shape, device }), sections, axis);
            const bounds = typeof sections === "number"
              ? range(1, sections).map((i) => (i * n) / sections)
              : sections;
            const cuts = [undefined, ...bounds, undefined];
            assert.equal(parts.length, cuts.length - 1);
            for (let i = 0; i < parts.length; i++) {
              const idx = shape.map((m, d) =>
                d === a ? pyIndices(m, cuts[i] ?? 0, cuts[i + 1], 1) : range(0, m)
              );
              assert.deepEqual(parts[i].shape, idx.map((l) => l.length));
              assert.deepEqual(Array.from(await parts[i].data()), gather(data, shape, idx));
            }
          })
        );
      });
    }
  }
});

Deno.test("pad with asymmetric widths and constants", async (t) => {
  const CASES: [Shape, [number, number][] | number, number][] = [
    [[3], [[2, 1]], 0],
    [[2, 3], [[0, 2], [1, 0]], -1.5],
    [[1, 2, 1], [[1, 1], [0, 0], [3, 2]], 7],
    [[2, 2], 1, 0],
    [[0, 2], [[1, 0], [1, 1]], 3],
    [[], [], 5],
    [[3, 1], [[0, 0], [0, 0]], 0],
  ];
  for (const device of testDevices()) {
    for (const [shape, widths, value] of CASES) {
      await t.step(`${JSON.stringify([shape, widths, value])} on ${device}`, async () => {
        await noLeaks(() =>
          T.scope(async () => {
            const data = ints(size(shape), 1);
            const w = typeof widths === "number"
              ? shape.map((): [number, number] => [widths, widths])
              : widths;
            const y = pad(T.tensor(data, { shape, device }), widths, value);
            const outShape = shape.map((n, d) => w[d][0] + n + w[d][1]);
            const idx = shape.map((n, d) => range(w[d][0], w[d][0] + n));
            assert.deepEqual(y.shape, outShape);
            assert.deepEqual(Array.from(await y.data()), scatter(data, outShape, idx, value));
          })
        );
      });
    }
    await t.step(`pad keeps integer and bool dtypes on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const xi = T.tensor(new Int32Array([-3, 4]), { device });
          assert.deepEqual(await pad(xi, [[1, 2]], -7).data(), new Int32Array([-7, -3, 4, -7, -7]));
          const xb = T.tensor([true], { device });
          assert.deepEqual(await pad(xb, 1).array(), [false, true, false]);
          assert.deepEqual(await pad(xb, [[0, 1]], 1).array(), [true, true]);
        })
      );
    });
  }
});

Deno.test("slicing ops reject bad arguments before touching a device", async () => {
  await noLeaks(() =>
    T.scope(() => {
      const x = T.zeros([2, 3]);
      const bad = (f: () => unknown, name: string, message: RegExp) =>
        assert.throws(f, { name, message });
      bad(() => slice(x, [0], [1], [0]), "RangeError", /slice: steps\[0\] is 0/);
      bad(() => slice(x, [0, 0, 0]), "RangeError", /slice: 3 starts given for \[2,3\]/);
      bad(() => slice(x, [0], [1, 2, 3]), "RangeError", /slice: 3 ends/);
      bad(() => slice(x, [], [], [1, 1, 1]), "RangeError", /slice: 3 steps/);
      bad(() => slice(x, [0.5]), "TypeError", /slice: starts\[0\] must be an integer/);
      bad(() => slice(x, [0], [NaN]), "TypeError", /slice: ends\[0\]/);
      bad(() => slice(x, [0], [], [1.5]), "TypeError", /slice: steps\[0\]/);
      bad(() => concat([]), "RangeError", /concat: needs at least one tensor/);
      bad(
        () => concat([x, T.zeros([3, 3])], 1),
        "RangeError",
        /concat: tensor 1 has shape \[3,3\] but tensor 0 has shape \[2,3\]/,
      );
      bad(() => concat([x, x, T.zeros([2])]), "RangeError", /concat: tensor 2 has shape \[2\]/);
      bad(
        () => concat([x, T.zeros([2, 3], { dtype: "i32" })]),
        "TypeError",
        /concat: tensor 1 is i32\[2,3\] but tensor 0 is f32\[2,3\]/,
      );
      bad(() => concat([x], 2), "RangeError", /concat: axis 2 is out of range for rank 2/);
      bad(() => concat([T.zeros([])]), "RangeError", /concat: cannot join scalars/);
      bad(
        () => concat([x, [1] as unknown as T.Tensor]),
        "TypeError",
        /concat: xs\[1\] must be a Tensor/,
      );
      bad(() => stack([x, T.zeros([3, 2])]), "RangeError", /stack: tensor 1 has shape \[3,2\]/);
      bad(() => stack([x], -4), "RangeError", /stack: axis -4 is out of range for rank 3/);
      bad(() => stack([]), "RangeError", /stack: needs at least one tensor/);
      bad(
        () => split(x, 2, 1),
        "RangeError",
        /split: 2 equal sections do not divide axis 1 of \[2,3\]/,
      );
      bad(() => split(x, 0), "RangeError", /split: sections must be a positive integer/);
      bad(() => split(x, [1.5]), "TypeError", /split: index 0 must be an integer/);
      bad(() => split(x, 1, 2), "RangeError", /split: axis 2 is out of range/);
      bad(
        () => pad(x, [[1, 1]]),
        "RangeError",
        /pad: widths must give one \[before, after\] pair per axis of \[2,3\]/,
      );
      bad(
        () => pad(x, [[1, 1], [-1, 0]]),
        "RangeError",
        /pad: widths\[1\] must be a pair of non-negative integers/,
      );
      bad(() => pad(x, -1), "RangeError", /pad: widths\[0\]/);
      bad(
        () => pad(T.zeros([2], { dtype: "i32" }), 1, 0.5),
        "RangeError",
        /pad: value 0.5 cannot be stored in a i32 tensor/,
      );
      bad(() => pad(T.zeros([2], { dtype: "bool" }), 1, 2), "RangeError", /pad: value 2/);
    })
  );
});
