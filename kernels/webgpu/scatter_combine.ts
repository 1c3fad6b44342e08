/**
 * WebGPU combining scatters (`set`, `max`, `min`), deterministic without atomics, by the
 * scheme of the scatter-add in `indexing.ts`: each update's target row is computed, the update
 * positions are stably sorted by target (`sortByKey`), and one thread per output element
 * combines `x` with its updates in increasing update position (finding its run of the sorted
 * targets by binary search). So `set` with duplicate targets keeps the last update in index
 * order, as the CPU reference does, and `max` / `min` propagate NaN on both backends (tested
 * on the bits: WGSL leaves `max` of NaN to the implementation).
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { FLAT_ARGS, FLAT_INDEX, type GpuDevice, type GpuStorage, grid, WG } from "./device.ts";
import { sortByKey } from "./scan.ts";
import type { AxisIndexSpec, AxisLayout, ScatterCombine } from "../specs/indexing.ts";
import type { KernelTable } from "../backend.ts";

const ro = (b: number, name: string, t: string) =>
  `@group(0) @binding(${b}) var<storage, read> ${name}: array<${t}>;`;
const rw = (b: number, name: string, t: string) =>
  `@group(0) @binding(${b}) var<storage, read_write> ${name}: array<${t}>;`;

/** WGSL `combine(old, upd)` for a mode and element type. */
export function combineWgsl(mode: ScatterCombine, t: string): string {
  if (mode === "set") return `fn combine(old: ${t}, upd: ${t}) -> ${t} { return upd; }`;
  const nan = t === "f32"
    ? "if (isnan_(old) || isnan_(upd)) { return bitcast<f32>(0x7fc00000u); }"
    : "";
  return `fn isnan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn combine(old: ${t}, upd: ${t}) -> ${t} {
  ${nan}
  return ${mode}(old, upd);
}`;
}

/** Target rows `nidx(idx[k], n)` and positions `k` of the `m` updates. */
function targetRows(
  device: GpuDevice,
  idx: GpuStorage,
  indexDtype: DType,
  n: number,
  m: number,
): [GpuStorage, GpuStorage] {
  const keys = device.alloc("u32", m), vals = device.alloc("u32", m);
  const norm = indexDtype === "i32"
    ? "var j = idx[i]; if (j < 0) { j += i32(p.n); } keys[i] = u32(clamp(j, 0, i32(p.n) - 1));"
    : "keys[i] = min(idx[i], p.n - 1u);";
  const code = `struct P { m: u32, n: u32 }
${ro(0, "idx", dtypeInfo(indexDtype).wgsl)}
${rw(1, "keys", "u32")}
${rw(2, "vals", "u32")}
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.m) { return; }
  ${norm}
  vals[i] = i;
}`;
  device.run({ code }, [idx, keys, vals], grid(m), new Uint32Array([m, n]));
  return [keys, vals];
}

/**
 * `out = x; out[a, idx[k], b] = combine(out[a, idx[k], b], upd[a, k, b])` for `k` in increasing
 * order, over `x = [outer, n, inner]` and `upd = [outer, m, inner]`.
 */
export function scatterCombineGpu(
  device: GpuDevice,
  x: GpuStorage,
  idx: GpuStorage,
  indexDtype: DType,
  upd: GpuStorage,
  { outer, n, inner }: AxisLayout,
  m: number,
  dtype: DType,
  mode: ScatterCombine,
): GpuStorage {
  const total = outer * n * inner;
  const out = device.alloc(dtype, total);
  if (total === 0) return out;
  let keys: GpuStorage, perm: GpuStorage;
  if (m === 0) {
    keys = device.alloc("u32", 0);
    perm = device.alloc("u32", 0);
  } else {
    [keys, perm] = targetRows(device, idx, indexDtype, n, m);
    [keys, perm] = sortByKey(device, keys, perm, m, n);
  }
  const t = dtypeInfo(dtype).wgsl;
  const code = `struct P { total: u32, m: u32, w: u32, n: u32 }
${ro(0, "x", t)}
${ro(1, "upd", t)}
${ro(2, "keys", "u32")}
${ro(3, "perm", "u32")}
${rw(4, "out", t)}
@group(0) @binding(5) var<uniform> p: P;
${combineWgsl(mode, t)}
fn lower(j: u32) -> u32 {
  var lo = 0u;
  var hi = p.m;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (keys[mid] < j) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.total) { return; }
  let b = i % p.w;
  let t = i / p.w;
  let j = t % p.n;
  let base = (t / p.n) * p.m;
  var acc = x[i];
  let end = lower(j + 1u);
  for (var s = lower(j); s < end; s++) { acc = combine(acc, upd[(base + perm[s]) * p.w + b]); }
  out[i] = acc;
}`;
  device.run(
    { code },
    [x, upd, keys, perm, out],
    grid(total),
    new Uint32Array([total, m, inner, n]),
  );
  device.free(keys);
  device.free(perm);
  return out;
}

const combine =
  (mode: ScatterCombine) => (d: GpuDevice, [x, i, u]: GpuStorage[], s: AxisIndexSpec) =>
    scatterCombineGpu(d, x, i, s.indexDtype, u, s.layout, s.count, s.dtype, mode);

/** The combining scatters' kernels. */
export const scatterCombineKernels: KernelTable = {
  scatterSet: combine("set"),
  scatterMax: combine("max"),
  scatterMin: combine("min"),
};
