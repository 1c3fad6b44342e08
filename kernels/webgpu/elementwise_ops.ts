/**
 * The WGSL expression of every elementwise op, keyed by the op's kernel name (the same names as
 * the CPU table, `kernels/cpu/elementwise_ops.ts`). An entry is an expression over `a`, `b`,
 * `c` (the inputs, of their dtypes' WGSL types), or `{ expr, helpers }` where the expression
 * depends on the dtypes or calls WGSL helper functions placed before `main`. Expressions see
 * f16 data as f32 (see {@linkcode computeType}).
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { WGSL_ACTIVATIONS } from "./activations_wgsl.ts";

/** A WGSL expression, possibly chosen by the input and output dtypes. */
export type WgslExpr = string | ((inDtype: DType, outDtype: DType) => string);

/** A WebGPU elementwise op. */
export type WgslOp = string | {
  readonly expr: WgslExpr;
  /** WGSL functions the expression calls. */
  readonly helpers?: string;
};

/** The dtype an expression computes in: f16 is widened to f32 on load and rounded on store. */
export const computeType = (t: DType): DType => (t === "f16" ? "f32" : t);

/**
 * `to_f16_(x)` (and `to_f16x4_` for vec4s): f32 to f16 rounded to nearest even on the bits, NaN kept, overflow to
 * infinity, subnormals kept: WGSL leaves `f16(x)` of an out-of-range `x` undefined and lets
 * in-range conversions round either way, so the CPU's Float16Array store is matched exactly.
 */
export const TO_F16 = `
fn to_f16_(x: f32) -> f16 {
  let b = bitcast<u32>(x);
  let m = b & 0x7fffffffu;
  var h = 0u;
  if (m > 0x7f800000u) {
    h = 0x7e00u;
  } else if (m >= 0x477ff000u) {
    h = 0x7c00u;
  } else if (m >= 0x38800000u) {
    h = (m - 0x38000000u) >> 13u;
    let r = m & 0x1fffu;
    if (r > 0x1000u || (r == 0x1000u && (h & 1u) == 1u)) { h += 1u; }
  } else if (m >= 0x33000000u) {
    let s = 126u - (m >> 23u);
    let f = (m & 0x7fffffu) | 0x800000u;
    h = f >> s;
    let r = f & ((1u << s) - 1u);
    let half = 1u << (s - 1u);
    if (r > half || (r == half && (h & 1u) == 1u)) { h += 1u; }
  }
  return f16(unpack2x16float(((b >> 16u) & 0x8000u) | h).x);
}
fn to_f16x4_(v: vec4<f32>) -> vec4<f16> {
  return vec4<f16>(to_f16_(v.x), to_f16_(v.y), to_f16_(v.z), to_f16_(v.w));
}`;

/** The WGSL zero literal of a dtype's storage type. */
const zeroOf = (t: DType) => `${dtypeInfo(t).wgsl}(0)`;

/** A NaN test on the bits, which a compiler assuming no NaN (fast math) cannot drop. */
const NAN = "fn nan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }";
const TANH = `
fn tanh_(x: f32) -> f32 {
  if (abs(x) < 0.01) { let x2 = x * x; return x * (1.0 - x2 * (1.0 / 3.0 - x2 * (2.0 / 15.0))); }
  let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e);
}`;
const SIGMOID =
  "fn sigmoid_(x: f32) -> f32 { if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); } let e = exp(x); return e / (1.0 + e); }";
const LOG1P = `${NAN}
fn log1p_(x: f32) -> f32 {
  if (nan_(x)) { return x; }
  if (x > 16777216.0) { return log(x); }
  let u = 1.0 + x; if (u == 1.0) { return x; } return log(u) * (x / (u - 1.0));
}`;
// sign(-0) is -0 and sign(NaN) NaN, as on the CPU.
const SIGN = `${NAN}
fn sign_(x: f32) -> f32 { if (nan_(x) || x == 0.0) { return x; } return sign(x); }`;
/** Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, under f32 rounding. */
const ERF = `
fn erf_(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-ax * ax));
}`;
// JS Math.pow semantics: pow(x, 0) = 1 (even for NaN), any other NaN operand gives NaN, -0
// keeps its sign under odd integer exponents, negative bases need integer exponents.
const POW = `${NAN}
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (nan_(x) || nan_(y)) { return bitcast<f32>(0x7fc00000u); }
  if (y == 1.0) { return x; }
  let odd = abs(y) < 16777216.0 && (abs(y) % 2.0) == 1.0;
  let inf = bitcast<f32>(0x7f800000u);
  if (x == 0.0) {
    let z = select(0.0, inf, y < 0.0);
    return select(z, -z, odd && (bitcast<u32>(x) >> 31u) == 1u);
  }
  if (x > 0.0) { return exp2(y * log2(x)); }
  if (x == -inf) { let z = select(inf, 0.0, y < 0.0); return select(z, -z, odd); }
  if (y != round(y)) { return bitcast<f32>(0x7fc00000u); }
  let m = exp2(y * log2(-x));
  return select(m, -m, odd);
}`;
// NaN-propagating float maximum/minimum that order -0 below +0 (JS Math.max/min, NumPy).
const MINMAX = `${NAN}
fn fmax_(a: f32, b: f32) -> f32 {
  if (nan_(a) || nan_(b)) { return bitcast<f32>(0x7fc00000u); }
  if (a == b) { return bitcast<f32>(bitcast<u32>(a) & bitcast<u32>(b)); }
  return max(a, b);
}
fn fmin_(a: f32, b: f32) -> f32 {
  if (nan_(a) || nan_(b)) { return bitcast<f32>(0x7fc00000u); }
  if (a == b) { return bitcast<f32>(bitcast<u32>(a) | bitcast<u32>(b)); }
  return min(a, b);
}`;
// Float to integer casts saturate: truncate toward zero, clamp to the type's range, NaN to 0.
const CAST = `${NAN}
fn f2i_(a: f32) -> i32 {
  if (nan_(a)) { return 0i; }
  if (a >= 2147483648.0) { return 2147483647i; }
  if (a <= -2147483648.0) { return bitcast<i32>(0x80000000u); }
  return i32(a);
}
fn f2u_(a: f32) -> u32 {
  if (nan_(a) || a <= 0.0) { return 0u; }
  if (a >= 4294967296.0) { return 4294967295u; }
  return u32(a);
}`;

/**
 * WGSL truthiness of `x` of dtype `t` (non-zero; NaN is true). NaN tests look at the bits:
 * GPU compilers may assume no NaN in float compares, so `NaN != 0.0` can come out false.
 */
const truthy = (t: DType, x: string) =>
  t === "f32" ? `(${x} != 0.0 || nan_(${x}))` : `(${x} != ${zeroOf(t)})`;

function castExpr(from: DType, to: DType): string {
  if (to === "bool") return `select(0u, 1u, ${truthy(from, "a")})`;
  if (from === "f32" && to === "i32") return "f2i_(a)";
  if (from === "f32" && to === "u32") return "f2u_(a)";
  return `${dtypeInfo(to).wgsl}(a)`;
}

// Floored modulo with NumPy's special values: NaN for x infinite or y zero, x itself (moved to
// y's side) for y infinite, a zero result takes y's sign. WGSL's f32 % is x - y * trunc(x / y),
// wrong once the quotient passes 2^24, so fmodx_ reduces exactly instead: each step subtracts
// y scaled by a power of two to within a factor 2 of x, which Sterbenz's lemma makes exact.
const MOD = `${NAN}
fn fmodx_(a: f32, b: f32) -> f32 {
  var x = abs(a);
  let y = abs(b);
  let ey = frexp(y).exp;
  loop {
    if (x < y) { break; }
    var t = ldexp(y, frexp(x).exp - ey);
    if (t > x) { t = t * 0.5; }
    x = x - t;
  }
  return select(x, -x, a < 0.0);
}
fn modf_(a: f32, b: f32) -> f32 {
  let inf = bitcast<f32>(0x7f800000u);
  if (nan_(a) || nan_(b) || abs(a) == inf || b == 0.0) { return bitcast<f32>(0x7fc00000u); }
  var r = a;
  if (abs(b) != inf) { r = fmodx_(a, b); }
  if (r == 0.0) { return select(0.0, bitcast<f32>(0x80000000u), b < 0.0); }
  if ((r < 0.0) != (b < 0.0)) { return r + b; }
  return r;
}
fn modi_(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  let r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) { return r + b; }
  return r;
}
fn modu_(a: u32, b: u32) -> u32 { if (b == 0u) { return 0u; } return a % b; }`;
// atan keeps NaN and the sign of zero (llvmpipe's atan(NaN) is 0).
const ATAN = `${NAN}
fn atan_(x: f32) -> f32 { if (nan_(x) || x == 0.0) { return x; } return atan(x); }`;
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

/** WGSL `a op b` with IEEE NaN semantics (only `!=` holds when an operand is NaN). */
const compare = (op: string) => ({
  expr: (t: DType) =>
    `select(0u, 1u, ${
      t !== "f32"
        ? `a ${op} b`
        : op === "!="
        ? "(nan_(a) || nan_(b) || a != b)"
        : `(!(nan_(a) || nan_(b)) && a ${op} b)`
    })`,
  helpers: NAN,
});
const logic = (op: string) => ({
  expr: (t: DType) => `select(0u, 1u, ${truthy(t, "a")} ${op} ${truthy(t, "b")})`,
  helpers: NAN,
});

/** Every elementwise op's WGSL, by kernel name. */
export const WGSL_ELEMENTWISE: Readonly<Record<string, WgslOp>> = {
  // Data movement (slices, transposes, broadcasts).
  copy: "a",
  cast: { expr: castExpr, helpers: CAST },
  // Unary.
  neg: { expr: (t) => (t === "u32" ? "0u - a" : "-a") },
  abs: "abs(a)",
  sign: {
    expr: (t) => (t === "u32" ? "select(0u, 1u, a != 0u)" : t === "f32" ? "sign_(a)" : "sign(a)"),
    helpers: SIGN,
  },
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
  atan: { expr: "atan_(a)", helpers: ATAN },
  softplus: { expr: "softplus_(a)", helpers: SOFTPLUS },
  // The fused GELU (both forms) and the GELU and relu backwards.
  ...WGSL_ACTIVATIONS,
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
  maximum: { expr: (t) => (t === "f32" ? "fmax_(a, b)" : "max(a, b)"), helpers: MINMAX },
  minimum: { expr: (t) => (t === "f32" ? "fmin_(a, b)" : "min(a, b)"), helpers: MINMAX },
  // Comparisons and logic (bool results as 0/1 in u32).
  equal: compare("=="),
  notEqual: compare("!="),
  less: compare("<"),
  lessEqual: compare("<="),
  greater: compare(">"),
  greaterEqual: compare(">="),
  logicalAnd: logic("&&"),
  logicalOr: logic("||"),
  logicalNot: { expr: (t) => `select(1u, 0u, ${truthy(t, "a")})`, helpers: NAN },
  where: { expr: (t) => `select(c, b, ${truthy(t, "a")})`, helpers: NAN },
};
