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
  { cpu: (a, b) => a * b, wgsl: "a * b" },
  ([g], c) => [mul(g, x(c, 1)), mul(g, x(c, 0))],
  AB,
);
const divP = binaryPrim(
  "div",
  { cpu: (a, b) => a / b, wgsl: "a / b" },
  ([g], c) => [div(g, x(c, 1)), neg(div(mul(g, x(c, 0)), square(x(c, 1))))],
  AB,
);
const POW_WGSL = `
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x == 0.0) { return select(0.0, bitcast<f32>(0x7f800000u), y < 0.0); }
  if (x > 0.0) { return exp2(y * log2(x)); }
  if (y != round(y)) { return bitcast<f32>(0x7fc00000u); }
  let m = exp2(y * log2(-x));
  return select(m, -m, (abs(y) % 2.0) == 1.0);
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
  { cpu: (a, b) => Math.max(a, b), wgsl: "max(a, b)" },
  ([g], c) => [where(greaterEqual(x(c, 0), x(c, 1)), g, 0), where(less(x(c, 0), x(c, 1)), g, 0)],
  AB,
);
const minP = binaryPrim(
  "minimum",
  { cpu: (a, b) => Math.min(a, b), wgsl: "min(a, b)" },
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
/** `a * b` with broadcasting. */
export const mul = (a: TensorLike, b: TensorLike): Tensor => applyBinary(mulP, a, b);
/** True division `a / b` (integers are promoted to f32). */
export const div = (a: TensorLike, b: TensorLike): Tensor =>
  applyBinary(divP, a, b, { floatOnly: true });
/** `a ** b` in f32 (negative bases need integer exponents, else NaN). */
export const pow = (a: TensorLike, b: TensorLike): Tensor =>
  applyBinary(powP, a, b, { floatOnly: true });
/** Elementwise maximum (the gradient goes to `a` on ties). */
export const maximum = (a: TensorLike, b: TensorLike): Tensor => applyBinary(maxP, a, b);
/** Elementwise minimum (the gradient goes to `a` on ties). */
export const minimum = (a: TensorLike, b: TensorLike): Tensor => applyBinary(minP, a, b);

function castExpr(from: DType, to: DType): string {
  if (to === "bool") return `select(0u, 1u, a != ${dtypeInfo(from).wgsl}(0))`;
  return `${dtypeInfo(to).wgsl}(a)`;
}

const castPrim = definePrimitive<DType>({
  name: "cast",
  saves: { inputs: [], outputs: [] },
  forward: ([t], to) => [
    runElementwise(
      "cast",
      {
        cpu: to === "bool" ? (a) => (a !== 0 ? 1 : 0) : (a) => a,
        wgsl: (from) => castExpr(from, to),
      },
      [t],
      t.shape,
      to,
    ),
  ],
  vjp: ([g], c) => [c.inputs[0].dtype === "f32" ? g : null],
});

/**
 * Converts to another dtype (float to int truncates toward zero; anything to bool tests != 0).
 * Returns a new tensor even when the dtype is unchanged.
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
