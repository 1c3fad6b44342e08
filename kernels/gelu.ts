/**
 * The fused GELU kernels' shared constants and their float64 scalar forms (the CPU reference's
 * elementwise entries `gelu`, `geluErf`, `geluGrad`, `geluErfGrad`). The WGSL and wasm kernels
 * evaluate the same formulas in f32.
 *
 * The tanh form `0.5 x (1 + tanh(u))`, `u = sqrt(2/pi) (x + 0.044715 x^3)`, is evaluated as
 * `x * sigmoid(2u)` from `e = exp(-2|u|)`: the same value, without the cancellation of
 * `1 + tanh(u)` for negative `x`, and its derivative `s + 2 x s (1 - s) u'` (`s = sigmoid(2u)`)
 * likewise. The exact form `x Phi(x)` takes `Phi(x) = erfc(-x / sqrt 2) / 2`, so its negative
 * tail keeps relative accuracy; its derivative is `Phi(x) + x phi(x)`.
 *
 * Past `|x| > cut` (where the true values are within rounding of `max(x, -0)` and of a step
 * 1 / 0) the kernels return exactly those: `x^3` or `x * phi(x)` would otherwise overflow or
 * meet `inf * 0`. So `gelu(inf) = inf`, `gelu(-inf) = -0`, and the derivative is 1 and 0
 * there. NaN propagates.
 * @module
 */
import { erfc64 } from "./erf.ts";

/** `sqrt(2 / pi)`, the tanh form's scale. */
export const GELU_C = Math.sqrt(2 / Math.PI);
/** The tanh form's cubic coefficient. */
export const GELU_A = 0.044715;
/** Beyond this |x| the tanh form is `max(x, -0)` to within f32 rounding (e^-87 is below it). */
export const GELU_TANH_CUT = 10;
/** Beyond this |x| the exact form is `max(x, -0)` to within f32 rounding (x phi(x) < 1e-42). */
export const GELU_ERF_CUT = 14;
/**
 * Coefficients of `erfc(z) ~ t exp(-z^2 + P(t))`, `t = 1 / (1 + z/2)`, `z >= 0`, lowest order
 * first (a Chebyshev fit with relative error below 1.2e-7 for every z >= 0).
 */
export const ERFC_POLY: readonly number[] = [
  -1.26551223,
  1.00002368,
  0.37409196,
  0.09678418,
  -0.18628806,
  0.27886807,
  -1.13520398,
  1.48851587,
  -0.82215223,
  0.17087277,
];

/** `sigmoid(2u)` and `sigmoid(2u) (1 - sigmoid(2u))` of the tanh form at `x`. */
function tanhParts(x: number): [number, number] {
  const u = GELU_C * (x + GELU_A * x * x * x);
  const e = Math.exp(-2 * Math.abs(u)), r = 1 / (1 + e);
  return [u >= 0 ? r : e * r, e * r * r];
}

/** The tanh-form GELU of `x` in float64. */
export function geluTanh64(x: number): number {
  if (Math.abs(x) > GELU_TANH_CUT) return Math.max(x, -0);
  return x * tanhParts(x)[0];
}

/** `dy` times the derivative of the tanh-form GELU at `x`, in float64. */
export function geluTanhGrad64(x: number, dy: number): number {
  if (Math.abs(x) > GELU_TANH_CUT) return dy * (x > 0 ? 1 : 0);
  const [s, q] = tanhParts(x);
  return dy * (s + 2 * x * q * GELU_C * (1 + 3 * GELU_A * x * x));
}

/** The exact GELU `x Phi(x)` in float64. */
export function geluErf64(x: number): number {
  if (Math.abs(x) > GELU_ERF_CUT) return Math.max(x, -0);
  return x * 0.5 * erfc64(-x * Math.SQRT1_2);
}

/** `dy` times the derivative of the exact GELU at `x`, in float64. */
export function geluErfGrad64(x: number, dy: number): number {
  if (Math.abs(x) > GELU_ERF_CUT) return dy * (x > 0 ? 1 : 0);
  const phi = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  return dy * (0.5 * erfc64(-x * Math.SQRT1_2) + x * phi);
}
