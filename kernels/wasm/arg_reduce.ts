/**
 * `argmax` and `argmin` of f32 rows on the wasm device (the LSH hash's bucket choice), for
 * the reference's `[outer, n, 1]` layout: `argmax_row(x, n)` / `argmin_row(x, n)` in the
 * module scan a row once with the reference's rule (a NaN beats every number; among equal
 * values, or NaNs, the first index wins). Rows are split across threads by contiguous ranges,
 * so the result does not depend on the thread count. Other layouts run on the reference.
 * @module
 */
import type { ArgReduceOp, ReduceLayout } from "../specs/reduce.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { F32, I32, type ModuleBuilder } from "./emit.ts";
import { type Runtime, share } from "./runtime.ts";

/** This job's index in `jobs.ts`. */
export const JOB_ARG_REDUCE = 15;

/** Rows smaller in total than this run on the calling thread alone. */
const PARALLEL_MIN = 1 << 15;

/** f32 comparison opcodes. */
const F32_EQ = 0x5b, F32_NE = 0x5c, F32_LT = 0x5d, F32_GT = 0x5e;
const I32_AND = 0x71, I32_OR = 0x72;

/** Adds `argmax_row` and `argmin_row` to the module. */
export function argRows(m: ModuleBuilder): void {
  for (const op of ["argmax", "argmin"] as const) {
    const f = m.func(`${op}_row`, [I32, I32], [I32]);
    const [x, n] = [0, 1];
    const [best, j] = [f.local(I32), f.local(I32)];
    const [mx, v] = [f.local(F32), f.local(F32)];
    f.get(x).f32Load().set(mx).i32(1).set(j);
    f.block().loop().get(j).get(n).geS().brIf(1);
    f.get(x).get(j).i32(4).mul().add().f32Load().set(v);
    // m is a number, and v is NaN or beats it.
    f.get(mx).get(mx).op(F32_EQ);
    f.get(v).get(v).op(F32_NE).get(v).get(mx).op(op === "argmax" ? F32_GT : F32_LT).op(I32_OR);
    f.op(I32_AND).if().get(v).set(mx).get(j).set(best).end();
    f.inc(j, 1).br(0).end().end();
    f.get(best);
  }
}

/** Whether {@linkcode argReduceWasm} takes this layout (rows along the last axis, n > 0). */
export function argReduceSupported({ inner, n }: ReduceLayout): boolean {
  return inner === 1 && n > 0;
}

/** The index of each row's extreme of f32 `x` (`[outer, n, 1]`), as a new i32 storage. */
export function argReduceWasm(
  device: WasmDevice,
  x: WasmStorage,
  layout: ReduceLayout,
  op: ArgReduceOp,
): WasmStorage {
  const { outer, n } = layout;
  if (!argReduceSupported(layout)) throw new RangeError(`wasm: ${op} over this layout`);
  const out = device.alloc("i32", outer);
  if (outer === 0) return out;
  const args = [op === "argmax" ? 0 : 1, x.offset, out.offset, outer, n];
  device.run(JOB_ARG_REDUCE, args, outer * n < PARALLEL_MIN);
  return out;
}

/** The job: this thread's rows. */
export function argReduceJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const [min, x, out, outer, n] = args;
  const row = rt.kernels[min ? "argmin_row" : "argmax_row"], I = rt.i32;
  const [lo, hi] = share(outer, part, parts);
  for (let o = lo; o < hi; o++) I[out / 4 + o] = row(x + 4 * o * n, n);
}
