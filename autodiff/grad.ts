/**
 * `grad`, `valueAndGrad` and `stopGradient`: the scalar-loss front end of `vjp`. Each call runs
 * in its own scope, so a training step keeps only the value, the aux outputs and the
 * gradients; everything recorded for the backward pass is freed before it returns.
 * @module
 */
import { fmt, Tensor } from "../ops/tensor.ts";
import { isFloat } from "../kernels/dtype.ts";
import { onesLike } from "../ops/creation.ts";
import { vjp } from "./vjp.ts";
import { scope } from "../ops/scope.ts";
import { mapTree } from "./pytree.ts";

/** Which arguments {@linkcode grad} differentiates: one index, or a list of indices. */
export type Argnums = number | readonly number[];

/** Options of {@linkcode grad} and {@linkcode valueAndGrad}. */
export interface GradOptions<N extends Argnums = Argnums, A extends boolean = boolean> {
  /**
   * Which arguments to differentiate: one index (the gradient is returned alone) or a list
   * (a list of gradients is returned). Default 0.
   */
  argnums?: N;
  /** `f` returns `[loss, aux]`; `aux` is returned as is, not differentiated. Default false. */
  hasAux?: A;
}

/**
 * The gradients {@linkcode grad} returns for arguments `Args` and `argnums` `N`: shaped like
 * the chosen argument (one index), or a tuple of them (a list). A gradient has the structure
 * of its argument (a tensor per tensor leaf).
 */
export type GradsOf<Args extends readonly unknown[], N extends Argnums> = N extends number ? Args[N]
  : { -readonly [K in keyof N]: Args[N[K] & number] };

function checkArgnums(op: string, argnums: number | readonly number[], n: number): number[] {
  const list = typeof argnums === "number" ? [argnums] : [...argnums];
  if (list.length === 0) throw new RangeError(`${op}: argnums must not be empty`);
  for (const a of list) {
    if (!Number.isInteger(a) || a < 0 || a >= n) {
      throw new RangeError(
        `${op}: argnums entry ${a} is out of range for ${n} argument${n === 1 ? "" : "s"}`,
      );
    }
  }
  if (new Set(list).size !== list.length) {
    throw new RangeError(`${op}: argnums [${list.join(",")}] repeats an argument`);
  }
  return list;
}

/**
 * Returns a function computing `[f(...args), gradient]`, where the gradient is taken with
 * respect to the arguments chosen by `argnums` (default the first); each is a pytree (plain
 * objects and arrays of tensors, like model parameters) and its gradient has the same
 * structure. `f` must return a scalar f32 tensor (shape `[]`), or `[scalar, aux]` with
 * `hasAux`, in which case the result is `[[value, aux], gradient]`.
 *
 * The call runs in its own scope: only the value, aux and gradients survive it, so a training
 * loop leaks nothing. Calls nest: `grad(grad(f))` differentiates the gradient computation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matmul, square, sub, sum, type Tensor, tensor, valueAndGrad } from "@longseq/tensor";
 * const loss = (p: { w: Tensor }, x: Tensor) => sum(square(sub(matmul(x, p.w), 1)));
 * const [value, grads] = valueAndGrad(loss)({ w: tensor([[1], [2]]) }, tensor([[1, 1]]));
 * assert.equal(await value.array(), 4); // (1 + 2 - 1)^2
 * assert.deepEqual(await grads.w.array(), [[4], [4]]); // 2 (x w - 1) x^T
 * ```
 */
export function valueAndGrad<Args extends unknown[], Aux, const N extends Argnums = 0>(
  f: (...args: Args) => readonly [Tensor, Aux],
  options: GradOptions<N, true>,
): (...args: Args) => [[Tensor, Aux], GradsOf<Args, N>];
/** Without `hasAux`: `f` returns the scalar loss. */
export function valueAndGrad<Args extends unknown[], const N extends Argnums = 0>(
  f: (...args: Args) => Tensor,
  options?: GradOptions<N, false>,
): (...args: Args) => [Tensor, GradsOf<Args, N>];
/** Options known only at run time: the value and gradients are untyped. */
export function valueAndGrad<Args extends unknown[]>(
  f: (...args: Args) => unknown,
  options?: GradOptions,
): (...args: Args) => [unknown, unknown];
export function valueAndGrad<Args extends unknown[]>(
  f: (...args: Args) => unknown,
  options: GradOptions = {},
): (...args: Args) => [unknown, unknown] {
  const { argnums = 0, hasAux = false } = options;
  if (typeof f !== "function") {
    throw new TypeError(`valueAndGrad: f must be a function, got ${typeof f}`);
  }
  return (...args: Args) => {
    const nums = checkArgnums("grad", argnums, args.length);
    for (const a of nums) {
      const x = args[a];
      if (x instanceof Tensor && !isFloat(x.dtype)) {
        throw new TypeError(
          `grad: argument ${a} is a ${x.dtype} tensor ${fmt(x.shape)}; only float (f32, f16) ` +
            "tensors can be differentiated (leave it out of argnums, or cast it to f32)",
        );
      }
    }
    return scope(() => {
      const chosen = nums.map((a) => args[a]);
      const [out, pullback] = vjp((...xs: unknown[]) => {
        const full = [...args] as unknown[];
        nums.forEach((a, j) => (full[a] = xs[j]));
        return f(...(full as Args));
      }, ...chosen);
      let value: unknown = out, aux: unknown;
      if (hasAux) {
        if (!Array.isArray(out) || out.length !== 2) {
          throw new TypeError("grad: with hasAux, f must return [loss, aux]");
        }
        [value, aux] = out;
      }
      if (!(value instanceof Tensor)) {
        throw new TypeError(`grad: f must return a scalar float tensor, got ${typeof value}`);
      }
      if (value.rank !== 0 || !isFloat(value.dtype)) {
        throw new TypeError(
          `grad: f must return a scalar float tensor (shape []), got ${value.dtype}${
            fmt(value.shape)
          }; reduce it (e.g. with sum or mean) or use vjp for non-scalar outputs`,
        );
      }
      using seed = onesLike(value);
      const cts = pullback((hasAux ? [seed, null] : seed) as never) as unknown[];
      const grads = typeof argnums === "number" ? cts[0] : cts;
      return hasAux ? [[value, aux], grads] : [value, grads];
    }) as [unknown, unknown];
  };
}

/**
 * Returns a function computing the gradient of the scalar `f` with respect to the arguments
 * chosen by `argnums` (default the first), shaped like them. With `hasAux`, `f` returns
 * `[loss, aux]` and the result is `[gradient, aux]`. See {@linkcode valueAndGrad}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, grad, sum, tanh, type Tensor, tensor } from "@longseq/tensor";
 * const f = (x: Tensor) => sum(tanh(x));
 * const d2 = grad((x: Tensor) => sum(grad(f)(x)));
 * assert.deepEqual(await grad(f)(tensor([0])).array(), [1]);
 * assert.ok(await allClose(d2(tensor([0])), [0])); // -2 tanh(0) (1 - tanh(0)^2)
 * ```
 */
export function grad<Args extends unknown[], Aux, const N extends Argnums = 0>(
  f: (...args: Args) => readonly [Tensor, Aux],
  options: GradOptions<N, true>,
): (...args: Args) => [GradsOf<Args, N>, Aux];
/** Without `hasAux`: `f` returns the scalar loss. */
export function grad<Args extends unknown[], const N extends Argnums = 0>(
  f: (...args: Args) => Tensor,
  options?: GradOptions<N, false>,
): (...args: Args) => GradsOf<Args, N>;
/** Options known only at run time: the gradients are untyped. */
export function grad<Args extends unknown[]>(
  f: (...args: Args) => unknown,
  options?: GradOptions,
): (...args: Args) => unknown;
export function grad<Args extends unknown[]>(
  f: (...args: Args) => unknown,
  options: GradOptions = {},
): (...args: Args) => unknown {
  const vg = valueAndGrad(f, options);
  return (...args: Args) => {
    const [v, g] = vg(...args);
    if (options.hasAux) {
      (v as [Tensor, unknown])[0].dispose();
      return [g, (v as [Tensor, unknown])[1]];
    }
    (v as Tensor).dispose();
    return g;
  };
}

/**
 * The same values with no gradient: every tensor of the pytree is returned as a new handle on
 * the same data that autodiff treats as a constant.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grad, mul, stopGradient, sum, type Tensor, tensor } from "@longseq/tensor";
 * const f = (x: Tensor) => sum(mul(x, stopGradient(x)));
 * assert.deepEqual(await grad(f)(tensor([3])).array(), [3]); // not [6]
 * ```
 */
export function stopGradient<T>(x: T): T {
  return mapTree<T>(x, (leaf) => (leaf instanceof Tensor ? leaf.view(leaf.shape) : leaf));
}
