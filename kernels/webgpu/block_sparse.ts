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
 * arrays. Only the listed tiles are read, so work is `O(tiles * blockSize^2 * d)`.
 * @module
 */
import type { BlockSparseSpec, PatternSpec } from "../specs/block_sparse.ts";
import type { GpuDevice, GpuStorage } from "./device.ts";
import type { KernelTable } from "../backend.ts";

const MAX_ROWS = 64;
/** Floats of one shared operand chunk: two of them fit in 16 KiB. */
const SHARED = 2048;

/** Workgroups along x for `nBlocks` blocks of `blockSize` rows (at most 65535 per dispatch). */
export function blockSparseWorkgroups(nBlocks: number, blockSize: number): number {
  return nBlocks * Math.ceil(blockSize / Math.min(MAX_ROWS, blockSize));
}

/** Threads per workgroup, workgroups per block and rows per shared chunk for `spec`. */
function geometry(s: BlockSparseSpec) {
  const w = Math.min(MAX_ROWS, s.layout.blockSize);
  return {
    w,
    wpb: Math.ceil(s.layout.blockSize / w),
    kc: Math.max(1, Math.min(32, Math.floor(SHARED / s.d))),
  };
}

/** WGSL `allowed(i, j)`: the causal pattern predicate (`patternAllows` on the CPU). */
function allowedWgsl(p: PatternSpec): string {
  const fixed = p.kind === "fixed";
  const terms: string[] = [];
  if (p.part !== "b") terms.push(fixed ? "i / p.l == j / p.l" : "i - j < p.l");
  if (p.part !== "a") terms.push(fixed ? "j % p.l >= p.l - p.c" : "(i - j) % p.l == 0u");
  return `fn allowed(i: u32, j: u32) -> bool {
  if (j > i) { return false; }
  return ${terms.join(" || ")};
}`;
}

const HEADER =
  `struct P { n: u32, bs: u32, heads: u32, l: u32, c: u32, wpb: u32, groups: u32, pad: u32 }`;

/** Binding declarations in order; the uniform comes last. */
function bindings(names: readonly [string, "r" | "w"][]): string {
  return names.map(([name, mode], b) =>
    `@group(0) @binding(${b}) var<storage, ${mode === "r" ? "read" : "read_write"}> ${name}: ` +
    `array<${name.endsWith("Ptr") || name === "list" || name === "keep" ? "u32" : "f32"}>;`
  ).join("\n") + `\n@group(0) @binding(${names.length}) var<uniform> p: P;`;
}

/** Params shared by the three kernels. */
function params(s: BlockSparseSpec, wpb: number): Uint32Array {
  const { n, heads, groups, pattern: pt, layout } = s;
  return new Uint32Array([n, layout.blockSize, heads, pt.stride, pt.c, wpb, groups, 0]);
}

/** The common prologue: which sequence, block and row this thread serves. */
const PROLOGUE = `
  let g = wid.y + wid.z * 65535u;
  if (g >= p.groups) { return; }
  let blk = wid.x / p.wpb;
  let r = (wid.x % p.wpb) * W + lid.x;
  let row = blk * p.bs + r;
  let base = g * p.n;
  let mrow = (g / p.heads) * p.n;`;

/**
 * WGSL: walks this block's tile list (`rowPtr`, `list`), the other side's rows of each tile
 * in chunks of `KC` from `c0` (`cnt` rows): `stage` copies a chunk into workgroup memory
 * between barriers, then `each` runs for live rows.
 */
function walkTiles(stage: string, each: string): string {
  return `  let t1 = rowPtr[blk + 1u];
  for (var t = rowPtr[blk]; t < t1; t++) {
    let s0 = list[t] * p.bs;
    let s1 = min(s0 + p.bs, p.n);
    for (var c0 = s0; c0 < s1; c0 += KC) {
      let cnt = min(KC, s1 - c0);
      workgroupBarrier();${stage}
      workgroupBarrier();
      if (live) {${each}
      }
    }
  }`;
}

/**
 * WGSL: for query row `i`, every allowed key `j` of its block's row list, with the keys and
 * values staged through shared memory (`ks`, `vs`); `body` runs per key (`jj` is its row in
 * the chunk).
 */
function rowTiles(mask: boolean, body: string): string {
  return walkTiles(
    `
      for (var e = lid.x; e < cnt * D; e += W) {
        ks[e] = k[(base + c0) * D + e];
        vs[e] = v[(base + c0) * D + e];
      }`,
    `
        for (var jj = 0u; jj < cnt; jj++) {
          let j = c0 + jj;
          if (!allowed(i, j)${
      mask ? " || keep[mrow + j] == 0u" : ""
    }) { continue; }${body}        }`,
  );
}

const ARGS = `@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>`;

function dispatch(device: GpuDevice, code: string, bufs: GpuStorage[], s: BlockSparseSpec) {
  const { wpb } = geometry(s);
  const gy = Math.min(s.groups, 65535), gz = Math.ceil(s.groups / 65535);
  device.run({ code }, bufs, [s.layout.nBlocks * wpb, gy, gz], params(s, wpb));
}

function consts(s: BlockSparseSpec): string {
  const { w, kc } = geometry(s);
  return `const D = ${s.d}u;\nconst W = ${w}u;\nconst KC = ${kc}u;`;
}

/**
 * A kernel's WGSL: the bindings (`inputs`, then `keep` when `mask`, then the `outputs`), the
 * constants, the workgroup arrays `shared` and the pattern, around `main`, which runs `body`
 * after the prologue.
 */
function shader(
  s: BlockSparseSpec,
  inputs: readonly string[],
  mask: boolean,
  outputs: readonly string[],
  shared: string,
  body: string,
): string {
  const names: [string, "r" | "w"][] = [
    ...inputs.map((n): [string, "r"] => [n, "r"]),
    ...(mask ? [["keep", "r"] as [string, "r"]] : []),
    ...outputs.map((n): [string, "w"] => [n, "w"]),
  ];
  return `${HEADER}
${bindings(names)}
${consts(s)}
${shared}
${allowedWgsl(s.pattern)}
@compute @workgroup_size(W)
fn main(${ARGS}) {
  ${PROLOGUE}
${body}
}`;
}

/** A kernel with one thread per query row `i`, its keys and values staged in `ks`, `vs`. */
function queryRowShader(
  s: BlockSparseSpec,
  inputs: readonly string[],
  mask: boolean,
  outputs: readonly string[],
  body: string,
): string {
  const { kc } = geometry(s);
  const shared = `var<workgroup> ks: array<f32, ${kc * s.d}>;
var<workgroup> vs: array<f32, ${kc * s.d}>;`;
  return shader(
    s,
    inputs,
    mask,
    outputs,
    shared,
    `  let i = row;
  let live = r < p.bs && i < p.n;
${body}`,
  );
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
  const o = device.alloc("f32", s.groups * s.n * s.d);
  const lse = device.alloc("f32", s.groups * s.n);
  const code = queryRowShader(
    s,
    ["q", "k", "v", "rowPtr", "list"],
    !!mask,
    ["o", "lse"],
    `  var qv: array<f32, D>;
  var acc: array<f32, D>;
  if (live) { for (var e = 0u; e < D; e++) { qv[e] = q[(base + i) * D + e]; } }
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
      )
    }
  if (live) {
    let inv = select(0.0, 1.0 / z, z > 0.0);
    for (var e = 0u; e < D; e++) { o[(base + i) * D + e] = acc[e] * inv; }
    lse[base + i] = select(bitcast<f32>(0xff800000u), m + log(z), z > 0.0);
  }`,
  );
  const lists = uploadList(device, s.layout.rowPtr, s.layout.cols);
  try {
    dispatch(device, code, [q, k, v, ...lists, ...(mask ? [mask] : []), o, lse], s);
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
  const dq = device.alloc("f32", size);
  const dk = device.alloc("f32", size);
  const dv = device.alloc("f32", size);
  const m = mask ? [mask] : [];
  const byRow = uploadList(device, s.layout.rowPtr, s.layout.cols);
  const byCol = uploadList(device, s.layout.colPtr, s.layout.rows);
  try {
    dispatch(device, dqCode(s, !!mask), [q, k, v, dout, lse, delta, ...byRow, ...m, dq], s);
    dispatch(device, dkvCode(s, !!mask), [q, k, v, dout, lse, delta, ...byCol, ...m, dk, dv], s);
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
    for (var e = 0u; e < D; e++) { qv[e] = q[(base + i) * D + e]; dov[e] = dout[(base + i) * D + e]; }
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
      )
    }
  if (live) { for (var e = 0u; e < D; e++) { dq[(base + i) * D + e] = acc[e]; } }`,
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
    for (var e = 0u; e < D; e++) { kv[e] = k[(base + j) * D + e]; vv[e] = v[(base + j) * D + e]; }
  }
${
      walkTiles(
        `
      for (var e = lid.x; e < cnt * D; e += W) {
        qs[e] = q[(base + c0) * D + e];
        dos[e] = dout[(base + c0) * D + e];
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
      dk[(base + j) * D + e] = dka[e];
      dv[(base + j) * D + e] = dva[e];
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
