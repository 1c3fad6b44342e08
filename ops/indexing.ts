/**
 * Indexing: gathers (`take`, `takeAlongAxis`), their adjoints the scatter-adds, and `oneHot`.
 *
 * Index rule, the same on every device: indices are `i32` or `u32`; a negative `i32` index
 * counts from the end (`-1` is the last); an index still out of `[0, n)` is clamped to the
 * nearest end (`n` reads row `n - 1`, `-n - 5` reads row 0). Values are never checked on the
 * host (that would need a GPU readback), so a bad index silently reads or writes the edge row,
 * as in JAX's clamped gathers. Scatters clamp the same way, which makes each scatter the exact
 * adjoint (transpose) of its gather.
 * @module
 */
import { type DType, dtypeInfo } from "../kernels/dtype.ts";
import { contiguousStrides } from "../kernels/strided.ts";
import type {
  AlongIndexSpec,
  AlongLayout,
  AxisIndexSpec,
  AxisLayout,
  OneHotSpec,
} from "../kernels/specs/indexing.ts";
import { bind1, definePrimitive, launch1 } from "./primitive.ts";
import { fmt, sizeOf, type Tensor } from "./tensor.ts";
import { checkIndices, checkIntAtLeast, checkTensor, normAxis, sameDevice } from "./validate.ts";
import { zeros } from "./creation.ts";

const MAX_RANK = 8;

/** `shape` seen as `[outer, n, inner]` around `axis`. */
export function axisLayout(shape: readonly number[], axis: number): AxisLayout {
  return {
    outer: sizeOf(shape.slice(0, axis)),
    n: shape[axis],
    inner: sizeOf(shape.slice(axis + 1)),
  };
}

function checkNotEmptyAxis(op: string, x: Tensor, axis: number, count: number) {
  if (x.shape[axis] === 0 && count > 0) {
    throw new RangeError(`${op}: cannot index axis ${axis} of ${fmt(x.shape)}: it is empty`);
  }
}

/** Shape of `take(x, indices, axis)`: `x.shape[:axis] + indices.shape + x.shape[axis+1:]`. */
function takeShape(x: readonly number[], indices: readonly number[], axis: number): number[] {
  return [...x.slice(0, axis), ...indices, ...x.slice(axis + 1)];
}

interface AxisParams {
  axis: number;
}

/** The kernel spec of `take` and `scatterAdd`. */
export function axisSpec(x: Tensor, idx: Tensor, axis: number): AxisIndexSpec {
  const layout = axisLayout(x.shape, axis);
  return { layout, count: idx.size, dtype: x.dtype, indexDtype: idx.dtype };
}

/** The kernel spec of `takeAlongAxis` and `scatterAddAlongAxis`. */
function alongSpec(x: Tensor, idx: Tensor, layout: AlongLayout): AlongIndexSpec {
  return { layout, size: x.size, dtype: x.dtype, indexDtype: idx.dtype };
}

const takePrim = definePrimitive<AxisParams>({
  name: "take",
  saves: { inputs: [1], outputs: [] },
  forward: ([x, idx], { axis }) => [launch1("take", [x, idx], axisSpec(x, idx, axis), {
    shape: takeShape(x.shape, idx.shape, axis),
    dtype: x.dtype,
  })],
  vjp: ([g], { inputs: [x, idx], params: { axis } }) => {
    using z = zeros(x.shape, { dtype: x.dtype, device: g.device });
    return [scatterAdd(z, idx, g, axis), null];
  },
});

/**
 * Gathers slices of `x` along `axis` (NumPy `take` with an axis). For `x` of shape
 * `[...pre, n, ...post]` and `indices` of shape `I`, the result has shape `[...pre, ...I,
 * ...post]`. Indices are `i32` or `u32`; negative ones count from the end and out-of-range ones
 * are clamped to `[0, n - 1]` (see the module doc). The gradient scatters back into `x`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { take, tensor } from "@longseq/tensor";
 * const x = tensor([[1, 2], [3, 4], [5, 6]]); // [3, 2]
 * const rows = take(x, tensor(new Int32Array([2, 0, -1]))); // [3, 2]
 * assert.deepEqual(await rows.array(), [[5, 6], [1, 2], [5, 6]]);
 * ```
 */
export function take(x: Tensor, indices: Tensor, axis = 0): Tensor {
  checkTensor("take", "x", x);
  checkIndices("take", indices);
  const a = normAxis("take", axis, x.rank);
  sameDevice("take", [x, indices]);
  checkNotEmptyAxis("take", x, a, indices.size);
  return bind1(takePrim, [x, indices], { axis: a });
}

const scatterPrim = definePrimitive<AxisParams>({
  name: "scatterAdd",
  saves: { inputs: [1], outputs: [] },
  forward: ([x, idx, upd], { axis }) => [
    launch1("scatterAdd", [x, idx, upd], axisSpec(x, idx, axis), x),
  ],
  vjp: ([g], { inputs: [, idx], params: { axis } }) => [g, null, take(g, idx, axis)],
});

function checkScatter(op: string, x: Tensor, indices: Tensor, updates: Tensor, allowBool = false) {
  checkTensor(op, "x", x);
  checkIndices(op, indices);
  checkTensor(op, "updates", updates);
  if (x.dtype === "bool" && !allowBool) {
    throw new TypeError(`${op}: bool x ${fmt(x.shape)} is not supported; cast it first`);
  }
  if (updates.dtype !== x.dtype) {
    throw new TypeError(
      `${op}: updates dtype ${updates.dtype} differs from x dtype ${x.dtype}; cast one`,
    );
  }
}

/**
 * Checks the operands of a scatter along an axis (`scatterAdd`, the combining scatters): as
 * `checkScatter`, then updates of shape `take(x, indices, axis)`, one device, and a non-empty
 * axis where there are indices. Returns the normalised axis.
 */
export function checkAxisScatter(
  op: string,
  x: Tensor,
  indices: Tensor,
  updates: Tensor,
  axis: number,
  allowBool = false,
): number {
  checkScatter(op, x, indices, updates, allowBool);
  const a = normAxis(op, axis, x.rank);
  const want = takeShape(x.shape, indices.shape, a);
  if (fmt(updates.shape) !== fmt(want)) {
    throw new RangeError(
      `${op}: updates shape ${fmt(updates.shape)} must be ${fmt(want)} ` +
        `(x.shape[:axis] + indices.shape + x.shape[axis+1:] for x ${fmt(x.shape)}, ` +
        `indices ${fmt(indices.shape)}, axis ${a})`,
    );
  }
  sameDevice(op, [x, indices, updates]);
  checkNotEmptyAxis(op, x, a, indices.size);
  return a;
}

/**
 * Returns a copy of `x` with `updates` added at `indices` along `axis` (JAX
 * `x.at[idx].add(updates)` on an axis); duplicate indices accumulate. For `x` of shape
 * `[...pre, n, ...post]` and `indices` of shape `I`, `updates` has shape `[...pre, ...I,
 * ...post]` (the shape `take(x, indices, axis)` has). Indices follow the `take` rule
 * (negative from the end, clamped). The result is deterministic on every device: the GPU sums
 * each row's updates in increasing update order. This is the adjoint of {@linkcode take}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scatterAdd, tensor, zeros } from "@longseq/tensor";
 * const out = scatterAdd(zeros([3]), tensor(new Int32Array([0, 2, 0])), tensor([1, 2, 3]));
 * assert.deepEqual(await out.array(), [4, 0, 2]); // repeated indices add up
 * ```
 */
export function scatterAdd(x: Tensor, indices: Tensor, updates: Tensor, axis = 0): Tensor {
  const a = checkAxisScatter("scatterAdd", x, indices, updates, axis);
  return bind1(scatterPrim, [x, indices, updates], { axis: a });
}

/**
 * Result shape and kernel geometry of the along-axis ops for `x` and `indices` (same rank,
 * broadcasting off `axis`); throws a RangeError naming `op` when the shapes do not fit.
 */
export function alongLayout(op: string, x: Tensor, indices: Tensor, axis: number): AlongLayout {
  if (indices.rank !== x.rank) {
    throw new RangeError(
      `${op}: indices ${fmt(indices.shape)} must have the rank of x ${fmt(x.shape)}`,
    );
  }
  const a = normAxis(op, axis, x.rank);
  if (x.rank > MAX_RANK) {
    throw new RangeError(`${op}: rank ${x.rank} exceeds the maximum of ${MAX_RANK}`);
  }
  const shape = x.shape.map((n, d) => {
    const k = indices.shape[d];
    if (d === a || n === 1) return k;
    if (k !== 1 && k !== n) {
      throw new RangeError(
        `${op}: indices ${fmt(indices.shape)} and x ${fmt(x.shape)} cannot be broadcast on ` +
          `axis ${d} (${k} vs ${n}; sizes must match or be 1 except on axis ${a})`,
      );
    }
    return n;
  });
  checkNotEmptyAxis(op, x, a, sizeOf(shape));
  return {
    shape,
    xStrides: contiguousStrides(x.shape),
    iStrides: contiguousStrides(indices.shape),
    axis: a,
    n: x.shape[a],
  };
}

interface AlongParams {
  layout: AlongLayout;
}

const takeAlongPrim = definePrimitive<AlongParams>({
  name: "takeAlongAxis",
  saves: { inputs: [1], outputs: [] },
  forward: (
    [x, idx],
    { layout },
  ) => [launch1("takeAlongAxis", [x, idx], alongSpec(x, idx, layout), {
    shape: layout.shape,
    dtype: x.dtype,
  })],
  vjp: ([g], { inputs: [x, idx], params: { layout } }) => {
    using z = zeros(x.shape, { dtype: x.dtype, device: g.device });
    return [scatterAddAlongAxis(z, idx, g, layout.axis), null];
  },
});

/**
 * Picks elements of `x` along `axis` with per-position indices (NumPy `take_along_axis`):
 * `out[..., k, ...] = x[..., indices[..., k, ...], ...]`. `indices` has the rank of `x`; on
 * the other axes the two broadcast (sizes match or one is 1). The result has `indices`' size on
 * `axis` and the broadcast sizes elsewhere. Indices follow the {@linkcode take} rule.
 * Shapes: `x [..., n, ...]` and `indices [..., k, ...]` (same rank) to `[..., k, ...]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { takeAlongAxis, tensor } from "@longseq/tensor";
 * const x = tensor([[10, 30, 20], [60, 40, 50]]); // [2, 3]
 * const order = tensor(new Int32Array([0, 2, 1, 1, 2, 0]), { shape: [2, 3] });
 * assert.deepEqual(await takeAlongAxis(x, order, 1).array(), [[10, 20, 30], [40, 50, 60]]);
 * ```
 */
export function takeAlongAxis(x: Tensor, indices: Tensor, axis: number = -1): Tensor {
  const op = "takeAlongAxis";
  checkTensor(op, "x", x);
  checkIndices(op, indices);
  const layout = alongLayout(op, x, indices, axis);
  sameDevice(op, [x, indices]);
  return bind1(takeAlongPrim, [x, indices], { layout });
}

const scatterAlongPrim = definePrimitive<AlongParams>({
  name: "scatterAddAlongAxis",
  saves: { inputs: [1], outputs: [] },
  forward: ([x, idx, upd], { layout }) => [
    launch1("scatterAddAlongAxis", [x, idx, upd], alongSpec(x, idx, layout), x),
  ],
  vjp: ([g], { inputs: [, idx], params: { layout } }) => [
    g,
    null,
    takeAlongAxis(g, idx, layout.axis),
  ],
});

/**
 * The adjoint of {@linkcode takeAlongAxis}: returns a copy of `x` where each element of
 * `updates` is added at the position `takeAlongAxis(x, indices, axis)` would have read it
 * from. `updates` has the shape of that gather (where `x` has size 1 on another axis, the
 * updates along it all add into that one slice); duplicates accumulate, deterministically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scatterAddAlongAxis, tensor, zeros } from "@longseq/tensor";
 * const idx = tensor(new Int32Array([1, 1, 0, 2]), { shape: [2, 2] });
 * const out = scatterAddAlongAxis(zeros([2, 3]), idx, tensor([[1, 2], [3, 4]]), 1);
 * assert.deepEqual(await out.array(), [[0, 3, 0], [3, 0, 4]]);
 * ```
 */
export function scatterAddAlongAxis(
  x: Tensor,
  indices: Tensor,
  updates: Tensor,
  axis: number = -1,
): Tensor {
  const op = "scatterAddAlongAxis";
  checkScatter(op, x, indices, updates);
  const layout = alongLayout(op, x, indices, axis);
  if (fmt(updates.shape) !== fmt(layout.shape)) {
    throw new RangeError(
      `${op}: updates shape ${fmt(updates.shape)} must be ${fmt(layout.shape)}, the shape ` +
        `takeAlongAxis gives for x ${fmt(x.shape)} and indices ${fmt(indices.shape)}`,
    );
  }
  sameDevice(op, [x, indices, updates]);
  return bind1(scatterAlongPrim, [x, indices, updates], { layout });
}

const oneHotPrim = definePrimitive<{ depth: number; dtype: DType }>({
  name: "oneHot",
  forward: ([idx], { depth, dtype }) => {
    const spec: OneHotSpec = { count: idx.size, depth, dtype, indexDtype: idx.dtype };
    return [launch1("oneHot", [idx], spec, { shape: [...idx.shape, depth], dtype })];
  },
  vjp: "none",
});

/**
 * One-hot encoding: appends an axis of size `depth` that is 1 at each index and 0 elsewhere.
 * `indices` of shape `I` gives `[...I, depth]`, of `options.dtype` (default `f32`). Indices
 * outside `[0, depth)`, negative ones included, give a row of zeros. No gradient.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { oneHot, tensor } from "@longseq/tensor";
 * const y = oneHot(tensor(new Int32Array([2, 0, 5])), 3); // [3] -> [3, 3]
 * assert.deepEqual(await y.array(), [[0, 0, 1], [1, 0, 0], [0, 0, 0]]); // 5 is out of range
 * ```
 */
export function oneHot(indices: Tensor, depth: number, options: { dtype?: DType } = {}): Tensor {
  checkIndices("oneHot", indices);
  checkIntAtLeast("oneHot", "depth", depth, 0);
  const dtype = options.dtype ?? "f32";
  dtypeInfo(dtype, "oneHot");
  return bind1(oneHotPrim, [indices], { depth, dtype });
}

/** The primitives of this file, for tests of their VJP rules. */
export const INDEXING_PRIMITIVES = {
  take: takePrim,
  scatterAdd: scatterPrim,
  takeAlongAxis: takeAlongPrim,
  scatterAddAlongAxis: scatterAlongPrim,
} as const;
