/**
 * Slicing and joining: `slice` (Python slices per axis, a strided read), `concat`, `stack`,
 * `split` and constant `pad`.
 *
 * Two primitives move data besides `slice`: `concat`, and `embed`, which writes a tensor into a
 * fresh output filled with a constant at a start and step per axis. `pad` is `embed` with unit
 * steps, and the gradient of `slice` is `embed` into zeros, so slice and embed are each other's
 * VJP. Both write through the same "place" kernel: every input is copied once into its region.
 * @module
 */
import { dtypeInfo } from "../kernels/dtype.ts";
import type { PlaceSpec } from "../kernels/specs/slicing.ts";
import { bind1, definePrimitive, launch1 } from "./primitive.ts";
import { fmt, setRowReader, sizeOf, type Tensor } from "./tensor.ts";
import { normAxis } from "./broadcast.ts";
import { runElementwise } from "./elementwise.ts";
import { checkIntAtLeast, checkTensor, sameDevice } from "./validate.ts";
import { expandDims, reshape } from "./shape.ts";

/** Row-major strides, without the zero that broadcasting gives size-1 axes. */
function rowMajor(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) (s[d] = acc, acc *= shape[d]);
  return s;
}

type Piece = PlaceSpec["pieces"][number];

/** Runs the place kernel: `xs[i]` lands where `pieces[i]` says in a fresh `shape`. */
function place(
  op: string,
  xs: readonly Tensor[],
  shape: readonly number[],
  fill: number | undefined,
  pieces: readonly Piece[],
): Tensor {
  const dtype = xs[0].dtype;
  const spec: PlaceSpec = { dtype, size: sizeOf(shape), fill, pieces };
  return launch1("place", xs, spec, { shape, dtype }, undefined, op);
}

/** A normalised slice: output element `i` on axis `d` reads input `start[d] + i * step[d]`. */
interface Region {
  readonly starts: readonly number[];
  readonly steps: readonly number[];
  /** The region's shape (the slice's output shape, the embedded tensor's shape). */
  readonly shape: readonly number[];
}

const isIdentity = (r: Region, shape: readonly number[]) =>
  r.shape.every((n, d) => n === shape[d] && (n <= 1 || (r.starts[d] === 0 && r.steps[d] === 1)));

function offsetOf(r: Region, strides: readonly number[]): number {
  if (r.shape.includes(0)) return 0;
  return r.starts.reduce((acc, s, d) => acc + s * strides[d], 0);
}

const slicePrim = definePrimitive<Region>({
  name: "slice",
  saves: { inputs: [], outputs: [] },
  forward: ([x], r) => {
    if (isIdentity(r, x.shape)) return [x.view(x.shape)];
    const c = rowMajor(x.shape);
    const view = { tensor: x, strides: c.map((s, d) => s * r.steps[d]), offset: offsetOf(r, c) };
    return [runElementwise("copy", [view], r.shape, x.dtype)];
  },
  vjp: ([g], { inputs: [x], params }) => [embed(g, x.shape, params, 0)],
});

interface EmbedParams {
  readonly region: Region;
  readonly shape: readonly number[];
  readonly value: number;
}

const embedPrim = definePrimitive<EmbedParams>({
  name: "embed",
  saves: { inputs: [], outputs: [] },
  forward: ([x], { region, shape, value }) => {
    if (isIdentity(region, shape)) return [x.view(x.shape)];
    const c = rowMajor(shape);
    const piece: Piece = {
      shape: x.shape,
      strides: c.map((s, d) => s * region.steps[d]),
      offset: offsetOf(region, c),
    };
    return [place("embed", [x], shape, value, [piece])];
  },
  vjp: ([g], { params }) => [bind1(slicePrim, [g], params.region)],
});

/** Writes `x` (of shape `region.shape`) into a fresh `shape` filled with `value`. */
function embed(x: Tensor, shape: readonly number[], region: Region, value: number): Tensor {
  return bind1(embedPrim, [x], { region, shape: [...shape], value });
}

function checkEntries(op: string, what: string, list: unknown, x: Tensor, optional: boolean) {
  if (!Array.isArray(list)) {
    throw new TypeError(`${op}: ${what} must be an array, got ${typeof list}`);
  }
  if (list.length > x.rank) {
    throw new RangeError(
      `${op}: ${list.length} ${what} given for ${fmt(x.shape)}, which has only ${x.rank} axes`,
    );
  }
  list.forEach((v, d) => {
    if (!(Number.isInteger(v) || (optional && v === undefined))) {
      throw new TypeError(`${op}: ${what}[${d}] must be an integer, got ${String(v)}`);
    }
  });
}

/** Python's `slice(start, stop, step).indices(n)`, as a start and a length. */
function pySlice(n: number, start: number | undefined, stop: number | undefined, step: number) {
  const clampTo = (v: number, lo: number, hi: number) =>
    v < 0 ? Math.max(v + n, lo) : Math.min(v, hi);
  if (step > 0) {
    const a = start === undefined ? 0 : clampTo(start, 0, n);
    const b = stop === undefined ? n : clampTo(stop, 0, n);
    return { start: a, len: Math.max(0, Math.ceil((b - a) / step)) };
  }
  const a = start === undefined ? n - 1 : clampTo(start, -1, n - 1);
  const b = stop === undefined ? -1 : clampTo(stop, -1, n - 1);
  return { start: a, len: Math.max(0, Math.ceil((a - b) / -step)) };
}

/**
 * Slices every axis like Python's `x[start:end:step]`: `starts[d]`, `ends[d]` and `steps[d]`
 * apply to axis `d`; negative indices count from the end, out-of-range ones are clamped, steps
 * may be negative, and axes past the given entries are kept whole. An `undefined` start or end
 * means "from the first" or "to the last" element in the step's direction, so
 * `slice(x, [undefined], [undefined], [-1])` reverses axis 0 like Python's `x[::-1]`.
 * The result is a fresh tensor read through strides (one copy, no intermediate). An
 * all-covering slice returns a view of `x` without copying.
 *
 * For `x` of shape `[n0, n1, ...]`, the result has `len(range(n_d)[start:end:step])` on each
 * axis; it may be empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arange, reshape, slice } from "@longseq/tensor";
 * const x = reshape(arange(12), [3, 4]); // [3, 4]
 * assert.deepEqual(await slice(x, [1], [undefined]).array(), [[4, 5, 6, 7], [8, 9, 10, 11]]);
 * const y = slice(x, [-1, 0], [undefined, undefined], [-1, 2]); // rows reversed, every 2nd column
 * assert.deepEqual(await y.array(), [[8, 10], [4, 6], [0, 2]]);
 * ```
 */
export function slice(
  x: Tensor,
  starts: readonly (number | undefined)[],
  ends?: readonly (number | undefined)[],
  steps?: readonly number[],
): Tensor {
  checkTensor("slice", "x", x);
  checkEntries("slice", "starts", starts, x, true);
  checkEntries("slice", "ends", ends ?? [], x, true);
  checkEntries("slice", "steps", steps ?? [], x, false);
  const zero = (steps ?? []).indexOf(0);
  if (zero >= 0) throw new RangeError(`slice: steps[${zero}] is 0; a step must be non-zero`);
  const region = { starts: [] as number[], steps: [] as number[], shape: [] as number[] };
  x.shape.forEach((n, d) => {
    const step = steps?.[d] ?? 1;
    const { start, len } = pySlice(n, starts[d], ends?.[d], step);
    region.starts.push(len === 0 ? 0 : start);
    region.steps.push(step);
    region.shape.push(len);
  });
  return bind1(slicePrim, [x], region);
}

/** Slices `[start, start + len)` of one axis (indices already in range). */
function sliceAxis(x: Tensor, axis: number, start: number, len: number): Tensor {
  const starts = x.shape.map((_, d) => (d === axis ? start : 0));
  const shape = x.shape.map((n, d) => (d === axis ? len : n));
  return bind1(slicePrim, [x], { starts, steps: x.shape.map(() => 1), shape });
}

const concatPrim = definePrimitive<{ axis: number }>({
  name: "concat",
  saves: { inputs: [], outputs: [] },
  forward: (xs, { axis }) => {
    if (xs.length === 1) return [xs[0].view(xs[0].shape)];
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((acc, x) => acc + x.shape[axis], 0);
    const c = rowMajor(shape);
    let at = 0;
    const pieces = xs.map((x): Piece => {
      const offset = at * c[axis];
      at += x.shape[axis];
      return { shape: x.shape, strides: c, offset };
    });
    return [place("concat", xs, shape, undefined, pieces)];
  },
  vjp: ([g], { inputs, params: { axis } }) => {
    let at = 0;
    return inputs.map((x) => {
      const part = sliceAxis(g, axis, at, x.shape[axis]);
      at += x.shape[axis];
      return part;
    });
  },
});

function checkList(op: string, xs: unknown): asserts xs is readonly Tensor[] {
  if (!Array.isArray(xs)) throw new TypeError(`${op}: expected an array of tensors`);
  if (xs.length === 0) throw new RangeError(`${op}: needs at least one tensor, got none`);
  xs.forEach((x, i) => checkTensor(op, `xs[${i}]`, x));
}

function checkSameDtype(op: string, xs: readonly Tensor[]) {
  const bad = xs.findIndex((x) => x.dtype !== xs[0].dtype);
  if (bad >= 0) {
    throw new TypeError(
      `${op}: tensor ${bad} is ${xs[bad].dtype}${fmt(xs[bad].shape)} but tensor 0 is ${
        xs[0].dtype
      }${fmt(xs[0].shape)}; cast them to one dtype`,
    );
  }
  sameDevice(op, xs);
}

/**
 * Joins tensors along an existing axis. All must share dtype, device and rank, and have equal
 * sizes on every other axis: `[..., a_i, ...]` joined gives `[..., sum(a_i), ...]`. Each input is
 * copied once into its place in the result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concat, tensor } from "@longseq/tensor";
 * const a = tensor([[1, 2]]), b = tensor([[3, 4], [5, 6]]); // [1, 2] and [2, 2]
 * assert.deepEqual(await concat([a, b]).array(), [[1, 2], [3, 4], [5, 6]]); // [3, 2]
 * assert.deepEqual(concat([a, a], -1).shape, [1, 4]);
 * ```
 */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  checkList("concat", xs);
  const rank = xs[0].rank;
  if (rank === 0) {
    throw new RangeError("concat: cannot join scalars along an axis; use stack()");
  }
  const a = normAxis("concat", axis, rank);
  checkSameDtype("concat", xs);
  xs.forEach((x, i) => {
    if (x.rank !== rank || x.shape.some((n, d) => d !== a && n !== xs[0].shape[d])) {
      throw new RangeError(
        `concat: tensor ${i} has shape ${fmt(x.shape)} but tensor 0 has shape ${
          fmt(xs[0].shape)
        }; ranks and sizes off axis ${a} must match`,
      );
    }
  });
  return bind1(concatPrim, xs, { axis: a });
}

/**
 * Joins tensors of one shape along a new axis: `k` tensors of shape `S` give `S` with `k`
 * inserted at `axis` (which may be `-1`, meaning after the last axis).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stack, tensor } from "@longseq/tensor";
 * const a = tensor([1, 2]), b = tensor([3, 4]); // two [2] -> [2, 2]
 * assert.deepEqual(await stack([a, b]).array(), [[1, 2], [3, 4]]);
 * assert.deepEqual(await stack([a, b], 1).array(), [[1, 3], [2, 4]]);
 * ```
 */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  checkList("stack", xs);
  const a = normAxis("stack", axis, xs[0].rank + 1);
  checkSameDtype("stack", xs);
  xs.forEach((x, i) => {
    if (fmt(x.shape) !== fmt(xs[0].shape)) {
      throw new RangeError(
        `stack: tensor ${i} has shape ${fmt(x.shape)} but tensor 0 has shape ${
          fmt(xs[0].shape)
        }; stacked tensors must have one shape`,
      );
    }
  });
  const expanded = xs.map((x) => expandDims(x, a));
  try {
    return concat(expanded, a);
  } finally {
    expanded.forEach((t) => t.dispose());
  }
}

/**
 * Splits a tensor along `axis`. A number `k` gives `k` equal parts (it must divide the axis);
 * an array of indices `[i0, i1, ...]` gives `x[:i0], x[i0:i1], ..., x[ik:]` along the axis,
 * with Python slice rules (negative indices count from the end; parts may be empty), as NumPy's
 * `array_split`. Each part is a `slice`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arange, split } from "@longseq/tensor";
 * const parts = await Promise.all(split(arange(6), 3).map((t) => t.array()));
 * assert.deepEqual(parts, [[0, 1], [2, 3], [4, 5]]);
 * assert.deepEqual(split(arange(6), [1, -2]).map((t) => t.shape), [[1], [3], [2]]);
 * ```
 */
export function split(x: Tensor, sections: number | readonly number[], axis = 0): Tensor[] {
  checkTensor("split", "x", x);
  const a = normAxis("split", axis, x.rank);
  const n = x.shape[a];
  let bounds: number[];
  if (typeof sections === "number") {
    checkIntAtLeast("split", "sections", sections, 1);
    if (n % sections !== 0) {
      throw new RangeError(
        `split: ${sections} equal sections do not divide axis ${a} of ${fmt(x.shape)} (size ${n})`,
      );
    }
    bounds = Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * n) / sections);
  } else {
    if (!Array.isArray(sections)) {
      throw new TypeError(`split: sections must be a number or an array of indices`);
    }
    const bad = sections.findIndex((v) => !Number.isInteger(v));
    if (bad >= 0) {
      throw new TypeError(`split: index ${bad} must be an integer, got ${String(sections[bad])}`);
    }
    bounds = [...sections];
  }
  const at = (v: number | undefined) => x.shape.map((_, d) => (d === a ? v : undefined));
  const parts: Tensor[] = [];
  try {
    for (let i = 0; i <= bounds.length; i++) {
      const starts = at(i === 0 ? 0 : bounds[i - 1]).map((v) => v ?? 0);
      parts.push(slice(x, starts, at(bounds[i])));
    }
  } catch (e) {
    parts.forEach((p) => p.dispose());
    throw e;
  }
  return parts;
}

/**
 * Pads with a constant: `widths[d] = [before, after]` adds that many elements on each side of
 * axis `d` (one pair per axis; a single number pads every side of every axis). `[n0, n1, ...]`
 * becomes `[b0 + n0 + a0, b1 + n1 + a1, ...]`. `value` must be representable in `x`'s dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pad, tensor } from "@longseq/tensor";
 * const y = pad(tensor([[1, 2]]), [[1, 0], [0, 2]]); // [1, 2] -> [2, 4]
 * assert.deepEqual(await y.array(), [[0, 0, 0, 0], [1, 2, 0, 0]]);
 * assert.deepEqual(await pad(tensor([1, 2]), 1, -1).array(), [-1, 1, 2, -1]);
 * ```
 */
export function pad(
  x: Tensor,
  widths: readonly (readonly [number, number])[] | number,
  value = 0,
): Tensor {
  checkTensor("pad", "x", x);
  const w = typeof widths === "number"
    ? x.shape.map((): [number, number] => [widths, widths])
    : widths;
  if (!Array.isArray(w) || w.length !== x.rank) {
    throw new RangeError(
      `pad: widths must give one [before, after] pair per axis of ${fmt(x.shape)} (${x.rank}), ` +
        `got ${JSON.stringify(widths)}`,
    );
  }
  w.forEach((p, d) => {
    if (!Array.isArray(p) || p.length !== 2 || !p.every((v) => Number.isInteger(v) && v >= 0)) {
      throw new RangeError(
        `pad: widths[${d}] must be a pair of non-negative integers, got ${JSON.stringify(p)}`,
      );
    }
  });
  if (typeof value !== "number" && typeof value !== "boolean") {
    throw new TypeError(`pad: value must be a number, got ${typeof value}`);
  }
  const info = dtypeInfo(x.dtype, "pad");
  const v = Number(value);
  if (!info.isFloat && (x.dtype === "bool" ? v !== 0 && v !== 1 : info.coerce(v) !== v)) {
    throw new RangeError(`pad: value ${value} cannot be stored in a ${x.dtype} tensor`);
  }
  const shape = x.shape.map((n, d) => w[d][0] + n + w[d][1]);
  const region = { starts: w.map((p) => p[0]), steps: x.shape.map(() => 1), shape: x.shape };
  return embed(x, shape, region, v);
}

// Tensor iteration: row `i` is the slice `[i:i+1]` without its first axis.
setRowReader((x, i) => {
  using row = slice(x, [i], [i + 1]);
  return reshape(row, x.shape.slice(1));
});
