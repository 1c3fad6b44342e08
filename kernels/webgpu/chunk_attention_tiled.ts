/**
 * Tiled WebGPU kernels of the fused chunk attention, for real GPUs (the per-row kernels of
 * `chunk_attention.ts` suit a software rasteriser better). Same layout, masks and outputs.
 *
 * A workgroup serves `A` rows of its own side (queries for the forward pass and `dq`, keys of
 * one row of `k`/`v` for `dk`/`dv`) with `L` threads each, and walks the other side in tiles of
 * `B` rows staged in workgroup memory. Per tile, each thread first computes the logits (or
 * gradient weights) of its own row against every `L`-th row of the tile into a shared `[A, B]`
 * tile, then, after a barrier, accumulates its slice of the head (dims `lane, lane + L, ...`)
 * over the whole tile: the forward pass keeps an online softmax per row, the backward kernels
 * recompute the probabilities from the saved `(max, log sum)`. No subgroup operations.
 * @module
 */
import type { GpuBindable, GpuDevice } from "./device.ts";
import { grid } from "./device.ts";
import type { ChunkAttnSpec } from "../specs/chunk_attention.ts";
import { chunkAttnHeader, gradIn, logitWgsl, storeStats } from "./chunk_attention_wgsl.ts";
import { floatOf, load, store } from "./half_io.ts";
import { dkvAccumulate } from "./attention_tiles.ts";

/** Threads per own row. */
const L = 8;

/** Tile shape of one tiled kernel: own rows `a`, other-side rows per tile `b`, lanes `l`. */
export interface TileShape {
  readonly a: number;
  readonly b: number;
  readonly l: number;
}

/**
 * Which chunk-attention kernels a device runs: `LONGSEQ_ATTN_KERNEL=tiled|rows` if set, else
 * the per-row kernels on a software (fallback) adapter and the tiled ones on a real GPU.
 */
export function attentionKernelKind(device: GpuDevice): "tiled" | "rows" {
  let env: string | undefined;
  try {
    env = Deno.env.get("LONGSEQ_ATTN_KERNEL");
  } catch {
    env = undefined; // no env permission: automatic
  }
  if (env === "tiled" || env === "rows") return env;
  return device.description.endsWith("(software)") ? "rows" : "tiled";
}

/** Bytes of workgroup memory a kernel needs for own rows `a` and tile rows `b`. */
type Footprint = (a: number, b: number) => number;

/** The largest tile that fits the device's workgroup memory, or null (use the per-row kernel). */
export function tileShape(device: GpuDevice, bytes: Footprint): TileShape | null {
  const limit = device.device.limits.maxComputeWorkgroupStorageSize;
  for (let a = 16; a >= 1; a /= 2) {
    for (let b = 32; b >= (a > 1 ? 8 : 1); b /= 2) {
      if (bytes(a, b) <= limit) return { a, b, l: L };
    }
  }
  return null;
}

function header(s: ChunkAttnSpec, t: TileShape, outputs: string[], extra: string[]): string {
  return chunkAttnHeader(
    s,
    outputs,
    extra,
    "struct P { rows: u32, nq: u32, nk: u32, kc: u32, chunks: u32, tiles: u32, p1: u32, p2: u32 }",
    [
      `const D = ${s.dim}u;`,
      "const DS = D + 1u; // row stride of the staged tiles: lanes reading a column hit distinct banks",
      `const NB = ${s.offsets.length}u;`,
      `const A = ${t.a}u;`,
      `const B = ${t.b}u;`,
      `const L = ${t.l}u;`,
      `const DPT = ${Math.ceil(s.dim / t.l)}u;`,
      `const WGS = ${t.a * t.l}u;`,
    ],
  );
}

/**
 * WGSL `score(qt, kt, qi, qp, r, j) -> vec2(logit, flows)`: query `qt` of the shared `Qs`
 * tile (global query `qi` at position `qp`, row `r`) against key `kt` of the shared `Ks` tile,
 * which is key slot `j` of row `r`. The masking rule of the per-row kernels.
 */
function scoreFn(s: ChunkAttnSpec): string {
  return `fn score(qt: u32, kt: u32, qi: u32, qp: i32, r: u32, j: u32) -> vec2<f32> {
  ${logitWgsl(s, "r * p.nk + j", (d) => `Qs[qt * DS + ${d}] * Ks[kt * DS + ${d}]`, "qi * p.nk + j")}
  return vec2<f32>(l, select(0.0, 1.0, flows));
}`;
}

/** Workgroup prologue: `g` (the tile), own row `a` and `lane` of this thread. */
const ENTRY = `@compute @workgroup_size(WGS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.rows * p.tiles) { return; }
  let a = t / L;
  let lane = t % L;`;

/** Query-side prologue (forward and `dq`): row `r`, first query `q0`, this thread's `qi`. */
const queryTile = (s: ChunkAttnSpec) => `
  let r = g / p.tiles;
  let q0 = (g % p.tiles) * A;
  let qbase = r * p.nq + q0;
  let live = a < min(A, p.nq - q0);
  let qi = qbase + a;
  var qp = 0;
  if (live) { qp = qpos[qi]; }
  for (var e = t; e < min(A, p.nq - q0) * D; e += WGS) {
    Qs[e / D * DS + e % D] = ${load(s.half, "q[qbase * D + e]")};
  }`;

/** Loop over key tiles of row `r` staging `Ks` and `Vs` (slot `j0 + jj`); then `body`. */
function keyTiles(s: ChunkAttnSpec, body: string): string {
  return `
  for (var j0 = 0u; j0 < p.nk; j0 += B) {
    let cnt = min(B, p.nk - j0);
    workgroupBarrier();
    for (var e = t; e < cnt * D; e += WGS) {
      let src = keySrc(r, j0 + e / D) * D + e % D;
      Ks[e / D * DS + e % D] = ${load(s.half, "k[src]")};
      Vs[e / D * DS + e % D] = ${load(s.half, "v[src]")};
    }
    workgroupBarrier();${body}
  }`;
}

function forwardCode(s: ChunkAttnSpec, t: TileShape): string {
  const F = floatOf(s.half);
  return `${header(s, t, [`o: array<${F}>`, "lse: array<f32>", "stat: array<f32>"], [])}
var<workgroup> Qs: array<f32, ${t.a * (s.dim + 1)}>;
var<workgroup> Ks: array<f32, ${t.b * (s.dim + 1)}>;
var<workgroup> Vs: array<f32, ${t.b * (s.dim + 1)}>;
var<workgroup> Ss: array<f32, ${t.a * t.b}>;
${scoreFn(s)}
${ENTRY}${queryTile(s)}
  var m = -3.0e38;
  var z = 0.0;
  var acc: array<f32, DPT>;${
    keyTiles(
      s,
      `
    if (live) {
      for (var jj = lane; jj < cnt; jj += L) { Ss[a * B + jj] = score(a, jj, qi, qp, r, j0 + jj).x; }
    }
    workgroupBarrier();
    if (live) {
      var mt = m;
      for (var jj = 0u; jj < cnt; jj++) { mt = max(mt, Ss[a * B + jj]); }
      let c = exp(m - mt);
      z *= c;
      for (var u = 0u; u < DPT; u++) { acc[u] *= c; }
      m = mt;
      for (var jj = 0u; jj < cnt; jj++) {
        let e = exp(Ss[a * B + jj] - m);
        z += e;
        for (var u = 0u; u < DPT; u++) {
          let d = lane + u * L;
          if (d < D) { acc[u] += e * Vs[jj * DS + d]; }
        }
      }
    }`,
    )
  }
  if (live) {
    for (var u = 0u; u < DPT; u++) {
      let d = lane + u * L;
      if (d < D) { o[qi * D + d] = ${store(s.half, "acc[u] / z")}; }
    }
    if (lane == 0u) {
      ${storeStats("z")}
    }
  }
}`;
}

function gradQCode(s: ChunkAttnSpec, t: TileShape): string {
  return `${header(s, t, [`dq: array<${floatOf(s.half)}>`], gradIn(s))}
var<workgroup> Qs: array<f32, ${t.a * (s.dim + 1)}>;
var<workgroup> Gs: array<f32, ${t.a * (s.dim + 1)}>;
var<workgroup> Ks: array<f32, ${t.b * (s.dim + 1)}>;
var<workgroup> Vs: array<f32, ${t.b * (s.dim + 1)}>;
var<workgroup> Ss: array<f32, ${t.a * t.b}>;
${scoreFn(s)}
${ENTRY}${queryTile(s)}
  for (var e = t; e < min(A, p.nq - q0) * D; e += WGS) {
    Gs[e / D * DS + e % D] = ${load(s.half, "go[qbase * D + e]")};
  }
  var m = 0.0;
  var ls = 0.0;
  var dl = 0.0;
  if (live) {
    m = stat[2u * qi];
    ls = stat[2u * qi + 1u];
    dl = delta[qi];
  }
  var acc: array<f32, DPT>;${
    keyTiles(
      s,
      `
    if (live) {
      for (var jj = lane; jj < cnt; jj += L) {
        let sc = score(a, jj, qi, qp, r, j0 + jj);
        var ds = 0.0;
        if (sc.y > 0.0) {
          let pr = exp((sc.x - m) - ls);
          var dp = 0.0;
          for (var d = 0u; d < D; d++) { dp += Gs[a * DS + d] * Vs[jj * DS + d]; }
          ds = pr * (dp - dl);
        }
        Ss[a * B + jj] = ds;
      }
    }
    workgroupBarrier();
    if (live) {
      for (var jj = 0u; jj < cnt; jj++) {
        let ds = Ss[a * B + jj];
        for (var u = 0u; u < DPT; u++) {
          let d = lane + u * L;
          if (d < D) { acc[u] += ds * Ks[jj * DS + d]; }
        }
      }
    }`,
    )
  }
  if (live) {
    for (var u = 0u; u < DPT; u++) {
      let d = lane + u * L;
      if (d < D) { dq[qi * D + d] = ${store(s.half, "acc[u]")}; }
    }
  }
}`;
}

function gradKvCode(s: ChunkAttnSpec, t: TileShape): string {
  const F = floatOf(s.half);
  return `${header(s, t, [`dk: array<${F}>`, `dv: array<${F}>`], gradIn(s))}
var<workgroup> Ks: array<f32, ${t.a * (s.dim + 1)}>;
var<workgroup> Vs: array<f32, ${t.a * (s.dim + 1)}>;
var<workgroup> Qs: array<f32, ${t.b * (s.dim + 1)}>;
var<workgroup> Gs: array<f32, ${t.b * (s.dim + 1)}>;
var<workgroup> Ps: array<f32, ${t.a * t.b}>;
var<workgroup> Ds: array<f32, ${t.a * t.b}>;
var<workgroup> Ms: array<f32, ${t.b}>;
var<workgroup> Ls: array<f32, ${t.b}>;
var<workgroup> Dl: array<f32, ${t.b}>;
var<workgroup> Qp: array<i32, ${t.b}>;
${scoreFn(s)}
${ENTRY}
  // This workgroup: keys k0.. of row kr of k/v; every (row, block) that reads them.
  let kr = g / p.tiles;
  let k0 = (g % p.tiles) * A;
  let kbase = kr * p.kc + k0;
  let live = a < min(A, p.kc - k0);
  for (var e = t; e < min(A, p.kc - k0) * D; e += WGS) {
    Ks[e / D * DS + e % D] = ${load(s.half, "k[kbase * D + e]")};
    Vs[e / D * DS + e % D] = ${load(s.half, "v[kbase * D + e]")};
  }
  var ak: array<f32, DPT>;
  var av: array<f32, DPT>;
  for (var b = 0u; b < NB; b++) {
    let r = keyRow(kr, b, -1);
    let j = b * p.kc + k0 + a;
    for (var i0 = 0u; i0 < p.nq; i0 += B) {
      let cnt = min(B, p.nq - i0);
      let ibase = r * p.nq + i0;
      workgroupBarrier();
      for (var e = t; e < cnt * D; e += WGS) {
        Qs[e / D * DS + e % D] = ${load(s.half, "q[ibase * D + e]")};
        Gs[e / D * DS + e % D] = ${load(s.half, "go[ibase * D + e]")};
      }
      for (var e = t; e < cnt; e += WGS) {
        Ms[e] = stat[2u * (ibase + e)];
        Ls[e] = stat[2u * (ibase + e) + 1u];
        Dl[e] = delta[ibase + e];
        Qp[e] = qpos[ibase + e];
      }
      workgroupBarrier();
      if (live) {
        for (var ii = lane; ii < cnt; ii += L) {
          let sc = score(ii, a, ibase + ii, Qp[ii], r, j);
          let pr = exp((sc.x - Ms[ii]) - Ls[ii]);
          var ds = 0.0;
          if (sc.y > 0.0) {
            var dp = 0.0;
            for (var d = 0u; d < D; d++) { dp += Gs[ii * DS + d] * Vs[a * DS + d]; }
            ds = pr * (dp - Dl[ii]);
          }${dkvAccumulate("ak", "av")}
    }
  }
  if (live) {
    for (var u = 0u; u < DPT; u++) {
      let d = lane + u * L;
      if (d < D) {
        dk[(kbase + a) * D + d] = ${store(s.half, "ak[u]")};
        dv[(kbase + a) * D + d] = ${store(s.half, "av[u]")};
      }
    }
  }
}`;
}

const params = (s: ChunkAttnSpec, tiles: number) =>
  new Uint32Array([s.rows, s.nq, s.nk, s.kc, s.chunks, tiles, 0, 0]);

/** Tiled forward into `[o, lse, stat]`; false when no tile fits (run the per-row kernel). */
export function chunkAttentionTiled(
  device: GpuDevice,
  bufs: GpuBindable[],
  out: GpuBindable[],
  s: ChunkAttnSpec,
): boolean {
  const t = tileShape(device, (a, b) => 4 * ((a + 2 * b) * (s.dim + 1) + a * b));
  if (!t) return false;
  const tiles = Math.ceil(s.nq / t.a);
  device.run(
    { code: forwardCode(s, t) },
    [...bufs, ...out],
    grid(s.rows * tiles, 1),
    params(s, tiles),
  );
  return true;
}

/** Tiled `dq` (`out = [dq]`); false when no tile fits. */
export function chunkAttentionGradQTiled(
  device: GpuDevice,
  bufs: GpuBindable[],
  out: GpuBindable[],
  s: ChunkAttnSpec,
): boolean {
  const t = tileShape(device, (a, b) => 4 * (2 * (a + b) * (s.dim + 1) + a * b));
  if (!t) return false;
  const tiles = Math.ceil(s.nq / t.a);
  device.run(
    { code: gradQCode(s, t) },
    [...bufs, ...out],
    grid(s.rows * tiles, 1),
    params(s, tiles),
  );
  return true;
}

/** Tiled `dk`, `dv` (`out = [dk, dv]`); false when no tile fits. */
export function chunkAttentionGradKvTiled(
  device: GpuDevice,
  bufs: GpuBindable[],
  out: GpuBindable[],
  s: ChunkAttnSpec,
): boolean {
  const t = tileShape(device, (a, b) => 4 * (2 * (a + b) * (s.dim + 1) + 2 * a * b + 4 * b));
  if (!t) return false;
  const tiles = Math.ceil(s.kc / t.a);
  device.run(
    { code: gradKvCode(s, t) },
    [...bufs, ...out],
    grid(s.rows * tiles, 1),
    params(s, tiles),
  );
  return true;
}
