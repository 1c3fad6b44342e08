/**
 * The factory of elementwise unary primitives (`unary.ts` and the files beside it): each entry
 * is a dtype rule plus its VJP rule; the kernels are the backends' elementwise
 * table entries of the same name.
 * @module
 */
import { type DType, isFloat } from "../kernels/dtype.ts";
import { bind1, definePrimitive, type Primitive, type VjpRule } from "./primitive.ts";
import type { Tensor } from "./tensor.ts";
import { runElementwise } from "./elementwise.ts";
import { cast } from "./binary.ts";

/** One unary elementwise primitive: gradient and dtype rule. */
export interface UnaryEntry {
  /** Integer inputs are cast to f32 first (NumPy style). */
  floatOnly: boolean;
  /** The VJP rule, or `"none"` (bool results, piecewise constant functions). */
  vjp: VjpRule<undefined> | "none";
  /** What the VJP rule reads (see `Primitive.saves`). */
  saves?: { inputs: number[]; outputs: number[] };
  /** The result dtype (default: the input's). */
  outDtype?: (inDtype: DType) => DType;
  /** Whether bool inputs are accepted (default false). */
  allowBool?: boolean;
}

/** Builds the primitive of `entry` and returns the public function applying it. */
export function defineUnary(
  name: string,
  entry: UnaryEntry,
): { fn: (x: Tensor) => Tensor; prim: Primitive<undefined> } {
  const prim = definePrimitive<undefined>({
    name,
    forward: ([x]) => [
      runElementwise(name, [x], x.shape, entry.outDtype?.(x.dtype) ?? x.dtype),
    ],
    vjp: entry.vjp,
    saves: entry.saves,
  });
  const fn = (x: Tensor): Tensor => {
    if (x.dtype === "bool" && !entry.allowBool) {
      throw new TypeError(`${name}: bool input ${x.toString()} is not supported; cast it first`);
    }
    if (entry.floatOnly && !isFloat(x.dtype)) {
      using f = cast(x, "f32");
      return bind1(prim, [f], undefined);
    }
    return bind1(prim, [x], undefined);
  };
  return { fn, prim };
}
