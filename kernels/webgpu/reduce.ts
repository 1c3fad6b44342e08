/**
 * WebGPU reductions over the middle axis of a contiguous `[outer, n, inner]` layout.
 *
 * - Rows (`inner == 1`): `T` lanes reduce one row (a power of two from 1 to {@linkcode WG},
 *   picked from the row length), so one workgroup holds `WG / T` rows: short rows share a
 *   workgroup and long rows get all of one. Each lane walks its row with stride `T` (adjacent
 *   lanes read adjacent addresses), then the lanes combine in a shared-memory tree.
 * - Columns (`inner > 1`): one thread per output walks its column; adjacent threads read
 *   adjacent addresses. The caller transposes to rows instead when columns are both few and
 *   narrow (see {@linkcode useColumns}).
 *
 * When there are too few rows or columns to fill the device, each is cut into segments
 * reduced in parallel, and the `[outer, segments, inner]` partials (values, plus indices for
 * argmax/argmin) are reduced again the same way.
 *
 * max/min/argmax/argmin propagate NaN (tested on the bits, so fast-math cannot drop it) and
 * argmax/argmin pick the first index among equal values, as on the CPU. Integer sums wrap.
 * Float sums run in f32 in a tree order, so they differ from the float64 CPU reference by
 * rounding only. f16 input is widened to f32 as it is loaded, partials stay f32, and only the
 * final write rounds to f16 (so long f16 rows sum as accurately as f32 ones).
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { FLAT_ARGS, FLAT_INDEX, type GpuDevice, type GpuStorage, grid, WG } from "./device.ts";
import type { ArgReduceOp, ArgReduceSpec, ReduceLayout, ReduceOp } from "../specs/reduce.ts";
import { type ReduceSpec, reduceTable } from "../specs/reduce.ts";
import type { KernelTable } from "../backend.ts";
import { elementwiseGpu } from "./elementwise.ts";
import { computeType, TO_F16 } from "./elementwise_ops.ts";
import { guarded, rowPieces, tooLarge } from "./windows.ts";
import { reduceSlabs } from "./reduce_slabs.ts";

type Op = ReduceOp | ArgReduceOp;
type Wgsl = "f32" | "f16" | "i32" | "u32";

/** Workgroups a row reduction should reach before long rows are cut into segments. */
const TARGET_GROUPS = 1024;
/** Shortest segment a row is cut into. */
const ROW_SEGMENT = 4096;
/** Threads a column reduction should reach before long columns are cut into segments. */
const TARGET_THREADS = 1 << 18;
/** Shortest segment a column is cut into. */
const COLUMN_SEGMENT = 32;

/** Whether the column kernel should reduce this layout, rather than a transpose to rows. */
export function useColumns({ outer, n, inner }: ReduceLayout): boolean {
  return inner > 1 && (inner >= 8 || n <= 64 || outer * inner >= 4096);
}

/** Lanes per row: about four elements per lane, at most one workgroup. */
export function lanesFor(n: number): number {
  let t = 1;
  while (t < WG && t * 4 < n) t *= 2;
  return t;
}

const INF = "bitcast<f32>(0x7f800000u)";
/** f32 negative infinity in WGSL. */
export const NEG_INF = "bitcast<f32>(0xff800000u)";

function identity(op: Op, t: Wgsl): string {
  if (op === "sum") return `${t}(0)`;
  const max = op === "max" || op === "argmax";
  if (t === "f32") return max ? NEG_INF : INF;
  if (t === "i32") return max ? "bitcast<i32>(0x80000000u)" : "2147483647i";
  return max ? "0u" : "4294967295u";
}

/**
 * WGSL `better(b, a)`: whether `b` replaces `a` as the extreme (NaN first, then order); for
 * arg ops also `wins(b, bi, a, ai)`: `b` at index `bi` is better than `a` at `ai`, or ties
 * with it at a smaller index. An accumulator that has seen nothing holds the identity at index
 * `0xffffffff`, so the first element it meets wins even when it equals the identity (a row of
 * all `-inf` for argmax, all `0u` in u32, ...).
 */
function betterFn(op: Op, t: Wgsl): string {
  if (op === "sum") return "";
  const cmp = op === "max" || op === "argmax" ? ">" : "<";
  const wins = isArg(op)
    ? `\nfn wins(b: ${t}, bi: u32, a: ${t}, ai: u32) -> bool {
  return better(b, a) || (!better(a, b) && bi < ai);
}`
    : "";
  if (t !== "f32") return `fn better(b: ${t}, a: ${t}) -> bool { return b ${cmp} a; }${wins}`;
  return `fn isnan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn better(b: f32, a: f32) -> bool { return !isnan_(a) && (isnan_(b) || b ${cmp} a); }${wins}`;
}

/**
 * One pass: `op` over input of WGSL type `inT`, accumulated in `accT` (never f16) and written
 * as `outT`. Arg ops read indices of partials from `xi` when `idxIn`, and write values to
 * `outv` as well when `partial`.
 */
interface Pass {
  op: Op;
  inT: Wgsl;
  accT: Wgsl;
  outT: Wgsl;
  idxIn: boolean;
  partial: boolean;
}

const isArg = (op: Op) => op === "argmax" || op === "argmin";

/** Bindings, the loop over one row or column segment, and the final write of both kernels. */
function parts({ op, inT, accT, outT, idxIn, partial }: Pass) {
  const arg = isArg(op);
  const binds = [`var<storage, read> x: array<${inT}>;`];
  if (idxIn) binds.push("var<storage, read> xi: array<i32>;");
  binds.push(`var<storage, read_write> out: array<${arg ? "i32" : outT}>;`);
  if (partial) binds.push(`var<storage, read_write> outv: array<${accT}>;`);
  binds.push("var<uniform> p: P;");
  const use = (at: string, j: string, v: string) =>
    op === "sum"
      ? `acc += ${v};`
      : arg
      ? `{ let vi = ${
        idxIn ? `u32(xi[${at}])` : j
      }; if (wins(${v}, vi, acc, ai)) { acc = ${v}; ai = vi; } }`
      : `if (better(${v}, acc)) { acc = ${v}; }`;
  return {
    head: `struct P { outer: u32, n: u32, inner: u32, nb: u32, seg: u32 }
${binds.map((b, i) => `@group(0) @binding(${i}) ${b}`).join("\n")}
${betterFn(op, accT)}${!arg && outT === "f16" ? TO_F16 : ""}`,
    init: `var acc = ${identity(op, accT)};${arg ? " var ai = 0xffffffffu;" : ""}`,
    /**
     * Visits `j = first, first + stride, ... < end` in order, four at a time with the loads
     * issued together (so several are in flight per thread), then one at a time.
     */
    loop: (first: string, stride: number, at: (j: string) => string) => {
      const js = [0, 1, 2, 3].map((u) => (u ? `j + ${u * stride}u` : "j"));
      return `var j = ${first};
  for (; j + ${3 * stride}u < end; j += ${4 * stride}u) {
    ${js.map((j, u) => `let v${u} = ${accT}(x[${at(j)}]);`).join(" ")}
    ${js.map((j, u) => use(at(j), j, `v${u}`)).join("\n    ")}
  }
  for (; j < end; j += ${stride}u) { let v0 = ${accT}(x[${at("j")}]); ${use(at("j"), "j", "v0")} }`;
    },
    write: (o: string, v: string, i: string) =>
      arg
        ? `out[${o}] = i32(${i});${partial ? ` outv[${o}] = ${v};` : ""}`
        : `out[${o}] = ${outT === "f16" ? `to_f16_(${v})` : v};`,
  };
}

/** Row kernel over `outer * nb` segments (row `v / nb`, segment `v % nb` of length `seg`). */
function rowCode(pass: Pass, lanes: number): string {
  const arg = isArg(pass.op);
  const c = parts(pass);
  const merge = pass.op === "sum"
    ? "sv[lid] += sv[lid + s];"
    : arg
    ? `let b = sv[lid + s]; let bi = si[lid + s];
      if (wins(b, bi, sv[lid], si[lid])) { sv[lid] = b; si[lid] = bi; }`
    : "let b = sv[lid + s]; if (better(b, sv[lid])) { sv[lid] = b; }";
  return `${c.head}
var<workgroup> sv: array<${pass.accT}, ${WG}>;
${arg ? `var<workgroup> si: array<u32, ${WG}>;` : ""}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % ${lanes}u;
  let v = (wg.x + wg.y * nwg.x) * ${WG / lanes}u + lid / ${lanes}u;
  let live = v < p.outer * p.nb;
  ${c.init}
  if (live) {
    let base = (v / p.nb) * p.n;
    let start = (v % p.nb) * p.seg;
    let end = min(p.n, start + p.seg);
    ${c.loop("start + lane", lanes, (j) => `base + ${j}`)}
  }
  sv[lid] = acc;
  ${arg ? "si[lid] = ai;" : ""}
  workgroupBarrier();
  for (var s = ${lanes >> 1}u; s > 0u; s >>= 1u) {
    if (lane < s) {
      ${merge}
    }
    workgroupBarrier();
  }
  if (live && lane == 0u) { ${c.write("v", "sv[lid]", "si[lid]")} }
}`;
}

/** Column kernel: one thread per `[outer, nb, inner]` output walks its column segment. */
function columnCode(pass: Pass): string {
  const c = parts(pass);
  return `${c.head}
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.outer * p.nb * p.inner) { return; }
  let r = i / p.inner;
  let base = (r / p.nb) * p.n * p.inner + i % p.inner;
  let start = (r % p.nb) * p.seg;
  let end = min(p.n, start + p.seg);
  ${c.init}
  ${c.loop("start", 1, (j) => `base + (${j}) * p.inner`)}
  ${c.write("i", "acc", "ai")}
}`;
}

/** How many segments to cut each row or column into so the device has enough work. */
function segments({ outer, n, inner }: ReduceLayout): number {
  const [have, want, min] = inner > 1
    ? [outer * inner, TARGET_THREADS, COLUMN_SEGMENT]
    : [outer, TARGET_GROUPS, ROW_SEGMENT];
  if (have >= want || n < 2 * min) return 1;
  return Math.min(Math.ceil(n / min), Math.ceil(want / have));
}

/**
 * Reduces `x` (with partial indices `xi` for arg ops after a first pass) over `n`. Returns the
 * `[outer, inner]` result: values of `outDtype`, or i32 indices for arg ops. Values are
 * accumulated, and partials kept, in `outDtype`'s compute type (f32 for f16).
 */
function reduceLayout(
  device: GpuDevice,
  op: Op,
  x: GpuStorage,
  xi: GpuStorage | null,
  layout: ReduceLayout,
  inDtype: DType,
  outDtype: DType,
): GpuStorage {
  const { outer, n, inner } = layout;
  const arg = isArg(op);
  // Past one storage binding the rows are split instead of cut into segments.
  const large = tooLarge(device, x);
  const nb = large ? 1 : segments(layout);
  const accDtype = computeType(outDtype);
  const partDtype = nb > 1 ? accDtype : outDtype;
  const pass: Pass = {
    op,
    inT: dtypeInfo(inDtype).wgsl,
    accT: dtypeInfo(accDtype).wgsl,
    outT: dtypeInfo(partDtype).wgsl,
    idxIn: xi !== null,
    partial: arg && nb > 1,
  };
  const out = device.alloc(arg ? "i32" : partDtype, outer * nb * inner);
  const vals = pass.partial ? device.alloc(accDtype, outer * nb * inner) : null;
  const eb = (t: DType) => device.elementBytes(t);
  const operands = [
    { storage: x, eb: eb(inDtype), perRow: n * inner },
    ...(xi ? [{ storage: xi, eb: 4, perRow: n * inner }] : []),
    { storage: out, eb: eb(arg ? "i32" : partDtype), perRow: nb * inner },
    ...(vals ? [{ storage: vals, eb: eb(accDtype), perRow: nb * inner }] : []),
  ];
  const pieces = guarded(
    device,
    vals ? [out, vals] : [out],
    () => rowPieces(device, op, [outer, n, inner], outer, operands),
  );
  for (const { count, binds } of pieces) {
    const params = new Uint32Array([count, n, inner, nb, Math.ceil(n / nb)]);
    if (inner > 1) {
      device.run({ code: columnCode(pass) }, binds, grid(count * nb * inner), params);
    } else {
      const lanes = nb > 1 ? WG : lanesFor(n);
      device.run({ code: rowCode(pass, lanes) }, binds, grid(count * nb, WG / lanes), params);
    }
  }
  if (nb === 1) return out;
  const next = { outer, n: nb, inner };
  const result = arg
    ? reduceLayout(device, op, vals!, out, next, accDtype, outDtype)
    : reduceLayout(device, op, out, null, next, accDtype, outDtype);
  device.free(out);
  if (vals) device.free(vals);
  return result;
}

/**
 * Reduces `x` (`[outer, n, inner]`, of `inDtype`) over `n` with sum/max/min into a new
 * `[outer, inner]` storage of `outDtype` (for bool inputs, the sum's i32).
 */
export function reduceGpu(
  device: GpuDevice,
  x: GpuStorage,
  layout: ReduceLayout,
  op: ReduceOp,
  inDtype: DType,
  outDtype: DType,
): GpuStorage {
  if (layout.outer * layout.inner === 0) return device.alloc(outDtype, 0);
  if (layout.outer === 1 && tooLarge(device, x)) {
    const one = (slab: GpuStorage, l: ReduceLayout) =>
      reduceLayout(device, op, slab, null, l, inDtype, outDtype);
    return reduceSlabs(device, x, layout, op, inDtype, outDtype, one);
  }
  return reduceLayout(device, op, x, null, layout, inDtype, outDtype);
}

/**
 * The first index of the extreme value of each `[outer, inner]` column of `x` over `n`, as a
 * new i32 storage. `n` must be positive.
 */
export function argReduceGpu(
  device: GpuDevice,
  x: GpuStorage,
  layout: ReduceLayout,
  op: ArgReduceOp,
  dtype: DType,
): GpuStorage {
  if (layout.outer * layout.inner === 0) return device.alloc("i32", 0);
  return reduceLayout(device, op, x, null, layout, dtype, dtype);
}

/** A contiguous copy of `x` read through `strides` over `shape` (a transposition). */
const moved = (d: GpuDevice, x: GpuStorage, dtype: DType, strides: number[], shape: number[]) =>
  elementwiseGpu(d, "a", [{ storage: x, dtype, strides, offset: 0 }], shape, dtype);

/**
 * Runs `run` on `[outer, n, inner]` as rows (`inner` 1). A layout with few, long strided
 * columns (`useColumns` false), or any for softmax, is first copied to `[outer, inner, n]`,
 * so every lane reads contiguous memory; `back` copies a same-shaped result back.
 */
export function asRows(
  d: GpuDevice,
  x: GpuStorage,
  dtype: DType,
  { outer, n, inner }: ReduceLayout,
  run: (x: GpuStorage, rows: ReduceLayout) => GpuStorage,
  back = false,
): GpuStorage {
  const rows = moved(d, x, dtype, [n * inner, 1, inner], [outer, inner, n]);
  const y = run(rows, { outer: outer * inner, n, inner: 1 });
  d.free(rows);
  if (!back) return y;
  const out = moved(d, y, dtype, [inner * n, 1, n], [outer, n, inner]);
  d.free(y);
  return out;
}

const reduce = (op: ReduceOp) => (d: GpuDevice, [x]: GpuStorage[], s: ReduceSpec) => {
  const run = (x: GpuStorage, l: ReduceLayout) => reduceGpu(d, x, l, op, s.dtype, s.outDtype);
  const l = s.layout;
  // A single long column block is reduced in slabs (reduce_slabs.ts), not transposed.
  const direct = l.inner === 1 || useColumns(l) || (l.outer === 1 && tooLarge(d, x));
  return direct ? run(x, l) : asRows(d, x, s.dtype, l, run);
};
const argReduce = (op: ArgReduceOp) => (d: GpuDevice, [x]: GpuStorage[], s: ArgReduceSpec) => {
  const run = (x: GpuStorage, l: ReduceLayout) => argReduceGpu(d, x, l, op, s.dtype);
  const l = s.layout;
  return l.inner === 1 || useColumns(l) ? run(x, l) : asRows(d, x, s.dtype, l, run);
};

/** The reduction family's kernels (softmax is in `softmax.ts`). */
export const reduceKernels: KernelTable = reduceTable(reduce, argReduce);
