/**
 * Arithmetic binary ops with NumPy broadcasting, and `cast`: each primitive's dtype rule and
 * VJP rule; the kernels are the entries of the same name in the backends' elementwise tables.
 * The walker un-broadcasts cotangents, so rules return them in the output's shape.
 * @module
 */
import { type DType, dtypeInfo, isFloat, promoteTypes } from "../kernels/dtype.ts";
import { bind1, definePrimitive, type Primitive, SAVES, type VjpRule } from "./primitive.ts";
import { assertLive, deviceOf, Tensor } from "./tensor.ts";
import { runElementwise } from "./elementwise.ts";
import { sameDevice } from "./validate.ts";
import { broadcastShapes } from "./broadcast.ts";
import { log, neg, square } from "./unary.ts";
import { greater, greaterEqual, less, where } from "./compare.ts";

/** A tensor, or a JS number that takes the other operand's dtype and device. */
export type TensorLike = Tensor | number;

/** A scalar tensor holding `v` on the device of `like`, in `like`'s dtype (f32 if `v` is fractional). */
export function scalarLike(v: number, like: Tensor): Tensor {
  const dtype: DType = isFloat(like.dtype) || Number.isInteger(v) ? like.dtype : "f32";
  return Tensor.scalar(deviceOf(like), v, dtype === "bool" ? "f32" : dtype);
}

/** Converts a pair of tensor-likes to tensors; returns those it created so the caller frees them. */
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

/** Defines a broadcasting binary primitive over operands of one dtype. */
function binaryPrim(
  name: string,
  vjp: VjpRule<undefined>,
  saves?: Primitive<undefined>["saves"],
) {
  return definePrimitive<undefined>({
    name,
    saves,
    forward: ([a, b]) => {
      const shape = broadcastShapes(name, a.shape, b.shape);
      return [runElementwise(name, [a, b], shape, a.dtype)];
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
    if (floatOnly && !isFloat(dtype)) dtype = "f32";
    const ca = ta.dtype === dtype ? ta : (made[made.length] = cast(ta, dtype));
    const cb = tb.dtype === dtype ? tb : (made[made.length] = cast(tb, dtype));
    return bind1(prim, [ca, cb], undefined);
  } finally {
    for (const t of made) t.dispose();
  }
}

const x = (c: { inputs: readonly Tensor[] }, i: number) => c.inputs[i];

// Which values each rule reads: none (add, sub) or both operands (mul, div, maximum, minimum).
const addP = binaryPrim("add", ([g]) => [g, g], SAVES.nothing);
const subP = binaryPrim("sub", ([g]) => [g, neg(g)], SAVES.nothing);
const mulP = binaryPrim(
  "mul",
  ([g], c) => [mul(g, x(c, 1)), mul(g, x(c, 0))],
  SAVES.inputs,
);
const divP = binaryPrim(
  "div",
  ([g], c) => [div(g, x(c, 1)), neg(div(mul(g, x(c, 0)), square(x(c, 1))))],
  SAVES.inputs,
);
const powP = binaryPrim(
  "pow",
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
  ([g], c) => [where(greaterEqual(x(c, 0), x(c, 1)), g, 0), where(less(x(c, 0), x(c, 1)), g, 0)],
  SAVES.inputs,
);
const minP = binaryPrim(
  "minimum",
  ([g], c) => [where(greaterEqual(x(c, 1), x(c, 0)), g, 0), where(less(x(c, 1), x(c, 0)), g, 0)],
  SAVES.inputs,
);

/**
 * `a + b` with broadcasting.
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape and the promoted dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { add, tensor } from "@longseq/tensor";
 * const y = add(tensor([[1], [2]]), tensor([10, 20])); // [2, 1] + [2] -> [2, 2]
 * assert.deepEqual(await y.array(), [[11, 21], [12, 22]]);
 * assert.deepEqual(await add(tensor([1, 2]), 0.5).array(), [1.5, 2.5]);
 * ```
 */
export const add = (a: TensorLike, b: TensorLike): Tensor => applyBinary(addP, a, b);
/**
 * `a - b` with broadcasting.
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape and the promoted dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sub, tensor } from "@longseq/tensor";
 * assert.deepEqual(await sub(tensor([[5, 6]]), tensor([[1], [2]])).array(), [[4, 5], [3, 4]]);
 * assert.deepEqual(await sub(10, tensor([1, 2])).array(), [9, 8]);
 * ```
 */
export const sub = (a: TensorLike, b: TensorLike): Tensor => applyBinary(subP, a, b);
/**
 * `a * b` with broadcasting (i32/u32 products wrap to 32 bits on both backends).
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape and the promoted dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mul, tensor } from "@longseq/tensor";
 * assert.deepEqual(await mul(tensor([[1, 2], [3, 4]]), tensor([10, -1])).array(), [[10, -2], [30, -4]]);
 * ```
 */
export const mul = (a: TensorLike, b: TensorLike): Tensor => applyBinary(mulP, a, b);
/**
 * True division `a / b` (integers are promoted to f32).
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `f32`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { div, tensor } from "@longseq/tensor";
 * const q = div(tensor([1, 3], { dtype: "i32" }), 2);
 * assert.equal(q.dtype, "f32");
 * assert.deepEqual(await q.array(), [0.5, 1.5]);
 * ```
 */
export const div = (a: TensorLike, b: TensorLike): Tensor =>
  applyBinary(divP, a, b, { floatOnly: true });
/**
 * `a ** b` in f32 (negative bases need integer exponents, else NaN), with JS `Math.pow`'s
 * special values on both backends (`x ** 0` is 1 even for NaN; `1 ** NaN` is NaN). On WebGPU
 * it is `exp2(b * log2(a))`, so results agree with the CPU to about 1e-5 relative.
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape, in `f32`.
 *
 * @example
 * ```ts
 * import { assertAllClose, pow, tensor } from "@longseq/tensor";
 * await assertAllClose(pow(tensor([2, 9, -2]), tensor([3, 0.5, 2])), [8, 3, 4]);
 * await assertAllClose(pow(tensor([-8]), 1 / 3), [NaN]);
 * ```
 */
export const pow = (a: TensorLike, b: TensorLike): Tensor =>
  applyBinary(powP, a, b, { floatOnly: true });
/**
 * Elementwise maximum (the gradient goes to `a` on ties). NaN propagates (NumPy `maximum`,
 * JAX) and `maximum(-0, 0)` is +0, on both backends.
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape and the promoted dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maximum, tensor } from "@longseq/tensor";
 * assert.deepEqual(await maximum(tensor([1, 5, NaN]), 2).array(), [2, 5, NaN]);
 * ```
 */
export const maximum = (a: TensorLike, b: TensorLike): Tensor => applyBinary(maxP, a, b);
/**
 * Elementwise minimum (the gradient goes to `a` on ties). NaN propagates and `minimum(-0, 0)`
 * is -0, on both backends.
 *
 * `a`, `b`: tensors of broadcastable shapes (or one JS number); the result has the broadcast
 * shape and the promoted dtype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { minimum, tensor } from "@longseq/tensor";
 * assert.deepEqual(await minimum(tensor([1, 5]), tensor([[2], [0]])).array(), [[1, 2], [0, 0]]);
 * ```
 */
export const minimum = (a: TensorLike, b: TensorLike): Tensor => applyBinary(minP, a, b);

const castPrim = definePrimitive<DType>({
  name: "cast",
  saves: { inputs: [], outputs: [] },
  forward: ([t], to) => [
    runElementwise("cast", [t], t.shape, to),
  ],
  // The walker casts the cotangent back to the input's dtype (f16 or f32).
  vjp: ([g], c) => [isFloat(c.inputs[0].dtype) ? g : null],
});

/**
 * Converts to another dtype.
 *
 * - f32 to i32/u32 truncates toward zero and saturates: values past the type's range become
 *   its nearest bound (`inf` and `3e38` give 2147483647 as i32, negative values 0 as u32) and
 *   NaN gives 0, on both backends (as WGSL and JAX on GPU do).
 * - Between i32 and u32 the 32 bits are reinterpreted (-1 becomes 4294967295), as in NumPy.
 * - To bool tests `!= 0`; NaN is true.
 * - i32/u32 to f32 rounds to the nearest f32.
 *
 * Returns a new tensor even when the dtype is unchanged.
 *
 * `x`: any shape; the result has `x`'s shape, in `dtype`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cast, tensor } from "@longseq/tensor";
 * assert.deepEqual(await cast(tensor([1.7, -1.7]), "i32").array(), [1, -1]);
 * assert.deepEqual(await cast(tensor([0, 2, NaN]), "bool").array(), [false, true, true]);
 * assert.deepEqual(await cast(tensor([-1], { dtype: "i32" }), "u32").array(), [4294967295]);
 * ```
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  dtypeInfo(dtype, "cast");
  return bind1(castPrim, [x], dtype);
}
