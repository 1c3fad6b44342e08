/**
 * The CPU reference of every elementwise op, keyed by the op's kernel name: a scalar function
 * over JS numbers (`a`, `b`, `c` are the inputs' values), or, where the function depends on
 * the dtypes, `{ byDtype(inDtype, outDtype) }` choosing one. The WebGPU table
 * (`kernels/webgpu/elementwise_ops.ts`) has an entry of the same name for each.
 * @module
 */
import { type DType, isFloat } from "../dtype.ts";
import { erf64 } from "../erf.ts";
import { geluErf64, geluErfGrad64, geluTanh64, geluTanhGrad64 } from "../gelu.ts";

/** Scalar function applied per element. */
export type ScalarFn = (...args: number[]) => number;

/** A CPU elementwise op: a scalar function, or one chosen by the input and output dtypes. */
export type CpuScalarOp = ScalarFn | {
  readonly byDtype: (inDtype: DType, outDtype: DType) => ScalarFn;
};

const truth = (v: boolean) => (v ? 1 : 0);
const isInt = (t: DType) => t === "i32" || t === "u32";

/**
 * The cast from `from` to `to`: float to i32/u32 truncates toward zero and saturates, NaN to 0
 * (as WGSL does); between integers the typed array's store reinterprets the 32 bits; to bool
 * tests `!= 0` (NaN is true). To f16 the Float16Array's store rounds (to nearest even,
 * overflowing to infinity).
 */
export function castCpu(from: DType, to: DType): ScalarFn {
  if (to === "bool") return (a) => truth(a !== 0);
  if (!isFloat(from) || isFloat(to)) return (a) => a;
  const [lo, hi] = to === "i32" ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1];
  return (a) => (a !== a ? 0 : a <= lo ? lo : a >= hi ? hi : Math.trunc(a));
}

/** NumPy's `round`: to the nearest integer, halves to the even neighbour (keeps `-0`). */
export function roundHalfEven(a: number): number {
  const f = Math.floor(a);
  const d = a - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return r === 0 && a < 0 ? -0 : r;
}

/**
 * The floored modulo of two numbers, `a - b * floor(a / b)` computed exactly, with the sign of
 * `b` (NumPy `mod`): NaN for `a` infinite or `b` zero, and a zero result takes `b`'s sign.
 */
export function floorMod(a: number, b: number): number {
  const r = a % b;
  if (r === 0) return b < 0 ? -0 : 0;
  return (r < 0) !== (b < 0) ? r + b : r;
}

/** Every elementwise op's CPU scalar function, by kernel name. */
export const CPU_ELEMENTWISE: Readonly<Record<string, CpuScalarOp>> = {
  // Data movement (slices, transposes, broadcasts).
  copy: (a) => a,
  cast: { byDtype: castCpu },
  // Unary.
  neg: (a) => -a,
  abs: Math.abs,
  sign: Math.sign,
  exp: Math.exp,
  log: Math.log,
  log1p: Math.log1p,
  sqrt: Math.sqrt,
  rsqrt: (a) => 1 / Math.sqrt(a),
  // Integer products wrap to 32 bits, as on the GPU (float64 would lose bits past 2^53).
  square: { byDtype: (_in, out) => (isInt(out) ? (a) => Math.imul(a, a) : (a) => a * a) },
  tanh: Math.tanh,
  sigmoid: (a) => (a >= 0 ? 1 / (1 + Math.exp(-a)) : Math.exp(a) / (1 + Math.exp(a))),
  relu: (a) => (a > 0 ? a : 0),
  erf: erf64,
  sin: Math.sin,
  cos: Math.cos,
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
  expm1: Math.expm1,
  log2: Math.log2,
  tan: Math.tan,
  atan: Math.atan,
  softplus: (a) => Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a))),
  // The fused activations (`a` is x) and their backward kernels (`b` is the cotangent dy).
  gelu: geluTanh64,
  geluErf: geluErf64,
  geluGrad: geluTanhGrad64,
  geluErfGrad: geluErfGrad64,
  // dy where x > 0, else 0 (a NaN or infinite dy too, as JAX's select).
  reluGrad: (a, b) => (a > 0 ? b : 0),
  isnan: (a) => truth(Number.isNaN(a)),
  isfinite: (a) => truth(Number.isFinite(a)),
  // NaN counts as non-zero.
  nonZero: (a) => truth(a !== 0),
  // Binary.
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: { byDtype: (_in, out) => (isInt(out) ? Math.imul : (a, b) => a * b) },
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  maximum: (a, b) => Math.max(a, b),
  mod: floorMod,
  minimum: (a, b) => Math.min(a, b),
  // Comparisons and logic (bool results as 0/1).
  equal: (a, b) => truth(a === b),
  notEqual: (a, b) => truth(a !== b),
  less: (a, b) => truth(a < b),
  lessEqual: (a, b) => truth(a <= b),
  greater: (a, b) => truth(a > b),
  greaterEqual: (a, b) => truth(a >= b),
  logicalAnd: (a, b) => truth(a !== 0 && b !== 0),
  logicalOr: (a, b) => truth(a !== 0 || b !== 0),
  logicalNot: (a) => truth(a === 0),
  where: (c, a, b) => (c !== 0 ? a : b),
};
