/**
 * Layer normalisation forward on the wasm device: each row of `n` f32s becomes
 * `(x - mean) * rstd * gamma + beta` with `rstd = 1 / sqrt(var + eps)` (biased variance),
 * also returning `mean` and `rstd` per row for a backward pass. The mean and the variance are
 * f32 sums (four lanes, then the tail) of the row and of its squared deviations; the output
 * is one `ln_row` pass. Rows split across threads; each row is computed by one thread.
 *
 * The backward pass (`layerNormGradWasm`) rebuilds `xhat = (x - mean) * rstd` from the stored
 * statistics: each row's `dx` comes from one `ln_grad_row` call. For `dgamma` and `dbeta` the
 * rows fall into fixed blocks (`blockRows`, from the row count alone): a thread sums each of
 * its blocks' rows in ascending order into the block's partial (`ln_cols`, right after the
 * block's `dx`, while its rows are in cache), and the partials are added in block order, so
 * the result does not depend on the thread count.
 * @module
 */
import type { WasmDevice, WasmStorage } from "./device.ts";
import { type Runtime, share } from "./runtime.ts";

/** This job's index in `jobs.ts`. */
export const JOB_LAYER_NORM = 5;
/** The backward job's index in `jobs.ts`. */
export const JOB_LAYER_NORM_GRAD = 8;
/** Fewest rows per block of the backward job. */
export const MIN_BLOCK_ROWS = 32;
/** Most blocks (partial column sums) of the backward job. */
export const MAX_BLOCKS = 256;
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
  ];
  device.run(JOB_LAYER_NORM, args, rows * n < PARALLEL_MIN);
  return [y, mean, rstd];
}

/** The job: this thread's rows. */
export function layerNormJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const [x, gamma, beta, y, mean, rstd, rows, n, eps] = args;
  const K = rt.kernels, F = rt.f32;
  const [lo, hi] = share(rows, part, parts);
  for (let r = lo; r < hi; r++) {
    const src = x + 4 * r * n, dst = y + 4 * r * n;
    const m = Math.fround(K.sum_row(src, n) / n);
    const rs = Math.fround(1 / Math.sqrt(Math.fround(K.sqdev_row(src, n, m) / n) + eps));
    F[mean / 4 + r] = m;
    F[rstd / 4 + r] = rs;
    if (gamma >= 0 && beta >= 0) K.ln_row(src, gamma, beta, dst, n, m, rs);
    else {
      K.ln_row_plain(src, 0, 0, dst, n, m, rs);
      if (gamma >= 0) K.mul_vv(dst, gamma, dst, n);
      if (beta >= 0) K.add_vv(dst, beta, dst, n);
    }
  }
}

/**
 * Rows per block of the backward pass: at least `MIN_BLOCK_ROWS`, and few enough blocks that
 * their partial column sums stay small. It depends on `rows` alone, never on the threads.
 */
export function blockRows(rows: number): number {
  return Math.max(MIN_BLOCK_ROWS, Math.ceil(rows / MAX_BLOCKS));
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
  if (affine) out.push(device.alloc("f32", n), device.alloc("f32", n));
  const F = device.runtime.f32;
  if (rows === 0) {
    for (const o of out.slice(1)) F.fill(0, o.offset / 4, o.offset / 4 + n);
    return out;
  }
  const per = blockRows(rows), blocks = Math.ceil(rows / per);
  // Each block's partial dgamma and dbeta (2n floats), summed in block order below.
  const partials = affine ? device.scratch(4 * 2 * n * blocks) : null;
  try {
    const args = [
      x!.offset,
      mean!.offset,
      rstd!.offset,
      dy!.offset,
      affine ? gamma.offset : -1,
      dx.offset,
      partials ? partials.offset : -1,
      rows,
      n,
      per,
    ];
    device.run(JOB_LAYER_NORM_GRAD, args, rows * n < PARALLEL_MIN);
    if (partials) {
      const K = device.runtime.kernels;
      for (const [i, o] of out.slice(1).entries()) {
        const at = partials.offset + 4 * i * n;
        F.copyWithin(o.offset / 4, at / 4, at / 4 + n);
        for (let b = 1; b < blocks; b++) K.add_vv(o.offset, at + 4 * 2 * n * b, o.offset, n);
      }
    }
  } finally {
    if (partials) device.release(partials);
  }
  return out;
}

/**
 * The backward job: this thread's blocks of rows. Each block writes its rows' `dx`, then sums
 * its rows (ascending) into its own partial `dgamma`, `dbeta`.
 */
export function layerNormGradJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  parts: number,
): void {
  const [x, mean, rstd, dy, gamma, dx, partials, rows, n, per] = args;
  const K = rt.kernels, F = rt.f32;
  const row = gamma >= 0 ? K.ln_grad_row : K.ln_grad_row_plain;
  const [b0, b1] = share(Math.ceil(rows / per), part, parts);
  for (let b = b0; b < b1; b++) {
    const lo = b * per, hi = Math.min(rows, lo + per);
    for (let r = lo; r < hi; r++) {
      const at = 4 * r * n;
      row(x + at, dy + at, gamma, dx + at, n, F[mean / 4 + r], F[rstd / 4 + r]);
    }
    if (partials < 0) continue;
    const pg = partials + 4 * 2 * n * b, pb = pg + 4 * n;
    F.fill(0, pg / 4, pg / 4 + 2 * n);
    const at = 4 * lo * n;
    K.ln_cols(x + at, dy + at, mean + 4 * lo, rstd + 4 * lo, pg, pb, hi - lo, n, 4 * n);
  }
}
