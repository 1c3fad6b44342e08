/**
 * Chunking combinators: run a position-wise function slice by slice along one axis, in the
 * forward and the backward pass, so only one slice of its wide intermediates exists at a time
 * (docs/algorithms.md#chunked-feed-forward: the Reformer's chunked feed-forward and chunked LM
 * head).
 *
 * Both are one `customVjp` node whose residuals are the arguments alone. The backward pass
 * walks the slices again: for each it slices the input (and the output cotangent), re-runs the
 * function under a fresh `vjp`, pulls the slice's cotangent back and adds the parameter
 * cotangents into a running total, freeing the slice's activations before the next one.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { add } from "../../ops/binary.ts";
import { scope } from "../../ops/scope.ts";
import { concat, slice } from "../../ops/slicing.ts";
import { normAxis } from "../../ops/broadcast.ts";
import { customVjp, vjp } from "../../autodiff/mod.ts";
import { flattenTree, unflattenTree } from "../../autodiff/pytree.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import { childKeys } from "./combinators.ts";
import { checkPositiveInt, showValue } from "../validate.ts";

/** How to cut the axis: into `chunks` slices of equal size (the last may be shorter), or into
 * slices of `chunkSize` positions (the last may be shorter). */
export type ChunkSpec = { chunks: number; chunkSize?: never } | {
  chunkSize: number;
  chunks?: never;
};

/**
 * A position-wise function: `x` is a tensor (or a pytree of tensors, all sliced along the same
 * axis), and each position of the output along that axis depends only on the same position of
 * `x`.
 */
export type ChunkFn<P, X, Y> = (params: P, x: X, opts?: ApplyOptions) => Y;

type AnyFn = ChunkFn<unknown, unknown, unknown>;

/** The `[start, end)` bounds of the slices of an axis of length `n`. */
export function chunkBounds(op: string, spec: ChunkSpec, n: number): [number, number][] {
  const s = spec as { chunks?: unknown; chunkSize?: unknown } | null;
  const hasChunks = s?.chunks !== undefined, hasSize = s?.chunkSize !== undefined;
  if (hasChunks === hasSize) {
    throw new TypeError(`${op}: give exactly one of { chunks } or { chunkSize }`);
  }
  const v = hasChunks ? s!.chunks : s!.chunkSize;
  checkPositiveInt(op, hasChunks ? "chunks" : "chunkSize", v);
  const size = hasChunks ? Math.max(1, Math.ceil(n / v)) : v;
  const out: [number, number][] = [];
  for (let s0 = 0; s0 < n; s0 += size) out.push([s0, Math.min(n, s0 + size)]);
  return out.length ? out : [[0, n]];
}

/** The length along `axis` shared by every tensor leaf of `x` (checked). */
function axisLength(op: string, x: unknown, axis: number): number {
  let n: number | null = null;
  let first = "";
  for (const leaf of flattenTree(x)[0]) {
    if (!(leaf instanceof Tensor)) continue;
    const a = normAxis(op, axis, leaf.rank);
    if (n === null) (n = leaf.shape[a], first = fmt(leaf.shape));
    else if (leaf.shape[a] !== n) {
      throw new RangeError(
        `${op}: every input must have the same length along axis ${axis}, got ${first} and ${
          fmt(leaf.shape)
        }`,
      );
    }
  }
  if (n === null) throw new TypeError(`${op}: x must be a tensor or hold at least one tensor`);
  return n;
}

/** Positions `[s, e)` along `axis` of every tensor leaf (other leaves pass through). */
function sliceTree<T>(x: T, axis: number, s: number, e: number): T {
  const [leaves, def] = flattenTree(x);
  return unflattenTree<T>(
    def,
    leaves.map((t) => {
      if (!(t instanceof Tensor)) return t;
      const a = normAxis("chunked", axis, t.rank);
      const starts: (number | undefined)[] = t.shape.map(() => undefined);
      const ends: (number | undefined)[] = t.shape.map(() => undefined);
      starts[a] = s;
      ends[a] = e;
      return slice(t, starts, ends);
    }),
  );
}

/** Joins the slices' outputs leaf by leaf, along `axis` (`"concat"`) or by adding (`"sum"`). */
function combine(op: string, parts: unknown[], axis: number, how: "concat" | "sum"): unknown {
  const flat = parts.map((p) => flattenTree(p));
  const [leaves0, def] = flat[0];
  return unflattenTree(
    def,
    leaves0.map((l0, j) => {
      const col = flat.map(([ls]) => ls[j]);
      if (!(l0 instanceof Tensor)) return l0;
      const ts = col as Tensor[];
      if (how === "concat") return concat(ts, normAxis(op, axis, l0.rank));
      let acc = add(ts[0], ts[1] ?? 0);
      for (let i = 2; i < ts.length; i++) {
        const next = add(acc, ts[i]);
        acc.dispose();
        acc = next;
      }
      return acc;
    }),
  );
}

function disposeTree(x: unknown): void {
  for (const t of flattenTree(x)[0]) if (t instanceof Tensor) t.dispose();
}

/** Checks that a slice's output keeps the slice's length along `axis` (position-wise). */
function checkPositionwise(op: string, y: unknown, axis: number, len: number): void {
  for (const t of flattenTree(y)[0]) {
    if (!(t instanceof Tensor)) continue;
    const a = axis < 0 ? axis + t.rank : axis;
    if (a < 0 || a >= t.rank || t.shape[a] !== len) {
      throw new RangeError(
        `${op}: f must be position-wise along axis ${axis}: a slice of ${len} positions gave ` +
          `an output of shape ${fmt(t.shape)}`,
      );
    }
  }
}

/** Builds the chunked function for `chunked` (concat) or `chunkedSum` (sum). */
function build(op: string, f: AnyFn, spec: ChunkSpec, axis: number, how: "concat" | "sum") {
  if (typeof f !== "function") throw new TypeError(`${op}: f must be a function or a layer`);
  if (!Number.isInteger(axis)) {
    throw new TypeError(`${op}: axis must be an integer, got ${showValue(axis)}`);
  }
  chunkBounds(op, spec, 1); // validates the spec now rather than at the first call
  const optsAt = (opts: ApplyOptions | undefined, keys: (Tensor | undefined)[], i: number) =>
    opts?.key === undefined || keys.length === 0 ? opts : { ...opts, key: keys[i] };
  // Runs every slice; `onSlice` sees the slice's params, inputs and options and returns its part.
  const forEachSlice = (
    x: unknown,
    opts: ApplyOptions | undefined,
    onSlice: (xs: unknown, o: ApplyOptions | undefined, s: number, e: number) => unknown,
  ) => {
    const bounds = chunkBounds(op, spec, axisLength(op, x, axis));
    // One slice keeps the caller's key, so a single chunk reproduces `f` exactly.
    const keys = bounds.length > 1 ? childKeys(op, opts?.key, bounds.length) : [];
    try {
      return bounds.map(([s, e], i) =>
        scope(() => onSlice(sliceTree(x, axis, s, e), optsAt(opts, keys, i), s, e))
      );
    } finally {
      for (const k of keys) k?.dispose();
    }
  };
  const run = (params: unknown, x: unknown, opts?: ApplyOptions) => {
    const parts = forEachSlice(x, opts, (xs, o, s, e) => {
      const y = f(params, xs, o);
      if (how === "concat") checkPositionwise(op, y, axis, e - s);
      return y;
    });
    try {
      return combine(op, parts, axis, how);
    } finally {
      parts.forEach(disposeTree);
    }
  };
  // Names the custom-gradient node (errors read "customVjp(chunked)").
  Object.defineProperty(run, "name", { value: op });
  type Saved = { params: unknown; x: unknown; opts: ApplyOptions | undefined };
  const wrapped = customVjp(run, {
    fwd: (params, x, opts) => [run(params, x, opts), { params, x, opts } as Saved],
    bwd: (saved: Saved, ct: unknown) => {
      let dParams: unknown = null;
      const dxs = forEachSlice(saved.x, saved.opts, (xs, o, s, e) => {
        const cts = how === "concat" ? sliceTree(ct, axis, s, e) : ct;
        const [, pullback] = vjp((p: unknown, xx: unknown) => f(p, xx, o), saved.params, xs);
        const [dp, dx] = pullback(cts as never) as [unknown, unknown];
        // Adding here, inside the slice's scope, frees the previous total and this slice's
        // parameter cotangents before the next slice runs.
        if (dParams === null) dParams = dp;
        else {
          const sum = addTrees(dParams, dp);
          disposeTree(dParams);
          dParams = sum;
        }
        return [dParams, dx];
      }) as [unknown, unknown][];
      const dx = combineCotangents(op, dxs.map(([, d]) => d), axis);
      // Only the last total survives; earlier ones were freed as they were replaced.
      for (const [, d] of dxs) disposeTree(d);
      return [dParams, dx, null];
    },
  });
  // Always three arguments, so the backward pass's cotangent list has a fixed length.
  return (params: unknown, x: unknown, opts?: ApplyOptions) => wrapped(params, x, opts);
}

/** Adds two cotangent trees leaf by leaf (null stays null). */
function addTrees(a: unknown, b: unknown): unknown {
  const [la, def] = flattenTree(a);
  const lb = flattenTree(b)[0];
  const both = (x: unknown, y: unknown) =>
    x instanceof Tensor && y instanceof Tensor ? add(x, y) : x;
  return unflattenTree(def, la.map((x, i) => both(x, lb[i])));
}

/** Concatenates the slices' input cotangents (null leaves stay null). */
function combineCotangents(op: string, parts: unknown[], axis: number): unknown {
  const flat = parts.map((p) => flattenTree(p)[0]);
  const def = flattenTree(parts[0])[1];
  return unflattenTree(
    def,
    flat[0].map((l0, j) =>
      l0 instanceof Tensor
        ? concat(flat.map((ls) => ls[j] as Tensor), normAxis(op, axis, l0.rank))
        : null
    ),
  );
}

function isLayer(f: unknown): f is Layer<unknown, unknown, unknown> {
  const l = f as Layer | null;
  return typeof l === "object" && l !== null && typeof l.init === "function" &&
    typeof l.apply === "function";
}

/**
 * Applies a position-wise function (or layer) slice by slice along `axis` (default 1, the
 * sequence axis of `[batch, len, ...]`), in the forward and the backward pass: only one slice
 * of its intermediate activations exists at a time, so a feed-forward block's `[b, len, dFF]`
 * hidden activation becomes `[b, len / chunks, dFF]`. The output equals the unchunked
 * function's bit for bit on the CPU backend (slices are disjoint rows; the input cotangent too,
 * while parameter gradients are summed slice by slice, so they agree to rounding). Any length
 * works: the last slice may be shorter.
 *
 * `x` may be a pytree of tensors, all sliced along `axis` (with equal lengths there); `opts`
 * is passed whole. With a training `opts.key` and more than one slice, each slice gets its own
 * key split from it (so dropout masks differ from the unchunked layer's, but are replayed
 * exactly in the backward pass). Given a layer, returns a layer with the same `init`; given a
 * function, returns a function. First-order: differentiating its gradient throws.
 *
 * Shapes: `x: [..., len (at axis), ...]` to `f`'s output, joined along `axis`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, ones, random } from "@longseq/tensor";
 * const inner = nn.feedForward({ dModel: 8, dFF: 64 });
 * const ff = nn.chunked(inner, { chunks: 4 }); // 3 positions at a time
 * const params = ff.init(random.key(0));
 * const y = ff.apply(params, ones([2, 10, 8]));
 * assert.deepEqual(y.shape, [2, 10, 8]);
 * assert.ok(await allClose(y, inner.apply(params, ones([2, 10, 8])), { rtol: 1e-6 }));
 * ```
 */
export function chunked<P, X, Y, O extends ApplyOptions>(
  f: Layer<P, X, Y, O>,
  spec: ChunkSpec,
  axis?: number,
): Layer<P, X, Y, O>;
/** Chunks a position-wise function `f(params, x, opts)`; see the layer overload above. */
export function chunked<P, X, Y>(
  f: ChunkFn<P, X, Y>,
  spec: ChunkSpec,
  axis?: number,
): ChunkFn<P, X, Y>;
export function chunked(f: unknown, spec: ChunkSpec, axis = 1): unknown {
  if (isLayer(f)) {
    const apply = build("chunked", (p, x, o) => f.apply(p, x, o), spec, axis, "concat");
    return { init: (key: Tensor) => f.init(key), apply };
  }
  return build("chunked", f as AnyFn, spec, axis, "concat");
}

/**
 * Like {@linkcode chunked}, for a function whose result is summed over positions: it runs `f`
 * on each slice along `axis` and returns the sum of the slices' results (a tensor or pytree
 * of tensors of any shape). This is how a loss over a long sequence avoids holding every
 * position's wide intermediates (e.g. `[len, vocab]` logits) at once, in both passes.
 *
 * Shapes: `x: [..., len (at axis), ...]` to `f`'s output shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, square, sum, type Tensor } from "@longseq/tensor";
 * const sq = nn.chunkedSum((_p: null, x: Tensor) => sum(square(x)), { chunkSize: 3 });
 * const total = sq(null, ones([2, 10])); // three positions at a time
 * assert.equal(await total.array(), 20);
 * ```
 */
export function chunkedSum<P, X, Y>(
  f: ChunkFn<P, X, Y>,
  spec: ChunkSpec,
  axis = 1,
): ChunkFn<P, X, Y> {
  return build("chunkedSum", f as AnyFn, spec, axis, "sum") as ChunkFn<P, X, Y>;
}
