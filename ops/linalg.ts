/**
 * Linear-algebra helpers: `norm` (vector and matrix norms as `jnp.linalg.norm`) and `outer`.
 * Both are compositions, so their gradients come from their parts.
 * @module
 */
import { isFloat } from "../kernels/dtype.ts";
import { checkTensor, normAxes, rejectBool } from "./validate.ts";
import { fmt, type Tensor } from "./tensor.ts";
import { cast, div, maximum, mul, pow } from "./binary.ts";
import { abs, sqrt, square } from "./unary.ts";
import { isNonZero } from "./logical.ts";
import { matmul } from "./matmul.ts";
import { argmax } from "./arg_reduce.ts";
import { takeAlongAxis } from "./indexing.ts";
import { moveaxis } from "./rearrange.ts";
import { broadcastTo, reshape, transpose } from "./shape.ts";
import { max, min, reducedShape, type ReduceOptions, rejectEmpty, sum } from "./reduce.ts";
import { scope } from "./scope.ts";

/** A norm order: a number (`Infinity` and `-Infinity` included) or `"fro"` (Frobenius). */
export type NormOrd = number | "fro";

const MATRIX_ORDS = `"fro", 1, -1, 2, Infinity and -Infinity`;

/** Squarings of the Gram matrix: the same as 2^24 power-iteration steps. */
const SQUARINGS = 24;

/**
 * The spectral norm (largest singular value) of the matrices `x[..., r, c]`. The Gram matrix
 * `G` (over the smaller side) is squared and rescaled `SQUARINGS` times, so `G^(2^k)` is, up
 * to scale, the projection onto `G`'s top eigenvectors however close the second eigenvalue
 * is (a pair with equal top values gives the same norm from either). Its largest column is a
 * top right singular vector `v`, held constant, and the norm is `|x v|`: its gradient is then
 * exactly `u v^T`, the spectral norm's derivative where the top singular value is simple.
 */
function spectralNorm(x: Tensor, [r, c]: number[]): Tensor {
  rejectEmpty("norm", x, [r, c]);
  const m = moveaxis(x, [r, c], [-2, -1]);
  const [rows, cols] = m.shape.slice(-2);
  // Right singular vectors of m, or of m^T when it is wide (a smaller Gram matrix).
  const a = rows >= cols ? m : swapLast(m);
  const frozen = a.view(a.shape);
  let g = matmul(frozen, frozen, { transposeA: true });
  for (let i = 0; i < SQUARINGS; i++) {
    using sq = matmul(g, g);
    using a = abs(sq);
    using top = max(a, [-2, -1], { keepdims: true });
    using scale = maximum(top, 1e-30);
    g.dispose();
    g = div(sq, scale);
  }
  const colNorms = sum(square(g), -2, { keepdims: true });
  const best = argmax(colNorms, -1, { keepdims: true });
  const col = takeAlongAxis(g, broadcastTo(best, [...g.shape.slice(0, -1), 1]), -1);
  const v = div(col, maximum(sqrt(sum(square(col), -2, { keepdims: true })), 1e-30));
  return sqrt(sum(square(matmul(a, v)), [-2, -1]));
}

/** `m` with its last two axes swapped. */
function swapLast(m: Tensor): Tensor {
  const perm = m.shape.map((_, i) => i);
  [perm[m.rank - 2], perm[m.rank - 1]] = [perm[m.rank - 1], perm[m.rank - 2]];
  return transpose(m, perm);
}

function vectorNorm(x: Tensor, ord: NormOrd | undefined, ax: number[]): Tensor {
  if (ord === undefined || ord === 2) return sqrt(sum(square(x), ax, { keepdims: true }));
  if (ord === "fro" || typeof ord !== "number" || Number.isNaN(ord)) {
    throw new RangeError(
      `norm: invalid order ${JSON.stringify(ord)} for a vector norm (axis [${ax}]); use a ` +
        "number (Infinity, -Infinity, 0 included)",
    );
  }
  if (ord === Infinity || ord === -Infinity) {
    rejectEmpty("norm", x, ax);
    return (ord > 0 ? max : min)(abs(x), ax, { keepdims: true });
  }
  if (ord === 0) return sum(cast(isNonZero(x), "f32"), ax, { keepdims: true });
  if (ord === 1) return sum(abs(x), ax, { keepdims: true });
  return pow(sum(pow(abs(x), ord), ax, { keepdims: true }), 1 / ord);
}

function matrixNorm(x: Tensor, ord: NormOrd | undefined, [r, c]: number[]): Tensor {
  if (ord === undefined || ord === "fro") {
    return sqrt(sum(square(x), [r, c], { keepdims: true }));
  }
  if (ord === 1 || ord === -1 || ord === Infinity || ord === -Infinity) {
    rejectEmpty("norm", x, [r, c]);
    // ord 1: the largest column sum of |x|; Infinity: the largest row sum (-1, -Infinity: least).
    const [inner, outer] = Math.abs(ord) === 1 ? [r, c] : [c, r];
    const sums = sum(abs(x), inner, { keepdims: true });
    return (ord > 0 ? max : min)(sums, outer, { keepdims: true });
  }
  if (ord === 2) return spectralNorm(x, [r, c]);
  throw new RangeError(
    `norm: matrix order ${JSON.stringify(ord)} is not supported (-2 and "nuc" need every ` +
      `singular value); supported matrix orders: ${MATRIX_ORDS}`,
  );
}

/**
 * Vector or matrix norm, as `jnp.linalg.norm(x, ord, axis, keepdims)`:
 *
 * - `axis` a number (or one-element array): a vector norm along it. `ord` 2 (default) is the
 *   Euclidean norm, 1 the sum of `|x|`, `Infinity` / `-Infinity` the largest / least `|x|`,
 *   0 the count of non-zeros, any other number `p` gives `sum(|x|^p)^(1/p)`.
 * - `axis` a pair `[rows, cols]`: a matrix norm of each such matrix. `"fro"` (default) is the
 *   Frobenius norm, 1 / -1 the largest / least column sum of `|x|`, `Infinity` / `-Infinity`
 *   the largest / least row sum, 2 the spectral norm (the largest singular value, by repeated
 *   squaring of the Gram matrix; its gradient is `u v^T`). -2 and `"nuc"` are not supported
 *   (they need every singular value) and throw a RangeError listing the supported orders.
 * - `axis` omitted: with `ord` omitted, the 2-norm of all elements; with `ord` given, a vector
 *   norm of a 1-D `x` or a matrix norm of a 2-D `x` (other ranks need `axis`).
 *
 * The result is f32. Gradients come from the composition (the 2-norm's is NaN at 0, as JAX).
 *
 * Shapes: `x [..dims]` to `dims` without the normed axes (kept as 1 with `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { norm, tensor } from "@longseq/tensor";
 * const m = tensor([[3, -4], [1, 2]]);
 * assert.deepEqual(await norm(m, undefined, 1).array(), [5, Math.fround(Math.sqrt(5))]);
 * assert.equal(await norm(m, 1).array(), 6); // largest column sum of |m|
 * assert.equal(await norm(m, Infinity).array(), 7); // largest row sum
 * assert.equal(await norm(tensor([[3, 0], [0, -4]]), 2).array(), 4); // largest singular value
 * assert.deepEqual(await norm(m, 1, 0, { keepdims: true }).array(), [[4, 6]]);
 * ```
 */
export function norm(
  x: Tensor,
  ord?: NormOrd,
  axis?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  checkTensor("norm", "x", x);
  rejectBool("norm", x);
  let ax: number[];
  if (axis === undefined) {
    if (ord !== undefined && x.rank !== 1 && x.rank !== 2) {
      throw new RangeError(
        `norm: ord ${JSON.stringify(ord)} without axis needs a 1-D or 2-D input, got ` +
          `${fmt(x.shape)}; pass axis (a number or a pair)`,
      );
    }
    ax = normAxes("norm", undefined, x.rank);
  } else {
    ax = normAxes("norm", axis, x.rank);
    if (ax.length !== 1 && ax.length !== 2) {
      throw new RangeError(`norm: axis must be one axis or a pair, got ${JSON.stringify(axis)}`);
    }
  }
  const matrix = ax.length === 2 && (axis !== undefined || ord !== undefined);
  const order = axis === undefined ? [...ax] : (typeof axis === "number" ? [axis] : [...axis])
    .map((a) => (a < 0 ? a + x.rank : a));
  const out = reducedShape(x.shape, ax, options.keepdims ?? false);
  return scope(() => {
    const xf = isFloat(x.dtype) ? x : cast(x, "f32");
    const y = matrix ? matrixNorm(xf, ord, order) : vectorNorm(xf, ord, ax);
    return reshape(y, out);
  });
}

/**
 * Outer product: `out[i, j] = a[i] * b[j]`, with `a` and `b` flattened first (as `jnp.outer`).
 * Dtypes promote as in `mul`. A composition (broadcast multiply).
 *
 * Shapes: `a [...]` (n elements), `b [...]` (m elements) to `[n, m]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outer, tensor } from "@longseq/tensor";
 * assert.deepEqual(await outer(tensor([1, 2]), tensor([3, 4, 5])).array(), [
 *   [3, 4, 5],
 *   [6, 8, 10],
 * ]);
 * ```
 */
export function outer(a: Tensor, b: Tensor): Tensor {
  checkTensor("outer", "a", a);
  checkTensor("outer", "b", b);
  return scope(() => mul(reshape(a, [a.size, 1]), reshape(b, [1, b.size])));
}
