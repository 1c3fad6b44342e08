/**
 * Comparison row kernels of the kernel module: 32-bit lanes compared (f32 with IEEE rules, so
 * NaN is unequal to everything and -0 equals +0, as JS compares; i32 signed; u32 unsigned),
 * each result written as one bool byte (0 or 1). The same four layouts as the arithmetic row
 * kernels: `op_vv(a, b, o, n)`, `op_vs`, `op_sv` and `op_g(a, sa, b, sb, o, n)`.
 * @module
 */
import { type FuncBuilder, I32, type ModuleBuilder, V128 } from "./emit.ts";

/** Comparison ops with row kernels (`f`: f32; `i`: i32, or either for (in)equality; `u`: u32). */
export const COMPARE_OPS = [
  "feq",
  "fne",
  "flt",
  "fle",
  "fgt",
  "fge",
  "ieq",
  "ine",
  "ilt",
  "ile",
  "igt",
  "ige",
  "ult",
  "ule",
  "ugt",
  "uge",
] as const;
/** A comparison op with row kernels. */
export type WasmCompareOp = typeof COMPARE_OPS[number];

/** SIMD opcode (after 0xfd) of each comparison. */
const OPCODE: Readonly<Record<WasmCompareOp, number>> = {
  ieq: 0x37,
  ine: 0x38,
  ilt: 0x39,
  ult: 0x3a,
  igt: 0x3b,
  ugt: 0x3c,
  ile: 0x3d,
  ule: 0x3e,
  ige: 0x3f,
  uge: 0x40,
  feq: 0x41,
  fne: 0x42,
  flt: 0x43,
  fgt: 0x44,
  fle: 0x45,
  fge: 0x46,
};

/** Whether `op` is a comparison (its output is one bool byte per element). */
export function isCompareOp(op: string): op is WasmCompareOp {
  return op in OPCODE;
}

const I32X4_NEG = [0xfd, 0xa1, 0x01];
const I16X8_NARROW_I32X4_U = [0xfd, 0x86, 0x01], I8X16_NARROW_I16X8_U = [0xfd, 0x66];
const STORE32_LANE = [0xfd, 0x5a, 2, 0, 0], STORE8_LANE = [0xfd, 0x58, 0, 0, 0];

/**
 * Compares the two vectors on the stack and leaves the lanes' results as bytes 0/1 in the
 * low 4 bytes (the all-ones masks negated to 1, then narrowed twice), via the scratch `t`.
 */
function compareToBytes(f: FuncBuilder, op: WasmCompareOp, t: number) {
  f.op(0xfd, OPCODE[op]).op(...I32X4_NEG);
  f.tee(t).get(t).op(...I16X8_NARROW_I32X4_U).tee(t).get(t).op(...I8X16_NARROW_I16X8_U);
}

/** Adds the four row kernels of `op`. */
export function compareRows(m: ModuleBuilder, op: WasmCompareOp) {
  for (const kind of ["vv", "vs", "sv"] as const) {
    const f = m.func(`${op}_${kind}`, [I32, I32, I32, I32]);
    const [a, b, o, n] = [0, 1, 2, 3];
    const s = f.local(V128), t = f.local(V128);
    if (kind === "vs") f.get(b).v128Load32Splat().set(s);
    if (kind === "sv") f.get(a).v128Load32Splat().set(s);
    const load = (p: number, scalar: boolean, w: number) =>
      scalar ? f.get(s) : w === 16 ? f.get(p).v128Load() : f.get(p).v128Load32Splat();
    // Four lanes (w = 16 bytes in, 4 out), then one at a time.
    for (const w of [16, 4]) {
      f.block().loop();
      f.get(n).i32(w / 4).ltS().brIf(1);
      f.get(o);
      load(a, kind === "sv", w);
      load(b, kind === "vs", w);
      compareToBytes(f, op, t);
      f.op(...(w === 16 ? STORE32_LANE : STORE8_LANE));
      if (kind !== "sv") f.inc(a, w);
      if (kind !== "vs") f.inc(b, w);
      f.inc(o, w / 4).inc(n, -w / 4).br(0).end().end();
    }
  }
  const f = m.func(`${op}_g`, [I32, I32, I32, I32, I32, I32]);
  const [a, sa, b, sb, o, n] = [0, 1, 2, 3, 4, 5];
  const t = f.local(V128);
  f.block().loop();
  f.get(n).i32(1).ltS().brIf(1);
  f.get(o).get(a).v128Load32Splat().get(b).v128Load32Splat();
  compareToBytes(f, op, t);
  f.op(...STORE8_LANE);
  f.get(a).get(sa).add().set(a).get(b).get(sb).add().set(b).inc(o, 1).inc(n, -1).br(0);
  f.end().end();
}
