/**
 * Matrix products with NumPy `matmul` semantics, transposes read in place, and the VJP rule.
 * @module
 */
import type { MatmulSpec } from "../kernels/specs/matmul.ts";
import { bind1, definePrimitive, launch1, type Primitive } from "./primitive.ts";
import { fmt, Tensor } from "./tensor.ts";
import { sameDevice } from "./validate.ts";
import { cast } from "./binary.ts";
import { reshape } from "./shape.ts";

/** Options for {@linkcode matmul}. */
export interface MatmulOptions {
  /** Read `a` with its last two axes swapped (no copy is made). Ignored for 1-D `a`. */
  transposeA?: boolean;
  /** Read `b` with its last two axes swapped (no copy is made). Ignored for 1-D `b`. */
  transposeB?: boolean;
}

/** Static parameters of the primitive (operands of rank >= 2). */
export interface MatmulParams {
  /** `a` is read transposed. */
  readonly transA: boolean;
  /** `b` is read transposed. */
  readonly transB: boolean;
}

/** `[rows, cols]` of an operand as the product reads it. */
function logical(shape: readonly number[], trans: boolean): [number, number] {
  const r = shape[shape.length - 2], c = shape[shape.length - 1];
  return trans ? [c, r] : [r, c];
}

/** Row-major matrix strides of a batch shape padded to `rank` (0 on broadcast axes). */
function batchStrides(batch: readonly number[], out: readonly number[], mat: number): number[] {
  const pad = out.length - batch.length;
  const s = new Array<number>(out.length).fill(0);
  let acc = mat;
  for (let d = batch.length - 1; d >= 0; d--) {
    s[d + pad] = batch[d] === 1 ? 0 : acc;
    acc *= batch[d];
  }
  return s;
}

/** The output batch shape, or a RangeError naming both operands. */
function batchShape(a: readonly number[], b: readonly number[]): number[] {
  const ba = a.slice(0, -2), bb = b.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const out: number[] = [];
  for (let d = 0; d < rank; d++) {
    const x = ba[d - rank + ba.length] ?? 1, y = bb[d - rank + bb.length] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new RangeError(
        `matmul: batch dimensions of ${fmt(a)} and ${fmt(b)} do not broadcast ` +
          `(${fmt(ba)} vs ${fmt(bb)}; sizes must match or be 1)`,
      );
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** The layout of `a @ b` for rank >= 2 operands whose shapes were already checked. */
function specOf(a: Tensor, b: Tensor, { transA, transB }: MatmulParams): MatmulSpec {
  const [m, k] = logical(a.shape, transA);
  const n = logical(b.shape, transB)[1];
  const batch = batchShape(a.shape, b.shape);
  return {
    batchShape: batch,
    aStrides: batchStrides(a.shape.slice(0, -2), batch, m * k),
    bStrides: batchStrides(b.shape.slice(0, -2), batch, k * n),
    m,
    n,
    k,
    transA,
    transB,
    dtype: a.dtype,
  };
}

const matmulPrim = definePrimitive<MatmulParams>({
  name: "matmul",
  saves: { inputs: [0, 1], outputs: [] },
  forward: ([a, b], params) => {
    const spec = specOf(a, b, params);
    return [launch1("matmul", [a, b], spec, {
      shape: [...spec.batchShape, spec.m, spec.n],
      dtype: a.dtype,
    })];
  },
  // With A = op(SA), B = op(SB): dA = g B^T and dB = A^T g, written on the stored operands
  // through transpose flags. Cotangents keep the broadcast batch shape; the walker sums them
  // down to each input's shape.
  vjp: ([g], { inputs: [a, b], params: { transA, transB } }) => [
    transA
      ? matmul(b, g, { transposeA: transB, transposeB: true })
      : matmul(g, b, { transposeB: !transB }),
    transB
      ? matmul(g, a, { transposeA: true, transposeB: transA })
      : matmul(a, g, { transposeA: !transA }),
  ],
});

/** Checks operands and returns the shape error, if any, before any device work. */
function check(a: Tensor, b: Tensor, opts: MatmulOptions): void {
  for (const [name, x] of [["a", a], ["b", b]] as const) {
    if (!(x instanceof Tensor)) {
      throw new TypeError(`matmul: ${name} must be a Tensor, got ${typeof x}`);
    }
    if (x.rank === 0) {
      throw new RangeError(
        `matmul: ${name} is a scalar (shape []); operands need rank >= 1 (use mul for scalars)`,
      );
    }
  }
  sameDevice("matmul", [a, b]);
  const ta = a.rank >= 2 && !!opts.transposeA, tb = b.rank >= 2 && !!opts.transposeB;
  const ka = a.rank === 1 ? a.shape[0] : logical(a.shape, ta)[1];
  const kb = b.rank === 1 ? b.shape[0] : logical(b.shape, tb)[0];
  if (ka !== kb) {
    const show = (x: Tensor, t: boolean, flag: string) => `${fmt(x.shape)}${t ? ` (${flag})` : ""}`;
    throw new RangeError(
      `matmul: inner dimensions differ: ${show(a, ta, "transposeA")} @ ${
        show(b, tb, "transposeB")
      } (${ka} vs ${kb})`,
    );
  }
  if (a.rank >= 2 && b.rank >= 2) batchShape(a.shape, b.shape);
}

/**
 * Matrix product with NumPy `matmul` semantics, in f32.
 *
 * - `a: [..., m, k] @ b: [..., k, n] -> [..., m, n]`; the batch dimensions (`...`) broadcast.
 * - A 1-D `a` of shape `[k]` is read as `[1, k]` and a 1-D `b` of shape `[k]` as `[k, 1]`; the
 *   added axis is removed from the result (so vector @ vector is a scalar `[]`).
 * - `transposeA` / `transposeB` swap the last two axes of a rank >= 2 operand as it is read:
 *   with `transposeA`, `a` has shape `[..., k, m]`. No transposed copy is made.
 * - Two f16 operands give an f16 result, summed in f32 on every backend. Other operands
 *   (integers, bool, f16 with f32) are cast to f32 first and the result is f32.
 *
 * Throws a RangeError for scalar operands, inner dimensions that differ and batch dimensions
 * that do not broadcast, and a TypeError for operands on different devices.
 * Gradients: `dA = g @ B^T`, `dB = A^T @ g`, summed over broadcast batch dimensions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matmul, tensor } from "@longseq/tensor";
 * const a = tensor([[1, 2], [3, 4]]);
 * const b = tensor([[5, 6], [7, 8]]);
 * assert.deepEqual(await matmul(a, b).array(), [[19, 22], [43, 50]]);
 * assert.deepEqual(await matmul(a, b, { transposeA: true }).array(), [[26, 30], [38, 44]]);
 * assert.deepEqual(await matmul(a, tensor([1, 1])).array(), [3, 7]); // [2, 2] @ [2] -> [2]
 * assert.deepEqual(matmul(tensor([[[1, 0]]]), b).shape, [1, 1, 2]); // [1, 1, 2] @ [2, 2]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  check(a, b, options);
  const transA = a.rank >= 2 && !!options.transposeA;
  const transB = b.rank >= 2 && !!options.transposeB;
  // Two f16 operands multiply in f16 (summing in f32); anything else in f32.
  const dtype = a.dtype === "f16" && b.dtype === "f16" ? "f16" : "f32";
  // 1-D promotion goes through reshape views, whose own VJP rule undoes it.
  const made: Tensor[] = [];
  const prep = (x: Tensor, shape: number[] | null) => {
    let y = x;
    if (x.dtype !== dtype) made.push(y = cast(y, dtype));
    if (shape) made.push(y = reshape(y, shape));
    return y;
  };
  try {
    const a2 = prep(a, a.rank === 1 ? [1, a.shape[0]] : null);
    const b2 = prep(b, b.rank === 1 ? [b.shape[0], 1] : null);
    const out = bind1(matmulPrim, [a2, b2], { transA, transB });
    if (a.rank > 1 && b.rank > 1) return out;
    made.push(out);
    const shape = out.shape.slice(0, -2);
    if (a.rank > 1) shape.push(out.shape[out.rank - 2]);
    if (b.rank > 1) shape.push(out.shape[out.rank - 1]);
    return reshape(out, shape);
  } finally {
    for (const t of made) t.dispose();
  }
}

/** The matmul primitive (operands of rank >= 2), for tests of its VJP rule. */
export const MATMUL_PRIMITIVE: Primitive<MatmulParams> = matmulPrim;
