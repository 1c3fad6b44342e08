/**
 * The WGSL expression of every elementwise op, keyed by the op's kernel name (the same names as
 * the CPU table, `kernels/cpu/elementwise_ops.ts`). An entry is an expression over `a`, `b`,
 * `c` (the inputs, of their dtypes' WGSL types), or `{ expr, helpers }` where the expression
 * depends on the dtypes or calls WGSL helper functions placed before `main`.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";

/** A WGSL expression, possibly chosen by the input and output dtypes. */
export type WgslExpr = string | ((inDtype: DType, outDtype: DType) => string);

/** A WebGPU elementwise op. */
export type WgslOp = string | {
  readonly expr: WgslExpr;
  /** WGSL functions the expression calls. */
  readonly helpers?: string;
};

/** The WGSL zero literal of a dtype's storage type. */
const zeroOf = (t: DType) => `${dtypeInfo(t).wgsl}(0)`;

const TANH =
  "fn tanh_(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }";
const SIGMOID =
  "fn sigmoid_(x: f32) -> f32 { if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); } let e = exp(x); return e / (1.0 + e); }";
const LOG1P =
  "fn log1p_(x: f32) -> f32 { let u = 1.0 + x; if (u == 1.0) { return x; } return log(u) * x / (u - 1.0); }";
/** Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, under f32 rounding. */
const ERF = `
fn erf_(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-ax * ax));
}`;
const POW = `
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x == 0.0) { return select(0.0, bitcast<f32>(0x7f800000u), y < 0.0); }
  if (x > 0.0) { return exp2(y * log2(x)); }
  if (y != round(y)) { return bitcast<f32>(0x7fc00000u); }
  let m = exp2(y * log2(-x));
  return select(m, -m, (abs(y) % 2.0) == 1.0);
}`;

const MOD = `
fn modf_(a: f32, b: f32) -> f32 {
  let r = a % b;
  if (r != 0.0 && ((r < 0.0) != (b < 0.0))) { return r + b; }
  return r;
}
fn modi_(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  let r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) { return r + b; }
  return r;
}
fn modu_(a: u32, b: u32) -> u32 { if (b == 0u) { return 0u; } return a % b; }`;
// A Taylor polynomial near 0 (error below 2e-8 relative for |x| < 0.35), where exp(x) - 1
// would cancel; elsewhere exp(x) - 1 loses at most a few ulps.
const EXPM1 = `
fn expm1_(x: f32) -> f32 {
  if (abs(x) < 0.35) {
    return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 +
      x * (1.0 / 720.0 + x * (1.0 / 5040.0)))))));
  }
  return exp(x) - 1.0;
}`;
const SOFTPLUS = `
fn softplus_(x: f32) -> f32 {
  let e = exp(-abs(x));
  let u = 1.0 + e;
  var l = e;
  if (u != 1.0) { l = log(u) * e / (u - 1.0); }
  return max(x, 0.0) + l;
}`;

/** Identity for integer dtypes, `fn(a)` for f32 (rounding an integer changes nothing). */
const floatFn = (fn: string) => ({ expr: (t: DType) => (t === "f32" ? `${fn}(a)` : "a") });
/** A test of an f32's bits (independent of how the GPU compares NaN); `other` for integers. */
const bitTest = (test: string, other: string) => ({
  expr: (t: DType) => (t === "f32" ? `select(0u, 1u, ${test})` : other),
});

const compare = (op: string) => `select(0u, 1u, a ${op} b)`;
const logic = (op: string) => ({
  expr: (t: DType) => `select(0u, 1u, (a != ${zeroOf(t)}) ${op} (b != ${zeroOf(t)}))`,
});

/** Every elementwise op's WGSL, by kernel name. */
export const WGSL_ELEMENTWISE: Readonly<Record<string, WgslOp>> = {
  // Data movement (slices, transposes, broadcasts).
  copy: "a",
  cast: {
    expr: (from, to) =>
      to === "bool" ? `select(0u, 1u, a != ${zeroOf(from)})` : `${dtypeInfo(to).wgsl}(a)`,
  },
  // Unary.
  neg: "-a",
  abs: "abs(a)",
  sign: "sign(a)",
  exp: "exp(a)",
  log: "log(a)",
  log1p: { expr: "log1p_(a)", helpers: LOG1P },
  sqrt: "sqrt(a)",
  rsqrt: "inverseSqrt(a)",
  square: "a * a",
  tanh: { expr: "tanh_(a)", helpers: TANH },
  sigmoid: { expr: "sigmoid_(a)", helpers: SIGMOID },
  relu: { expr: (t) => (t === "f32" ? "max(a, 0.0)" : t === "i32" ? "max(a, 0)" : "a") },
  erf: { expr: "erf_(a)", helpers: ERF },
  sin: "sin(a)",
  cos: "cos(a)",
  floor: floatFn("floor"),
  ceil: floatFn("ceil"),
  // WGSL's round already rounds halves to even.
  round: floatFn("round"),
  expm1: { expr: "expm1_(a)", helpers: EXPM1 },
  log2: "log2(a)",
  tan: "tan(a)",
  atan: "atan(a)",
  softplus: { expr: "softplus_(a)", helpers: SOFTPLUS },
  isnan: bitTest("(bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u", "0u"),
  isfinite: bitTest("(bitcast<u32>(a) & 0x7f800000u) != 0x7f800000u", "1u"),
  // NaN counts as non-zero.
  nonZero: {
    expr: (t: DType) =>
      t === "f32"
        ? "select(0u, 1u, (bitcast<u32>(a) & 0x7fffffffu) != 0u)"
        : `select(0u, 1u, a != ${zeroOf(t)})`,
  },
  // Binary.
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  pow: { expr: "pow_(a, b)", helpers: POW },
  mod: { expr: (t) => `mod${t === "f32" ? "f" : t === "i32" ? "i" : "u"}_(a, b)`, helpers: MOD },
  maximum: "max(a, b)",
  minimum: "min(a, b)",
  // Comparisons and logic (bool results as 0/1 in u32).
  equal: compare("=="),
  notEqual: compare("!="),
  less: compare("<"),
  lessEqual: compare("<="),
  greater: compare(">"),
  greaterEqual: compare(">="),
  logicalAnd: logic("&&"),
  logicalOr: logic("||"),
  logicalNot: { expr: (t) => `select(0u, 1u, a == ${zeroOf(t)})` },
  where: { expr: (t) => `select(c, b, a != ${zeroOf(t)})` },
};
