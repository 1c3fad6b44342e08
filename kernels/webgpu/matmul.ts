/**
 * WebGPU batched matmul: a shared-memory tiled kernel with register blocking, generated per
 * (tile config, transposes, vec4-ability and tile-divisibility of M/N/K, batch rank).
 *
 * A workgroup of `wx * wy` threads computes a `BM x BN` tile (`BM = wy * tm`, `BN = wx * tn`);
 * each thread keeps `tm x tn` accumulators in registers. K is walked in steps of `bk` through
 * two shared-memory buffers: the next step's global loads are issued into registers before the
 * current step's multiply-adds, then stored to the other buffer, so one barrier per step
 * suffices. Shared tiles are K-major (`[bk][BM]`, `[bk][BN]`), so each thread reads its rows
 * and columns as vec4s; operands whose rows are K-contiguous are transposed while being stored.
 * Bounds checks are emitted only for the dimensions that are not tile multiples. Every
 * thread's rows sit at stride `4 * wy` (columns at `4 * wx`) so a warp reads shared memory
 * without bank conflicts. Batches use the z dimension of the dispatch. f16 operands are
 * widened to f32 as they are loaded (shared tiles and sums stay f32) and C is rounded to f16
 * once, as it is stored.
 * @module
 */
import type { GpuBindable, GpuDevice } from "./device.ts";
import { batchCount, type MatmulSpec } from "../specs/matmul.ts";
import { collapse, contiguousStrides } from "../strided.ts";
import { TO_F16 } from "./elementwise_ops.ts";

/** A tile configuration: threads per workgroup (`wx * wy`), outputs per thread, K step. */
export interface TileConfig {
  /** Threads along N. */
  readonly wx: number;
  /** Threads along M. */
  readonly wy: number;
  /** Rows per thread (multiple of 4). */
  readonly tm: number;
  /** Columns per thread (multiple of 4). */
  readonly tn: number;
  /** K step held in shared memory (multiple of 4). */
  readonly bk: number;
  /** Rows of tiles grouped together in launch order, for L2 reuse (0: row-major order). */
  readonly group?: number;
}

/** Everything baked into one shader. */
export interface Variant extends TileConfig {
  /** A is stored `[k, m]`. */
  readonly transA: boolean;
  /** B is stored `[n, k]`. */
  readonly transB: boolean;
  /** A is read as vec4s (its contiguous dimension is a multiple of 4). */
  readonly vecA: boolean;
  /** B is read as vec4s. */
  readonly vecB: boolean;
  /** C is written as vec4s (N is a multiple of 4). */
  readonly vecC: boolean;
  /** M is not a multiple of the tile's rows: rows are bounds-checked. */
  readonly checkM: boolean;
  /** N is not a multiple of the tile's columns. */
  readonly checkN: boolean;
  /** K is not a multiple of the K step. */
  readonly checkK: boolean;
  /** Batch dimensions left after merging (decoded per workgroup). */
  readonly batchDims: number;
  /** A, B and C are f16: loads widen to f32 (products sum in f32), the store rounds. */
  readonly half?: boolean;
}

/** A variant with its merged batch layout and dispatch grid. */
export interface MatmulPlan {
  /** The shader variant. */
  readonly variant: Variant;
  /** Batch dimensions merged where A, B and C are all contiguous across them. */
  readonly merged: { shape: number[]; strides: number[][] };
  /** Workgroups along N, M and the batch. */
  readonly nx: number;
  /** Workgroups along M. */
  readonly ny: number;
  /** Workgroups along the batch (output matrices). */
  readonly nz: number;
}

const MAX_BATCH_DIMS = 8;
const MAX_GROUPS = 65535;

/**
 * Named configurations; {@linkcode chooseTile} picks one per shape. Measured on an H100
 * (Vulkan), square f32: `large` gives ~37 TFLOP/s at 2048-4096 and ~30 at 1024, where 128x128
 * tiles of 256 threads reach only ~29 (register pressure halves occupancy) and a K step of 32
 * only ~16 (48 KiB of shared memory leaves one workgroup per SM). At 512, `medium` is best
 * (~10 TFLOP/s); at 256, `small` (~2).
 */
export const TILES = {
  /** 64x128 tile, 128 threads of 8x8, grouped launch order: large products. */
  large: { wx: 16, wy: 8, tm: 8, tn: 8, bk: 16, group: 8 },
  /** 64x32 tile, 128 threads of 4x4. */
  medium: { wx: 8, wy: 16, tm: 4, tn: 4, bk: 16 },
  /** 32x32 tile, 64 threads of 4x4: small products. */
  small: { wx: 8, wy: 8, tm: 4, tn: 4, bk: 16 },
  /** 4x256 tile: few rows (vector @ matrix). */
  rows: { wx: 64, wy: 1, tm: 4, tn: 4, bk: 16 },
  /** 256x4 tile: few columns (matrix @ vector). */
  cols: { wx: 1, wy: 64, tm: 4, tn: 4, bk: 16 },
} as const satisfies Record<string, TileConfig>;

/** Bytes of workgroup memory a config uses (two buffers of both tiles). */
export function sharedBytes(c: TileConfig): number {
  return 2 * c.bk * (c.wy * c.tm + c.wx * c.tn) * 4;
}

/**
 * Picks a tile for a shape: thin tiles for vector-like products, otherwise the largest tile
 * that still yields about one workgroup per SM (128) without padding the product by more
 * than 20%.
 */
export function chooseTile(m: number, n: number, batch: number): TileConfig {
  if (m <= 4 && n > 4) return TILES.rows;
  if (n <= 4) return TILES.cols;
  for (const c of [TILES.large, TILES.medium]) {
    const bm = c.wy * c.tm, bn = c.wx * c.tn;
    const tiles = Math.ceil(m / bm) * Math.ceil(n / bn) * batch;
    const padded = Math.ceil(m / bm) * bm * Math.ceil(n / bn) * bn;
    if (tiles >= 128 && padded <= 1.2 * m * n) return c;
  }
  return TILES.small;
}

/** Shrinks a config's K step until it fits the device's workgroup limits. */
function fit(c: TileConfig, limits: GPUSupportedLimits): TileConfig {
  if (c.wx * c.wy > limits.maxComputeInvocationsPerWorkgroup) return TILES.small;
  let cfg = c;
  while (sharedBytes(cfg) > limits.maxComputeWorkgroupStorageSize && cfg.bk > 4) {
    cfg = { ...cfg, bk: cfg.bk / 2 };
  }
  return cfg;
}

// Generated sources, memoised per variant: generating one costs more than a dispatch.
const SOURCES = new Map<string, string>();

/** The WGSL source of one variant (memoised). */
export function matmulSource(v: Variant): string {
  const key = JSON.stringify(v);
  let code = SOURCES.get(key);
  if (code === undefined) SOURCES.set(key, code = generate(v));
  return code;
}

function generate(v: Variant): string {
  const { wx, wy, tm, tn, bk } = v;
  const bm = wy * tm, bn = wx * tn, threads = wx * wy;
  const sa = bk * bm / 4, sb = bk * bn / 4; // vec4s per shared buffer
  const L: string[] = [];
  const e = (s: string) => L.push(s);
  // f16 operands are widened as they are loaded, and C rounded once as it is stored.
  const wide = (x: string, vec: boolean) => v.half ? `${vec ? "vec4<f32>" : "f32"}(${x})` : x;
  const narrow = (x: string, vec: boolean) =>
    !v.half
      ? x
      : vec
      ? `vec4<f16>(${[0, 1, 2, 3].map((j) => `to_f16_(${x}[${j}])`).join(", ")})`
      : `to_f16_(${x})`;

  // --- global -> registers -> shared, for one operand ---
  // `direct`: stored rows run along K (row index k, contiguous along the tile's M/N);
  // otherwise stored rows run along M/N and are contiguous along K (transposed on store).
  const loader = (X: "A" | "B", direct: boolean, vec: boolean, rows: number, dim: string) => {
    const check = X === "A" ? v.checkM : v.checkN;
    const count = bk * rows / 4;
    const per = Math.ceil(count / threads);
    const regs = Array.from({ length: per }, (_, l) => `r${X}${l}`);
    const pre: string[] = [], load: string[] = [], store: string[] = [];
    const base = `${X.toLowerCase()}0`, off = `${X.toLowerCase()}Off`;
    for (let l = 0; l < per; l++) {
      const idx = `${X}i${l}`;
      pre.push(`let ${idx} = tid + ${l * threads}u;`);
      const live = count % threads === 0 || (l + 1) * threads <= count ? "" : `${idx} < ${count}u`;
      const [kq, rq] = direct
        ? [`(${idx} / ${rows / 4}u)`, `(${idx} % ${rows / 4}u) * 4u`]
        : [`(${idx} % ${bk / 4}u) * 4u`, `(${idx} / ${bk / 4}u)`];
      pre.push(`let ${X}k${l} = ${kq}; let ${X}r${l} = ${rq};`);
      const k = `(k0 + ${X}k${l})`, r = `(${base} + ${X}r${l})`;
      const conds = (j: number) => {
        const c = live ? [live] : [];
        const dr = direct ? ` + ${j}u` : "", dk = direct ? "" : ` + ${j}u`;
        if (check) c.push(`${r}${dr} < p.${dim}`);
        if (v.checkK) c.push(`${k}${dk} < p.k`);
        return c;
      };
      // Element index in the stored operand; for vec4 loads, in vec4 units.
      const at = direct ? `${off} + ${k} * p.${dim} + ${r}` : `${off} + ${r} * p.k + ${k}`;
      if (vec) {
        const c = conds(0);
        const idx4 = direct
          ? `${off}4 + ${k} * (p.${dim} / 4u) + ${r} / 4u`
          : `${off}4 + ${r} * (p.k / 4u) + ${k} / 4u`;
        const x = wide(`${X}[${idx4}]`, true);
        load.push(
          c.length
            ? `${regs[l]} = vec4<f32>(0.0); if (${c.join(" && ")}) { ${regs[l]} = ${x}; }`
            : `${regs[l]} = ${x};`,
        );
      } else {
        load.push(`${regs[l]} = vec4<f32>(0.0);`);
        for (let j = 0; j < 4; j++) {
          const c = conds(j);
          const s = `${regs[l]}[${j}] = ${wide(`${X}[${at} + ${j}u]`, false)};`;
          load.push(c.length ? `if (${c.join(" && ")}) { ${s} }` : s);
        }
      }
      const guard = (s: string) => (live ? `if (${live}) { ${s} }` : s);
      if (direct) {
        store.push(
          guard(`${X}s[buf${X} + ${X}k${l} * ${rows / 4}u + ${X}r${l} / 4u] = ${regs[l]};`),
        );
      } else {
        const s = [0, 1, 2, 3].map((j) =>
          `${X}s[buf${X} + (${X}k${l} + ${j}u) * ${rows / 4}u + ${X}r${l} / 4u][${X}r${l} % 4u] = ${
            regs[l]
          }[${j}];`
        ).join(" ");
        store.push(guard(s));
      }
    }
    return { regs, pre, load, store };
  };

  const la = loader("A", v.transA, v.vecA, bm, "m");
  const lb = loader("B", !v.transB, v.vecB, bn, "n");
  const scalar = v.half ? "f16" : "f32";
  const ty = (t: boolean) => (t ? `vec4<${scalar}>` : scalar);

  e(`struct P { m: u32, n: u32, k: u32, z0: u32, x0: u32, y0: u32, nx: u32, ny: u32,`);
  e(`  shape: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2> }`);
  e(`@group(0) @binding(0) var<storage, read> A: array<${ty(v.vecA)}>;`);
  e(`@group(0) @binding(1) var<storage, read> B: array<${ty(v.vecB)}>;`);
  e(`@group(0) @binding(2) var<storage, read_write> C: array<${ty(v.vecC)}>;`);
  e(`@group(0) @binding(3) var<uniform> p: P;`);
  if (v.half) e(TO_F16);
  e(`var<workgroup> As: array<vec4<f32>, ${2 * sa}>;`);
  e(`var<workgroup> Bs: array<vec4<f32>, ${2 * sb}>;`);
  e(`@compute @workgroup_size(${wx}, ${wy})`);
  e(`fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,`);
  e(`        @builtin(local_invocation_index) tid: u32) {`);
  if (v.group) {
    // Launch tiles in column strips `group` tiles tall, so concurrently running workgroups
    // share rows of A and columns of B in L2.
    e(`  let pid = wid.y * p.nx + wid.x;`);
    e(`  let inGroup = ${v.group}u * p.nx;`);
    e(`  let firstM = (pid / inGroup) * ${v.group}u;`);
    e(`  let gsize = min(p.ny - firstM, ${v.group}u);`);
    e(`  let tileM = firstM + (pid % inGroup) % gsize;`);
    e(`  let tileN = (pid % inGroup) / gsize;`);
  } else {
    e(`  let tileM = wid.y + p.y0;`);
    e(`  let tileN = wid.x + p.x0;`);
  }
  e(`  let z = wid.z + p.z0;`);
  e(`  var aOff = 0u; var bOff = 0u;`);
  if (v.batchDims > 0) {
    e(`  var rem = z;`);
    for (let d = v.batchDims - 1; d >= 0; d--) {
      const at = `[${d >> 2}][${d & 3}]`;
      e(`  { let c = rem % p.shape${at}; rem = rem / p.shape${at};`);
      e(`    aOff += c * p.sa${at}; bOff += c * p.sb${at}; }`);
    }
  }
  e(`  let aOff4 = aOff / 4u; let bOff4 = bOff / 4u;`);
  e(`  let a0 = tileM * ${bm}u; let b0 = tileN * ${bn}u;`);
  e(`  let tx = lid.x; let ty = lid.y;`);
  e(`  ${[...la.pre, ...lb.pre].join("\n  ")}`);
  e(`  var ${[...la.regs, ...lb.regs].map((r) => `${r}: vec4<f32>`).join("; var ")};`);
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < tn / 4; q++) e(`  var c${i}_${q} = vec4<f32>(0.0);`);
  }
  e(`  let nt = (p.k + ${bk - 1}u) / ${bk}u;`);
  e(`  if (nt > 0u) {`);
  e(`    let k0 = 0u; let bufA = 0u; let bufB = 0u;`);
  e(`    ${[...la.load, ...lb.load].join("\n    ")}`);
  e(`    ${[...la.store, ...lb.store].join("\n    ")}`);
  e(`  }`);
  e(`  workgroupBarrier();`);
  e(`  for (var t = 0u; t < nt; t++) {`);
  e(`    let cur = t & 1u;`);
  e(`    let more = t + 1u < nt;`);
  e(`    if (more) {`);
  e(`      let k0 = (t + 1u) * ${bk}u;`);
  e(`      ${[...la.load, ...lb.load].join("\n      ")}`);
  e(`    }`);
  e(`    let ab = cur * ${sa}u + ty; let bb = cur * ${sb}u + tx;`);
  for (let kk = 0; kk < bk; kk++) {
    for (let i = 0; i < tm / 4; i++) e(`    let a${kk}_${i} = As[ab + ${kk * bm / 4 + i * wy}u];`);
    for (let q = 0; q < tn / 4; q++) e(`    let b${kk}_${q} = Bs[bb + ${kk * bn / 4 + q * wx}u];`);
    for (let i = 0; i < tm; i++) {
      const a = `a${kk}_${i >> 2}.${"xyzw"[i & 3]}`;
      for (let q = 0; q < tn / 4; q++) {
        e(`    c${i}_${q} = fma(vec4<f32>(${a}), b${kk}_${q}, c${i}_${q});`);
      }
    }
  }
  e(`    if (more) {`);
  e(`      let bufA = (1u - cur) * ${sa}u; let bufB = (1u - cur) * ${sb}u;`);
  e(`      ${[...la.store, ...lb.store].join("\n      ")}`);
  e(`    }`);
  e(`    workgroupBarrier();`);
  e(`  }`);
  // --- registers -> C ---
  e(`  let cOff = z * p.m * p.n;`);
  for (let i = 0; i < tm; i++) {
    const row = `a0 + ${(i >> 2) * wy * 4}u + ty * 4u + ${i & 3}u`;
    e(`  { let r = ${row};`);
    for (let q = 0; q < tn / 4; q++) {
      const col = `b0 + ${q * wx * 4}u + tx * 4u`;
      const conds = [v.checkM ? "r < p.m" : "", v.checkN && v.vecC ? "c < p.n" : ""].filter(
        Boolean,
      );
      const body = v.vecC
        ? `C[cOff / 4u + r * (p.n / 4u) + c / 4u] = ${narrow(`c${i}_${q}`, true)};`
        : [0, 1, 2, 3].map((j) => {
          const s = `C[cOff + r * p.n + c + ${j}u] = ${narrow(`c${i}_${q}[${j}]`, false)};`;
          return v.checkN ? `if (c + ${j}u < p.n) { ${s} }` : s;
        }).join(" ");
      e(`    { let c = ${col}; ${
        conds.length ? `if (${conds.join(" && ")}) { ${body} }` : body
      } }`);
    }
    e(`  }`);
  }
  e(`}`);
  return L.join("\n");
}

/** The shader variant and dispatch grid for a spec under a tile config. */
export function planMatmul(spec: MatmulSpec, tile: TileConfig): MatmulPlan {
  const { m, n, k, transA, transB } = spec;
  const bm = tile.wy * tile.tm, bn = tile.wx * tile.tn;
  const outStrides = contiguousStrides(spec.batchShape);
  const merged = collapse(spec.batchShape, [spec.aStrides, spec.bStrides, outStrides]);
  if (merged.shape.length > MAX_BATCH_DIMS) {
    throw new RangeError(
      `matmul: batch broadcasting needs ${merged.shape.length} dimensions after merging; at most ${MAX_BATCH_DIMS} are supported`,
    );
  }
  const nx = Math.ceil(n / bn), ny = Math.ceil(m / bm), nz = batchCount(spec);
  const variant: Variant = {
    ...tile,
    // Grouped launch order needs the whole grid in one dispatch.
    group: nx <= MAX_GROUPS && ny <= MAX_GROUPS ? tile.group ?? 0 : 0,
    transA,
    transB,
    vecA: (transA ? m : k) % 4 === 0,
    vecB: (transB ? k : n) % 4 === 0,
    vecC: n % 4 === 0,
    checkM: m % bm !== 0,
    checkN: n % bn !== 0,
    checkK: k % tile.bk !== 0,
    batchDims: merged.shape.length,
    half: spec.dtype === "f16",
  };
  return { variant, merged, nx, ny, nz };
}

/**
 * Runs `out[z] = A[z] @ B[z]` for every batch index into contiguous `out [...batch, m, n]`,
 * on bindings that may be windows (see `matmul_split.ts`). `tile` overrides the per-shape
 * choice (for tuning, and so the pieces of a split product sum as the whole would).
 */
export function matmulInto(
  device: GpuDevice,
  a: GpuBindable,
  b: GpuBindable,
  out: GpuBindable,
  spec: MatmulSpec,
  tile?: TileConfig,
): void {
  const { m, n } = spec;
  const count = batchCount(spec);
  if (count * m * n === 0) return;
  const cfg = fit(tile ?? chooseTile(m, n, count), device.device.limits);
  const { variant, merged, nx, ny, nz } = planMatmul(spec, cfg);
  const code = matmulSource(variant);
  const params = new Uint32Array(8 + 24);
  params.set([m, n, spec.k, 0, 0, 0, nx, ny]);
  merged.shape.forEach((s, d) => {
    params[8 + d] = s;
    params[16 + d] = merged.strides[0][d];
    params[24 + d] = merged.strides[1][d];
  });
  // Grids past the per-dimension limit are dispatched in chunks with offsets.
  for (let z0 = 0; z0 < nz; z0 += MAX_GROUPS) {
    for (let y0 = 0; y0 < ny; y0 += MAX_GROUPS) {
      for (let x0 = 0; x0 < nx; x0 += MAX_GROUPS) {
        const p = params.slice();
        p[3] = z0, p[4] = x0, p[5] = y0;
        device.run({ code }, [a, b, out], [
          Math.min(MAX_GROUPS, nx - x0),
          Math.min(MAX_GROUPS, ny - y0),
          Math.min(MAX_GROUPS, nz - z0),
        ], p);
      }
    }
  }
}
