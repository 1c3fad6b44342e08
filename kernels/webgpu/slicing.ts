/**
 * WebGPU "place" kernel behind concat, pad and the slice gradient: a fresh output, optionally
 * filled with a constant, into which each input is written by one dispatch through strides.
 *
 * These kernels only move bits, so they treat 4-byte dtypes as `u32` words (one pipeline per
 * rank serves them all) and f16 as `f16` halves. Index arithmetic is in `u32`, which
 * wraps, so negative strides (reversed steps) sent as their two's complement land right.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { collapse } from "../strided.ts";
import { FLAT_ARGS, FLAT_INDEX, type GpuDevice, type GpuStorage, grid, WG } from "./device.ts";
import type { Placed } from "../specs/slicing.ts";
import type { KernelTable } from "../backend.ts";
import { placed, type PlaceSpec } from "../specs/slicing.ts";
import { flatPieces, guarded } from "./windows.ts";

const MAX_RANK = 8;

/** The WGSL element type the place kernels move `dtype` as. */
const word = (dtype: DType) => (dtype === "f16" ? "f16" : "u32");

/** The fill shader: f16 takes the low half of the bits. */
const fillCode = (t: string) => `
struct P { n: u32, bits: u32, skip: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<${t}>;
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.n) { return; }
  out[i + p.skip] = ${t === "f16" ? "f16(unpack2x16float(p.bits).x)" : "p.bits"};
}`;

/** The copy shader for a (collapsed) piece rank: thread `i` reads `src[i]`. */
function copyCode(rank: number, t: string): string {
  const index: string[] = [];
  for (let d = rank - 1; d >= 0; d--) {
    const at = `[${d >> 2}][${d & 3}]`;
    index.push(
      d === 0 ? `j += rem * p.s${at};` : (
        `{ let c = rem % p.shape${at}; rem = rem / p.shape${at}; j += c * p.s${at}; }`
      ),
    );
  }
  return `
struct P { n: u32, off: u32, first: u32, skip: u32, shape: array<vec4<u32>, 2>, s: array<vec4<u32>, 2> }
@group(0) @binding(0) var<storage, read> src: array<${t}>;
@group(0) @binding(1) var<storage, read_write> out: array<${t}>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.n) { return; }
  // The flat index in the whole piece: a split part starts at p.first.
  var rem = i + p.first;
  var j = p.off;
  ${index.join("\n  ")}
  out[j] = src[i + p.skip];
}`;
}

/** The bits a value of `dtype` is stored as on the GPU. */
function fillBits(dtype: DType, value: number): number {
  const v = dtypeInfo(dtype).coerce(value);
  if (dtype === "f32") return new Uint32Array(new Float32Array([v]).buffer)[0];
  if (dtype === "f16") return new Uint16Array(new Float16Array([v]).buffer)[0];
  return v >>> 0;
}

/**
 * Allocates `size` elements of `dtype`, fills them with `fill` (skipped when undefined) and
 * writes each piece into its region, one dispatch per piece (more where a tensor exceeds one
 * storage binding; `op` names the op in a refusal).
 */
export function placeGpu(
  device: GpuDevice,
  dtype: DType,
  size: number,
  fill: number | undefined,
  pieces: readonly Placed[],
  op = "place",
): GpuStorage {
  const out = device.alloc(dtype, size);
  if (size === 0) return out;
  const eb = device.elementBytes(dtype);
  if (fill !== undefined) {
    const code = fillCode(word(dtype));
    const parts = guarded(
      device,
      out,
      () => flatPieces(device, op, [size], [{ storage: out, eb }], []),
    );
    for (const part of parts) {
      const params = new Uint32Array([
        part.count,
        fillBits(dtype, fill),
        part.first - part.anchored[0].base,
      ]);
      device.run({ code }, [part.anchored[0].bind], grid(part.count), params);
    }
  }
  for (const piece of pieces) {
    let n = 1;
    for (const d of piece.shape) n *= d;
    if (n === 0) continue;
    const { shape, strides: [st] } = collapse(piece.shape, [piece.strides]);
    if (shape.length > MAX_RANK) {
      device.free(out);
      throw new RangeError(`place: rank ${shape.length} after merging exceeds ${MAX_RANK}`);
    }
    const src = piece.storage as GpuStorage;
    const parts = guarded(device, out, () =>
      flatPieces(
        device,
        op,
        shape,
        [{ storage: src, eb }],
        [{ storage: out, eb, strides: st, offset: piece.offset }],
        piece.shape,
      ));
    // The rank-0 case (one element) runs as rank 1 with a zero stride.
    const code = copyCode(Math.max(1, shape.length), word(dtype));
    for (const part of parts) {
      const params = new Uint32Array(4 + 8 + 8);
      params[0] = part.count;
      params[1] = piece.offset - part.strided[0].base;
      params[2] = part.first;
      params[3] = part.first - part.anchored[0].base;
      for (let d = 0; d < shape.length; d++) {
        params[4 + d] = shape[d];
        params[12 + d] = st[d];
      }
      device.run({ code }, [part.anchored[0].bind, part.strided[0].bind], grid(part.count), params);
    }
  }
  return out;
}

/** The slicing family's kernels. */
export const slicingKernels: KernelTable = {
  place: (d: GpuDevice, inputs: GpuStorage[], s: PlaceSpec) =>
    placeGpu(d, s.dtype, s.size, s.fill, placed(inputs, s)),
};
