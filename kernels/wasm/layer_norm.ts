/**
 * Layer normalisation forward on the wasm device: each row of `n` f32s becomes
 * `(x - mean) * rstd * gamma + beta` with `rstd = 1 / sqrt(var + eps)` (biased variance),
 * also returning `mean` and `rstd` per row for a backward pass. The mean and the variance are
 * f32 sums (four lanes, then the tail) of the row and of its squared deviations. Rows split
 * across threads; each row is computed by one thread.
 *
 * The backward pass (`layerNormGradWasm`) rebuilds `xhat = (x - mean) * rstd` from the stored
 * statistics: each row's `dx` comes from one `ln_grad_row` call, and `dgamma`, `dbeta` from
 * blocks of `COLUMN_BLOCK` columns, each summed over the rows in ascending order by one
 * thread (`ln_cols`), so the result does not depend on the thread count.
 * @module
 */
import type { WasmDevice, WasmStorage } from "./device.ts";
import { type Runtime, share } from "./runtime.ts";

/** This job's index in `jobs.ts`. */
export const JOB_LAYER_NORM = 5;
/** The backward job's index in `jobs.ts`. */
export const JOB_LAYER_NORM_GRAD = 6;
/** Columns of `dgamma`, `dbeta` per work item of the backward job. */
export const COLUMN_BLOCK = 64;
/** Inputs smaller than this run on the calling thread alone. */
const PARALLEL_MIN = 1 << 15;

/** Sizes of one layer norm: `rows` rows of `n` elements, normalised over `n`. */
export interface LayerNormSpec {
  readonly rows: number;
  readonly n: number;
  /** Added to the variance. */
  readonly eps: number;
}

/**
 * `[y [rows, n], mean [rows], rstd [rows]]` from f32 `x [rows, n]` and optional `gamma`,
 * `beta [n]` (absent: 1 and 0).
 */
export function layerNormWasm(
  device: WasmDevice,
  [x, gamma, beta]: (WasmStorage | null)[],
  { rows, n, eps }: LayerNormSpec,
): [WasmStorage, WasmStorage, WasmStorage] {
  const y = device.alloc("f32", rows * n);
  const mean = device.alloc("f32", rows), rstd = device.alloc("f32", rows);
  if (rows === 0) return [y, mean, rstd];
  const scratch = device.scratch(64 * device.threads);
  try {
    const args = [
      x!.offset,
      gamma ? gamma.offset : -1,
      beta ? beta.offset : -1,
      y.offset,
      mean.offset,
      rstd.offset,
      rows,
      n,
      eps,
      scratch.offset,
    ];
    if (rows * n < PARALLEL_MIN) layerNormJob(device.runtime, Float64Array.from(args), 0, 1);
    else device.run(JOB_LAYER_NORM, args);
  } finally {
    device.release(scratch);
  }
  return [y, mean, rstd];
}

/** The job: this thread's rows. */
export function layerNormJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const [x, gamma, beta, y, mean, rstd, rows, n, eps, scratch] = args;
  const K = rt.kernels, F = rt.f32, slot = scratch + 64 * part;
  const [lo, hi] = share(rows, part, parts);
  for (let r = lo; r < hi; r++) {
    const src = x + 4 * r * n, dst = y + 4 * r * n;
    const m = Math.fround(K.sum_row(src, n) / n);
    const rs = Math.fround(1 / Math.sqrt(Math.fround(K.sqdev_row(src, n, m) / n) + eps));
    F[mean / 4 + r] = m;
    F[rstd / 4 + r] = rs;
    F[slot / 4] = m;
    F[slot / 4 + 1] = rs;
    K.sub_vs(src, slot, dst, n);
    K.mul_vs(dst, slot + 4, dst, n);
    if (gamma >= 0) K.mul_vv(dst, gamma, dst, n);
    if (beta >= 0) K.add_vv(dst, beta, dst, n);
  }
}

/**
 * `[dx [rows, n]]`, or `[dx, dgamma [n], dbeta [n]]` when `gamma` is given, from f32
 * `x [rows, n]`, `mean`, `rstd [rows]` and the cotangent `dy [rows, n]`.
 */
export function layerNormGradWasm(
  device: WasmDevice,
  [x, mean, rstd, dy, gamma]: (WasmStorage | null)[],
  { rows, n }: LayerNormSpec,
): WasmStorage[] {
  const dx = device.alloc("f32", rows * n);
  const affine = gamma != null;
  const out = [dx];
  if (affine) {
    out.push(device.alloc("f32", n), device.alloc("f32", n));
    // The column sums accumulate in place from zero.
    device.runtime.f32.fill(0, out[1].offset / 4, out[1].offset / 4 + n);
    device.runtime.f32.fill(0, out[2].offset / 4, out[2].offset / 4 + n);
  }
  if (rows === 0) return out;
  const args = [
    x!.offset,
    mean!.offset,
    rstd!.offset,
    dy!.offset,
    affine ? gamma.offset : -1,
    dx.offset,
    affine ? out[1].offset : -1,
    affine ? out[2].offset : -1,
    rows,
    n,
  ];
  if (rows * n < PARALLEL_MIN) layerNormGradJob(device.runtime, Float64Array.from(args), 0, 1);
  else device.run(JOB_LAYER_NORM_GRAD, args);
  return out;
}

/** The backward job: this thread's rows of `dx`, then its blocks of columns. */
export function layerNormGradJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  parts: number,
): void {
  const [x, mean, rstd, dy, gamma, dx, dg, db, rows, n] = args;
  const K = rt.kernels, F = rt.f32;
  const row = gamma >= 0 ? K.ln_grad_row : K.ln_grad_row_plain;
  const [lo, hi] = share(rows, part, parts);
  for (let r = lo; r < hi; r++) {
    const at = 4 * r * n;
    row(x + at, dy + at, gamma, dx + at, n, F[mean / 4 + r], F[rstd / 4 + r]);
  }
  if (dg < 0) return;
  const blocks = Math.ceil(n / COLUMN_BLOCK);
  const [b0, b1] = share(blocks, part, parts);
  for (let b = b0; b < b1; b++) {
    const c = b * COLUMN_BLOCK, w = Math.min(COLUMN_BLOCK, n - c);
    for (let r = 0; r < rows; r++) {
      const at = 4 * (r * n + c);
      K.ln_cols(x + at, dy + at, dg + 4 * c, db + 4 * c, w, F[mean / 4 + r], F[rstd / 4 + r]);
    }
  }
}
