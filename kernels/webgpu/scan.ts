/**
 * WebGPU prefix sums along the middle axis of `[outer, n, inner]`: a multi-pass scan whose
 * work is linear in the size for every shape (also the exclusive scan of `radix.ts`); and the
 * stable key sort built on it, which the scatter-adds use.
 *
 * - Contiguous rows (`inner == 1`, `n > 64`): one workgroup scans a block of {@linkcode BLOCK}
 *   elements in shared memory. Rows longer than a block take three steps: each block writes its
 *   total, the `[rows, blocks]` totals are scanned (recursively, exclusive), and each block is
 *   scanned again starting from its offset.
 * - Strided or short rows: one thread walks a segment of a column sequentially, so neighbouring
 *   threads read neighbouring addresses. Columns are cut into segments until there are enough
 *   threads to fill the device, with the same totals / recursive scan / rescan steps.
 *
 * `reverse` scans from the end; `exclusive` leaves out each element itself. Integer sums wrap.
 * The f32 sums are exact to rounding but their order differs from a sequential loop.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { FLAT_ARGS, FLAT_INDEX, type GpuDevice, type GpuStorage, grid, WG } from "./device.ts";
import type { KernelTable } from "../backend.ts";
import type { ScanSpec } from "../specs/scan.ts";

/** Elements one workgroup scans in the contiguous-row kernel. */
export const BLOCK = WG * 4;
/** Threads the strided kernel aims for before it stops cutting columns into segments. */
const TARGET_THREADS = 65536;
const MIN_SEGMENT = 32;

type Mode = "totals" | "scan" | "scan+offsets";

const PARAMS =
  "struct P { outer: u32, n: u32, inner: u32, nb: u32, seg: u32, rev: u32, excl: u32 }";

function outDecl(t: string, mode: Mode): string {
  const main = `@group(0) @binding(1) var<storage, read_write> out: array<${t}>;`;
  const offs = mode === "scan+offsets"
    ? `\n@group(0) @binding(2) var<storage, read> offs: array<${t}>;`
    : "";
  return main + offs;
}

function blockCode(t: string, mode: Mode): string {
  const nbind = mode === "scan+offsets" ? 3 : 2;
  const finish = mode === "totals"
    ? `if (lid == ${WG - 1}u) { out[w] = sh[lid]; }`
    : `var carry = ${mode === "scan+offsets" ? "offs[w] + " : ""}before;
  for (var e = 0u; e < 4u; e++) {
    let q = q0 + e;
    if (q >= p.n) { break; }
    let at = base + select(q, p.n - 1u - q, p.rev == 1u);
    if (p.excl == 1u) { out[at] = carry; carry += v[e]; } else { carry += v[e]; out[at] = carry; }
  }`;
  return `${PARAMS}
@group(0) @binding(0) var<storage, read> x: array<${t}>;
${outDecl(t, mode)}
@group(0) @binding(${nbind}) var<uniform> p: P;
var<workgroup> sh: array<${t}, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = wg.x + wg.y * nwg.x;
  if (w >= p.outer * p.nb) { return; }
  let base = (w / p.nb) * p.n;
  let q0 = (w % p.nb) * ${BLOCK}u + lid * 4u;
  var v: array<${t}, 4>;
  var s = ${t}(0);
  for (var e = 0u; e < 4u; e++) {
    let q = q0 + e;
    v[e] = ${t}(0);
    if (q < p.n) { v[e] = x[base + select(q, p.n - 1u - q, p.rev == 1u)]; }
    s += v[e];
  }
  sh[lid] = s;
  workgroupBarrier();
  // Hillis-Steele inclusive scan of the per-thread totals.
  for (var off = 1u; off < ${WG}u; off *= 2u) {
    var add = ${t}(0);
    if (lid >= off) { add = sh[lid - off]; }
    workgroupBarrier();
    sh[lid] += add;
    workgroupBarrier();
  }
  var before = ${t}(0);
  if (lid > 0u) { before = sh[lid - 1u]; }
  ${finish}
}`;
}

function stridedCode(t: string, mode: Mode): string {
  const nbind = mode === "scan+offsets" ? 3 : 2;
  const start = mode === "scan+offsets" ? "offs[i]" : `${t}(0)`;
  const body = mode === "totals"
    ? "acc += x[at];"
    : "let v = x[at]; if (p.excl == 1u) { out[at] = acc; acc += v; } else { acc += v; out[at] = acc; }";
  return `${PARAMS}
@group(0) @binding(0) var<storage, read> x: array<${t}>;
${outDecl(t, mode)}
@group(0) @binding(${nbind}) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.outer * p.nb * p.inner) { return; }
  let b = i % p.inner;
  let r = i / p.inner;
  let q1 = min(p.n, (r % p.nb) * p.seg + p.seg);
  let base = (r / p.nb) * p.n;
  var acc = ${start};
  for (var q = (r % p.nb) * p.seg; q < q1; q++) {
    let at = (base + select(q, p.n - 1u - q, p.rev == 1u)) * p.inner + b;
    ${body}
  }
  ${mode === "totals" ? "out[i] = acc;" : ""}
}`;
}

/**
 * Scans `x` (`[outer, n, inner]`, contiguous) along its middle axis into a new storage.
 * Temporary storages are freed before returning.
 */
export function cumsumGpu(
  device: GpuDevice,
  x: GpuStorage,
  dtype: DType,
  outer: number,
  n: number,
  inner: number,
  reverse: boolean,
  exclusive: boolean,
): GpuStorage {
  const size = outer * n * inner;
  const out = device.alloc(dtype, size);
  if (size === 0) return out;
  const t = dtypeInfo(dtype).wgsl;
  const blockwise = inner === 1 && n > 64;
  const nb = blockwise
    ? Math.ceil(n / BLOCK)
    : Math.min(Math.ceil(n / MIN_SEGMENT), Math.ceil(TARGET_THREADS / (outer * inner)));
  const seg = Math.ceil(n / nb);
  const params = new Uint32Array([outer, n, inner, nb, seg, reverse ? 1 : 0, exclusive ? 1 : 0]);
  const code = blockwise ? blockCode : stridedCode;
  const groups = blockwise ? grid(outer * nb, 1) : grid(outer * nb * inner);
  if (nb === 1) {
    device.run({ code: code(t, "scan") }, [x, out], groups, params);
    return out;
  }
  const totals = device.alloc(dtype, outer * nb * inner);
  device.run({ code: code(t, "totals") }, [x, totals], groups, params);
  const offsets = cumsumGpu(device, totals, dtype, outer, nb, inner, false, true);
  device.free(totals);
  device.run({ code: code(t, "scan+offsets") }, [x, out, offsets], groups, params);
  device.free(offsets);
  return out;
}

// One workgroup thread per digit value: 2^RADIX_BITS must equal WG.
const RADIX_BITS = 8;
const WG_ARGS = `@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32`;

const HIST = `struct P { m: u32, tiles: u32, shift: u32 }
@group(0) @binding(0) var<storage, read> keys: array<u32>;
@group(0) @binding(1) var<storage, read_write> hist: array<u32>;
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> count: array<atomic<u32>, ${WG}>;
@compute @workgroup_size(${WG})
fn main(${WG_ARGS}) {
  let tile = wg.x + wg.y * nwg.x;
  if (tile >= p.tiles) { return; }
  atomicStore(&count[lid], 0u);
  workgroupBarrier();
  let k = tile * ${WG}u + lid;
  if (k < p.m) { atomicAdd(&count[(keys[k] >> p.shift) & ${WG - 1}u], 1u); }
  workgroupBarrier();
  hist[lid * p.tiles + tile] = atomicLoad(&count[lid]);
}`;

// Ranks each key among the keys of its tile with the same digit and a smaller position, so the
// placement keeps the input order (stable) whatever order the threads run in.
const PLACE = `struct P { m: u32, tiles: u32, shift: u32 }
@group(0) @binding(0) var<storage, read> keys: array<u32>;
@group(0) @binding(1) var<storage, read> vals: array<u32>;
@group(0) @binding(2) var<storage, read> offs: array<u32>;
@group(0) @binding(3) var<storage, read_write> keysOut: array<u32>;
@group(0) @binding(4) var<storage, read_write> valsOut: array<u32>;
@group(0) @binding(5) var<uniform> p: P;
var<workgroup> digit: array<u32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(${WG_ARGS}) {
  let tile = wg.x + wg.y * nwg.x;
  if (tile >= p.tiles) { return; }
  let k = tile * ${WG}u + lid;
  var key = 0u;
  var d = ${WG}u;
  if (k < p.m) {
    key = keys[k];
    d = (key >> p.shift) & ${WG - 1}u;
  }
  digit[lid] = d;
  workgroupBarrier();
  if (k < p.m) {
    var rank = 0u;
    for (var j = 0u; j < lid; j++) { rank += select(0u, 1u, digit[j] == d); }
    let dest = offs[d * p.tiles + tile] + rank;
    keysOut[dest] = key;
    valsOut[dest] = vals[k];
  }
}`;

/**
 * Stable sort of `m` u32 keys below `nKeys`, carrying u32 values; frees the inputs and returns
 * the sorted keys and values. An LSD radix sort over only the bits `nKeys` needs, 8 a pass:
 * per-tile digit counts stored as `[digit][tile]`, an exclusive scan of them (each entry becomes
 * where that tile's keys of that digit start), and a placement that ranks each key among the
 * equal digits before it in its tile. Every pass keeps the input order of equal keys.
 */
export function sortByKey(
  device: GpuDevice,
  keys: GpuStorage,
  vals: GpuStorage,
  m: number,
  nKeys: number,
): [GpuStorage, GpuStorage] {
  const bits = nKeys > 1 ? 32 - Math.clz32(nKeys - 1) : 0;
  const tiles = Math.ceil(m / WG);
  for (let shift = 0; shift < bits; shift += RADIX_BITS) {
    const params = new Uint32Array([m, tiles, shift]);
    const hist = device.alloc("u32", WG * tiles);
    device.run({ code: HIST }, [keys, hist], grid(tiles, 1), params);
    const offs = cumsumGpu(device, hist, "u32", 1, WG * tiles, 1, false, true);
    device.free(hist);
    const k2 = device.alloc("u32", m), v2 = device.alloc("u32", m);
    device.run({ code: PLACE }, [keys, vals, offs, k2, v2], grid(tiles, 1), params);
    [offs, keys, vals].forEach((s) => device.free(s));
    [keys, vals] = [k2, v2];
  }
  return [keys, vals];
}

/** The scan family's kernels. */
export const scanKernels: KernelTable = {
  cumsum: (d: GpuDevice, [x]: GpuStorage[], { layout: l, ...s }: ScanSpec) =>
    cumsumGpu(d, x, s.dtype, l.outer, l.n, l.inner, s.reverse, s.exclusive),
};
