/**
 * Batched f32 matmul on the wasm device, for the {@linkcode MatmulSpec} the CPU reference
 * takes. Blocked the usual way (BLIS/GotoBLAS): for each block of `NC` columns and `KC` of the
 * inner dimension, B is packed into `[kc][NR]` panels and each block of `MC` rows of A into
 * `[kc][MR]` panels, and the SIMD microkernel (`module.ts`) computes `MR x NR` tiles.
 *
 * Threads split the `MR`-row panels of all output matrices into contiguous shares. Every
 * output element is summed in f32 over each `KC` block in ascending order and the block sums
 * are added in ascending order, whatever the number of threads, so the result is
 * bit-identical for any thread count. Products of at most `SKINNY_ROWS` rows (decoding, matrix
 * times vector) skip the packing (see {@linkcode isSkinny}), and small products run on the
 * calling thread alone.
 * @module
 */
import { batchCount, batchOffsets, type MatmulSpec } from "../cpu/matmul.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { MR, NR } from "./module.ts";
import { type Runtime, share } from "./runtime.ts";

/** Inner-dimension block. */
export const KC = 256;
/** Row block (a multiple of MR). */
export const MC = 16 * MR;
/** Column block (a multiple of NR). */
export const NC = 128 * NR;

/** Products with fewer FLOPs than this run on the calling thread alone. */
export const PARALLEL_MIN_FLOPS = 1 << 18;
/** Most rows of the few-rows path (about 5x faster than tiles for one row, even at 4). */
export const SKINNY_ROWS = 3;
/** Columns per work item of the few-rows path. */
export const SKINNY_COLUMNS = 512;

/**
 * Whether a product takes the few-rows path: at most `SKINNY_ROWS` rows, with B's rows and
 * A's rows contiguous (B is streamed once per row, so this pays only for very few rows). Each output row is then `sum_p A[i, p] * B[p, :]` with `p`
 * ascending (f32 multiply, then add), by SIMD row updates straight from B, unpacked.
 */
export function isSkinny(spec: MatmulSpec): boolean {
  return spec.m <= SKINNY_ROWS && !spec.transB && (!spec.transA || spec.m === 1);
}

/** Per-thread scratch in f32 elements: packed A block, packed B block, one edge tile. */
const SCRATCH = MC * KC + KC * NC + MR * NR;

/** Job argument slots. */
const Arg = {
  A: 0,
  B: 1,
  C: 2,
  M: 3,
  N: 4,
  K: 5,
  TransA: 6,
  TransB: 7,
  Count: 8,
  Offsets: 9,
  Scratch: 10,
  Skinny: 11,
} as const;

/** The few-rows path (see {@linkcode isSkinny}): this thread's blocks of output columns. */
function skinnyJob(rt: Runtime, args: Float64Array, part: number, parts: number) {
  const m = args[Arg.M], n = args[Arg.N], k = args[Arg.K], count = args[Arg.Count];
  const blocks = Math.ceil(n / SKINNY_COLUMNS);
  const [lo, hi] = share(count * m * blocks, part, parts);
  const I = rt.i32, offs = args[Arg.Offsets] / 4;
  for (let item = lo; item < hi; item++) {
    const row = Math.floor(item / blocks), c0 = (item % blocks) * SKINNY_COLUMNS;
    const z = Math.floor(row / m), i = row % m, w = Math.min(SKINNY_COLUMNS, n - c0);
    const acc = args[Arg.C] + 4 * (row * n + c0);
    rt.f32.fill(0, acc / 4, acc / 4 + w);
    const aRow = args[Arg.A] + 4 * (I[offs + 2 * z] + i * k);
    const bCols = args[Arg.B] + 4 * (I[offs + 2 * z + 1] + c0);
    rt.kernels.axpys(acc, bCols, aRow, k, w, 4 * n);
  }
}

/** The job: this thread's share of `MR`-row panels over all output matrices. */
export function matmulJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const m = args[Arg.M], count = args[Arg.Count];
  if (args[Arg.Skinny]) return skinnyJob(rt, args, part, parts);
  const panels = Math.ceil(m / MR);
  const [lo, hi] = share(count * panels, part, parts);
  const scratch = args[Arg.Scratch] + part * SCRATCH * 4;
  for (let z = Math.floor(lo / panels); z * panels < hi; z++) {
    const r0 = Math.max(lo - z * panels, 0) * MR;
    const r1 = Math.min(Math.min(hi - z * panels, panels) * MR, m);
    gemm(rt, args, z, r0, r1, scratch);
  }
}

/** Rows `[r0, r1)` of output matrix `z`. */
function gemm(rt: Runtime, args: Float64Array, z: number, r0: number, r1: number, scratch: number) {
  const m = args[Arg.M], n = args[Arg.N], k = args[Arg.K];
  const I = rt.i32, mm = rt.kernels.mm;
  const offs = args[Arg.Offsets] / 4 + 2 * z;
  const aOff = args[Arg.A] / 4 + I[offs], bOff = args[Arg.B] / 4 + I[offs + 1];
  const [ai, ap] = args[Arg.TransA] ? [1, m] : [k, 1];
  const [bj, bp] = args[Arg.TransB] ? [k, 1] : [1, n];
  const cBase = args[Arg.C] + z * m * n * 4;
  const aPack = scratch, bPack = aPack + MC * KC * 4, tile = bPack + KC * NC * 4;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      pack(rt, bPack, bOff + pc * bp + jc * bj, bj, bp, nc, kc, NR);
      for (let ic = r0; ic < r1; ic += MC) {
        const mc = Math.min(MC, r1 - ic);
        pack(rt, aPack, aOff + ic * ai + pc * ap, ai, ap, mc, kc, MR);
        for (let jr = 0; jr < nc; jr += NR) {
          const bPanel = bPack + jr * kc * 4;
          const w = Math.min(NR, nc - jr);
          for (let ir = 0; ir < mc; ir += MR) {
            const aPanel = aPack + ir * kc * 4, h = Math.min(MR, mc - ir);
            const c = cBase + ((ic + ir) * n + jc + jr) * 4;
            if (h === MR && w === NR) mm(aPanel, bPanel, c, n * 4, kc, pc > 0 ? 1 : 0);
            else {
              mm(aPanel, bPanel, tile, NR * 4, kc, 0);
              const T = rt.f32, t = tile / 4, c4 = c / 4;
              for (let r = 0; r < h; r++) {
                for (let q = 0; q < w; q++) {
                  const v = T[t + r * NR + q], at = c4 + r * n + q;
                  T[at] = pc > 0 ? T[at] + v : v;
                }
              }
            }
          }
        }
      }
    }
  }
}

/**
 * Packs `len` lines (rows of A or columns of B) of `kc` elements into `[len / W][kc][W]`
 * panels at byte offset `dst`, zero-padding the last panel. Line `i`, element `p` is at
 * element `src + i * li + p * lp`.
 */
function pack(
  rt: Runtime,
  dst: number,
  src: number,
  li: number,
  lp: number,
  len: number,
  kc: number,
  W: number,
) {
  if (li === 1) rt.kernels.pack_l(dst, src * 4, lp * 4, len, kc, W);
  else rt.kernels.pack_p(dst, src * 4, li * 4, lp * 4, len, kc, W);
}

/**
 * `out[z] = A[z] @ B[z]` for every batch index of `spec` (see `kernels/cpu/matmul.ts`), with
 * f32 operands in `a` and `b`. Returns contiguous `[...batch, m, n]` f32 storage.
 */
export function matmulWasm(
  device: WasmDevice,
  a: WasmStorage,
  b: WasmStorage,
  spec: MatmulSpec,
): WasmStorage {
  const { m, n, k } = spec;
  const count = batchCount(spec);
  const out = device.alloc("f32", count * m * n);
  if (count * m * n === 0) return out;
  if (k === 0) {
    device.runtime.f32.fill(0, out.offset / 4, out.offset / 4 + count * m * n);
    return out;
  }
  const skinny = isSkinny(spec);
  const offsets = device.scratch(count * 8);
  const scratch = device.scratch(skinny ? 64 : device.threads * SCRATCH * 4);
  try {
    const I = device.runtime.i32;
    for (let z = 0; z < count; z++) {
      const [ao, bo] = batchOffsets(spec, z);
      I[offsets.offset / 4 + 2 * z] = ao;
      I[offsets.offset / 4 + 2 * z + 1] = bo;
    }
    const args: number[] = [];
    args[Arg.A] = a.offset;
    args[Arg.B] = b.offset;
    args[Arg.C] = out.offset;
    args[Arg.M] = m;
    args[Arg.N] = n;
    args[Arg.K] = k;
    args[Arg.TransA] = spec.transA ? 1 : 0;
    args[Arg.TransB] = spec.transB ? 1 : 0;
    args[Arg.Count] = count;
    args[Arg.Offsets] = offsets.offset;
    args[Arg.Scratch] = scratch.offset;
    args[Arg.Skinny] = skinny ? 1 : 0;
    if (2 * count * m * n * k < PARALLEL_MIN_FLOPS) {
      matmulJob(device.runtime, Float64Array.from(args), 0, 1);
    } else device.run(JOB_MATMUL, args);
  } finally {
    device.release(offsets);
    device.release(scratch);
  }
  return out;
}

/** This job's index in `jobs.ts`. */
export const JOB_MATMUL = 0;
