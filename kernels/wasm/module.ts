/**
 * The wasm backend's kernel module, generated with {@linkcode ModuleBuilder}: the matmul
 * microkernel, elementwise row loops, and row reductions. Every pointer and length argument
 * is an i32 (pointers in bytes, lengths in elements). The same bytes are instantiated on the
 * main thread and in every worker over one shared memory.
 * @module
 */
import { planeDrivers } from "./gen_planes.ts";
import { permuteRows } from "./gen_permute.ts";
import { argRows } from "./arg_reduce.ts";
import { attentionRowDrivers } from "./gen_attention_rows.ts";
import { F32, type FuncBuilder, hasRelaxedSimd, I32, ModuleBuilder, V128 } from "./emit.ts";
import { microkernel, packers } from "./gen_matmul.ts";
import { attentionHelpers } from "./gen_attention.ts";
import { layerNormHelpers } from "./gen_layer_norm.ts";
import { vexp } from "./gen_exp.ts";
import { gemmAcc } from "./gen_gemm_acc.ts";
import { indexingHelpers } from "./gen_indexing.ts";
import { sortHelpers } from "./gen_sort.ts";
import { COMPARE_OPS, compareRows, isCompareOp, type WasmCompareOp } from "./gen_compare.ts";
import { ACTIVATION_LOCALS, isActivation, vactivation } from "./gen_activations.ts";

/** Microkernel tile: rows of A per call. */
export const MR = 6;
/** Microkernel tile: columns of B per call (a multiple of 4). */
export const NR = 8;

/**
 * Binary ops with row kernels: f32 (the fused activation backwards of `(x, dy)` last), then
 * 32-bit integer ones (`i`: either signedness, as wrapping add, sub and mul give the same bits;
 * `imax`/`imin` signed, `umax`/`umin` unsigned), then the comparisons (bool output, see
 * `gen_compare.ts`).
 */
export const BINARY_OPS = [
  "add",
  "sub",
  "mul",
  "div",
  "max",
  "min",
  "geluGrad",
  "geluErfGrad",
  "reluGrad",
  "iadd",
  "isub",
  "imul",
  "imax",
  "imin",
  "umax",
  "umin",
  ...COMPARE_OPS,
] as const;
/** A binary op the wasm backend runs natively. */
export type WasmBinaryOp = typeof BINARY_OPS[number];
/** Unary ops with row kernels: f32, then i32 (wrapping: `iabs` of -2^31 is -2^31). */
export const UNARY_OPS = [
  ...["exp", "tanh", "neg", "abs", "sqrt", "relu", "gelu", "geluErf"] as const,
  ...["ineg", "iabs"] as const,
] as const;
/** A unary op the wasm backend runs natively. */
export type WasmUnaryOp = typeof UNARY_OPS[number];

/** Module limits: pages of 64 KiB; at most 2 GiB so byte offsets stay positive i32s. */
export const MAX_PAGES = 32768;

/**
 * Emits `for (; n >= 4; n -= 4) vec(); for (; n > 0; n--) one();` where each body advances
 * its own pointers.
 */
function rows(f: FuncBuilder, n: number, vec: () => void, one: () => void) {
  f.block().loop();
  f.get(n).i32(4).ltS().brIf(1);
  vec();
  f.inc(n, -4).br(0).end().end();
  f.block().loop();
  f.get(n).i32(1).ltS().brIf(1);
  one();
  f.inc(n, -1).br(0).end().end();
}

/** The i32x4 instruction of each integer op. */
const INT_SIMD = {
  iadd: "add",
  isub: "sub",
  imul: "mul",
  imax: "maxS",
  imin: "minS",
  umax: "maxU",
  umin: "minU",
  ineg: "neg",
  iabs: "abs",
} as const;

/** Whether `op` is one of the 32-bit integer ops. */
export function isIntegerOp(op: string): op is keyof typeof INT_SIMD {
  return op in INT_SIMD;
}

/** The op on the two vectors on the stack, with scratch locals `tmp` (fused activations). */
function binVec(f: FuncBuilder, op: Exclude<WasmBinaryOp, WasmCompareOp>, tmp: number[]) {
  if (isIntegerOp(op)) f.i32x4(INT_SIMD[op]);
  else if (isActivation(op)) vactivation(f, op, tmp);
  else f.f32x4(op);
}

/** The scratch v128 locals of one row kernel. */
const scratch = (f: FuncBuilder) => Array.from({ length: ACTIVATION_LOCALS }, () => f.local(V128));

/**
 * Binary row kernels `op_vv(a, b, o, n)` (both contiguous), `op_vs` (b a scalar), `op_sv` (a a
 * scalar) and `op_g(a, sa, b, sb, o, n)` (byte strides, one lane at a time).
 */
function binary(m: ModuleBuilder, op: Exclude<WasmBinaryOp, WasmCompareOp>) {
  for (const kind of ["vv", "vs", "sv"] as const) {
    const f = m.func(`${op}_${kind}`, [I32, I32, I32, I32]);
    const [a, b, o, n] = [0, 1, 2, 3];
    const s = f.local(V128);
    const tmp = scratch(f);
    if (kind === "vs") f.get(b).v128Load32Splat().set(s);
    if (kind === "sv") f.get(a).v128Load32Splat().set(s);
    const load = (p: number, scalar: boolean, w: number) =>
      scalar ? f.get(s) : w === 16 ? f.get(p).v128Load() : f.get(p).v128Load32Splat();
    const step = (w: number) => {
      f.get(o);
      load(a, kind === "sv", w);
      load(b, kind === "vs", w);
      binVec(f, op, tmp);
      if (w === 16) f.v128Store();
      else f.f32x4ExtractLane(0).f32Store();
      if (kind !== "sv") f.inc(a, w);
      if (kind !== "vs") f.inc(b, w);
      f.inc(o, w);
    };
    rows(f, n, () => step(16), () => step(4));
  }
  const f = m.func(`${op}_g`, [I32, I32, I32, I32, I32, I32]);
  const [a, sa, b, sb, o, n] = [0, 1, 2, 3, 4, 5];
  const tmp = scratch(f);
  f.block().loop();
  f.get(n).i32(1).ltS().brIf(1);
  f.get(o).get(a).v128Load32Splat().get(b).v128Load32Splat();
  binVec(f, op, tmp);
  f.f32x4ExtractLane(0).f32Store();
  f.get(a).get(sa).add().set(a).get(b).get(sb).add().set(b).inc(o, 4).inc(n, -1).br(0);
  f.end().end();
}

/**
 * The unary op on the vector on the stack, with scratch locals `x, t, k` (for `vexp`) and
 * `y, u` (the fused activations take them all). tanh is `sign(x) (1 - e) / (1 + e)` with
 * `e = e^(-2|x|)`, as the WebGPU kernel.
 */
function unVec(f: FuncBuilder, op: WasmUnaryOp, tmp: number[]) {
  const [x, t, k, y, u] = tmp;
  if (isActivation(op)) vactivation(f, op, tmp);
  else if (op === "exp") vexp(f, x, t, k);
  else if (op === "tanh") {
    f.tee(u).f32x4("abs").f32x4Const(-2).f32x4("mul");
    vexp(f, x, t, k);
    f.set(y).f32x4Const(1).get(y).f32x4("sub").f32x4Const(1).get(y).f32x4("add").f32x4("div");
    f.get(u).i32x4Const(-0x80000000).op(0xfd, 0x4e).op(0xfd, 0x50); // | (x & sign bit)
  } else if (op === "relu") {
    // x where 0 < x, else +0 (NaN and -0 included), as the reference's `a > 0 ? a : 0`.
    f.tee(u).f32x4Const(0).f32x4Const(0).get(u).f32x4Lt().v128Bitselect();
  } else if (isIntegerOp(op)) f.i32x4(INT_SIMD[op]);
  else f.f32x4(op);
}

/** Unary row kernels `op_v(a, o, n)` (contiguous) and `op_g(a, sa, o, n)` (byte stride). */
function unary(m: ModuleBuilder, op: WasmUnaryOp) {
  {
    const f = m.func(`${op}_v`, [I32, I32, I32]);
    const [a, o, n] = [0, 1, 2];
    const tmp = scratch(f);
    const y = f.local(V128);
    const step = (w: number) => {
      f.get(a);
      if (w === 16) f.v128Load();
      else f.v128Load32Splat();
      unVec(f, op, tmp);
      f.set(y).get(o).get(y);
      if (w === 16) f.v128Store();
      else f.f32x4ExtractLane(0).f32Store();
      f.inc(a, w).inc(o, w);
    };
    rows(f, n, () => step(16), () => step(4));
  }
  const f = m.func(`${op}_g`, [I32, I32, I32, I32]);
  const [a, sa, o, n] = [0, 1, 2, 3];
  const tmp = scratch(f);
  const y = f.local(V128);
  f.block().loop();
  f.get(n).i32(1).ltS().brIf(1);
  f.get(a).v128Load32Splat();
  unVec(f, op, tmp);
  f.set(y).get(o).get(y).f32x4ExtractLane(0).f32Store();
  f.get(a).get(sa).add().set(a).inc(o, 4).inc(n, -1).br(0);
  f.end().end();
}

/**
 * Row reductions of contiguous f32: `sum_row(x, n)` (four lane sums in ascending order,
 * combined as (l0 + l1) + (l2 + l3), then the tail), `max_row(x, n)` and `min_row` (NaN
 * wins), `sqdev_row(x, n, m)`: the sum of `(x[i] - m)^2` in the same order, and
 * `expsub_row(x, o, n, m)`: `o[i] = e^(x[i] - m)` returning the sum like `sum_row`.
 */
function reductions(m: ModuleBuilder) {
  for (const kind of ["sum", "max", "min", "expsub", "sqdev"] as const) {
    const ex = kind === "expsub", sq = kind === "sqdev";
    const f = ex
      ? m.func("expsub_row", [I32, I32, I32, F32], [F32])
      : sq
      ? m.func("sqdev_row", [I32, I32, F32], [F32])
      : m.func(`${kind}_row`, [I32, I32], [F32]);
    const [x, o, n, mx] = ex ? [0, 1, 2, 3] : sq ? [0, -1, 1, 2] : [0, -1, 1, -1];
    const op = kind === "max" || kind === "min" ? kind : "add";
    const [acc, v, t, k, ms] = [
      f.local(V128),
      f.local(V128),
      f.local(V128),
      f.local(V128),
      f.local(V128),
    ];
    const s = f.local(F32), d = f.local(F32);
    f.f32x4Const(kind === "max" ? -Infinity : kind === "min" ? Infinity : 0).set(acc);
    if (ex || sq) f.get(mx).f32x4Splat().set(ms);
    const step = () => {
      f.get(x).v128Load();
      if (sq) f.get(ms).f32x4("sub").tee(v).get(v).f32x4("mul");
      if (ex) {
        f.get(ms).f32x4("sub");
        vexp(f, v, t, k);
        f.set(v).get(o).get(v).v128Store().inc(o, 16).get(v);
      }
      f.set(v).get(acc).get(v).f32x4(op).set(acc).inc(x, 16);
    };
    // The tail folds into a scalar after the lanes are combined, so emit lanes first.
    f.block().loop();
    f.get(n).i32(4).ltS().brIf(1);
    step();
    f.inc(n, -4).br(0).end().end();
    const lane = (i: number) => f.get(acc).f32x4ExtractLane(i);
    const comb = () => (op === "max" ? f.f32Max() : op === "min" ? f.f32Min() : f.f32Add());
    lane(0), lane(1), comb(), lane(2), lane(3), comb(), comb();
    f.set(s);
    f.block().loop();
    f.get(n).i32(1).ltS().brIf(1);
    f.get(s).get(x);
    if (ex) {
      f.v128Load32Splat().get(ms).f32x4("sub");
      vexp(f, v, t, k);
      f.set(v).get(o).get(v).f32x4ExtractLane(0).f32Store().inc(o, 4).get(v);
      f.f32x4ExtractLane(0);
    } else if (sq) f.f32Load().get(mx).f32Sub().tee(d).get(d).f32Mul();
    else f.f32Load();
    comb();
    f.set(s).inc(x, 4).inc(n, -1).br(0).end().end();
    f.get(s);
  }
}

let cached: { bytes: Uint8Array<ArrayBuffer>; relaxed: boolean } | undefined;

/**
 * The kernel module's bytes (built once), and whether its microkernel and attention helpers
 * use relaxed madd.
 */
export function kernelModule(): { bytes: Uint8Array<ArrayBuffer>; relaxed: boolean } {
  if (!cached) {
    const relaxed = hasRelaxedSimd();
    const m = new ModuleBuilder({ initial: 1, maximum: MAX_PAGES, shared: true });
    microkernel(m, relaxed, MR, NR, 4);
    packers(m);
    for (const op of BINARY_OPS) {
      if (isCompareOp(op)) compareRows(m, op);
      else binary(m, op);
    }
    for (const op of UNARY_OPS) unary(m, op);
    planeDrivers(m, BINARY_OPS, UNARY_OPS, (op) => (isCompareOp(op) ? 1 : 4));
    reductions(m);
    attentionHelpers(m, relaxed);
    attentionRowDrivers(m);
    permuteRows(m);
    argRows(m);
    layerNormHelpers(m);
    gemmAcc(m, relaxed);
    indexingHelpers(m);
    sortHelpers(m);
    cached = { bytes: m.build(), relaxed };
  }
  return cached;
}
