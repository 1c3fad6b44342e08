/**
 * WebGPU LSD radix sort of 32-bit keys with an index payload, per row of a `[rows, n]` array,
 * for rows longer than one workgroup tile (see `sort.ts` for short rows).
 *
 * Each of the 8 passes sorts by 4 bits. A row is cut into tiles (128 threads times 8 keys) that
 * never span two rows; one workgroup handles one tile:
 * 1. `histogram`: counts of each digit per tile, stored as `hist[row][digit][tile]`;
 * 2. an exclusive scan over that whole array (`cumsumGpu` of `scan.ts`): since rows are
 *    contiguous and hold `n` keys each, entry `(row, digit, tile)` becomes the global position
 *    where that tile's keys of that digit go (earlier rows, then smaller digits, then earlier
 *    tiles) -- the row segments need no extra key bits;
 * 3. `scatter`: each thread takes consecutive keys of the tile; per-thread digit counts laid
 *    out as `[digit][thread]` and scanned give every key its stable rank within the tile.
 * Ranks follow the input order within a digit everywhere, so each pass is stable, and so is the
 * whole LSD sort. The first pass reads the raw values (mapping them to ordered keys) and the
 * last writes the sorted values and row positions directly.
 * @module
 */
import type { DType } from "../dtype.ts";
import { type GpuDevice, type GpuStorage, grid } from "./device.ts";
import { cumsumGpu } from "./scan.ts";

const THREADS = 128;
/** Keys each thread of a tile ranks (a tile is `THREADS * perThread` keys). */
const PER_THREAD = 8;
const BITS = 4;
const BUCKETS = 1 << BITS;
const PASSES = 32 / BITS;

/**
 * WGSL `mapKey(bits) -> u32` for a dtype: the order-preserving map of the CPU reference
 * (`orderedKeys`): NaN is the largest key, -0 equals +0.
 */
export function mapKeyWgsl(dtype: DType): string {
  const body = dtype === "f32"
    ? `let mag = b & 0x7fffffffu;
  if (mag > 0x7f800000u) { return 0xffffffffu; }
  if (mag == 0u) { return 0x80000000u; }
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;`
    : dtype === "i32"
    ? "return b ^ 0x80000000u;"
    : "return b;";
  return `fn mapKey(b: u32) -> u32 {\n  ${body}\n}`;
}

const PARAMS = `struct P { n: u32, tpr: u32, tiles: u32, shift: u32, flip: u32 }`;
const tileHead = (tile: number) => `
  let tid = wid.x + wid.y * nwg.x;
  if (tid >= p.tiles) { return; }
  let row = tid / p.tpr;
  let t = tid % p.tpr;
  let start = row * p.n + t * ${tile}u;
  let count = min(${tile}u, p.n - t * ${tile}u);`;
const WG_ARGS =
  `@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32`;

function histogramCode(dtype: DType | null, per: number): string {
  const key = dtype ? "(mapKey(src[start + e]) ^ p.flip)" : "src[start + e]";
  return `
${PARAMS}
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> hist: array<u32>;
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> h: array<atomic<u32>, ${BUCKETS}>;
${dtype ? mapKeyWgsl(dtype) : ""}
@compute @workgroup_size(${THREADS})
fn main(${WG_ARGS}) {
  ${tileHead(THREADS * per)}
  if (lid < ${BUCKETS}u) { atomicStore(&h[lid], 0u); }
  workgroupBarrier();
  for (var e = lid; e < count; e += ${THREADS}u) {
    atomicAdd(&h[(${key} >> p.shift) & ${BUCKETS - 1}u], 1u);
  }
  workgroupBarrier();
  if (lid < ${BUCKETS}u) { hist[(row * ${BUCKETS}u + lid) * p.tpr + t] = atomicLoad(&h[lid]); }
}`;
}

/** Pass kinds: the first reads raw values, the last writes values and indices. */
type Stage = "first" | "middle" | "last";

function scatterCode(stage: Stage, dtype: DType, withValues: boolean, per: number): string {
  const first = stage === "first", last = stage === "last";
  const bindings = first
    ? ["src", "offsets", "keysOut", "valsOut"]
    : last
    ? ["src", "vals", "offsets", ...(withValues ? ["x", "valuesOut"] : []), "idxOut"]
    : ["src", "vals", "offsets", "keysOut", "valsOut"];
  const decl = bindings.map((b, i) =>
    `@group(0) @binding(${i}) var<storage, ${
      b.endsWith("Out") ? "read_write" : "read"
    }> ${b}: array<u32>;`
  ).join("\n");
  const load = first
    ? `k[j] = mapKey(src[start + e]) ^ p.flip; v[j] = t * ${THREADS * per}u + e;`
    : "k[j] = src[start + e]; v[j] = vals[start + e];";
  const store = last
    ? (withValues ? "valuesOut[dst] = x[row * p.n + v[j]]; " : "") + "idxOut[dst] = v[j];"
    : "keysOut[dst] = k[j]; valsOut[dst] = v[j];";
  return `
${PARAMS}
${decl}
@group(0) @binding(${bindings.length}) var<uniform> p: P;
var<workgroup> counts: array<u32, ${BUCKETS * THREADS}>;
var<workgroup> sums: array<u32, ${THREADS}>;
var<workgroup> base: array<u32, ${BUCKETS}>;
${first ? mapKeyWgsl(dtype) : ""}
@compute @workgroup_size(${THREADS})
fn main(${WG_ARGS}) {
  ${tileHead(THREADS * per)}
  var k: array<u32, ${per}>;
  var v: array<u32, ${per}>;
  for (var d = 0u; d < ${BUCKETS}u; d++) { counts[d * ${THREADS}u + lid] = 0u; }
  let mine = lid * ${per}u;
  for (var j = 0u; j < ${per}u; j++) {
    let e = mine + j;
    if (e < count) {
      ${load}
      counts[((k[j] >> p.shift) & ${BUCKETS - 1}u) * ${THREADS}u + lid] += 1u;
    }
  }
  workgroupBarrier();
  // Exclusive scan of counts in [digit][thread] order: thread lid scans ${BUCKETS} entries.
  var s = 0u;
  for (var j = 0u; j < ${BUCKETS}u; j++) {
    let c = counts[lid * ${BUCKETS}u + j];
    counts[lid * ${BUCKETS}u + j] = s;
    s += c;
  }
  sums[lid] = s;
  workgroupBarrier();
  for (var off = 1u; off < ${THREADS}u; off <<= 1u) {
    var add = 0u;
    if (lid >= off) { add = sums[lid - off]; }
    workgroupBarrier();
    sums[lid] += add;
    workgroupBarrier();
  }
  let prefix = sums[lid] - s;
  for (var j = 0u; j < ${BUCKETS}u; j++) { counts[lid * ${BUCKETS}u + j] += prefix; }
  workgroupBarrier();
  // base[d] turns a rank within the tile into a global position (wrapping u32 arithmetic).
  if (lid < ${BUCKETS}u) {
    base[lid] = offsets[(row * ${BUCKETS}u + lid) * p.tpr + t] - counts[lid * ${THREADS}u];
  }
  workgroupBarrier();
  for (var j = 0u; j < ${per}u; j++) {
    if (mine + j < count) {
      let slot = ((k[j] >> p.shift) & ${BUCKETS - 1}u) * ${THREADS}u + lid;
      let rank = counts[slot];
      counts[slot] = rank + 1u;
      let dst = base[(k[j] >> p.shift) & ${BUCKETS - 1}u] + rank;
      ${store}
    }
  }
}`;
}

/**
 * Sorts each row of `n` keys of `x` (`rows * n` elements of `dtype`; any n >= 1, meant for
 * rows too long for one workgroup), writing the sorted values (when `values` is given) and
 * each one's position within its row (`indices`). `perThread` (keys per thread, a tuning
 * knob) sets the tile size.
 */
export function radixSortGpu(
  device: GpuDevice,
  x: GpuStorage,
  dtype: DType,
  rows: number,
  n: number,
  descending: boolean,
  values: GpuStorage | null,
  indices: GpuStorage,
  perThread = PER_THREAD,
): void {
  const size = rows * n;
  const tpr = Math.ceil(n / (THREADS * perThread));
  const tiles = rows * tpr;
  const histSize = rows * BUCKETS * tpr;
  const temp = [0, 1, 2, 3].map(() => device.alloc("u32", size));
  const [keysA, valsA, keysB, valsB] = temp;
  const hist = device.alloc("u32", histSize);
  const params = new Uint32Array([n, tpr, tiles, 0, descending ? 0xffffffff : 0]);
  const groups = grid(tiles, 1);
  for (let pass = 0; pass < PASSES; pass++) {
    params[3] = pass * BITS;
    const stage: Stage = pass === 0 ? "first" : pass === PASSES - 1 ? "last" : "middle";
    // Pass p reads what pass p-1 wrote: A after even passes, B after odd ones.
    const [keysIn, valsIn] = pass % 2 === 1 ? [keysA, valsA] : [keysB, valsB];
    const [keysOut, valsOut] = pass % 2 === 0 ? [keysA, valsA] : [keysB, valsB];
    const src = stage === "first" ? x : keysIn;
    device.run(
      { code: histogramCode(stage === "first" ? dtype : null, perThread) },
      [src, hist],
      groups,
      params,
    );
    const offsets = cumsumGpu(device, hist, "u32", 1, histSize, 1, false, true);
    const buffers = stage === "first"
      ? [x, offsets, keysOut, valsOut]
      : stage === "last"
      ? [keysIn, valsIn, offsets, ...(values ? [x, values] : []), indices]
      : [keysIn, valsIn, offsets, keysOut, valsOut];
    device.run(
      { code: scatterCode(stage, dtype, values !== null, perThread) },
      buffers,
      groups,
      params,
    );
    device.free(offsets);
  }
  for (const b of temp) device.free(b);
  device.free(hist);
}
