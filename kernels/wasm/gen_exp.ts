/**
 * The vector `e^x` generator shared by the kernel module's exp, tanh, softmax and attention
 * functions.
 * @module
 */
import type { FuncBuilder } from "./emit.ts";

/** The `e^x` of the vector on the stack, via `tmp` locals (Cephes expf, ~2 ulp). */
export function vexp(f: FuncBuilder, x: number, t: number, k: number) {
  // x clamped to [-104, 89]: below, e^x rounds to 0; above, it overflows to inf.
  f.set(x).get(x).f32x4Const(-104).f32x4("max").f32x4Const(89).f32x4("min").set(x);
  f.get(x).f32x4Const(Math.LOG2E).f32x4("mul").f32x4("nearest").set(t);
  f.get(t).i32x4TruncSatF32x4S().set(k);
  f.get(x).get(t).f32x4Const(0.693359375).f32x4("mul").f32x4("sub");
  f.get(t).f32x4Const(-2.12194440e-4).f32x4("mul").f32x4("sub").set(x);
  f.f32x4Const(1.9875691500e-4);
  for (const c of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 0.5]) {
    f.get(x).f32x4("mul").f32x4Const(c).f32x4("add");
  }
  f.get(x).f32x4("mul").get(x).f32x4("mul").get(x).f32x4("add").f32x4Const(1).f32x4("add");
  // Scale by 2^k as 2^(k>>1) * 2^(k - (k>>1)) so results down to the subnormals are exact.
  f.get(k).i32(1).op(0xfd, 0xac, 0x01).set(t); // t = k >> 1
  f.get(t).i32x4Const(127).i32x4Add().i32(23).i32x4Shl().f32x4("mul");
  f.get(k).get(t).op(0xfd, 0xb1, 0x01).i32x4Const(127).i32x4Add().i32(23)
    .i32x4Shl().f32x4("mul");
}
