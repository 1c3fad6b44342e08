/**
 * Tiled WebGPU kernels of block-sparse causal attention, for real GPUs (the per-row kernels of
 * `block_sparse.ts` suit a software rasteriser better). Same layout, pattern, mask and outputs.
 *
 * A workgroup serves `A` rows of one block (of one sequence) with `L` threads each and walks
 * the block's tile list (the row list for the forward pass and `dq`, the transposed list for
 * `dk`/`dv`), staging the other side's rows in sub-tiles of `B` rows in workgroup memory. Per
 * sub-tile, each thread computes the scores of its row against every `L`-th staged row into a
 * shared `[A, B]` tile (disallowed pairs marked), then, after a barrier, accumulates its slice
 * of the head (dims `lane, lane + L, ...`) over the sub-tile: an online softmax in the forward
 * pass, probabilities rebuilt from the saved logsumexp in the backward kernels.
 * @module
 */
import type { BlockSparseSpec } from "../specs/block_sparse.ts";
import type { GpuDevice } from "./device.ts";
import { allowedWgsl, bindings, HEADER } from "./block_sparse_shader.ts";
import { dkvAccumulate } from "./attention_tiles.ts";
import { load, store } from "./half_io.ts";

/** Tile shape: own rows `a` of a block, other-side rows per sub-tile `b`, lanes `l` per row. */
export interface BlockTiles {
  readonly a: number;
  readonly b: number;
  readonly l: number;
  /** Workgroups per block (`ceil(blockSize / a)`). */
  readonly wpb: number;
}

const L = 8;
/** Marks a disallowed pair in the score tile (below any real score). */
const NONE = "-3.4e38";

/**
 * The largest tiles whose workgroup memory (the backward `dk`/`dv` kernel's, the most of the
 * three) fits the device; null when none does (use the per-row kernels).
 */
export function blockSparseTiles(device: GpuDevice, s: BlockSparseSpec): BlockTiles | null {
  const limit = device.device.limits.maxComputeWorkgroupStorageSize;
  const d = s.d + 1; // padded rows
  for (let a = Math.min(32, s.layout.blockSize); a >= 1; a = Math.floor(a / 2)) {
    for (let b = 32; b >= (a > 1 ? 8 : 1); b /= 2) {
      const bytes = 4 * Math.max(2 * (a + b) * d + a * b, 2 * (a + b) * d + 2 * a * b + 2 * b);
      if (bytes <= limit) return { a, b, l: L, wpb: Math.ceil(s.layout.blockSize / a) };
    }
  }
  return null;
}

function consts(s: BlockSparseSpec, t: BlockTiles): string {
  return [
    `const D = ${s.d}u;`,
    "const DS = D + 1u; // row stride of the staged tiles: lanes reading a column hit distinct banks",
    `const A = ${t.a}u;`,
    `const B = ${t.b}u;`,
    `const L = ${t.l}u;`,
    `const DPT = ${Math.ceil(s.d / t.l)}u;`,
    `const WGS = ${t.a * t.l}u;`,
  ].join("\n");
}

/** Which sequence, block and own row `r` (of the block) this thread serves; lane in the row. */
const ENTRY = `@compute @workgroup_size(WGS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let g = wid.y + wid.z * 65535u;
  if (g >= p.groups) { return; }
  let blk = wid.x / p.wpb;
  let a = t / L;
  let lane = t % L;
  let r0 = (wid.x % p.wpb) * A;
  let rowsHere = min(A, min(p.bs - min(p.bs, r0), p.n - min(p.n, blk * p.bs + r0)));
  let row = blk * p.bs + r0 + a;
  let base = g * p.n;
  let mrow = (g / p.heads) * p.n;
  let inside = a < rowsHere;`;

/** Loop over the sub-tiles of the other side's listed blocks: `c0` first row, `cnt` rows. */
function subTiles(load: string, body: string): string {
  return `
  let t1 = rowPtr[blk + 1u];
  for (var tt = rowPtr[blk]; tt < t1; tt++) {
    let o0 = list[tt] * p.bs;
    let o1 = min(o0 + p.bs, p.n);
    for (var c0 = o0; c0 < o1; c0 += B) {
      let cnt = min(B, o1 - c0);
      workgroupBarrier();${load}
      workgroupBarrier();${body}
    }
  }`;
}

/** Each thread's head slice: `for u { let d = ...; if (d < D) { body } }`. */
const slice = (body: string) =>
  `for (var u = 0u; u < DPT; u++) { let d = lane + u * L; if (d < D) { ${body} } }`;

const loadKv = (s: BlockSparseSpec) => `
      for (var e = t; e < cnt * D; e += WGS) {
        Ks[e / D * DS + e % D] = ${load(s.half, "k[(base + c0) * D + e]")};
        Vs[e / D * DS + e % D] = ${load(s.half, "v[(base + c0) * D + e]")};
      }`;

const ownQ = (s: BlockSparseSpec) => `
  for (var e = t; e < rowsHere * D; e += WGS) {
    Qs[e / D * DS + e % D] = ${load(s.half, "q[(base + row - a) * D + e]")};
  }`;

/** Opens an own row's loop over the sub-tile's keys: `jj` (in the tile) and `j` (the key). */
const KEY_LOOP = `
      if (inside) {
        for (var jj = lane; jj < cnt; jj += L) {
          let j = c0 + jj;`;

/** Whether own row `row` attends to key `j`: the pattern and, with `mask`, the key mask. */
const keyAllowed = (mask: boolean) => `allowed(row, j)${mask ? " && keep[mrow + j] != 0u" : ""}`;

/**
 * Kernel preamble: the shared header, the bindings of `names`, the constants, the workgroup
 * arrays `tiles` (name and length, f32) and the `allowed` function of the pattern.
 */
function preamble(
  s: BlockSparseSpec,
  t: BlockTiles,
  names: [string, "r" | "w"][],
  tiles: [string, number][],
): string {
  return `${HEADER}
${bindings(names, s.half)}
${consts(s, t)}
${tiles.map(([n, len]) => `var<workgroup> ${n}: array<f32, ${len}>;`).join("\n")}
${allowedWgsl(s.pattern)}`;
}

/** Forward kernel source (bindings as `block_sparse.ts`'s forward). */
export function tiledForwardCode(s: BlockSparseSpec, t: BlockTiles, mask: boolean): string {
  const names: [string, "r" | "w"][] = [["q", "r"], ["k", "r"], ["v", "r"], ["rowPtr", "r"], [
    "list",
    "r",
  ]];
  if (mask) names.push(["keep", "r"]);
  names.push(["o", "w"], ["lse", "w"]);
  return `${
    preamble(s, t, names, [
      ["Qs", t.a * (s.d + 1)],
      ["Ks", t.b * (s.d + 1)],
      ["Vs", t.b * (s.d + 1)],
      ["Ss", t.a * t.b],
    ])
  }
${ENTRY}${ownQ(s)}
  var m = -3.0e38;
  var z = 0.0;
  var acc: array<f32, DPT>;${
    subTiles(
      loadKv(s),
      `${KEY_LOOP}
          var sc = ${NONE};
          if (${keyAllowed(mask)}) {
            sc = 0.0;
            for (var e = 0u; e < D; e++) { sc += Qs[a * DS + e] * Ks[jj * DS + e]; }
          }
          Ss[a * B + jj] = sc;
        }
      }
      workgroupBarrier();
      if (inside) {
        var mt = m;
        for (var jj = 0u; jj < cnt; jj++) { mt = max(mt, Ss[a * B + jj]); }
        let f = exp(m - mt);
        z *= f;
        ${slice("acc[u] *= f;")}
        m = mt;
        for (var jj = 0u; jj < cnt; jj++) {
          let sc = Ss[a * B + jj];
          if (sc == ${NONE}) { continue; }
          let pe = exp(sc - m);
          z += pe;
          ${slice("acc[u] += pe * Vs[jj * DS + d];")}
        }
      }`,
    )
  }
  if (inside) {
    let inv = select(0.0, 1.0 / z, z > 0.0);
    ${slice(`o[(base + row) * D + d] = ${store(s.half, "acc[u] * inv")};`)}
    if (lane == 0u) { lse[base + row] = select(bitcast<f32>(0xff800000u), m + log(z), z > 0.0); }
  }
}`;
}

const IN: [string, "r" | "w"][] = [
  ["q", "r"],
  ["k", "r"],
  ["v", "r"],
  ["dout", "r"],
  ["lse", "r"],
  ["delta", "r"],
  ["rowPtr", "r"],
  ["list", "r"],
];

/** Bindings of a backward kernel: `IN`, then `keep` with `mask`, then the outputs `outs`. */
const gradNames = (mask: boolean, ...outs: string[]): [string, "r" | "w"][] => [
  ...IN,
  ...(mask ? [["keep", "r"] as ["keep", "r"]] : []),
  ...outs.map((o) => [o, "w"] as [string, "w"]),
];

/** `dq` kernel source (bindings as `block_sparse.ts`'s). */
export function tiledDqCode(s: BlockSparseSpec, t: BlockTiles, mask: boolean): string {
  return `${
    preamble(s, t, gradNames(mask, "dq"), [
      ["Qs", t.a * (s.d + 1)],
      ["Gs", t.a * (s.d + 1)],
      ["Ks", t.b * (s.d + 1)],
      ["Vs", t.b * (s.d + 1)],
      ["Ss", t.a * t.b],
    ])
  }
${ENTRY}${ownQ(s)}
  for (var e = t; e < rowsHere * D; e += WGS) {
    Gs[e / D * DS + e % D] = ${load(s.half, "dout[(base + row - a) * D + e]")};
  }
  var li = 0.0;
  var di = 0.0;
  if (inside) {
    li = lse[base + row];
    di = delta[base + row];
  }
  var acc: array<f32, DPT>;${
    subTiles(
      loadKv(s),
      `${KEY_LOOP}
          var ds = 0.0;
          if (${keyAllowed(mask)}) {
            var sc = 0.0;
            var dp = 0.0;
            for (var e = 0u; e < D; e++) {
              sc += Qs[a * DS + e] * Ks[jj * DS + e];
              dp += Gs[a * DS + e] * Vs[jj * DS + e];
            }
            ds = exp(sc - li) * (dp - di);
          }
          Ss[a * B + jj] = ds;
        }
      }
      workgroupBarrier();
      if (inside) {
        for (var jj = 0u; jj < cnt; jj++) {
          let ds = Ss[a * B + jj];
          ${slice("acc[u] += ds * Ks[jj * DS + d];")}
        }
      }`,
    )
  }
  if (inside) { ${slice(`dq[(base + row) * D + d] = ${store(s.half, "acc[u]")};`)} }
}`;
}

/** `dk`/`dv` kernel source (bindings as `block_sparse.ts`'s; walks the transposed list). */
export function tiledDkvCode(s: BlockSparseSpec, t: BlockTiles, mask: boolean): string {
  return `${
    preamble(s, t, gradNames(mask, "dk", "dv"), [
      ["Ks", t.a * (s.d + 1)],
      ["Vs", t.a * (s.d + 1)],
      ["Qs", t.b * (s.d + 1)],
      ["Gs", t.b * (s.d + 1)],
      ["Ps", t.a * t.b],
      ["Ds", t.a * t.b],
      ["Ls", t.b],
      ["Dl", t.b],
    ])
  }
${ENTRY}
  var live = inside;
  ${mask ? "if (inside && keep[mrow + row] == 0u) { live = false; }" : ""}
  for (var e = t; e < rowsHere * D; e += WGS) {
    Ks[e / D * DS + e % D] = ${load(s.half, "k[(base + row - a) * D + e]")};
    Vs[e / D * DS + e % D] = ${load(s.half, "v[(base + row - a) * D + e]")};
  }
  var dka: array<f32, DPT>;
  var dva: array<f32, DPT>;${
    subTiles(
      `
      for (var e = t; e < cnt * D; e += WGS) {
        Qs[e / D * DS + e % D] = ${load(s.half, "q[(base + c0) * D + e]")};
        Gs[e / D * DS + e % D] = ${load(s.half, "dout[(base + c0) * D + e]")};
      }
      for (var e = t; e < cnt; e += WGS) {
        Ls[e] = lse[base + c0 + e];
        Dl[e] = delta[base + c0 + e];
      }`,
      `
      if (live) {
        for (var ii = lane; ii < cnt; ii += L) {
          var pr = 0.0;
          var ds = 0.0;
          if (allowed(c0 + ii, row)) {
            var sc = 0.0;
            var dp = 0.0;
            for (var e = 0u; e < D; e++) {
              sc += Qs[ii * DS + e] * Ks[a * DS + e];
              dp += Gs[ii * DS + e] * Vs[a * DS + e];
            }
            pr = exp(sc - Ls[ii]);
            ds = pr * (dp - Dl[ii]);
          }${dkvAccumulate("dka", "dva")}`,
    )
  }
  if (inside) {
    ${
    slice(
      `dk[(base + row) * D + d] = ${store(s.half, "dka[u]")}; ` +
        `dv[(base + row) * D + d] = ${store(s.half, "dva[u]")};`,
    )
  }
  }
}`;
}
