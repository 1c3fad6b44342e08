/**
 * The vector code of the kernel module's fused activations, four lanes at a time: the GELU
 * forward and backward in both forms, and relu's backward. The formulas, constants and the
 * cut beyond which the GELU is `max(x, -0)` are those of `kernels/gelu.ts` (which explains
 * them), evaluated in f32 with the module's `vexp`. Selects test `a < b` only (false for a
 * NaN lane), ordered so that a NaN x keeps the formula's NaN.
 * @module
 */
import type { FuncBuilder } from "./emit.ts";
import { vexp } from "./gen_exp.ts";
import { ERFC_POLY, GELU_A, GELU_C, GELU_ERF_CUT, GELU_TANH_CUT } from "../gelu.ts";

/** The fused activations: unary forwards, and backwards of `(x, dy)`. */
export type ActivationOp = "gelu" | "geluErf" | "geluGrad" | "geluErfGrad" | "reluGrad";

/** Whether `op` is one of the fused activations. */
export function isActivation(op: string): op is ActivationOp {
  return op.startsWith("gelu") || op === "reluGrad";
}

/** How many v128 scratch locals {@linkcode vactivation} needs. */
export const ACTIVATION_LOCALS = 8;

/**
 * `op` on the vector(s) on the stack (`x`, or `x` then `dy` for a backward), leaving the
 * result, with the v128 scratch locals `l`.
 */
export function vactivation(f: FuncBuilder, op: ActivationOp, l: readonly number[]): void {
  const [x, dy, a, b, c, t0, t1, t2] = l;
  if (op === "reluGrad") {
    // dy & (0 < x): dy where x > 0, +0 elsewhere (a NaN x included).
    f.set(dy).set(x).f32x4Const(0).get(x).f32x4Lt().get(dy).v128("and");
    return;
  }
  const grad = op === "geluGrad" || op === "geluErfGrad";
  if (grad) f.set(dy);
  f.set(x);
  if (op === "gelu" || op === "geluGrad") {
    // a = x^2, c = u = x (C + C A x^2), b = e = exp(-2|u|), t0 = r = 1 / (1 + e).
    f.get(x).get(x).f32x4("mul").tee(a).f32x4Const(GELU_C * GELU_A).f32x4("mul");
    f.f32x4Const(GELU_C).f32x4("add").get(x).f32x4("mul").tee(c);
    f.f32x4("abs").f32x4Const(-2).f32x4("mul");
    vexp(f, t0, t1, t2);
    f.set(b).f32x4Const(1).get(b).f32x4Const(1).f32x4("add").f32x4("div").set(t0);
    // s = sigmoid(2u): e r where u < 0, else r.
    f.get(b).get(t0).f32x4("mul").get(t0).get(c).f32x4Const(0).f32x4Lt().v128Bitselect();
    if (grad) {
      // s + 2 x (e r r) (C + 3 C A x^2)
      f.get(x).f32x4Const(2).f32x4("mul").get(b).f32x4("mul").get(t0).f32x4("mul");
      f.get(t0).f32x4("mul").get(a).f32x4Const(3 * GELU_C * GELU_A).f32x4("mul");
      f.f32x4Const(GELU_C).f32x4("add").f32x4("mul").f32x4("add");
    }
  } else {
    // a = z = |x| / sqrt 2, b = t = 1 / (1 + z / 2), c = h = erfc(z) / 2 = t exp(P(t) - z^2) / 2.
    f.get(x).f32x4("abs").f32x4Const(Math.SQRT1_2).f32x4("mul").set(a);
    f.f32x4Const(1).get(a).f32x4Const(0.5).f32x4("mul").f32x4Const(1).f32x4("add");
    f.f32x4("div").set(b);
    f.f32x4Const(ERFC_POLY[ERFC_POLY.length - 1]);
    for (let i = ERFC_POLY.length - 2; i >= 0; i--) {
      f.get(b).f32x4("mul").f32x4Const(ERFC_POLY[i]).f32x4("add");
    }
    f.get(a).get(a).f32x4("mul").f32x4("sub");
    vexp(f, t0, t1, t2);
    f.get(b).f32x4("mul").f32x4Const(0.5).f32x4("mul").set(c);
    // Phi(x): h where x < 0, else 1 - h.
    f.get(c).f32x4Const(1).get(c).f32x4("sub").get(x).f32x4Const(0).f32x4Lt().v128Bitselect();
    if (grad) {
      // Phi + x exp(-x^2 / 2) / sqrt(2 pi)
      f.get(x).get(x).f32x4("mul").f32x4Const(-0.5).f32x4("mul");
      vexp(f, t0, t1, t2);
      f.f32x4Const(1 / Math.sqrt(2 * Math.PI)).f32x4("mul").get(x).f32x4("mul").f32x4("add");
    }
  }
  if (!grad) f.get(x).f32x4("mul");
  // Past the cut: max(x, -0), or the step 1 / 0 for the derivative. A NaN x fails the test
  // and keeps the formula's NaN.
  f.set(a);
  if (grad) f.f32x4Const(1).f32x4Const(0).get(x).f32x4Lt().v128("and");
  else f.get(x).f32x4Const(-0).f32x4("pmax");
  f.get(a);
  f.f32x4Const(op === "gelu" || op === "geluGrad" ? GELU_TANH_CUT : GELU_ERF_CUT);
  f.get(x).f32x4("abs").f32x4Lt().v128Bitselect();
  if (grad) f.get(dy).f32x4("mul");
}
