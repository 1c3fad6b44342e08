/**
 * Arithmetic binary ops with NumPy broadcasting, and `cast`. Each primitive keeps its CPU
 * reference, WGSL expression and VJP rule together. The walker un-broadcasts cotangents, so
 * rules return them in the output's shape.
 * @module
 */
import { type DType, dtypeInfo, promoteTypes } from "../kernels/dtype.ts";
import { bind1, definePrimitive, type Primitive, type VjpRule } from "./primitive.ts";
import { assertLive, Tensor } from "./tensor.ts";
import { runElementwise, sameDevice, type ScalarOp } from "./kernel.ts";
import { broadcastShapes } from "./broadcast.ts";
import { log, neg, square } from "./unary.ts";
import { greater, greaterEqual, less, where } from "./compare.ts";

/** A tensor, or a JS number that takes the other operand's dtype and device. */
export type TensorLike = Tensor | number;

/** A scalar tensor holding `v` on the device of `like`, in `like`'s dtype (f32 if `v` is fractional). */
export function scalarLike(v: number, like: Tensor): Tensor {
  const dtype: DType = like.dtype === "f32" || Number.isInteger(v) ? like.dtype : "f32";
  return Tensor.scalar(like.backend, v, dtype === "bool" ? "f32" : dtype);
}

/**
 * Converts a pair of tensor-likes to tensors; returns those it created so the caller frees them.
 * `a` is the op's input number `first` (for error messages), `b` the next.
 */
export function pair(
  op: string,
  a: TensorLike,
  b: TensorLike,
  first = 0,
): [Tensor, Tensor, Tensor[]] {
  if (typeof a === "number" && typeof b === "number") {
    throw new TypeError(`${op}: at least one operand must be a tensor`);
  }
  assertLive(op, [...Array(first), a, b]);
  const made: Tensor[] = [];
  const ta = typeof a === "number" ? (made[made.length] = scalarLike(a, b as Tensor)) : a;
  const tb = typeof b === "number" ? (made[made.length] = scalarLike(b, ta)) : b;
  if (!(ta instanceof Tensor) || !(tb instanceof Tensor)) {
    throw new TypeError(`${op}: operands must be tensors or numbers`);
  }
  return [ta, tb, made];
}

const PRIMS: Record<string, Primitive<undefined>> = {};
/** Names of the arithmetic binary primitives (the special-values test runs them all). */
export const binaryOps = (): string[] => Object.keys(PRIMS);

/** Defines a broadcasting binary primitive over operands of one dtype. */
function binaryPrim(
  name: string,
  op: ScalarOp,
  vjp: VjpRule<undefined>,
  saves?: Primitive<undefined>["saves"],
) {
  return PRIMS[name] = definePrimitive<undefined>({
    name,
    saves,
    forward: ([a, b]) => {
      const shape = broadcastShapes(name, a.shape, b.shape);
      return [runElementwise(name, op, [a, b], shape, a.dtype)];
    },
    vjp,
  });
}

/**
 * Applies a binary primitive after converting numbers, promoting dtypes and checking shapes
 * and devices (all before any kernel runs). `floatOnly` ops promote integers to f32.
 */
export function applyBinary(
  prim: Primitive<undefined>,
  a: TensorLike,
  b: TensorLike,
  { floatOnly = false, allowBool = false } = {},
): Tensor {
  const op = prim.name;
  const [ta, tb, made] = pair(op, a, b);
  try {
    broadcastShapes(op, ta.shape, tb.shape);
    sameDevice(op, [ta, tb]);
    if (!allowBool && (ta.dtype === "bool" || tb.dtype === "bool")) {
      throw new TypeError(
        `${op}: bool operands (${ta} and ${tb}) are not supported; cast them first`,
      );
    }
    let dtype = promoteTypes(ta.dtype, tb.dtype);
    if (floatOnly) dtype = "f32";
    const ca = ta.dtype === dtype ? ta : (made[made.length] = cast(ta, dtype));
    const cb = tb.dtype === dtype ? tb : (made[made.length] = cast(tb, dtype));
    return bind1(prim, [ca, cb], undefined);
  } finally {
    for (const t of made) t.dispose();
  }
}

const x = (c: { inputs: readonly Tensor[] }, i: number) => c.inputs[i];

// Which values each rule reads: none (add, sub) or both operands (mul, div, maximum, minimum).
const G = { inputs: [], outputs: [] }, AB = { inputs: [0, 1], outputs: [] };
const addP = binaryPrim("add", { cpu: (a, b) => a + b, wgsl: "a + b" }, ([g]) => [g, g], G);
const subP = binaryPrim("sub", { cpu: (a, b) => a - b, wgsl: "a - b" }, ([g]) => [g, neg(g)], G);
const mulP = binaryPrim(
  "mul",
  { cpu: (a, b) => a * b, cpuInt: Math.imul, wgsl: "a * b" },
  ([g], c) => [mul(g, x(c, 1)), mul(g, x(c, 0))],
  AB,
);
const divP = binaryPrim(
  "div",
  { cpu: (a, b) => a / b, wgsl: "a / b" },
  ([g], c) => [div(g, x(c, 1)), neg(div(mul(g, x(c, 0)), square(x(c, 1))))],
  AB,
);
/**
 * WGSL helpers: a NaN test on the bits (which fast-math cannot drop), and NaN-propagating
 * float maximum/minimum that order -0 below +0 (JS `Math.max`/`Math.min`, NumPy).
 */
export const NAN_WGSL = `
fn nan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }`;
const MINMAX_WGSL = `${NAN_WGSL}
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
// JS Math.pow semantics: pow(x, 0) = 1 (even for NaN), any other NaN operand gives NaN, -0
// keeps its sign under odd integer exponents, negative bases need integer exponents.
const POW_WGSL = `${NAN_WGSL}
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
const powP = binaryPrim(
  "pow",
  { cpu: (a, b) => Math.pow(a, b), wgsl: "pow_(a, b)", helpers: POW_WGSL },
  ([g], c) => {
    const [a, b] = c.inputs;
    const y = c.outputs[0];
    // d/da a^b = b a^(b-1); d/db a^b = a^b log a (taken as 0 where a <= 0).
    const da = mul(g, mul(b, pow(a, sub(b, 1))));
    const safe = where(greater(a, 0), a, 1);
    const db = mul(g, mul(y, log(safe)));
    return [da, db];
  },
);
const maxP = binaryPrim(
  "maximum",
  {
    cpu: (a, b) => Math.max(a, b),
    wgsl: (t) => (t === "f32" ? "fmax_(a, b)" : "max(a, b)"),
    helpers: MINMAX_WGSL,
  },
  ([g], c) => [where(greaterEqual(x(c, 0), x(c, 1)), g, 0), where(less(x(c, 0), x(c, 1)), g, 0)],
  AB,
);
const minP = binaryPrim(
  "minimum",
  {
    cpu: (a, b) => Math.min(a, b),
    wgsl: (t) => (t === "f32" ? "fmin_(a, b)" : "min(a, b)"),
    helpers: MINMAX_WGSL,
  },
  ([g], c) => [where(greaterEqual(x(c, 1), x(c, 0)), g, 0), where(less(x(c, 1), x(c, 0)), g, 0)],
  AB,
);

/** `a + b` with broadcasting. @example ```ts
 * import { add, tensor } from "@longseq/tensor";
 * console.log(await add(tensor([[1], [2]]), tensor([10, 20])).array()); // [[11, 21], [12, 22]]
 * ``` */
export const add = (a: TensorLike, b: TensorLike): Tensor => applyBinary(addP, a, b);
/** `a - b` with broadcasting. */
export const sub = (a: TensorLike, b: TensorLike): Tensor => applyBinary(subP, a, b);
/** `a * b` with broadcasting (i32/u32 products wrap to 32 bits on both backends). */
export const mul = (a: TensorLike, b: TensorLike): Tensor => applyBinary(mulP, a, b);
/** True division `a / b` (integers are promoted to f32). */
export const div = (a: TensorLike, b: TensorLike): Tensor =>
  applyBinary(divP, a, b, { floatOnly: true });
/**
 * `a ** b` in f32 (negative bases need integer exponents, else NaN), with JS `Math.pow`'s
 * special values on both backends (`x ** 0` is 1 even for NaN; `1 ** NaN` is NaN). On WebGPU
 * it is `exp2(b * log2(a))`, so results agree with the CPU to about 1e-5 relative.
 */
export const pow = (a: TensorLike, b: TensorLike): Tensor =>
  applyBinary(powP, a, b, { floatOnly: true });
/**
 * Elementwise maximum (the gradient goes to `a` on ties). NaN propagates (NumPy `maximum`,
 * JAX) and `maximum(-0, 0)` is +0, on both backends.
 */
export const maximum = (a: TensorLike, b: TensorLike): Tensor => applyBinary(maxP, a, b);
/**
 * Elementwise minimum (the gradient goes to `a` on ties). NaN propagates and `minimum(-0, 0)`
 * is -0, on both backends.
 */
export const minimum = (a: TensorLike, b: TensorLike): Tensor => applyBinary(minP, a, b);

// Float to integer casts saturate: truncate toward zero, clamp to the type's range, NaN to 0.
const CAST_WGSL = `${NAN_WGSL}
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

function castExpr(from: DType, to: DType): string {
  if (to === "bool") {
    return from === "f32"
      ? "select(0u, 1u, a != 0.0 || nan_(a))"
      : `select(0u, 1u, a != ${dtypeInfo(from).wgsl}(0))`;
  }
  if (from === "f32" && to === "i32") return "f2i_(a)";
  if (from === "f32" && to === "u32") return "f2u_(a)";
  return `${dtypeInfo(to).wgsl}(a)`;
}

/** The CPU cast from `from` to `to` (the typed array's store wraps integers to 32 bits). */
function castCpu(from: DType, to: DType): (a: number) => number {
  if (to === "bool") return (a) => (a !== 0 ? 1 : 0); // NaN is non-zero: true
  if (from !== "f32" || to === "f32") return (a) => a;
  const [lo, hi] = to === "i32" ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1];
  return (a) => (a !== a ? 0 : a <= lo ? lo : a >= hi ? hi : Math.trunc(a));
}

const castPrim = definePrimitive<DType>({
  name: "cast",
  saves: { inputs: [], outputs: [] },
  forward: ([t], to) => [
    runElementwise(
      "cast",
      { cpu: castCpu(t.dtype, to), wgsl: (from) => castExpr(from, to), helpers: CAST_WGSL },
      [t],
      t.shape,
      to,
    ),
  ],
  vjp: ([g], c) => [c.inputs[0].dtype === "f32" ? g : null],
});

/**
 * Converts to another dtype. Returns a new tensor even when the dtype is unchanged.
 *
 * - f32 to i32/u32 truncates toward zero and saturates: values past the type's range become
 *   its nearest bound (`inf` and `3e38` give 2147483647 as i32, negative values 0 as u32) and
 *   NaN gives 0, on both backends (as WGSL and JAX on GPU do).
 * - Between i32 and u32 the 32 bits are reinterpreted (-1 becomes 4294967295), as in NumPy.
 * - To bool tests `!= 0`; NaN is true.
 * - i32/u32 to f32 rounds to the nearest f32.
 *
 * @example
 * ```ts
 * import { cast, tensor } from "@longseq/tensor";
 * console.log(await cast(tensor([1.7, -1.7]), "i32").array()); // [1, -1]
 * ```
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  dtypeInfo(dtype, "cast");
  return bind1(castPrim, [x], dtype);
}
