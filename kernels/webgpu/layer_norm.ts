/**
 * WebGPU fused layer norm ({@linkcode LayerNormSpec}). Forward: `lanesFor(n)` lanes per row,
 * the row's sum and then its sum of squared deviations from the mean (two passes, as the
 * reference) each closed by a shared-memory tree, then the write of `y`, `mean` and `rstd`.
 * Each lane keeps its part of the row in registers when it is short enough (as the softmax
 * kernel), so `x` is read once.
 * Backward: the same row layout computes the row sums of `dy * gamma` and
 * `dy * gamma * xhat` (one tree for both) and writes `dx`; two more kernels give `dgamma` and
 * `dbeta`: partial column sums over fixed blocks of rows (rows ascending), then the partials
 * added in block order, so results do not depend on scheduling.
 * Under `half` (mixed precision) `x`, `gamma`, `beta` and `dy` are read as f16 and widened,
 * `y`, `dx`, `dgamma` and `dbeta` are rounded to f16 on store; everything else is f32.
 * @module
 */
import type { KernelTable } from "../backend.ts";
import {
  FLAT_ARGS,
  FLAT_INDEX,
  type GpuDevice,
  type GpuStorage,
  grid,
  ro,
  rw,
  WG,
} from "./device.ts";
import { lanesFor } from "./reduce.ts";
import type { LayerNormSpec } from "../specs/layer_norm.ts";
import { floatOf, load, store, storeHelpers } from "./half_io.ts";
import { bindingRefusal, guarded, type RowOperand, rowPieces, tooLarge } from "./windows.ts";

/** The uniform block: `rows`, `n` (u32), `eps` (f32). */
function params({ rows, n, eps }: LayerNormSpec): Uint32Array {
  const p = new Uint32Array(4);
  p[0] = rows;
  p[1] = n;
  new Float32Array(p.buffer)[2] = eps;
  return p;
}

const P = "struct P { rows: u32, n: u32, eps: f32, pad: u32 }";

/** Row setup shared by both row kernels: this lane's row `r`, its first element `base`. */
function rowHead(lanes: number, bindings: string, trees: number): string {
  const shared = Array.from(
    { length: trees },
    (_, i) => `var<workgroup> sh${i}: array<f32, ${WG}>;`,
  );
  return `${P}
${bindings}
${shared.join("\n")}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % ${lanes}u;
  let first = lid - lane;
  let r = (wg.x + wg.y * nwg.x) * ${WG / lanes}u + lid / ${lanes}u;
  let live = r < p.rows;
  let base = r * p.n;`;
}

/** A shared-memory tree over the row's lanes, summing `sh<i>` for each listed tree. */
function tree(lanes: number, trees: number[]): string {
  const adds = trees.map((i) => `sh${i}[lid] += sh${i}[lid + s];`).join(" ");
  return `
  workgroupBarrier();
  for (var s = ${lanes >> 1}u; s > 0u; s >>= 1u) {
    if (lane < s) { ${adds} }
    workgroupBarrier();
  }`;
}

/** Most row elements one lane keeps in registers, so the row is read from memory once. */
const MAX_CACHED = 16;

/** Elements per lane to keep in registers for rows of `n` (0: stream them from memory). */
function cachedFor(n: number, lanes: number): number {
  let cached = 1;
  while (cached * lanes < n) cached *= 2;
  return cached <= MAX_CACHED ? cached : 0;
}

/**
 * Runs `body` for each of this lane's elements `j` with `val = x[base + j]`: from registers
 * (`xv`, filled on the pass with `load`) when `cached`, else read again.
 */
function eachOf(
  lanes: number,
  cached: number,
  body: string,
  fill = false,
  half?: boolean,
): string {
  const x = load(half, "x[base + j]");
  return cached
    ? `for (var e = 0u; e < ${cached}u; e++) {
    let j = lane + e * ${lanes}u;
    if (live && j < p.n) { ${fill ? `xv[e] = ${x}; ` : ""}let val = xv[e]; ${body} }
  }`
    : `if (live) { for (var j = lane; j < p.n; j += ${lanes}u) { let val = ${x}; ${body} } }`;
}

function forwardCode(lanes: number, cached: number, affine: boolean, half?: boolean): string {
  const F = floatOf(half);
  const binds = affine
    ? [ro(0, "x", F), ro(1, "gamma", F), ro(2, "beta", F), rw(3, "y", F)]
    : [ro(0, "x", F), rw(1, "y", F)];
  const k = binds.length;
  binds.push(rw(k, "mean", "f32"), rw(k + 1, "rstd", "f32"));
  binds.push(`@group(0) @binding(${k + 2}) var<uniform> p: P;`);
  const each = (body: string, fill = false) => eachOf(lanes, cached, body, fill, half);
  const affined = `h * ${load(half, "gamma[j]")} + ${load(half, "beta[j]")}`;
  return `${storeHelpers(half)}
${rowHead(lanes, binds.join("\n"), 1)}
  ${cached ? `var xv: array<f32, ${cached}>;` : ""}
  var t = 0.0;
  ${each("t += val;", true)}
  sh0[lid] = t;${tree(lanes, [0])}
  let m = sh0[first] / f32(p.n);
  workgroupBarrier();
  t = 0.0;
  ${each("let d = val - m; t += d * d;")}
  sh0[lid] = t;${tree(lanes, [0])}
  let rs = 1.0 / sqrt(sh0[first] / f32(p.n) + p.eps);
  if (live && lane == 0u) { mean[r] = m; rstd[r] = rs; }
  ${
    each(
      `let h = (val - m) * rs; y[base + j] = ${store(half, affine ? affined : "h")};`,
    )
  }
}`;
}

function backwardCode(lanes: number, cached: number, affine: boolean, half?: boolean): string {
  const F = floatOf(half);
  const binds = [ro(0, "x", F), ro(1, "mean", "f32"), ro(2, "rstd", "f32"), ro(3, "dy", F)];
  if (affine) binds.push(ro(4, "gamma", F));
  const k = binds.length;
  binds.push(rw(k, "dx", F), `@group(0) @binding(${k + 1}) var<uniform> p: P;`);
  const dy = load(half, "dy[base + j]");
  const gg = affine ? `${dy} * ${load(half, "gamma[j]")}` : dy;
  const each = (body: string, fill = false) => eachOf(lanes, cached, body, fill, half);
  return `${storeHelpers(half)}
${rowHead(lanes, binds.join("\n"), 2)}
  ${cached ? `var xv: array<f32, ${cached}>;` : ""}
  var m = 0.0;
  var rs = 0.0;
  if (live) { m = mean[r]; rs = rstd[r]; }
  var t1 = 0.0;
  var t2 = 0.0;
  ${each(`let g = ${gg}; t1 += g; t2 += g * ((val - m) * rs);`, true)}
  sh0[lid] = t1;
  sh1[lid] = t2;${tree(lanes, [0, 1])}
  let s1 = sh0[first] / f32(p.n);
  let s2 = sh1[first] / f32(p.n);
  ${each(`let h = (val - m) * rs; dx[base + j] = ${store(half, `rs * (${gg} - s1 - h * s2)`)};`)}
}`;
}

/** Rows per partial column sum of the backward pass. */
const BLOCK_ROWS = 64;

/**
 * Column sums of `dy * xhat` and `dy` over blocks of `BLOCK_ROWS` rows (rows ascending): one
 * thread per (block, column), writing `pg`, `pb [blocks, n]`.
 */
const partialsCode = (half?: boolean) =>
  `${P}
${ro(0, "x", floatOf(half))}
${ro(1, "mean", "f32")}
${ro(2, "rstd", "f32")}
${ro(3, "dy", floatOf(half))}
${rw(4, "pg", "f32")}
${rw(5, "pb", "f32")}
@group(0) @binding(6) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  let blocks = (p.rows + ${BLOCK_ROWS - 1}u) / ${BLOCK_ROWS}u;
  if (i >= blocks * p.n) { return; }
  let col = i % p.n;
  let r0 = (i / p.n) * ${BLOCK_ROWS}u;
  var g = 0.0;
  var b = 0.0;
  for (var r = r0; r < min(r0 + ${BLOCK_ROWS}u, p.rows); r++) {
    let at = r * p.n + col;
    let gy = ${load(half, "dy[at]")};
    g += gy * ((${load(half, "x[at]")} - mean[r]) * rstd[r]);
    b += gy;
  }
  pg[i] = g;
  pb[i] = b;
}`;

/** `dgamma`, `dbeta [n]`: one thread per column adds the blocks' partial sums in order. */
const totalsCode = (half?: boolean) =>
  `${storeHelpers(half)}
${P}
${ro(0, "pg", "f32")}
${ro(1, "pb", "f32")}
${rw(2, "dgamma", floatOf(half))}
${rw(3, "dbeta", floatOf(half))}
@group(0) @binding(4) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.n) { return; }
  let blocks = (p.rows + ${BLOCK_ROWS - 1}u) / ${BLOCK_ROWS}u;
  var g = 0.0;
  var b = 0.0;
  for (var k = 0u; k < blocks; k++) {
    g += pg[k * p.n + i];
    b += pb[k * p.n + i];
  }
  dgamma[i] = ${store(half, "g")};
  dbeta[i] = ${store(half, "b")};
}`;

/** Forward: `[y, mean, rstd]` from `[x]` or `[x, gamma, beta]`. */
export function layerNormGpu(
  device: GpuDevice,
  inputs: GpuStorage[],
  s: LayerNormSpec,
): GpuStorage[] {
  const y = device.alloc(floatOf(s.half), s.rows * s.n);
  const mean = device.alloc("f32", s.rows), rstd = device.alloc("f32", s.rows);
  if (s.rows === 0) return [y, mean, rstd];
  const lanes = lanesFor(s.n);
  const code = forwardCode(lanes, cachedFor(s.n, lanes), s.affine, s.half);
  const xs = s.affine ? inputs.slice(0, 3) : [inputs[0]];
  const eb = device.elementBytes(floatOf(s.half));
  const operands = [
    { storage: xs[0], eb, perRow: s.n },
    ...xs.slice(1).map((storage) => ({ storage, eb, perRow: 0 })),
    { storage: y, eb, perRow: s.n },
    { storage: mean, eb: 4, perRow: 1 },
    { storage: rstd, eb: 4, perRow: 1 },
  ];
  const pieces = guarded(device, [y, mean, rstd], () => split(device, "layerNorm", s, operands));
  for (const { count, binds } of pieces) {
    device.run({ code }, binds, grid(count, WG / lanes), params({ ...s, rows: count }));
  }
  return [y, mean, rstd];
}

/** Backward: `[dx]`, or `[dx, dgamma, dbeta]`, from `[x, mean, rstd, dy]` (then `gamma`). */
export function layerNormGradGpu(
  device: GpuDevice,
  inputs: GpuStorage[],
  s: LayerNormSpec,
): GpuStorage[] {
  const [x, mean, rstd, dy] = inputs;
  const dx = device.alloc(floatOf(s.half), s.rows * s.n);
  const eb = device.elementBytes(floatOf(s.half));
  // Per row: x, mean, rstd, dy (then gamma, shared), dx.
  const perRow = [s.n, 1, 1, s.n, 0];
  const ebs = [eb, 4, 4, eb, eb];
  if (s.rows > 0) {
    const lanes = lanesFor(s.n);
    const code = backwardCode(lanes, cachedFor(s.n, lanes), s.affine, s.half);
    const xs = s.affine ? inputs.slice(0, 5) : inputs.slice(0, 4);
    const operands = [
      ...xs.map((storage, k) => ({ storage, eb: ebs[k], perRow: perRow[k] })),
      { storage: dx, eb, perRow: s.n },
    ];
    const pieces = guarded(device, dx, () => split(device, "layerNormGrad", s, operands));
    for (const { count, binds } of pieces) {
      device.run({ code }, binds, grid(count, WG / lanes), params({ ...s, rows: count }));
    }
  }
  if (!s.affine) return [dx];
  const dgamma = device.alloc(floatOf(s.half), s.n), dbeta = device.alloc(floatOf(s.half), s.n);
  // Partial sums over fixed blocks of rows spread the rows over many threads; a second pass
  // adds them in block order, so the sums do not depend on scheduling.
  const parts = Math.max(1, Math.ceil(s.rows / BLOCK_ROWS)) * s.n;
  const pg = device.alloc("f32", parts), pb = device.alloc("f32", parts);
  if (tooLarge(device, pg)) {
    for (const o of [dx, dgamma, dbeta, pg, pb]) device.free(o);
    throw bindingRefusal(device, "layerNormGrad", [s.rows, s.n], "its column partials are too");
  }
  // Split rows stay in whole blocks, so each piece writes its blocks' partials.
  const blocks = [x, mean, rstd, dy].map((storage, k) => ({
    storage,
    eb: ebs[k],
    perRow: perRow[k] * BLOCK_ROWS,
  }));
  const sums = [pg, pb].map((storage) => ({ storage, eb: 4, perRow: s.n }));
  const pieces = guarded(
    device,
    [dx, dgamma, dbeta, pg, pb],
    () => split(device, "layerNormGrad", { ...s, rows: parts / s.n }, [...blocks, ...sums]),
  );
  for (const { start, count, binds } of pieces) {
    const rows = Math.min(count * BLOCK_ROWS, s.rows - start * BLOCK_ROWS);
    const code = partialsCode(s.half);
    device.run({ code }, binds, grid(count * s.n), params({ ...s, rows }));
  }
  device.run({ code: totalsCode(s.half) }, [pg, pb, dgamma, dbeta], grid(s.n), params(s));
  device.free(pg);
  device.free(pb);
  return [dx, dgamma, dbeta];
}

/** Row pieces of `s.rows` rows whose operands each fit one storage binding. */
const split = (device: GpuDevice, op: string, s: LayerNormSpec, operands: RowOperand[]) =>
  rowPieces(device, op, [s.rows, s.n], s.rows, operands);

/** The layer-norm family's kernels. */
export const layerNormKernels: KernelTable = {
  layerNorm: layerNormGpu,
  layerNormGrad: layerNormGradGpu,
};
