/**
 * CPU reference softmax and log-softmax over the middle axis of a contiguous
 * `[outer, n, inner]` layout. The normaliser accumulates in float64 (JS numbers) and rounds
 * once to f32 at the end.
 * @module
 */
import type { KernelTable } from "../backend.ts";
import { type DType, dtypeInfo } from "../dtype.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { ReduceLayout, SoftmaxSpec } from "../specs/reduce.ts";

/**
 * Softmax (or log-softmax when `log`) of `x` (f32 or f16) over `n` of `[outer, n, inner]`,
 * max-shifted so large logits do not overflow. A slice of only `-inf` gives softmax 0 and
 * log-softmax `-inf`. Returns a new storage of the same layout and `dtype`.
 */
export function softmaxCpu(
  device: CpuDevice,
  x: CpuStorage,
  { outer, n, inner }: ReduceLayout,
  log: boolean,
  dtype: DType = "f32",
): CpuStorage {
  const src = x.data;
  const out = dtypeInfo(dtype).create(outer * n * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const at = (j: number) => (o * n + j) * inner + k;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, src[at(j)]);
      if (m === -Infinity) {
        // Only -inf (a fully masked row): softmax 0 and log-softmax -inf, so the VJPs
        // (`y * (g - sum(g y))`, `g - exp(y) sum(g)`) stay finite.
        for (let j = 0; j < n; j++) out[at(j)] = log ? -Infinity : 0;
        continue;
      }
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(src[at(j)] - m);
      const ls = Math.log(s);
      for (let j = 0; j < n; j++) {
        const d = src[at(j)] - m;
        out[at(j)] = log ? d - ls : Math.exp(d) / s;
      }
    }
  }
  return device.adopt(out);
}

/** The softmax family's kernels. */
export const softmaxKernels: KernelTable = {
  softmax: (d: CpuDevice, [x]: CpuStorage[], s: SoftmaxSpec) => softmaxCpu(d, x, s, false, s.dtype),
  logSoftmax: (d: CpuDevice, [x]: CpuStorage[], s: SoftmaxSpec) =>
    softmaxCpu(d, x, s, true, s.dtype),
};
