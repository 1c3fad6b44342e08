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
  // Binary.
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  maximum: (a, b) => Math.max(a, b),
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
