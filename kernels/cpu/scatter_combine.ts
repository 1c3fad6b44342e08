/**
 * CPU reference of the combining scatters (`set`, `max`, `min`; `add` lives in
 * `indexing.ts`): `out = x`, then each update, in increasing update order, is combined into
 * its target row. With duplicate targets, `set` keeps the last update in that order; `max` and
 * `min` propagate NaN.
 * @module
 */
import { dtypeInfo } from "../dtype.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import { normIndex } from "./indexing.ts";
import type { AxisIndexSpec, ScatterCombine } from "../specs/indexing.ts";
import type { KernelTable } from "../backend.ts";

/** The combiners over JS numbers (`Math.max` and `Math.min` propagate NaN). */
export const COMBINE_CPU: Readonly<Record<ScatterCombine, (old: number, upd: number) => number>> = {
  set: (_old, upd) => upd,
  max: Math.max,
  min: Math.min,
};

/**
 * `out = x; out[a, idx[k], b] = combine(out[a, idx[k], b], upd[a, k, b])` for `k = 0..m-1` in
 * order, over `x = [outer, n, inner]` and `upd = [outer, m, inner]` (indices follow the `take`
 * rule: negative from the end, then clamped).
 */
export function scatterCombineCpu(
  device: CpuDevice,
  [x, idx, upd]: CpuStorage[],
  { layout: { outer, n, inner }, count: m, dtype }: AxisIndexSpec,
  mode: ScatterCombine,
): CpuStorage {
  const out = dtypeInfo(dtype).create(outer * n * inner);
  out.set(x.data);
  const ix = idx.data, up = upd.data;
  const f = COMBINE_CPU[mode];
  for (let a = 0; a < outer; a++) {
    for (let k = 0; k < m; k++) {
      const to = (a * n + normIndex(ix[k], n)) * inner, from = (a * m + k) * inner;
      for (let b = 0; b < inner; b++) out[to + b] = f(out[to + b], up[from + b]);
    }
  }
  return device.adopt(out);
}

const combine = (mode: ScatterCombine) => (d: CpuDevice, xs: CpuStorage[], s: AxisIndexSpec) =>
  scatterCombineCpu(d, xs, s, mode);

/** The combining scatters' kernels. */
export const scatterCombineKernels: KernelTable = {
  scatterSet: combine("set"),
  scatterMax: combine("max"),
  scatterMin: combine("min"),
};
