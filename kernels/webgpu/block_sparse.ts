/**
 * WebGPU kernels of block-sparse causal attention: a forward pass with an online softmax, and
 * a backward pass in two kernels (one per query row for `dq`, one per key row for `dk` and
 * `dv`, walking the transposed tile list), so no gradient needs atomics and results are
 * deterministic.
 *
 * A workgroup serves up to 64 rows of one block of one sequence, so every thread walks the
 * same tile list (uniform control flow): it loads a chunk of the other side's rows into
 * workgroup memory, then each thread runs over the chunk for its own row. The pattern and the
 * presence of a padding mask are compiled into the shader; the width `d` fixes the private
 * arrays. Only the listed tiles are read, so work is `O(tiles * blockSize^2 * d)`. On a real
 * GPU the entry points run the tiled kernels of `block_sparse_tiled.ts` instead (the same
 * selection as the chunk-attention kernels: `attentionKernelKind`).
 * @module
 */
import type { BlockSparseSpec } from "../specs/block_sparse.ts";
import type { GpuDevice, GpuStorage } from "./device.ts";
import type { KernelTable } from "../backend.ts";
import { attentionKernelKind } from "./chunk_attention_tiled.ts";
import { floatOf, load, store } from "./half_io.ts";
import {
  blockSparseWorkgroups,
  geometry,
  params,
  queryRowShader,
  rowTiles,
  shader,
  walkTiles,
} from "./block_sparse_shader.ts";
import {
  blockSparseTiles,
  type BlockTiles,
  tiledDkvCode,
  tiledDqCode,
  tiledForwardCode,
} from "./block_sparse_tiled.ts";

function dispatch(
  device: GpuDevice,
  code: string,
  bufs: GpuStorage[],
  s: BlockSparseSpec,
  tiles: BlockTiles | null,
) {
  const wpb = tiles?.wpb ?? geometry(s).wpb;
  const gy = Math.min(s.groups, 65535), gz = Math.ceil(s.groups / 65535);
  device.run({ code }, bufs, [s.layout.nBlocks * wpb, gy, gz], params(s, wpb));
}

/** The tiled kernels' shape when they are selected and fit, else null (per-row kernels). */
function tiledShape(device: GpuDevice, s: BlockSparseSpec): BlockTiles | null {
  const t = attentionKernelKind(device) === "tiled" ? blockSparseTiles(device, s) : null;
  // More workgroups per block than the per-row kernels: stay within one dispatch's 65535.
  return t && s.layout.nBlocks * t.wpb <= 65535 ? t : null;
}

/** Uploads the tile lists (CSR pointers and block indices) as u32 storage. */
function uploadList(device: GpuDevice, ptr: Int32Array, list: Int32Array): GpuStorage[] {
  return [
    device.upload(Uint32Array.from(ptr), "u32") as GpuStorage,
    device.upload(Uint32Array.from(list.length ? list : [0]), "u32") as GpuStorage,
  ];
}

/**
 * Forward pass on `q, k, v: [groups, n, d]` with an optional key mask `[groups / heads, n]`
 * (u32, 0 = padded). Returns `o: [groups, n, d]` and `lse: [groups, n]` (`-inf` on rows with
 * no allowed key, whose `o` is 0).
 */
export function blockSparseForwardGpu(
  device: GpuDevice,
  q: GpuStorage,
  k: GpuStorage,
  v: GpuStorage,
  mask: GpuStorage | null,
  s: BlockSparseSpec,
): [GpuStorage, GpuStorage] {
  const o = device.alloc(floatOf(s.half), s.groups * s.n * s.d);
  const lse = device.alloc("f32", s.groups * s.n);
  const code = queryRowShader(
    s,
    ["q", "k", "v", "rowPtr", "list"],
    !!mask,
    ["o", "lse"],
    `  var qv: array<f32, D>;
  var acc: array<f32, D>;
  if (live) { for (var e = 0u; e < D; e++) { qv[e] = ${load(s.half, "q[(base + i) * D + e]")}; } }
  var m = -3.0e38;
  var z = 0.0;
${
      rowTiles(
        !!mask,
        `
          var sc = 0.0;
          for (var e = 0u; e < D; e++) { sc += qv[e] * ks[jj * D + e]; }
          if (sc > m) {
            let f = exp(m - sc);
            z *= f;
            for (var e = 0u; e < D; e++) { acc[e] *= f; }
            m = sc;
          }
          let pe = exp(sc - m);
          z += pe;
          for (var e = 0u; e < D; e++) { acc[e] += pe * vs[jj * D + e]; }
`,
        s.half,
      )
    }
  if (live) {
    let inv = select(0.0, 1.0 / z, z > 0.0);
    for (var e = 0u; e < D; e++) { o[(base + i) * D + e] = ${store(s.half, "acc[e] * inv")}; }
    lse[base + i] = select(bitcast<f32>(0xff800000u), m + log(z), z > 0.0);
  }`,
  );
  const lists = uploadList(device, s.layout.rowPtr, s.layout.cols);
  const tiles = tiledShape(device, s);
  try {
    const src = tiles ? tiledForwardCode(s, tiles, !!mask) : code;
    dispatch(device, src, [q, k, v, ...lists, ...(mask ? [mask] : []), o, lse], s, tiles);
  } finally {
    for (const b of lists) device.free(b);
  }
  return [o, lse];
}

/**
 * Backward pass: `q, k, v, dout: [groups, n, d]`, `lse, delta: [groups, n]` with
 * `delta = sum(dout * o, -1) - dlse`. Returns `dq, dk, dv: [groups, n, d]`.
 */
export function blockSparseBackwardGpu(
  device: GpuDevice,
  [q, k, v, dout, lse, delta]: readonly GpuStorage[],
  mask: GpuStorage | null,
  s: BlockSparseSpec,
): [GpuStorage, GpuStorage, GpuStorage] {
  const size = s.groups * s.n * s.d;
  const dq = device.alloc(floatOf(s.half), size);
  const dk = device.alloc(floatOf(s.half), size);
  const dv = device.alloc(floatOf(s.half), size);
  const m = mask ? [mask] : [];
  const byRow = uploadList(device, s.layout.rowPtr, s.layout.cols);
  const byCol = uploadList(device, s.layout.colPtr, s.layout.rows);
  const t = tiledShape(device, s);
  const [dqSrc, dkvSrc] = t
    ? [tiledDqCode(s, t, !!mask), tiledDkvCode(s, t, !!mask)]
    : [dqCode(s, !!mask), dkvCode(s, !!mask)];
  try {
    dispatch(device, dqSrc, [q, k, v, dout, lse, delta, ...byRow, ...m, dq], s, t);
    dispatch(device, dkvSrc, [q, k, v, dout, lse, delta, ...byCol, ...m, dk, dv], s, t);
  } finally {
    for (const b of [...byRow, ...byCol]) device.free(b);
  }
  return [dq, dk, dv];
}

/** The backward kernels' inputs. */
const IN = ["q", "k", "v", "dout", "lse", "delta", "rowPtr", "list"];

/** Per query row: `dq_i = sum_j p_ij (do_i.v_j - delta_i) k_j` over the row's tiles. */
function dqCode(s: BlockSparseSpec, mask: boolean): string {
  return queryRowShader(
    s,
    IN,
    mask,
    ["dq"],
    `  var qv: array<f32, D>;
  var dov: array<f32, D>;
  var acc: array<f32, D>;
  var li = 0.0;
  var di = 0.0;
  if (live) {
    for (var e = 0u; e < D; e++) {
      qv[e] = ${load(s.half, "q[(base + i) * D + e]")};
      dov[e] = ${load(s.half, "dout[(base + i) * D + e]")};
    }
    li = lse[base + i];
    di = delta[base + i];
  }
${
      rowTiles(
        mask,
        `
          var sc = 0.0;
          var dp = 0.0;
          for (var e = 0u; e < D; e++) {
            sc += qv[e] * ks[jj * D + e];
            dp += dov[e] * vs[jj * D + e];
          }
          let ds = exp(sc - li) * (dp - di);
          for (var e = 0u; e < D; e++) { acc[e] += ds * ks[jj * D + e]; }
`,
        s.half,
      )
    }
  if (live) { for (var e = 0u; e < D; e++) { dq[(base + i) * D + e] = ${
      store(s.half, "acc[e]")
    }; } }`,
  );
}

/**
 * Per key row, over the query blocks that visit its block: `dv_j = sum_i p_ij do_i` and
 * `dk_j = sum_i p_ij (do_i.v_j - delta_i) q_i`.
 */
function dkvCode(s: BlockSparseSpec, mask: boolean): string {
  const { kc } = geometry(s);
  const shared = `var<workgroup> qs: array<f32, ${kc * s.d}>;
var<workgroup> dos: array<f32, ${kc * s.d}>;
var<workgroup> ls: array<f32, ${kc}>;
var<workgroup> dls: array<f32, ${kc}>;`;
  return shader(
    s,
    IN,
    mask,
    ["dk", "dv"],
    shared,
    `  let j = row;
  let inside = r < p.bs && j < p.n;
  var live = inside;
  ${mask ? "if (inside && keep[mrow + j] == 0u) { live = false; }" : ""}
  var kv: array<f32, D>;
  var vv: array<f32, D>;
  var dka: array<f32, D>;
  var dva: array<f32, D>;
  if (live) {
    for (var e = 0u; e < D; e++) {
      kv[e] = ${load(s.half, "k[(base + j) * D + e]")};
      vv[e] = ${load(s.half, "v[(base + j) * D + e]")};
    }
  }
${
      walkTiles(
        `
      for (var e = lid.x; e < cnt * D; e += W) {
        qs[e] = ${load(s.half, "q[(base + c0) * D + e]")};
        dos[e] = ${load(s.half, "dout[(base + c0) * D + e]")};
      }
      for (var e = lid.x; e < cnt; e += W) {
        ls[e] = lse[base + c0 + e];
        dls[e] = delta[base + c0 + e];
      }`,
        `
        for (var ii = 0u; ii < cnt; ii++) {
          if (!allowed(c0 + ii, j)) { continue; }
          var sc = 0.0;
          var dp = 0.0;
          for (var e = 0u; e < D; e++) {
            sc += qs[ii * D + e] * kv[e];
            dp += dos[ii * D + e] * vv[e];
          }
          let pr = exp(sc - ls[ii]);
          let ds = pr * (dp - dls[ii]);
          for (var e = 0u; e < D; e++) {
            dva[e] += pr * dos[ii * D + e];
            dka[e] += ds * qs[ii * D + e];
          }
        }`,
      )
    }
  if (inside) {
    for (var e = 0u; e < D; e++) {
      dk[(base + j) * D + e] = ${store(s.half, "dka[e]")};
      dv[(base + j) * D + e] = ${store(s.half, "dva[e]")};
    }
  }`,
  );
}

/** The block-sparse family's kernels (inputs end with the optional bool key mask). */
export const blockSparseKernels: KernelTable = {
  blockSparseAttention: (d: GpuDevice, [q, k, v, mask]: GpuStorage[], s: BlockSparseSpec) => {
    const { nBlocks, blockSize } = s.layout;
    if (blockSparseWorkgroups(nBlocks, blockSize) > 65535) {
      throw new RangeError(
        `blockSparseAttention: ${nBlocks} blocks of ${blockSize} need more than 65535 ` +
          "workgroups on WebGPU; use a larger blockSize",
      );
    }
    return blockSparseForwardGpu(d, q, k, v, mask ?? null, s);
  },
  blockSparseAttentionBackward: (d: GpuDevice, xs: GpuStorage[], s: BlockSparseSpec) =>
    blockSparseBackwardGpu(d, xs.slice(0, 6), xs[6] ?? null, s),
};
