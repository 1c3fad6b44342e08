/**
 * WebGPU fused row softmax and log-softmax over the middle axis of a contiguous
 * `[outer, n, inner]` layout; layouts with `inner > 1` are transposed to rows first. f16 rows
 * are widened as they are loaded, normalised in f32 and rounded once as they are written.
 * @module
 */
import type { DType } from "../dtype.ts";
import { TO_F16 } from "./elementwise_ops.ts";
import type { KernelTable } from "../backend.ts";
import { type GpuDevice, type GpuStorage, grid, WG } from "./device.ts";
import type { ReduceLayout, SoftmaxSpec } from "../specs/reduce.ts";
import { asRows, lanesFor, NEG_INF } from "./reduce.ts";
import { guarded, rowPieces } from "./windows.ts";

/** Most row elements one lane keeps in registers, so the row is read from memory once. */
const MAX_CACHED = 16;

/**
 * Fused row softmax / log-softmax: the row maximum, the sum of shifted exponentials, then the
 * write, each phase ending in a shared-memory tree across the row's lanes. A row of only
 * `-inf` gives softmax 0 and log-softmax `-inf` (as the CPU reference). When a lane's part
 * of the row fits in `cached` registers the row is read once; otherwise it is streamed three
 * times (later passes mostly hit the cache).
 */
function softmaxCode(lanes: number, log: boolean, cached: number, half: boolean): string {
  const x = half ? "f32(x[base + j])" : "x[base + j]";
  const tree = (combine: string) => `
  for (var s = ${lanes >> 1}u; s > 0u; s >>= 1u) {
    if (lane < s) { sh[lid] = ${combine}; }
    workgroupBarrier();
  }`;
  // Runs `body` for each of this lane's elements `j` (value `val`), while `live`.
  const each = (body: string, load = false) =>
    cached
      ? `for (var e = 0u; e < ${cached}u; e++) {
    let j = lane + e * ${lanes}u;
    ${load ? `v[e] = ${NEG_INF}; ` : ""}if (live && j < p.n) { ${
        load ? `v[e] = ${x}; ` : ""
      }let val = v[e]; ${body} }
  }`
      : `if (live) { for (var j = lane; j < p.n; j += ${lanes}u) { let val = ${x}; ${body} } }`;
  const keep = cached && !log ? "v[e] = y; " : "";
  const write = log ? "val - m - ls" : cached ? "val * inv" : "exp(val - m) * inv";
  return `struct P { rows: u32, n: u32 }
@group(0) @binding(0) var<storage, read> x: array<${half ? "f16" : "f32"}>;
@group(0) @binding(1) var<storage, read_write> out: array<${half ? "f16" : "f32"}>;
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> sh: array<f32, ${WG}>;${half ? TO_F16 : ""}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % ${lanes}u;
  let first = lid - lane;
  let r = (wg.x + wg.y * nwg.x) * ${WG / lanes}u + lid / ${lanes}u;
  let live = r < p.rows;
  let base = r * p.n;
  ${cached ? `var v: array<f32, ${cached}>;` : ""}
  var m = ${NEG_INF};
  ${each("m = max(m, val);", true)}
  sh[lid] = m;
  workgroupBarrier();${tree("max(sh[lid], sh[lid + s])")}
  m = sh[first];
  // A row of only -inf (a fully masked row) is shifted by 0: softmax 0, log-softmax -inf.
  let empty = bitcast<u32>(m) == 0xff800000u;
  m = select(m, 0.0, empty);
  workgroupBarrier();
  var t = 0.0;
  ${each(`let y = exp(val - m); t += y; ${keep}`)}
  sh[lid] = t;
  workgroupBarrier();${tree("sh[lid] + sh[lid + s]")}
  ${
    log
      ? "let ls = select(log(sh[first]), 0.0, empty);"
      : "let inv = select(1.0 / sh[first], 0.0, empty);"
  }
  ${each(`out[base + j] = ${half ? `to_f16_(${write})` : write};`)}
}`;
}

/**
 * Softmax (log-softmax when `log`) of each row of an f32 or f16 `[rows, n]` storage; rows past
 * one storage binding are split into pieces (`op` names the op in a refusal).
 */
export function softmaxGpu(
  device: GpuDevice,
  x: GpuStorage,
  rows: number,
  n: number,
  log: boolean,
  dtype: DType = "f32",
  op = log ? "logSoftmax" : "softmax",
): GpuStorage {
  const out = device.alloc(dtype, rows * n);
  if (rows * n === 0) return out;
  const lanes = lanesFor(n);
  let cached = 1;
  while (cached * lanes < n) cached *= 2;
  const code = softmaxCode(lanes, log, cached <= MAX_CACHED ? cached : 0, dtype === "f16");
  const eb = device.elementBytes(dtype);
  const row = { eb, perRow: n };
  const pieces = guarded(
    device,
    out,
    () =>
      rowPieces(device, op, [rows, n], rows, [{ storage: x, ...row }, { storage: out, ...row }]),
  );
  for (const { count, binds } of pieces) {
    device.run({ code }, binds, grid(count, WG / lanes), new Uint32Array([count, n]));
  }
  return out;
}

const softmax = (log: boolean) => (d: GpuDevice, [x]: GpuStorage[], l: SoftmaxSpec) => {
  const dtype = l.dtype ?? "f32";
  const run = (x: GpuStorage, l: ReduceLayout) => softmaxGpu(d, x, l.outer, l.n, log, dtype);
  return l.inner === 1 ? run(x, l) : asRows(d, x, dtype, l, run, true);
};

/** The softmax family's kernels. */
export const softmaxKernels: KernelTable = {
  softmax: softmax(false),
  logSoftmax: softmax(true),
};
