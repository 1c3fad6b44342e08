/**
 * Comparisons, logical ops, `where` and `clip`. Comparisons and logical ops return `bool` and
 * have no gradient; `where` routes the cotangent to the chosen branch.
 * @module
 */
import { type DType, dtypeInfo, promoteTypes } from "../kernels/dtype.ts";
import { bind1, definePrimitive } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { runElementwise, sameDevice } from "./kernel.ts";
import { broadcastShapes } from "./broadcast.ts";
import {
  applyBinary,
  cast,
  maximum,
  minimum,
  NAN_WGSL,
  pair,
  scalarLike,
  type TensorLike,
} from "./binary.ts";
import { zerosLike } from "./creation.ts";

/** A binary op over tensors or numbers. */
export type BinaryFn = (a: TensorLike, b: TensorLike) => Tensor;

/** The WGSL zero literal of a dtype's storage type. */
const zeroOf = (t: DType) => `${dtypeInfo(t).wgsl}(0)`;
/**
 * WGSL truthiness of `x` of dtype `t` (non-zero; NaN is true). NaN tests look at the bits:
 * GPU compilers may assume no NaN in float compares, so `NaN != 0.0` can come out false.
 */
const truthy = (t: DType, x: string) =>
  t === "f32" ? `(${x} != 0.0 || nan_(${x}))` : `(${x} != ${zeroOf(t)})`;
/** WGSL `a op b` with IEEE NaN semantics (only `!=` holds when an operand is NaN). */
const compareExpr = (t: DType, op: string) =>
  t !== "f32"
    ? `a ${op} b`
    : op === "!="
    ? "(nan_(a) || nan_(b) || a != b)"
    : `(!(nan_(a) || nan_(b)) && a ${op} b)`;

/** Names of the comparison and logical binary ops (the special-values test runs them all). */
export const COMPARE_OPS: string[] = [];

function comparison(name: string, js: (a: number, b: number) => boolean, wgslOp: string) {
  COMPARE_OPS.push(name);
  const prim = definePrimitive<undefined>({
    name,
    forward: ([a, b]) => [
      runElementwise(
        name,
        {
          cpu: (x, y) => (js(x, y) ? 1 : 0),
          wgsl: (t) => `select(0u, 1u, ${compareExpr(t, wgslOp)})`,
          helpers: NAN_WGSL,
        },
        [a, b],
        broadcastShapes(name, a.shape, b.shape),
        "bool",
      ),
    ],
    vjp: "none",
  });
  return (a: TensorLike, b: TensorLike): Tensor => applyBinary(prim, a, b, { allowBool: true });
}

/** `a == b` elementwise, as bool. @example ```ts
 * import { equal, tensor } from "@longseq/tensor";
 * console.log(await equal(tensor([1, 2]), 2).array()); // [false, true]
 * ``` */
export const equal: BinaryFn = comparison("equal", (a, b) => a === b, "==");
/** `a != b` elementwise, as bool. */
export const notEqual: BinaryFn = comparison("notEqual", (a, b) => a !== b, "!=");
/** `a < b` elementwise, as bool. */
export const less: BinaryFn = comparison("less", (a, b) => a < b, "<");
/** `a <= b` elementwise, as bool. */
export const lessEqual: BinaryFn = comparison("lessEqual", (a, b) => a <= b, "<=");
/** `a > b` elementwise, as bool. */
export const greater: BinaryFn = comparison("greater", (a, b) => a > b, ">");
/** `a >= b` elementwise, as bool. */
export const greaterEqual: BinaryFn = comparison("greaterEqual", (a, b) => a >= b, ">=");

function logical(name: string, js: (a: boolean, b: boolean) => boolean, wgslOp: string) {
  COMPARE_OPS.push(name);
  const prim = definePrimitive<undefined>({
    name,
    forward: ([a, b]) => [
      runElementwise(
        name,
        {
          cpu: (x, y) => (js(x !== 0, y !== 0) ? 1 : 0),
          wgsl: (t) => `select(0u, 1u, ${truthy(t, "a")} ${wgslOp} ${truthy(t, "b")})`,
          helpers: NAN_WGSL,
        },
        [a, b],
        broadcastShapes(name, a.shape, b.shape),
        "bool",
      ),
    ],
    vjp: "none",
  });
  return (a: TensorLike, b: TensorLike): Tensor => applyBinary(prim, a, b, { allowBool: true });
}

/** Elementwise logical and (non-zero is true), as bool. */
export const logicalAnd: BinaryFn = logical("logicalAnd", (a, b) => a && b, "&&");
/** Elementwise logical or (non-zero is true), as bool. */
export const logicalOr: BinaryFn = logical("logicalOr", (a, b) => a || b, "||");

const notPrim = definePrimitive<undefined>({
  name: "logicalNot",
  forward: ([a]) => [
    runElementwise(
      "logicalNot",
      {
        cpu: (x) => (x === 0 ? 1 : 0),
        wgsl: (t) => `select(1u, 0u, ${truthy(t, "a")})`,
        helpers: NAN_WGSL,
      },
      [a],
      a.shape,
      "bool",
    ),
  ],
  vjp: "none",
});

/** Elementwise logical not (zero becomes true), as bool. */
export function logicalNot(x: Tensor): Tensor {
  return bind1(notPrim, [x], undefined);
}

const wherePrim = definePrimitive<undefined>({
  name: "where",
  saves: { inputs: [0], outputs: [] },
  forward: ([c, a, b]) => [
    runElementwise(
      "where",
      {
        cpu: (x, y, z) => (x !== 0 ? y : z),
        wgsl: (t) => `select(c, b, ${truthy(t, "a")})`,
        helpers: NAN_WGSL,
      },
      [c, a, b],
      broadcastShapes("where", c.shape, a.shape, b.shape),
      a.dtype,
    ),
  ],
  vjp: ([g], ctx) => {
    const [c] = ctx.inputs;
    using z = zerosLike(g);
    return [null, where(c, g, z), where(c, z, g)];
  },
});

/**
 * Picks `a` where `cond` is non-zero, else `b`, with broadcasting over all three.
 *
 * @example
 * ```ts
 * import { tensor, where } from "@longseq/tensor";
 * console.log(await where(tensor([true, false]), 1, tensor([5, 6])).array()); // [1, 6]
 * ```
 */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [ta, tb, made] = pair("where", a, b, 1);
  try {
    broadcastShapes("where", cond.shape, ta.shape, tb.shape);
    sameDevice("where", [cond, ta, tb]);
    const dtype = promoteTypes(ta.dtype, tb.dtype);
    const ca = ta.dtype === dtype ? ta : (made[made.length] = cast(ta, dtype));
    const cb = tb.dtype === dtype ? tb : (made[made.length] = cast(tb, dtype));
    return bind1(wherePrim, [cond, ca, cb], undefined);
  } finally {
    for (const t of made) t.dispose();
  }
}

/**
 * Limits values to `[lo, hi]` (either bound may be omitted with `undefined`).
 *
 * @example
 * ```ts
 * import { clip, tensor } from "@longseq/tensor";
 * console.log(await clip(tensor([-2, 0.5, 3]), 0, 1).array()); // [0, 0.5, 1]
 * ```
 */
export function clip(x: Tensor, lo?: TensorLike, hi?: TensorLike): Tensor {
  if (typeof lo === "number" && typeof hi === "number" && lo > hi) {
    throw new RangeError(`clip: lower bound ${lo} exceeds upper bound ${hi}`);
  }
  const low = lo === undefined ? x : maximum(x, lo);
  if (hi === undefined) return low === x ? cast(x, x.dtype) : low;
  const out = minimum(low, hi);
  if (low !== x) low.dispose();
  return out;
}

export { scalarLike };
