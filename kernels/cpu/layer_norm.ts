/**
 * CPU reference of the fused layer-norm kernels ({@linkcode LayerNormSpec}): row statistics,
 * the backward row sums and the `dgamma`/`dbeta` column sums accumulate in float64 (JS
 * numbers) and round once to f32.
 * @module
 */
import type { KernelTable } from "../backend.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { LayerNormSpec } from "../specs/layer_norm.ts";

const f32 = (s: CpuStorage | undefined) => s?.data as Float32Array | undefined;

/** Forward: `[y, mean, rstd]` from `[x]` or `[x, gamma, beta]`. */
export function layerNormCpu(
  device: CpuDevice,
  [xs, gs, bs]: CpuStorage[],
  { rows, n, eps, affine, half }: LayerNormSpec,
): CpuStorage[] {
  const x = f32(xs)!, g = affine ? f32(gs)! : null, b = affine ? f32(bs)! : null;
  const y = half ? new Float16Array(rows * n) : new Float32Array(rows * n);
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let m = 0;
    for (let j = 0; j < n; j++) m += x[o + j];
    m /= n;
    let v = 0;
    for (let j = 0; j < n; j++) v += (x[o + j] - m) ** 2;
    const rs = 1 / Math.sqrt(v / n + eps);
    mean[r] = m;
    rstd[r] = rs;
    for (let j = 0; j < n; j++) {
      const h = (x[o + j] - m) * rs;
      y[o + j] = g ? h * g[j] + b![j] : h;
    }
  }
  return [device.adopt(y), device.adopt(mean), device.adopt(rstd)];
}

/**
 * Backward: with `xhat = (x - mean) * rstd` and `gg = dy * gamma`,
 * `dx = rstd * (gg - mean(gg) - xhat * mean(gg * xhat))`, `dgamma = sum_rows(dy * xhat)`,
 * `dbeta = sum_rows(dy)`. `xhat` is rebuilt from the f32 `mean` and `rstd` the forward stored.
 */
export function layerNormGradCpu(
  device: CpuDevice,
  [xs, ms, rss, dys, gs]: CpuStorage[],
  { rows, n, affine, half }: LayerNormSpec,
): CpuStorage[] {
  const x = f32(xs)!, mean = f32(ms)!, rstd = f32(rss)!, dy = f32(dys)!;
  const g = affine ? f32(gs)! : null;
  const dx = half ? new Float16Array(rows * n) : new Float32Array(rows * n);
  const dg = new Float64Array(n), db = new Float64Array(n);
  const hat = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const o = r * n, m = mean[r], rs = rstd[r];
    let s1 = 0, s2 = 0;
    for (let j = 0; j < n; j++) {
      const h = hat[j] = (x[o + j] - m) * rs;
      const gg = g ? dy[o + j] * g[j] : dy[o + j];
      s1 += gg;
      s2 += gg * h;
      dg[j] += dy[o + j] * h;
      db[j] += dy[o + j];
    }
    s1 /= n;
    s2 /= n;
    for (let j = 0; j < n; j++) {
      const gg = g ? dy[o + j] * g[j] : dy[o + j];
      dx[o + j] = rs * (gg - s1 - hat[j] * s2);
    }
  }
  const out = [device.adopt(dx)];
  const store = (a: Float64Array) => half ? Float16Array.from(a) : Float32Array.from(a);
  if (affine) out.push(device.adopt(store(dg)), device.adopt(store(db)));
  return out;
}

/** The layer-norm family's kernels. */
export const layerNormKernels: KernelTable = {
  layerNorm: layerNormCpu,
  layerNormGrad: layerNormGradCpu,
};
