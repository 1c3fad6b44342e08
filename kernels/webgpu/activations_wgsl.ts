/**
 * WGSL of the fused activation kernels (entries of the WebGPU elementwise table): the GELU
 * forward and backward in both forms, from `kernels/gelu.ts`'s formulas and constants, and
 * relu's backward. `a` is x and `b` the cotangent dy; f16 data is computed in f32 as for
 * every elementwise op.
 * @module
 */
import { ERFC_POLY, GELU_A, GELU_C, GELU_ERF_CUT, GELU_TANH_CUT } from "../gelu.ts";

/** A WGSL f32 literal of `v` (always with a point or an exponent). */
const lit = (v: number) => {
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
};

const horner = (t: string) =>
  ERFC_POLY.slice(0, -1).reduceRight(
    (acc, c) => `${lit(c)} + ${t} * (${acc})`,
    lit(ERFC_POLY[ERFC_POLY.length - 1]),
  );

// NaN is tested on the bits (a compiler may assume no NaN); past the cut the GELU is
// max(x, -0) and its derivative the step 1 / 0, where x^3 or x phi(x) would overflow.
const GELU = `
fn gnan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn gtail_(x: f32) -> f32 { return select(bitcast<f32>(0x80000000u), x, x > 0.0); }
fn gstep_(x: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }
// sigmoid(2u) and sigmoid(2u) (1 - sigmoid(2u)) for u = C (x + A x^3), from e = exp(-2|u|).
fn gparts_(x: f32) -> vec2<f32> {
  let u = x * (${lit(GELU_C)} + ${lit(GELU_C * GELU_A)} * x * x);
  let e = exp(-2.0 * abs(u));
  let r = 1.0 / (1.0 + e);
  return vec2<f32>(select(e * r, r, u >= 0.0), e * r * r);
}
fn gelu_(x: f32) -> f32 {
  if (gnan_(x)) { return x; }
  if (abs(x) > ${lit(GELU_TANH_CUT)}) { return gtail_(x); }
  return x * gparts_(x).x;
}
fn gelu_grad_(x: f32, dy: f32) -> f32 {
  if (gnan_(x)) { return x; }
  if (abs(x) > ${lit(GELU_TANH_CUT)}) { return dy * gstep_(x); }
  let p = gparts_(x);
  return dy * (p.x + 2.0 * x * p.y * (${lit(GELU_C)} + ${lit(3 * GELU_C * GELU_A)} * x * x));
}
// Phi(x) = erfc(-x / sqrt 2) / 2, erfc(z) = t exp(P(t) - z^2) for z >= 0, t = 1 / (1 + z/2).
fn gphi_(x: f32) -> f32 {
  let z = abs(x) * ${lit(Math.SQRT1_2)};
  let t = 1.0 / (1.0 + 0.5 * z);
  let h = 0.5 * t * exp(${horner("t")} - z * z);
  return select(h, 1.0 - h, x >= 0.0);
}
fn gelu_erf_(x: f32) -> f32 {
  if (gnan_(x)) { return x; }
  if (abs(x) > ${lit(GELU_ERF_CUT)}) { return gtail_(x); }
  return x * gphi_(x);
}
fn gelu_erf_grad_(x: f32, dy: f32) -> f32 {
  if (gnan_(x)) { return x; }
  if (abs(x) > ${lit(GELU_ERF_CUT)}) { return dy * gstep_(x); }
  return dy * (gphi_(x) + x * exp(-0.5 * x * x) * ${lit(1 / Math.sqrt(2 * Math.PI))});
}`;

/** The fused activations' WebGPU elementwise entries, by kernel name. */
export const WGSL_ACTIVATIONS = {
  gelu: { expr: "gelu_(a)", helpers: GELU },
  geluErf: { expr: "gelu_erf_(a)", helpers: GELU },
  geluGrad: { expr: "gelu_grad_(a, b)", helpers: GELU },
  geluErfGrad: { expr: "gelu_erf_grad_(a, b)", helpers: GELU },
  // dy where x > 0, else 0 (NaN x included: WGSL's > may not see NaN, the bit test does).
  reluGrad: {
    expr: "select(0.0, b, a > 0.0 && (bitcast<u32>(a) & 0x7fffffffu) <= 0x7f800000u)",
  },
} as const;
