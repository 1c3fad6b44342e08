/**
 * Sorting along the last axis (`sort`, `argsort`, `sortWithIndices`) and moving data by a
 * permutation (`gatherByIndex`, `scatterByIndex`), which undo each other and are each other's
 * VJP. LSH attention sorts hash buckets with these and undoes the sort afterwards.
 *
 * Order: every sort is stable in both directions (equal keys keep their input order; a
 * descending sort is not the reverse of an ascending one when there are ties). `-0` and `+0`
 * compare equal. NaN is treated as larger than every number (NumPy's rule): it sorts last in
 * ascending order and first in descending order.
 * @module
 */
import { cast } from "./binary.ts";
import { bind, bind1, definePrimitive, launch, launch1, type Primitive } from "./primitive.ts";
import { fmt, type Tensor } from "./tensor.ts";
import { sameDevice } from "./validate.ts";
import type { PermLayout, PermSpec, SortSpec } from "../kernels/specs/sort.ts";

/** Options of the sort functions. */
export interface SortOptions {
  /** Largest first (default false). Ties still keep their input order. */
  descending?: boolean;
}

/** Static parameters of the `sort` and `argsort` primitives. */
export interface SortParams {
  /** Largest first. */
  descending: boolean;
  /** Whether the sorted values are produced (argsort skips them). */
  withValues: boolean;
}

function runSort(x: Tensor, p: SortParams): Tensor[] {
  const n = x.shape[x.rank - 1];
  const rows = n === 0 ? 0 : x.size / n;
  const spec: SortSpec = { dtype: x.dtype, rows, n, ...p };
  const indices = { shape: x.shape, dtype: "i32" } as const;
  return launch("sort", [x], spec, p.withValues ? [x, indices] : [indices]);
}

function checkSortable(op: string, x: Tensor, options: SortOptions): boolean {
  if (x.rank === 0) {
    throw new RangeError(
      `${op}: expected a tensor with at least one axis, got a scalar ${fmt(x.shape)}`,
    );
  }
  if (x.dtype === "bool") {
    throw new TypeError(`${op}: bool input ${x.toString()} is not supported; cast it first`);
  }
  const { descending = false } = options;
  if (typeof descending !== "boolean") {
    throw new TypeError(
      `${op}: options.descending must be a boolean, got ${JSON.stringify(descending)}`,
    );
  }
  return descending;
}

const sortPrim = definePrimitive<SortParams>({
  name: "sort",
  saves: { inputs: [], outputs: [1] },
  forward: ([x], p) => runSort(x, p),
  // The values are x read through the permutation, so the cotangent goes back through it.
  vjp: ([g], c) => [g ? scatterByIndex(g, c.outputs[1]) : null],
});

const argsortPrim = definePrimitive<SortParams>({
  name: "argsort",
  forward: ([x], p) => runSort(x, p),
  vjp: "none",
});

/**
 * Sorts along the last axis, each row independently, and returns the sorted values and the
 * i32 positions they came from, computed in one pass: `values[..., j] = x[..., indices[..., j]]`.
 * Stable in both directions; NaN counts as the largest value; -0 equals +0 (see the module
 * notes). Differentiable in `x` through `values` (the cotangent is scattered back through
 * `indices`).
 * Shapes: `x [..., n]` to values `[..., n]` (x's dtype) and indices `[..., n]` (i32).
 *
 * @param x `[..., n]` of f32, i32 or u32.
 * @returns `[values, indices]`, both `[..., n]`; `values` has x's dtype, `indices` is i32.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sortWithIndices, tensor } from "@longseq/tensor";
 * const [v, i] = sortWithIndices(tensor([[3, 1, 2], [0, 5, 0]]), { descending: true });
 * assert.deepEqual(await v.array(), [[3, 2, 1], [5, 0, 0]]);
 * assert.deepEqual(await i.array(), [[0, 2, 1], [1, 0, 2]]); // stable: ties keep their order
 * ```
 */
export function sortWithIndices(x: Tensor, options: SortOptions = {}): [Tensor, Tensor] {
  const descending = checkSortable("sortWithIndices", x, options);
  return sortBound(x, descending);
}

/**
 * The sort primitive on `x`; f16 keys are sorted as their exact f32 widening (every backend
 * then sorts them with its f32 kernel) and the values rounded back, which is exact.
 */
function sortBound(x: Tensor, descending: boolean): [Tensor, Tensor] {
  if (x.dtype !== "f16") {
    const [values, indices] = bind(sortPrim, [x], { descending, withValues: true });
    return [values, indices];
  }
  using wide = cast(x, "f32");
  const [values, indices] = bind(sortPrim, [wide], { descending, withValues: true });
  using v = values;
  return [cast(v, "f16"), indices];
}

/**
 * Sorts along the last axis, each row independently (stable; NaN last in ascending order and
 * first in descending order; -0 equals +0). Differentiable.
 *
 * @param x `[..., n]` of f32, i32 or u32.
 * @returns `[..., n]` of x's dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sort, tensor } from "@longseq/tensor";
 * assert.deepEqual(await sort(tensor([2, NaN, -1, 0])).array(), [-1, 0, 2, NaN]);
 * ```
 */
export function sort(x: Tensor, options: SortOptions = {}): Tensor {
  const descending = checkSortable("sort", x, options);
  const [values, indices] = sortBound(x, descending);
  indices.dispose();
  return values;
}

/**
 * The i32 positions that sort each row along the last axis: `x[..., argsort(x)[..., j]]` is
 * the j-th smallest (or largest, with `descending`). Stable: ties keep their input order, in
 * both directions. Not differentiable.
 * Shapes: `x [..., n]` to i32 `[..., n]`.
 *
 * @param x `[..., n]` of f32, i32 or u32.
 * @returns `[..., n]` of i32, each row a permutation of `0..n-1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argsort, tensor } from "@longseq/tensor";
 * assert.deepEqual(await argsort(tensor([1, 0, 1, 0])).array(), [1, 3, 0, 2]);
 * assert.deepEqual(await argsort(tensor([1, 0, 1, 0]), { descending: true }).array(), [0, 2, 1, 3]);
 * ```
 */
export function argsort(x: Tensor, options: SortOptions = {}): Tensor {
  const descending = checkSortable("argsort", x, options);
  if (x.dtype !== "f16") return bind1(argsortPrim, [x], { descending, withValues: false });
  using wide = cast(x, "f32"); // exact, so the order is f16's
  return bind1(argsortPrim, [wide], { descending, withValues: false });
}

function permLayout(op: string, x: Tensor, idx: Tensor): PermLayout {
  if (idx.dtype !== "i32") {
    throw new TypeError(`${op}: index must be i32 (as argsort returns), got ${idx.toString()}`);
  }
  const k = idx.rank;
  if (k === 0 || x.rank < k || idx.shape.some((d, i) => d !== x.shape[i])) {
    throw new RangeError(
      `${op}: index shape ${fmt(idx.shape)} must equal the leading dimensions of ` +
        `${fmt(x.shape)} (at least one axis)`,
    );
  }
  sameDevice(op, [x, idx]);
  const n = idx.shape[k - 1];
  const rows = idx.size === 0 ? 0 : idx.size / n;
  const inner = x.shape.slice(k).reduce((a, b) => a * b, 1);
  return { rows, n, inner };
}

function runPerm(op: "gather" | "scatter", x: Tensor, idx: Tensor): Tensor {
  const kernel = op === "gather" ? "gatherByIndex" : "scatterByIndex";
  const spec: PermSpec = { layout: permLayout(kernel, x, idx), dtype: x.dtype };
  return launch1(kernel, [x, idx], spec, x);
}

const gatherPrim = definePrimitive<undefined>({
  name: "gatherByIndex",
  saves: { inputs: [1], outputs: [] },
  forward: ([x, idx]) => [runPerm("gather", x, idx)],
  vjp: ([g], c) => [scatterByIndex(g, c.inputs[1]), null],
});

const scatterPrim = definePrimitive<undefined>({
  name: "scatterByIndex",
  saves: { inputs: [1], outputs: [] },
  forward: ([x, idx]) => [runPerm("scatter", x, idx)],
  vjp: ([g], c) => [gatherByIndex(g, c.inputs[1]), null],
});

/**
 * Reads `x` through a per-row permutation along axis `idx.rank - 1`:
 * `out[...b, j, ...t] = x[...b, idx[...b, j], ...t]`. With `idx = argsort(keys)` this applies
 * the sort to `x` (whole vectors move when `x` has trailing axes, e.g. `[batch, len, d]` rows
 * gathered by `[batch, len]` indices). Undone by {@linkcode scatterByIndex}, which is also its
 * VJP. An index outside `[0, n)` reads 0.
 *
 * @param x `[...b, n, ...t]` of any dtype.
 * @param idx `[...b, n]` i32, each row a permutation of `0..n-1`.
 * @returns `[...b, n, ...t]` of x's dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argsort, gatherByIndex, tensor } from "@longseq/tensor";
 * const idx = argsort(tensor([[2, 0, 1]])); // [1, 3]: [[1, 2, 0]]
 * const rows = tensor([[[20, 21], [0, 1], [10, 11]]]); // [1, 3, 2]
 * assert.deepEqual(await gatherByIndex(rows, idx).array(), [[[0, 1], [10, 11], [20, 21]]]);
 * ```
 */
export function gatherByIndex(x: Tensor, idx: Tensor): Tensor {
  permLayout("gatherByIndex", x, idx);
  return bind1(gatherPrim, [x, idx], undefined);
}

/**
 * Writes `g` through a per-row permutation along axis `idx.rank - 1`, undoing
 * {@linkcode gatherByIndex}: `out[...b, idx[...b, j], ...t] = g[...b, j, ...t]`, so
 * `scatterByIndex(gatherByIndex(x, idx), idx)` equals `x`. Use it to put sorted rows back in
 * their original order. Its VJP is `gatherByIndex`. With an `idx` row that is not a
 * permutation, positions no index hits are 0, indices outside `[0, n)` are skipped, and which
 * of two writes to one position wins is unspecified on WebGPU.
 *
 * @param g `[...b, n, ...t]` of any dtype.
 * @param idx `[...b, n]` i32, each row a permutation of `0..n-1`.
 * @returns `[...b, n, ...t]` of g's dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scatterByIndex, sortWithIndices, tensor } from "@longseq/tensor";
 * const [sorted, idx] = sortWithIndices(tensor([3, 1, 2]));
 * assert.deepEqual(await scatterByIndex(sorted, idx).array(), [3, 1, 2]); // undoes the sort
 * ```
 */
export function scatterByIndex(g: Tensor, idx: Tensor): Tensor {
  permLayout("scatterByIndex", g, idx);
  return bind1(scatterPrim, [g, idx], undefined);
}

/**
 * The primitives behind this module, for the autodiff walker and for tests of their VJP rules:
 * `sort` (outputs `[values, indices]`, params `{descending, withValues}`), `argsort` (no
 * gradient, so its `vjp` is `"none"`), `gatherByIndex` and `scatterByIndex` (inputs `[x, idx]`).
 * Not part of the public API (`mod.ts` does not export it).
 */
export const sortPrimitives: {
  readonly sort: Primitive<SortParams>;
  readonly argsort: Primitive<SortParams>;
  readonly gatherByIndex: Primitive<undefined>;
  readonly scatterByIndex: Primitive<undefined>;
} = Object.freeze({
  sort: sortPrim,
  argsort: argsortPrim,
  gatherByIndex: gatherPrim,
  scatterByIndex: scatterPrim,
});
