/**
 * WebGPU kernels of the indexing family: gathers, deterministic scatter-adds and `oneHot`.
 *
 * Gathers run one thread per output element (four when rows are a multiple of 4 wide, read as
 * `vec4`). Indices follow the CPU rule: negative i32 counts from the end, then clamp.
 *
 * Scatter-add, without float atomics and deterministically: each update gets a target row (its
 * clamped index; for the along-axis form, its flat target element). The update positions are
 * stably sorted by target (`sortByKey` in `scan.ts`, a radix sort over only the bits the
 * targets need), which gives a CSR layout: target `j`
 * owns sorted positions `starts[j] .. starts[j + 1]` (found by binary search). Then one thread
 * per output element adds `x` and its updates in increasing update position. The result is
 * bitwise reproducible and the same summation order as the CPU reference (which sums in f64).
 * Work is `O(m log n)` for the sort plus one pass over the output; a target with many
 * duplicates is summed by one thread per output element, so a heavily repeated index is
 * sequential in its number of repeats.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import {
  FLAT_ARGS,
  FLAT_INDEX,
  type GpuDevice,
  type GpuStorage,
  grid,
  ro,
  rw,
  WG,
} from "./device.ts";
import { sortByKey } from "./scan.ts";
import { TO_F16 } from "./elementwise_ops.ts";
import type { AlongLayout, AxisLayout } from "../specs/indexing.ts";
import type { KernelTable } from "../backend.ts";
import type { AlongIndexSpec, AxisIndexSpec, OneHotSpec } from "../specs/indexing.ts";
import { guarded, rowPieces } from "./windows.ts";

const MAX_RANK = 8;

/** WGSL `nidx(v, n) -> u32`: the index rule for i32 or u32 indices (`n >= 1`). */
function nidx(indexDtype: DType): string {
  return indexDtype === "i32"
    ? `fn nidx(v: i32, n: u32) -> u32 {
  var j = v;
  if (j < 0) { j += i32(n); }
  return u32(clamp(j, 0, i32(n) - 1));
}`
    : "fn nidx(v: u32, n: u32) -> u32 { return min(v, n - 1u); }";
}

const uni = (b: number) => `@group(0) @binding(${b}) var<uniform> p: P;`;

/** Opens `main`, one thread per element `i < p.total`: lane `b` of row `t` (`p.w` wide). */
const ROW_MAIN = `@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.total) { return; }
  let b = i % p.w;
  let t = i / p.w;`;

/** Element type and row width in elements: `vec4` when rows allow it. */
function lanes(dtype: DType, inner: number): { e: string; w: number } {
  const t = dtypeInfo(dtype).wgsl;
  return inner % 4 === 0 ? { e: `vec4<${t}>`, w: inner / 4 } : { e: t, w: inner };
}

/** `out[a, k, b] = x[a, idx[k], b]` over `x = [outer, n, inner]` and `m` indices. */
export function takeGpu(
  device: GpuDevice,
  x: GpuStorage,
  idx: GpuStorage,
  indexDtype: DType,
  { outer, n, inner }: AxisLayout,
  m: number,
  dtype: DType,
): GpuStorage {
  const out = device.alloc(dtype, outer * m * inner);
  if (outer * m * inner === 0) return out;
  const { e, w } = lanes(dtype, inner);
  const code = `struct P { total: u32, m: u32, w: u32, n: u32 }
${ro(0, "x", e)}
${ro(1, "idx", dtypeInfo(indexDtype).wgsl)}
${rw(2, "out", e)}
${uni(3)}
${nidx(indexDtype)}
${ROW_MAIN}
  out[i] = x[((t / p.m) * p.n + nidx(idx[t % p.m], p.n)) * p.w + b];
}`;
  // Past one binding, split the indices (one outer block) or the outer blocks.
  const eb = device.elementBytes(dtype), ib = device.elementBytes(indexDtype);
  const pieces = guarded(device, out, () =>
    outer === 1
      ? rowPieces(device, "take", [m, inner], m, [
        { storage: x, eb, perRow: 0 },
        { storage: idx, eb: ib, perRow: 1 },
        { storage: out, eb, perRow: inner },
      ]).map((p) => ({ ...p, outer: 1, m: p.count }))
      : rowPieces(device, "take", [outer, m, inner], outer, [
        { storage: x, eb, perRow: n * inner },
        { storage: idx, eb: ib, perRow: 0 },
        { storage: out, eb, perRow: m * inner },
      ]).map((p) => ({ ...p, outer: p.count, m })));
  for (const piece of pieces) {
    const total = piece.outer * piece.m * w;
    const params = new Uint32Array([total, piece.m, w, n]);
    device.run({ code }, piece.binds, grid(total), params);
  }
  return out;
}

/** Uniforms of the along-axis kernels: shape, strides of `x` and of the indices, axis. */
function alongParams(g: AlongLayout, total: number): Uint32Array {
  const p = new Uint32Array(4 + 3 * MAX_RANK);
  p.set([total, g.shape.length, g.axis, g.n]);
  p.set(g.shape, 4);
  p.set(g.xStrides, 4 + MAX_RANK);
  p.set(g.iStrides, 4 + 2 * MAX_RANK);
  return p;
}

/** WGSL `locate(u) -> u32`: the element of `x` that result element `u` reads. */
function alongHead(indexDtype: DType, idxBinding: number, uniformBinding: number): string {
  return `struct P { total: u32, rank: u32, axis: u32, n: u32,
  shape: array<vec4<u32>, 2>, xs: array<vec4<u32>, 2>, is: array<vec4<u32>, 2> }
${ro(idxBinding, "idx", dtypeInfo(indexDtype).wgsl)}
${uni(uniformBinding)}
${nidx(indexDtype)}
fn locate(u: u32) -> u32 {
  var rem = u;
  var xo = 0u;
  var io = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let c = rem % p.shape[q][r];
    rem = rem / p.shape[q][r];
    io += c * p.is[q][r];
    if (u32(d) != p.axis) { xo += c * p.xs[q][r]; }
  }
  return xo + nidx(idx[io], p.n) * p.xs[p.axis / 4u][p.axis % 4u];
}`;
}

/** NumPy `take_along_axis` over the geometry `g` (see {@linkcode AlongLayout}). */
export function takeAlongGpu(
  device: GpuDevice,
  x: GpuStorage,
  idx: GpuStorage,
  indexDtype: DType,
  g: AlongLayout,
  dtype: DType,
): GpuStorage {
  const total = g.shape.reduce((a, b) => a * b, 1);
  const out = device.alloc(dtype, total);
  if (total === 0) return out;
  const t = dtypeInfo(dtype).wgsl;
  const code = `${alongHead(indexDtype, 1, 3)}
${ro(0, "x", t)}
${rw(2, "out", t)}
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.total) { return; }
  out[i] = x[locate(i)];
}`;
  device.run({ code }, [x, idx, out], grid(total), alongParams(g, total));
  return out;
}

/** Target keys (`locate(u)`) and positions `u` of `total` updates: the input of the sort. */
function targets(
  device: GpuDevice,
  idx: GpuStorage,
  indexDtype: DType,
  g: AlongLayout,
  total: number,
): [GpuStorage, GpuStorage] {
  const keys = device.alloc("u32", total), vals = device.alloc("u32", total);
  const code = `${alongHead(indexDtype, 0, 3)}
${rw(1, "keys", "u32")}
${rw(2, "vals", "u32")}
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.total) { return; }
  keys[i] = locate(i);
  vals[i] = i;
}`;
  device.run({ code }, [idx, keys, vals], grid(total), alongParams(g, total));
  return [keys, vals];
}

/** The geometry under which update `k` of an axis scatter targets row `nidx(idx[k], n)`. */
function axisTargets(m: number, n: number): AlongLayout {
  return { shape: [m], xStrides: [1], iStrides: [1], axis: 0, n };
}

/**
 * The `m` update positions of a scatter stably sorted by their targets under `g` (each below
 * `n`): the sorted target keys and the positions, for the caller to free.
 */
function sortedTargets(
  device: GpuDevice,
  idx: GpuStorage,
  indexDtype: DType,
  g: AlongLayout,
  m: number,
  n: number,
): [GpuStorage, GpuStorage] {
  if (m === 0) return [device.alloc("u32", 0), device.alloc("u32", 0)];
  const [keys, perm] = targets(device, idx, indexDtype, g, m);
  return sortByKey(device, keys, perm, m, n);
}

const STARTS = `struct P { nKeys: u32, m: u32 }
${ro(0, "keys", "u32")}
${rw(1, "starts", "u32")}
${uni(2)}
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i > p.nKeys) { return; }
  var lo = 0u;
  var hi = p.m;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (keys[mid] < i) { lo = mid + 1u; } else { hi = mid; }
  }
  starts[i] = lo;
}`;

/**
 * Combines over sorted segments: `out[a, j, b] = x[a, j, b]` combined with `upd[a, perm[s], b]`
 * for `s` in `starts[j] .. starts[j + 1]` in order, over `x = [outer, n, inner]` and
 * `upd = [outer, m, inner]`. Sums (rows read as `vec4` when they allow it) unless `combine`
 * is WGSL defining `fn combine(old, upd)` over the elements.
 */
function segmentCombine(
  device: GpuDevice,
  x: GpuStorage,
  upd: GpuStorage,
  keys: GpuStorage,
  perm: GpuStorage,
  { outer, n, inner }: AxisLayout,
  m: number,
  dtype: DType,
  combine?: string,
): GpuStorage {
  const starts = device.alloc("u32", n + 1);
  device.run({ code: STARTS }, [keys, starts], grid(n + 1), new Uint32Array([n, m]));
  const { e, w } = combine ? { e: dtypeInfo(dtype).wgsl, w: inner } : lanes(dtype, inner);
  // f16 sums run in f32 and round once on store.
  const half = dtype === "f16" && !combine;
  const wide = (x: string) => (half ? `${e.replace("f16", "f32")}(${x})` : x);
  const u = wide("upd[(base + perm[s]) * p.w + b]");
  const code = `struct P { total: u32, m: u32, w: u32, n: u32 }
${ro(0, "x", e)}
${ro(1, "upd", e)}
${ro(2, "starts", "u32")}
${ro(3, "perm", "u32")}
${rw(4, "out", e)}
${uni(5)}
${combine ?? ""}
${half ? TO_F16 : ""}
${ROW_MAIN}
  let j = t % p.n;
  let base = (t / p.n) * p.m;
  var acc = ${wide("x[i]")};
  for (var s = starts[j]; s < starts[j + 1u]; s++) { ${
    combine ? `acc = combine(acc, ${u});` : `acc += ${u};`
  } }
  out[i] = ${half ? `${e.startsWith("vec4") ? "to_f16x4_" : "to_f16_"}(acc)` : "acc"};
}`;
  const total = outer * n * w;
  const out = device.alloc(dtype, outer * n * inner);
  device.run(
    { code },
    [x, upd, starts, perm, out],
    grid(total),
    new Uint32Array([total, m, w, n]),
  );
  device.free(starts);
  return out;
}

/** The kernel of an axis scatter: `scatterAdd`, or a combining scatter given `combine`. */
export function axisScatterGpu(
  device: GpuDevice,
  [x, idx, upd]: GpuStorage[],
  s: AxisIndexSpec,
  combine?: string,
): GpuStorage {
  const g = axisTargets(s.count, s.layout.n);
  return scatterGpu(device, x, idx, s.indexDtype, upd, g, s.layout, s.count, s.dtype, combine);
}

/** The adjoint of {@linkcode takeAlongGpu}: `out = x` plus each update where it was read. */
function scatterAddAlongGpu(
  device: GpuDevice,
  [x, idx, upd]: GpuStorage[],
  s: AlongIndexSpec,
): GpuStorage {
  const total = s.layout.shape.reduce((a, b) => a * b, 1);
  const layout = { outer: 1, n: s.size, inner: 1 };
  return scatterGpu(device, x, idx, s.indexDtype, upd, s.layout, layout, total, s.dtype);
}

/**
 * The scatters, deterministic (see the module doc): `out = x`, then each of the `m` updates
 * added (or, given `combine`, combined by it: see {@linkcode segmentCombine}) in increasing
 * update order into its target under `g`, over `x` and `upd` as `layout` and
 * `[outer, m, inner]`.
 */
function scatterGpu(
  device: GpuDevice,
  x: GpuStorage,
  idx: GpuStorage,
  indexDtype: DType,
  upd: GpuStorage,
  g: AlongLayout,
  layout: AxisLayout,
  m: number,
  dtype: DType,
  combine?: string,
): GpuStorage {
  if (layout.outer * layout.n * layout.inner === 0) return device.alloc(dtype, 0);
  const [keys, perm] = sortedTargets(device, idx, indexDtype, g, m, layout.n);
  const out = segmentCombine(device, x, upd, keys, perm, layout, m, dtype, combine);
  device.free(keys);
  device.free(perm);
  return out;
}

/** `out[k, c] = idx[k] == c` as `dtype`, for `c < depth`; negative indices match nothing. */
export function oneHotGpu(
  device: GpuDevice,
  idx: GpuStorage,
  indexDtype: DType,
  m: number,
  depth: number,
  dtype: DType,
): GpuStorage {
  const total = m * depth;
  const out = device.alloc(dtype, total);
  if (total === 0) return out;
  const t = dtypeInfo(dtype).wgsl;
  const hit = indexDtype === "i32" ? "v >= 0 && u32(v) == c" : "v == c";
  const code = `struct P { total: u32, depth: u32 }
${ro(0, "idx", dtypeInfo(indexDtype).wgsl)}
${rw(1, "out", t)}
${uni(2)}
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.total) { return; }
  let v = idx[i / p.depth];
  let c = i % p.depth;
  out[i] = select(${t}(0), ${t}(1), ${hit});
}`;
  device.run({ code }, [idx, out], grid(total), new Uint32Array([total, depth]));
  return out;
}

/** The indexing family's kernels. */
export const indexingKernels: KernelTable = {
  take: (d: GpuDevice, [x, i]: GpuStorage[], s: AxisIndexSpec) =>
    takeGpu(d, x, i, s.indexDtype, s.layout, s.count, s.dtype),
  takeAlongAxis: (d: GpuDevice, [x, i]: GpuStorage[], s: AlongIndexSpec) =>
    takeAlongGpu(d, x, i, s.indexDtype, s.layout, s.dtype),
  scatterAddAlongAxis: scatterAddAlongGpu,
  oneHot: (d: GpuDevice, [i]: GpuStorage[], s: OneHotSpec) =>
    oneHotGpu(d, i, s.indexDtype, s.count, s.depth, s.dtype),
};
