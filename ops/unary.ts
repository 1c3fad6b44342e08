/**
 * Elementwise unary ops: for each, its dtype rule and VJP rule; the kernels are the entries of
 * the same name in the backends' elementwise tables. Float-only ops cast integer inputs to
 * `f32` first (NumPy style).
 *
 * Special values follow the CPU reference (JS `Math`, i.e. IEEE/NumPy) on both backends: NaN
 * propagates, signed zeros and infinities come out as on the CPU (a property test checks every
 * op). Deliberate differences on WebGPU: transcendental ops agree within a few ULP rather than
 * bitwise; a subnormal result may be flushed to zero and a subnormal input gives no accuracy
 * guarantee (WGSL allows both); `sin`/`cos` are accurate only for moderate arguments (|x| up to
 * about 1e4); `erf` is an approximation with absolute error up to 1.5e-7.
 * @module
 */
import { bind1, definePrimitive, type Primitive, type VjpRule } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { runElementwise } from "./elementwise.ts";
import { add, cast, div, mul, scalarLike, sub } from "./binary.ts";
import { greater } from "./compare.ts";

interface UnaryDef {
  /** Requires a float input (integers are cast to f32 first). */
  floatOnly: boolean;
  vjp: VjpRule<undefined> | "none";
  /** What the VJP rule reads (see `Primitive.saves`). */
  saves: { inputs: number[]; outputs: number[] };
}

/** The rule reads only the cotangent, the input, or the output. */
const G = { inputs: [], outputs: [] }, X = { inputs: [0], outputs: [] };
const Y = { inputs: [], outputs: [0] };

const x0 = (c: { inputs: readonly Tensor[] }) => c.inputs[0];
const y0 = (c: { outputs: readonly Tensor[] }) => c.outputs[0];

const DEFS = {
  neg: { saves: G, floatOnly: false, vjp: ([g]) => [neg(g)] },
  abs: {
    saves: X,
    floatOnly: false,
    vjp: ([g], c) => [mul(g, sign(x0(c)))],
  },
  sign: { saves: G, floatOnly: false, vjp: () => [null] },
  exp: {
    saves: Y,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, y0(c))],
  },
  log: {
    saves: X,
    floatOnly: true,
    vjp: ([g], c) => [div(g, x0(c))],
  },
  log1p: {
    saves: X,
    floatOnly: true,
    vjp: ([g], c) => [div(g, add(x0(c), 1))],
  },
  sqrt: {
    saves: Y,
    floatOnly: true,
    vjp: ([g], c) => [div(g, mul(y0(c), 2))],
  },
  rsqrt: {
    saves: Y,
    floatOnly: true,
    // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
    vjp: ([g], c) => [mul(g, mul(mul(y0(c), square(y0(c))), -0.5))],
  },
  square: {
    saves: X,
    floatOnly: false,
    vjp: ([g], c) => [mul(g, mul(x0(c), 2))],
  },
  tanh: {
    saves: Y,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, sub(1, square(y0(c))))],
  },
  sigmoid: {
    saves: Y,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, mul(y0(c), sub(1, y0(c))))],
  },
  relu: {
    saves: X,
    floatOnly: false,
    vjp: ([g], c) => [mul(g, cast(greater(x0(c), 0), "f32"))],
  },
  erf: {
    saves: X,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, mul(exp(neg(square(x0(c)))), 2 / Math.sqrt(Math.PI)))],
  },
  sin: {
    saves: X,
    floatOnly: true,
    vjp: ([g], c) => [mul(g, cos(x0(c)))],
  },
  cos: {
    saves: X,
    floatOnly: true,
    vjp: ([g], c) => [neg(mul(g, sin(x0(c))))],
  },
} satisfies Record<string, UnaryDef>;

/** Names of the unary primitives. */
export type UnaryName = keyof typeof DEFS;

const PRIMITIVES = Object.fromEntries(
  Object.entries(DEFS).map(([name, def]) => [
    name,
    definePrimitive<undefined>({
      name,
      forward: ([x]) => [runElementwise(name, [x], x.shape, x.dtype)],
      vjp: def.vjp as VjpRule<undefined>,
      saves: def.saves,
    }),
  ]),
) as Record<UnaryName, Primitive<undefined>>;

/** Applies a unary primitive by name, validating the dtype. */
export function unary(name: UnaryName, x: Tensor): Tensor {
  const def: UnaryDef = DEFS[name];
  if (x.dtype === "bool") {
    throw new TypeError(`${name}: bool input ${x.toString()} is not supported; cast it first`);
  }
  if (def.floatOnly && x.dtype !== "f32") {
    using f = cast(x, "f32");
    return bind1(PRIMITIVES[name], [f], undefined);
  }
  return bind1(PRIMITIVES[name], [x], undefined);
}

/** `-x` elementwise. @example ```ts
 * import { neg, tensor } from "@longseq/tensor";
 * console.log(await neg(tensor([1, -2])).array()); // [-1, 2]
 * ``` */
export const neg = (x: Tensor): Tensor => unary("neg", x);
/** `|x|` elementwise. */
export const abs = (x: Tensor): Tensor => unary("abs", x);
/** Sign of `x` (-1, 0 or 1; `sign(-0)` is -0 and `sign(NaN)` is NaN). */
export const sign = (x: Tensor): Tensor => unary("sign", x);
/** `e^x` elementwise. */
export const exp = (x: Tensor): Tensor => unary("exp", x);
/** Natural logarithm. */
export const log = (x: Tensor): Tensor => unary("log", x);
/** `log(1 + x)`, accurate near 0; `log1p(inf)` is inf, `log1p(-1)` is -inf. */
export const log1p = (x: Tensor): Tensor => unary("log1p", x);
/** Square root. */
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
/** `1 / sqrt(x)`. */
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
/** `x * x`. */
export const square = (x: Tensor): Tensor => unary("square", x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
/** Logistic sigmoid `1 / (1 + e^-x)`, stable for large |x|. */
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
/** `max(x, 0)`. */
export const relu = (x: Tensor): Tensor => unary("relu", x);
/** The error function (on WebGPU an approximation, absolute error below 1.5e-7). */
export const erf = (x: Tensor): Tensor => unary("erf", x);
/** Sine (on WebGPU accurate for |x| up to about 1e4). */
export const sin = (x: Tensor): Tensor => unary("sin", x);
/** Cosine (on WebGPU accurate for |x| up to about 1e4). */
export const cos = (x: Tensor): Tensor => unary("cos", x);

/**
 * Gaussian error linear unit. `approximate: true` (default, as in JAX) uses the tanh form
 * `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`; `false` the exact `0.5 x (1 + erf(x / sqrt 2))`.
 * A composition, so its gradient comes from its parts.
 *
 * @example
 * ```ts
 * import { gelu, tensor } from "@longseq/tensor";
 * const y = gelu(tensor([-1, 0, 1]), { approximate: false });
 * ```
 */
export function gelu(x: Tensor, options: { approximate?: boolean } = {}): Tensor {
  const xf = x.dtype === "f32" ? x : cast(x, "f32");
  const half = mul(xf, 0.5);
  let inner: Tensor;
  if (options.approximate ?? true) {
    const cube = mul(mul(xf, xf), xf);
    const arg = mul(add(xf, mul(cube, 0.044715)), Math.sqrt(2 / Math.PI));
    inner = tanh(arg);
    [cube, arg].forEach((t) => t.dispose());
  } else {
    const scaled = mul(xf, Math.SQRT1_2);
    inner = erf(scaled);
    scaled.dispose();
  }
  const onePlus = add(inner, 1);
  const out = mul(half, onePlus);
  [half, inner, onePlus].forEach((t) => t.dispose());
  if (xf !== x) xf.dispose();
  return out;
}

export { scalarLike };
