/**
 * The fused GELU: each form is one elementwise primitive whose kernels are the backends'
 * `gelu` / `geluErf` entries, and whose VJP is one backward kernel (`geluGrad` /
 * `geluErfGrad`) computing `dy * gelu'(x)` from the saved input. A composition of the formula
 * would launch about eight kernels forward and twenty more backward, each a pass over the
 * tensor. The backward primitive is differentiable in turn (its own VJP is a composition), so
 * higher derivatives still work.
 * @module
 */
import { isFloat } from "../kernels/dtype.ts";
import { GELU_A, GELU_C, GELU_ERF_CUT, GELU_TANH_CUT } from "../kernels/gelu.ts";
import { bind1, definePrimitive, type Primitive, SAVES } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { runElementwise } from "./elementwise.ts";
import { defineUnary } from "./unary_def.ts";
import { add, cast, mul, sub } from "./binary.ts";
import { abs, exp, square, tanh } from "./unary.ts";
import { lessEqual, where } from "./compare.ts";
import { scope } from "./scope.ts";

type Form = "gelu" | "geluErf";

/**
 * `gelu''(x)`, a composition (only second and higher derivatives need it), 0 past the cut
 * where the kernels' first derivative is a constant step.
 */
function secondDerivative(form: Form, x: Tensor): Tensor {
  return scope(() => {
    let d: Tensor;
    if (form === "gelu") {
      // With t = tanh(u), u = C (x + A x^3): (1 - t^2) / 2 (2u' - 2 x t u'^2 + x u'').
      const x2 = square(x);
      const t = tanh(mul(x, add(mul(x2, GELU_C * GELU_A), GELU_C)));
      const du = add(mul(x2, 3 * GELU_C * GELU_A), GELU_C);
      const inner = add(
        sub(mul(du, 2), mul(mul(mul(x, t), square(du)), 2)),
        mul(x2, 6 * GELU_C * GELU_A),
      );
      d = mul(mul(sub(1, square(t)), 0.5), inner);
    } else {
      // phi(x) (2 - x^2)
      const x2 = square(x);
      d = mul(mul(exp(mul(x2, -0.5)), 1 / Math.sqrt(2 * Math.PI)), sub(2, x2));
    }
    return where(lessEqual(abs(x), form === "gelu" ? GELU_TANH_CUT : GELU_ERF_CUT), d, 0);
  });
}

/** The backward primitive of `form`: `dy * gelu'(x)` from `[x, dy]`. */
function backward(form: Form): Primitive<undefined> {
  const prim: Primitive<undefined> = definePrimitive<undefined>({
    name: `${form}Grad`,
    saves: SAVES.inputs,
    forward: ([x, dy]) => [runElementwise(`${form}Grad`, [x, dy], dy.shape, dy.dtype)],
    vjp: ([ct], { inputs: [x, dy] }) => [
      scope(() => mul(mul(ct, dy), secondDerivative(form, x))),
      bind1(prim, [x, ct], undefined),
    ],
  });
  return prim;
}

const forward = (form: Form): Primitive<undefined> => {
  const grad = backward(form);
  return defineUnary(form, {
    floatOnly: true,
    saves: SAVES.input,
    vjp: ([dy], c) => [bind1(grad, [c.inputs[0], dy], undefined)],
  }).prim;
};

const TANH_FORM = forward("gelu");
const ERF_FORM = forward("geluErf");

/**
 * Gaussian error linear unit. `approximate: true` (default, as in JAX) uses the tanh form
 * `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`; `false` the exact `0.5 x (1 + erf(x / sqrt 2))`.
 * One fused kernel forward and one backward (`dy * gelu'(x)` from the saved `x`), on every
 * backend; f16 is computed in f32 and rounded once. `gelu(inf)` is inf and `gelu(-inf)` is
 * -0, with derivatives 1 and 0 there; NaN propagates. On WebGPU and the `cpu` (wasm) backend
 * the exact form's `erf` is a polynomial approximation (relative error about 1e-7).
 *
 * `x`: any shape; the result has `x`'s shape and dtype (f32 for non-float inputs, which are
 * cast first).
 *
 * @example
 * ```ts
 * import { assertAllClose, gelu, tensor } from "@longseq/tensor";
 * const y = gelu(tensor([-1, 0, 1]), { approximate: false }); // [3] in, [3] out
 * await assertAllClose(y, [-0.1586553, 0, 0.8413447]);
 * await assertAllClose(gelu(tensor([1])), [0.8411920]); // the tanh form
 * ```
 */
export function gelu(x: Tensor, options: { approximate?: boolean } = {}): Tensor {
  const prim = (options?.approximate ?? true) ? TANH_FORM : ERF_FORM;
  if (isFloat(x.dtype)) return bind1(prim, [x], undefined);
  using xf = cast(x, "f32");
  return bind1(prim, [xf], undefined);
}
