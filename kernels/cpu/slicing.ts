/**
 * CPU reference of the "place" kernel behind concat, pad and the slice gradient: a fresh output,
 * optionally filled with a constant, into which each input is written once through strides (a
 * strided write; the inputs are read contiguously).
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../dtype.ts";
import { collapse } from "../strided.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import type { Placed } from "../specs/slicing.ts";
import type { KernelTable } from "../backend.ts";
import { placed, type PlaceSpec } from "../specs/slicing.ts";

/**
 * Allocates `size` elements of `dtype`, fills them with `fill` (skipped when undefined, for
 * callers whose pieces cover the whole output) and writes every piece into its region.
 */
export function placeCpu(
  device: CpuDevice,
  dtype: DType,
  size: number,
  fill: number | undefined,
  pieces: readonly Placed[],
): CpuStorage {
  const out = dtypeInfo(dtype).create(size);
  if (fill !== undefined && fill !== 0) out.fill(fill);
  for (const p of pieces) writePiece(out, (p.storage as CpuStorage).data, p);
  return device.adopt(out);
}

function writePiece(out: TypedArray, src: TypedArray, p: Placed): void {
  const { shape, strides: [st] } = collapse(p.shape, [p.strides]);
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  const rank = shape.length;
  if (rank === 0) {
    out[p.offset] = src[0];
    return;
  }
  // Rows whose destination is contiguous are copied with one `set` each.
  const row = st[rank - 1] === 1 ? shape[rank - 1] : 1;
  const dims = row > 1 ? rank - 1 : rank;
  const idx = new Array<number>(dims).fill(0);
  let o = p.offset;
  for (let i = 0; i < n; i += row) {
    if (row > 1) out.set(src.subarray(i, i + row), o);
    else out[o] = src[i];
    for (let d = dims - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) {
        o += st[d];
        break;
      }
      idx[d] = 0;
      o -= st[d] * (shape[d] - 1);
    }
  }
}

/** The slicing family's kernels. */
export const slicingKernels: KernelTable = {
  place: (d: CpuDevice, inputs: CpuStorage[], s: PlaceSpec) =>
    placeCpu(d, s.dtype, s.size, s.fill, placed(inputs, s)),
};
