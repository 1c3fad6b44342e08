/**
 * The vector `e^x` generator shared by the kernel module's exp, tanh, softmax and attention
 * functions.
 * @module
 */
import { type FuncBuilder, V128 } from "./emit.ts";

/** 1.5 * 2^23 and its bits. */
const MAGIC = 12582912, MAGIC_BITS = 0x4b400000;

/**
 * The `e^x` of the vector on the stack, via `tmp` locals (Cephes expf, ~2 ulp).
 *
 * No lane goes through subnormal arithmetic unless its result is subnormal: x86 handles
 * subnormal products in microcode, 4x slower over a whole row, and masked attention logits
 * (-1e9 or -1e4 below the row's max) made many rows that slow. Lanes below -104 (where `e^x`
 * rounds to 0) are set to 0 after computing `e^0` in their place; the rest scale by `2^k` in
 * one step when every lane's `k` keeps the result normal, else in two (below).
 */
export function vexp(f: FuncBuilder, x: number, t: number, k: number) {
  const zero = f.local(V128);
  f.set(x).get(x).f32x4Const(-104).f32x4Lt().set(zero);
  // x clamped to [-104, 89] (above, it overflows to inf), lanes that round to 0 computed at 0.
  // pmax and pmin (one x86 instruction each, unlike max and min) keep a NaN x, their first
  // operand.
  f.f32x4Const(0).get(x).f32x4Const(-104).f32x4("pmax").f32x4Const(89).f32x4("pmin");
  f.get(zero).v128Bitselect().set(x);
  // t = round(x log2 e), to even as f32x4.nearest, and k the same as an i32: adding 1.5 * 2^23
  // leaves the rounded integer in the sum's low mantissa bits (|x log2 e| < 2^22), so no
  // float-to-int conversion (several x86 instructions in wasm) is needed.
  f.get(x).f32x4Const(Math.LOG2E).f32x4("mul").f32x4Const(MAGIC).f32x4("add").tee(k);
  f.f32x4Const(MAGIC).f32x4("sub").set(t);
  f.get(k).i32x4Const(MAGIC_BITS).i32x4("sub").set(k);
  f.get(x).get(t).f32x4Const(0.693359375).f32x4("mul").f32x4("sub");
  f.get(t).f32x4Const(-2.12194440e-4).f32x4("mul").f32x4("sub").set(x);
  f.f32x4Const(1.9875691500e-4);
  for (const c of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 0.5]) {
    f.get(x).f32x4("mul").f32x4Const(c).f32x4("add");
  }
  f.get(x).f32x4("mul").get(x).f32x4("mul").get(x).f32x4("add").f32x4Const(1).f32x4("add");
  f.set(x); // the polynomial, in [0.7, 1.5)
  // 2^k is a normal f32 and so is the product when -125 <= k <= 127.
  f.i32x4Const(-125).get(k).i32x4GtS().get(k).i32x4Const(127).i32x4GtS().v128("or");
  f.v128AnyTrue().if(V128);
  // Scale by 2^k as 2^(k>>1) * 2^(k - (k>>1)) so results down to the subnormals are exact.
  f.get(x);
  f.get(k).i32(1).op(0xfd, 0xac, 0x01).set(t); // t = k >> 1
  f.get(t).i32x4Const(127).i32x4Add().i32(23).i32x4Shl().f32x4("mul");
  f.get(k).get(t).op(0xfd, 0xb1, 0x01).i32x4Const(127).i32x4Add().i32(23)
    .i32x4Shl().f32x4("mul");
  f.else();
  f.get(x).get(k).i32x4Const(127).i32x4Add().i32(23).i32x4Shl().f32x4("mul");
  f.end().set(x);
  f.f32x4Const(0).get(x).get(zero).v128Bitselect();
}
