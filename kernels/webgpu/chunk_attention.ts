/**
 * WebGPU kernels of the fused chunk attention (see `kernels/cpu/chunk_attention.ts` for the
 * layout and the masking rule). One thread per query computes its masked logits, an online
 * softmax and the weighted sum of values in one pass over the row's keys, writing the output,
 * the logsumexp and `(max, log sum)`; the backward pass is two kernels, one thread per query
 * (`dq`) and one per key of `k`/`v` (`dk`, `dv`, summed over the slots that read it), which recompute the probabilities instead of
 * reading them, so no `[queries, keys]` array ever exists. The head width is compiled in, so
 * each thread keeps its vectors in registers. On a real GPU the entry points run the tiled
 * kernels of `chunk_attention_tiled.ts` instead (see `attentionKernelKind`). Under `half`
 * both read f16 `q`, `k`, `v`, `dout` and round `o`, `dq`, `dk`, `dv` to f16 on store.
 * @module
 */
import type { GpuDevice, GpuStorage } from "./device.ts";
import { guarded, rowPieces } from "./windows.ts";
import { grid } from "./device.ts";
import type { ChunkAttnSpec } from "../specs/chunk_attention.ts";
import type { KernelTable } from "../backend.ts";
import { withBias } from "../specs/chunk_attention.ts";
import { chunkAttnHeader, gradIn, logitWgsl, storeStats } from "./chunk_attention_wgsl.ts";
import { floatOf, load, store } from "./half_io.ts";
import {
  attentionKernelKind,
  chunkAttentionGradKvTiled,
  chunkAttentionGradQTiled,
  chunkAttentionTiled,
} from "./chunk_attention_tiled.ts";

const WG = 64;

/** Storage buffers the backward `dk`/`dv` kernel binds (the most of the three). */
export const CHUNK_ATTN_MAX_BUFFERS = 11;

function header(s: ChunkAttnSpec, outputs: string[], extra: string[]): string {
  return chunkAttnHeader(
    s,
    outputs,
    extra,
    "struct P { rows: u32, nq: u32, nk: u32, kc: u32, chunks: u32, p0: u32, p1: u32, p2: u32 }",
    [`const D = ${s.dim}u;`, `const NB = ${s.offsets.length}u;`],
  );
}

/** WGSL computing `l` (the logit) and `flows` (whether the gradient reaches `q . k`) for query row `qi` (position `qp`) and key `kj`. */
function logitCode(s: ChunkAttnSpec, qv: (d: string) => string): string {
  return `
    ${
    logitWgsl(s, "kj", (d) =>
      `${qv(d)} * ${load(s.half, `k[ks * D + ${d}]`)}`, "qi * p.nk + (kj - r * p.nk)")
  }`;
}

const ENTRY = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * ${WG}u;`;

/** The entry of a kernel with one thread per query row `qi` (chunk row `r`, position `qp`). */
const QUERY_ENTRY = `${ENTRY}
  if (g >= p.rows * p.nq) { return; }
  let r = g / p.nq;
  let qi = g;
  let qp = qpos[qi];
  var qv: array<f32, D>;`;

function forwardCode(s: ChunkAttnSpec): string {
  const F = floatOf(s.half);
  return `${header(s, [`o: array<${F}>`, "lse: array<f32>", "stat: array<f32>"], [])}
${QUERY_ENTRY}
  var acc: array<f32, D>;
  for (var d = 0u; d < D; d++) { qv[d] = ${load(s.half, "q[qi * D + d]")}; }
  var m = -3.0e38;
  var s = 0.0;
  for (var j = 0u; j < p.nk; j++) {
    let kj = r * p.nk + j;
    let ks = keySrc(r, j);
    ${logitCode(s, (d) => `qv[${d}]`)}
    if (l > m) {
      let c = exp(m - l);
      s *= c;
      for (var d = 0u; d < D; d++) { acc[d] *= c; }
      m = l;
    }
    let e = exp(l - m);
    s += e;
    for (var d = 0u; d < D; d++) { acc[d] += e * ${load(s.half, "v[ks * D + d]")}; }
  }
  for (var d = 0u; d < D; d++) { o[qi * D + d] = ${store(s.half, "acc[d] / s")}; }
  ${storeStats("s")}
}`;
}

function gradQCode(s: ChunkAttnSpec): string {
  return `${header(s, [`dq: array<${floatOf(s.half)}>`], gradIn(s))}
${QUERY_ENTRY}
  var gv: array<f32, D>;
  var acc: array<f32, D>;
  for (var d = 0u; d < D; d++) {
    qv[d] = ${load(s.half, "q[qi * D + d]")};
    gv[d] = ${load(s.half, "go[qi * D + d]")};
  }
  let m = stat[2u * qi];
  let ls = stat[2u * qi + 1u];
  let dl = delta[qi];
  for (var j = 0u; j < p.nk; j++) {
    let kj = r * p.nk + j;
    let ks = keySrc(r, j);
    ${logitCode(s, (d) => `qv[${d}]`)}
    if (flows) {
      let pr = exp((l - m) - ls);
      var dp = 0.0;
      for (var d = 0u; d < D; d++) { dp += gv[d] * ${load(s.half, "v[ks * D + d]")}; }
      let ds = pr * (dp - dl);
      for (var d = 0u; d < D; d++) { acc[d] += ds * ${load(s.half, "k[ks * D + d]")}; }
    }
  }
  for (var d = 0u; d < D; d++) { dq[qi * D + d] = ${store(s.half, "acc[d]")}; }
}`;
}

function gradKvCode(s: ChunkAttnSpec): string {
  const F = floatOf(s.half);
  return `${header(s, [`dk: array<${F}>`, `dv: array<${F}>`], gradIn(s))}
${ENTRY}
  if (g >= p.rows * p.kc) { return; }
  // One thread per key of k/v: it sums over every (row, slot) that reads it.
  let ks = g;
  var vv: array<f32, D>;
  var ak: array<f32, D>;
  var av: array<f32, D>;
  for (var d = 0u; d < D; d++) { vv[d] = ${load(s.half, "v[ks * D + d]")}; }
  for (var b = 0u; b < NB; b++) {
    let r = keyRow(ks / p.kc, b, -1);
    let kj = r * p.nk + b * p.kc + ks % p.kc;
    for (var i = 0u; i < p.nq; i++) {
      let qi = r * p.nq + i;
      let qp = qpos[qi];
      ${logitCode(s, (d) => load(s.half, `q[qi * D + ${d}]`))}
      let pr = exp((l - stat[2u * qi]) - stat[2u * qi + 1u]);
      var dp = 0.0;
      for (var d = 0u; d < D; d++) {
        let gd = ${load(s.half, "go[qi * D + d]")};
        dp += gd * vv[d];
        av[d] += pr * gd;
      }
      if (flows) {
        let ds = pr * (dp - delta[qi]);
        for (var d = 0u; d < D; d++) { ak[d] += ds * ${load(s.half, "q[qi * D + d]")}; }
      }
    }
  }
  for (var d = 0u; d < D; d++) {
    dk[ks * D + d] = ${store(s.half, "ak[d]")};
    dv[ks * D + d] = ${store(s.half, "av[d]")};
  }
}`;
}

const sizes = (s: ChunkAttnSpec) => new Uint32Array([s.rows, s.nq, s.nk, s.kc, s.chunks, 0, 0, 0]);

/**
 * Rows of the inputs (q, k, v, qpos, kcode, bias when present, then the backward's stat, dO,
 * delta) and of `outs` (elements per row of each), split into pieces of whole groups of
 * `chunks` rows (the look-around stays within a group) whose windows fit one binding (`outs`:
 * storage, elements per row, bytes per element). Each
 * piece runs as a call on `count` rows.
 */
function pieces(
  device: GpuDevice,
  op: string,
  xs: (GpuStorage | null)[],
  outs: [GpuStorage, number, number][],
  s: ChunkAttnSpec,
) {
  const eb = device.elementBytes(floatOf(s.half));
  const per = [
    [s.nq * s.dim, eb],
    [s.kc * s.dim, eb],
    [s.kc * s.dim, eb],
    [s.nq, 4],
    [s.nk, 4],
    [s.nq * s.nk, 4],
    [s.nq * 2, 4],
    [s.nq * s.dim, eb],
    [s.nq, 4],
  ];
  const operands = xs.flatMap((storage, k) =>
    storage ? [{ storage, perRow: per[k][0], eb: per[k][1] }] : []
  ).concat(outs.map(([storage, perRow, eb]) => ({ storage, perRow, eb })));
  const multiple = s.offsets.every((o) => o === 0) ? 1 : s.chunks;
  const shape = [s.rows, s.nq, s.dim];
  const list = guarded(
    device,
    outs.map(([o]) => o),
    () => rowPieces(device, op, shape, s.rows, operands, multiple),
  );
  const n = operands.length - outs.length;
  return list.map(({ count, binds }) => ({
    bufs: binds.slice(0, n),
    out: binds.slice(n),
    s: { ...s, rows: count },
  }));
}

/** Forward pass on the GPU: `[o, lse, stat]` (see the CPU reference). */
export function chunkAttentionGpu(
  device: GpuDevice,
  xs: (GpuStorage | null)[],
  s: ChunkAttnSpec,
): [GpuStorage, GpuStorage, GpuStorage] {
  const o = device.alloc(floatOf(s.half), s.rows * s.nq * s.dim);
  const lse = device.alloc("f32", s.rows * s.nq);
  const stat = device.alloc("f32", s.rows * s.nq * 2);
  if (s.rows * s.nq === 0) return [o, lse, stat];
  const tiled = attentionKernelKind(device) === "tiled";
  const eb = device.elementBytes(floatOf(s.half));
  const outs: [GpuStorage, number, number][] = [
    [o, s.nq * s.dim, eb],
    [lse, s.nq, 4],
    [stat, s.nq * 2, 4],
  ];
  for (const p of pieces(device, "chunkAttention", xs, outs, s)) {
    if (!(tiled && chunkAttentionTiled(device, p.bufs, p.out, p.s))) {
      device.run(
        { code: forwardCode(p.s) },
        [...p.bufs, ...p.out],
        grid(p.s.rows * s.nq, WG),
        sizes(p.s),
      );
    }
  }
  return [o, lse, stat];
}

/** Backward pass on the GPU: `[dq, dk, dv]` (see the CPU reference). */
export function chunkAttentionGradGpu(
  device: GpuDevice,
  xs: (GpuStorage | null)[],
  s: ChunkAttnSpec,
): [GpuStorage, GpuStorage, GpuStorage] {
  const dq = device.alloc(floatOf(s.half), s.rows * s.nq * s.dim);
  const dk = device.alloc(floatOf(s.half), s.rows * s.kc * s.dim);
  const dv = device.alloc(floatOf(s.half), s.rows * s.kc * s.dim);
  if (s.rows === 0) return [dq, dk, dv];
  const tiled = attentionKernelKind(device) === "tiled";
  const eb = device.elementBytes(floatOf(s.half));
  const outs: [GpuStorage, number, number][] = [
    [dq, s.nq * s.dim, eb],
    [dk, s.kc * s.dim, eb],
    [dv, s.kc * s.dim, eb],
  ];
  for (const { bufs, out: [q, k, v], s: p } of pieces(device, "chunkAttentionGrad", xs, outs, s)) {
    if (p.nq > 0 && !(tiled && chunkAttentionGradQTiled(device, bufs, [q], p))) {
      device.run({ code: gradQCode(p) }, [...bufs, q], grid(p.rows * p.nq, WG), sizes(p));
    }
    if (p.kc > 0 && !(tiled && chunkAttentionGradKvTiled(device, bufs, [k, v], p))) {
      device.run({ code: gradKvCode(p) }, [...bufs, k, v], grid(p.rows * p.kc, WG), sizes(p));
    }
  }
  return [dq, dk, dv];
}

/** The chunk-attention family's kernels. */
export const chunkAttentionKernels: KernelTable = {
  chunkAttention: (d: GpuDevice, xs: GpuStorage[], s: ChunkAttnSpec) =>
    chunkAttentionGpu(d, withBias(xs, s), s),
  chunkAttentionGrad: (d: GpuDevice, xs: GpuStorage[], s: ChunkAttnSpec) =>
    chunkAttentionGradGpu(d, withBias(xs, s), s),
};
