/**
 * Layer normalisation forward on the wasm device: each row of `n` f32s becomes
 * `(x - mean) * rstd * gamma + beta` with `rstd = 1 / sqrt(var + eps)` (biased variance),
 * also returning `mean` and `rstd` per row for a backward pass. The mean and the variance are
 * f32 sums (four lanes, then the tail) of the row and of its squared deviations. Rows split
 * across threads; each row is computed by one thread.
 * @module
 */
import type { WasmDevice, WasmStorage } from "./device.ts";
import { type Runtime, share } from "./runtime.ts";

/** This job's index in `jobs.ts`. */
export const JOB_LAYER_NORM = 5;

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
    if (rows * n < 1 << 15) layerNormJob(device.runtime, Float64Array.from(args), 0, 1);
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
