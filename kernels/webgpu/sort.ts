/**
 * WebGPU sort along the last axis, and gather / scatter by a permutation.
 *
 * Rows of at most 2048 keys are sorted inside one workgroup by a bitonic network
 * over `(key, position)` pairs, each row padded to a power of two and as many rows packed into
 * a workgroup as fit; comparing the position last makes it stable. Longer rows use the LSD radix sort of
 * `radix.ts`. Keys are mapped to ordered u32 the same way on both paths and in the CPU
 * reference.
 * @module
 */
import type { DType } from "../dtype.ts";
import { FLAT_ARGS, FLAT_INDEX, type GpuDevice, type GpuStorage, grid } from "./device.ts";
import { mapKeyWgsl, radixSortGpu } from "./radix.ts";
import type { KernelTable } from "../backend.ts";
import type { PermSpec, SortSpec } from "../specs/sort.ts";
import { guarded, rowPieces } from "./windows.ts";

const BITONIC_THREADS = 256;
/** Longest row sorted inside one workgroup (keys and positions fill 16 KiB of shared memory). */
const TILE = 2048;

function bitonicCode(dtype: DType, withValues: boolean): string {
  const outs = withValues ? ["valuesOut", "idxOut"] : ["idxOut"];
  return `
struct P { n: u32, width: u32, shift: u32, rpw: u32, rows: u32, flip: u32 }
@group(0) @binding(0) var<storage, read> x: array<u32>;
${
    outs.map((b, i) => `@group(0) @binding(${i + 1}) var<storage, read_write> ${b}: array<u32>;`)
      .join("\n")
  }
@group(0) @binding(${outs.length + 1}) var<uniform> p: P;
var<workgroup> sk: array<u32, ${TILE}>;
var<workgroup> sp: array<u32, ${TILE}>;
${mapKeyWgsl(dtype)}
@compute @workgroup_size(${BITONIC_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let firstRow = (wid.x + wid.y * nwg.x) * p.rpw;
  if (firstRow >= p.rows) { return; }
  let size = p.rpw * p.width;
  for (var e = lid; e < size; e += ${BITONIC_THREADS}u) {
    let row = firstRow + (e >> p.shift);
    let j = e & (p.width - 1u);
    if (row < p.rows && j < p.n) {
      sk[e] = mapKey(x[row * p.n + j]) ^ p.flip;
      sp[e] = j;
    } else {
      sk[e] = 0xffffffffu;
      sp[e] = 0xffffffffu;
    }
  }
  workgroupBarrier();
  // Sorts each aligned block of width slots; the last merge is ascending in every block.
  for (var k = 2u; k <= p.width; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var i = lid; i < size; i += ${BITONIC_THREADS}u) {
        let l = i ^ j;
        if (l > i) {
          let ki = sk[i]; let pi = sp[i]; let kl = sk[l]; let pl = sp[l];
          let up = (i & k) == 0u || k == p.width;
          // (key, position) pairs are distinct (padding aside), so the order is stable.
          let lFirst = kl < ki || (kl == ki && pl < pi);
          if (lFirst == up) {
            sk[i] = kl; sp[i] = pl; sk[l] = ki; sp[l] = pi;
          }
        }
      }
      workgroupBarrier();
    }
  }
  for (var e = lid; e < size; e += ${BITONIC_THREADS}u) {
    let row = firstRow + (e >> p.shift);
    let j = e & (p.width - 1u);
    if (row < p.rows && j < p.n) {
      ${withValues ? "valuesOut[row * p.n + j] = x[row * p.n + sp[e]];" : ""}
      idxOut[row * p.n + j] = sp[e];
    }
  }
}`;
}

/**
 * Stable sort of each row of `n` keys of `x` (`rows * n` elements of `dtype`): returns the
 * sorted values (null unless `withValues`) and the i32 positions within the row.
 */
export function sortGpu(
  device: GpuDevice,
  x: GpuStorage,
  dtype: DType,
  rows: number,
  n: number,
  descending: boolean,
  withValues: boolean,
): [GpuStorage | null, GpuStorage] {
  const total = rows * n;
  const values = withValues ? device.alloc(dtype, total) : null;
  const indices = device.alloc("i32", total);
  if (total === 0) return [values, indices];
  if (n > TILE) {
    radixSortGpu(device, x, dtype, rows, n, descending, values, indices);
    return [values, indices];
  }
  // Rows padded to a power of two, as many per workgroup as fit in one tile.
  const shift = Math.ceil(Math.log2(n));
  const rpw = Math.min(rows, TILE >> shift);
  const groups = Math.ceil(rows / rpw);
  const params = new Uint32Array([n, 1 << shift, shift, rpw, rows, descending ? 0xffffffff : 0]);
  device.run(
    { code: bitonicCode(dtype, withValues) },
    [x, ...(values ? [values] : []), indices],
    grid(groups, 1),
    params,
  );
  return [values, indices];
}

/** The storage word the permutation shaders move: f16 as halves, everything else as bits. */
type PermWord = "u32" | "f16";

const permHead = (w: PermWord) => `
struct P { total: u32, n: u32, inner: u32 }
@group(0) @binding(0) var<storage, read> src: array<${w}>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<${w}>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(256)
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.total) { return; }
  let q = i / p.inner;
  let t = i - q * p.inner;
  let rowStart = q - q % p.n;
  let k = idx[q];
  let ok = k >= 0 && u32(k) < p.n;`;

const gatherCode = (w: PermWord) =>
  `${permHead(w)}
  var v = ${w}(0);
  if (ok) { v = src[(rowStart + u32(k)) * p.inner + t]; }
  out[i] = v;
}`;

const scatterCode = (w: PermWord) =>
  `${permHead(w)}
  if (ok) { out[(rowStart + u32(k)) * p.inner + t] = src[i]; }
}`;

const zeroCode = (w: PermWord) => `
struct P { total: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<${w}>;
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(256)
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i < p.total) { out[i] = ${w}(0); }
}`;

/**
 * `out[r, j, t] = x[r, idx[r, j], t]` (an index outside `[0, n)` reads 0), or with `scatter`
 * `out[r, idx[r, j], t] = x[r, j, t]` (positions no index hits are 0, bad indices skipped).
 */
function byIndexGpu(
  device: GpuDevice,
  [x, idx]: GpuStorage[],
  { dtype, layout: { rows, n, inner } }: PermSpec,
  scatter: boolean,
): GpuStorage {
  const total = rows * n * inner;
  const out = device.alloc(dtype, total);
  if (total === 0) return out;
  const w: PermWord = dtype === "f16" ? "f16" : "u32";
  const eb = device.elementBytes(dtype);
  const op = scatter ? "scatterByIndex" : "gatherByIndex";
  // Indices stay within their row, so rows split into pieces that each fit one binding.
  const pieces = guarded(device, out, () =>
    rowPieces(device, op, [rows, n, inner], rows, [
      { storage: x, eb, perRow: n * inner },
      { storage: idx, eb: 4, perRow: n },
      { storage: out, eb, perRow: n * inner },
    ]));
  const code = scatter ? scatterCode(w) : gatherCode(w);
  for (const { count, binds } of pieces) {
    const params = new Uint32Array([count * n * inner, n, inner]);
    if (scatter) device.run({ code: zeroCode(w) }, [binds[2]], grid(count * n * inner), params);
    device.run({ code }, binds, grid(count * n * inner), params);
  }
  return out;
}

/** The sort family's kernels. */
export const sortKernels: KernelTable = {
  sort: (d: GpuDevice, [x]: GpuStorage[], s: SortSpec) => {
    const [values, indices] = sortGpu(d, x, s.dtype, s.rows, s.n, s.descending, s.withValues);
    if (s.withValues) return [values!, indices];
    if (values) d.free(values);
    return [indices];
  },
  gatherByIndex: (d: GpuDevice, xs: GpuStorage[], s: PermSpec) => byIndexGpu(d, xs, s, false),
  scatterByIndex: (d: GpuDevice, xs: GpuStorage[], s: PermSpec) => byIndexGpu(d, xs, s, true),
};
