/**
 * The CPU reference of every elementwise op, keyed by the op's kernel name: a scalar function
 * over JS numbers (`a`, `b`, `c` are the inputs' values), or, where the function depends on
 * the dtypes, `{ byDtype(inDtype, outDtype) }` choosing one. The WebGPU table
 * (`kernels/webgpu/elementwise_ops.ts`) has an entry of the same name for each.
 * @module
 */
import type { DType } from "../dtype.ts";
import { erf64 } from "../erf.ts";

/** Scalar function applied per element. */
export type ScalarFn = (...args: number[]) => number;

/** A CPU elementwise op: a scalar function, or one chosen by the input and output dtypes. */
export type CpuScalarOp = ScalarFn | {
  readonly byDtype: (inDtype: DType, outDtype: DType) => ScalarFn;
};

const truth = (v: boolean) => (v ? 1 : 0);

/** NumPy's `round`: to the nearest integer, halves to the even neighbour (keeps `-0`). */
export function roundHalfEven(a: number): number {
  const f = Math.floor(a);
  const d = a - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return r === 0 && a < 0 ? -0 : r;
}

/** The floored modulo of two numbers: `a - b * floor(a / b)`, with the sign of `b`. */
export function floorMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
}

/** Every elementwise op's CPU scalar function, by kernel name. */
export const CPU_ELEMENTWISE: Readonly<Record<string, CpuScalarOp>> = {
  // Data movement (slices, transposes, broadcasts).
  copy: (a) => a,
  cast: { byDtype: (_from, to) => to === "bool" ? (a) => truth(a !== 0) : (a) => a },
  // Unary.
  neg: (a) => -a,
  abs: Math.abs,
  sign: Math.sign,
  exp: Math.exp,
  log: Math.log,
  log1p: Math.log1p,
  sqrt: Math.sqrt,
  rsqrt: (a) => 1 / Math.sqrt(a),
  square: (a) => a * a,
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
  isnan: (a) => truth(Number.isNaN(a)),
  isfinite: (a) => truth(Number.isFinite(a)),
  // NaN counts as non-zero.
  nonZero: (a) => truth(a !== 0),
  // Binary.
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
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
