/**
 * Batched f32 matmul on the wasm device, for the {@linkcode MatmulSpec} the CPU reference
 * takes. Blocked the usual way (BLIS/GotoBLAS), in two jobs: first every distinct B matrix is
 * packed once into `[n / NR][k][NR]` panels (items: blocks of panels); then each item, a block
 * of `MC` rows of one output matrix, packs its rows of A `KC` columns at a time into
 * `[kc][MR]` panels and runs the SIMD microkernel (`gen_matmul.ts`) over `MR x NR` tiles.
 *
 * Threads take items one at a time from a shared counter, so a thread that the OS slows down
 * takes fewer. Every output element is summed in f32 over each `KC` block in ascending order
 * and the block sums are added in ascending order, whoever computes it, so the result is
 * bit-identical for any thread count. Products of at most `SKINNY_ROWS` rows (decoding, matrix
 * times vector) skip the packing (see {@linkcode isSkinny}), and small products run on the
 * calling thread alone.
 * @module
 */
import { batchOffsets } from "../cpu/matmul.ts";
import { batchCount, type MatmulSpec } from "../specs/matmul.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { MR, NR } from "./module.ts";
import { type Runtime, share } from "./runtime.ts";

/** Inner-dimension block. */
export const KC = 256;
/** Row block (a multiple of MR). */
export const MC = 16 * MR;
/** Column panels per item of the packing job. */
export const PACK_PANELS = 32;
/** Tunable limits (tests lower them to reach rare paths with small inputs). */
export const matmulLimits = {
  /** Most bytes of packed B per pair of jobs (larger batches run in several pairs). */
  packedBBytes: 64 << 20,
  /**
   * Products of at least this many multiply-adds per matrix go to the system BLAS when the
   * device opened one (smaller ones pay more for its thread wake-up than they gain).
   */
  blasMinMacs: 1 << 21,
};

/** Each matrix of the batch through the device's BLAS, in place in the wasm memory. */
function blasMatmul(
  device: WasmDevice,
  a: WasmStorage,
  b: WasmStorage,
  out: WasmStorage,
  spec: MatmulSpec,
  count: number,
): void {
  const { m, n, k, transA, transB } = spec;
  // The memory may have grown since the storages were made: take the current buffer.
  const buf = device.wasmMemory.buffer as unknown as ArrayBuffer;
  const view = (base: number, at: number, len: number) => new Float32Array(buf, base + 4 * at, len);
  for (let z = 0; z < count; z++) {
    const [ao, bo] = batchOffsets(spec, z);
    device.blas!.sgemm(
      transA,
      transB,
      m,
      n,
      k,
      view(a.offset, ao, m * k),
      transA ? m : k,
      view(b.offset, bo, k * n),
      transB ? k : n,
      view(out.offset, z * m * n, m * n),
      n,
    );
  }
}

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

/** Per-thread scratch in f32 elements: packed A block, one edge tile. */
const SCRATCH = MC * KC + MR * NR;

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
  /** First and end batch index of this pair of jobs. */
  Z0: 12,
  Z1: 13,
  /** Packed Bs, and their count (the pack job) or 0 (the compute job). */
  Packed: 14,
  PackCount: 15,
  /** Distinct B offsets to pack (i32, `PackCount` of them). */
  PackList: 16,
  /** Rows per compute item (a multiple of MR, at most MC). */
  Rows: 17,
} as const;

/**
 * Rows per compute item for `count` products of `m` rows on `threads` threads: `MC`, unless
 * that leaves few items, which the threads may not share evenly (128 rows would be one block
 * of 96 and one of 32 on two threads); then blocks of near-equal size (66 and 62), as many
 * as the threads divide.
 * Each output element's sum does not depend on the blocking, so neither do the results.
 */
export function rowBlock(m: number, count: number, threads: number): number {
  const blocks = Math.ceil(m / MC);
  if (threads === 1 || count * blocks >= 8 * threads) return MC;
  let even = blocks;
  while ((count * even) % threads !== 0) even++;
  return Math.min(MC, Math.ceil(m / even / MR) * MR);
}

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
    rt.kernels.axpys(acc, bCols, aRow, k, w, 4 * n, 4);
  }
}

/**
 * The job: the few-rows path, packing B (when `PackCount > 0`), or blocks of `MC` rows of
 * output matrices `Z0 .. Z1`.
 */
export function matmulJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  parts: number,
  claim: () => number,
): void {
  if (args[Arg.Skinny]) return skinnyJob(rt, args, part, parts);
  const m = args[Arg.M], n = args[Arg.N], k = args[Arg.K];
  const panels = Math.ceil(n / NR);
  if (args[Arg.PackCount] > 0) {
    const blocks = Math.ceil(panels / PACK_PANELS);
    const [bj, bp] = args[Arg.TransB] ? [k, 1] : [1, n];
    for (let item = claim(); item < args[Arg.PackCount] * blocks; item = claim()) {
      const u = Math.floor(item / blocks), p0 = (item % blocks) * PACK_PANELS;
      const bOff = args[Arg.B] / 4 + rt.i32[args[Arg.PackList] / 4 + u];
      const dst = args[Arg.Packed] + 4 * (u * panels + p0) * k * NR;
      const cols = Math.min(PACK_PANELS * NR, n - p0 * NR);
      pack(rt, dst, bOff + p0 * NR * bj, bj, bp, cols, k, NR);
    }
    return;
  }
  const rows = args[Arg.Rows], blocks = Math.ceil(m / rows), z0 = args[Arg.Z0];
  const scratch = args[Arg.Scratch] + part * SCRATCH * 4;
  for (let item = claim(); item < (args[Arg.Z1] - z0) * blocks; item = claim()) {
    const z = z0 + Math.floor(item / blocks), ic = (item % blocks) * rows;
    gemm(rt, args, z, ic, Math.min(rows, m - ic), scratch);
  }
}

/** Rows `[ic, ic + mc)` of output matrix `z`, from the packed B of that matrix. */
function gemm(rt: Runtime, args: Float64Array, z: number, ic: number, mc: number, scratch: number) {
  const m = args[Arg.M], n = args[Arg.N], k = args[Arg.K];
  const I = rt.i32, mm = rt.kernels.mm;
  const offs = args[Arg.Offsets] / 4 + 2 * z;
  const aOff = args[Arg.A] / 4 + I[offs], bPack = args[Arg.Packed] + I[offs + 1];
  const [ai, ap] = args[Arg.TransA] ? [1, m] : [k, 1];
  const c0 = args[Arg.C] + 4 * (z * m + ic) * n;
  const aPack = scratch, tile = aPack + MC * KC * 4;
  for (let pc = 0; pc < k; pc += KC) {
    const kc = Math.min(KC, k - pc), add = pc > 0 ? 1 : 0;
    pack(rt, aPack, aOff + ic * ai + pc * ap, ai, ap, mc, kc, MR);
    for (let jr = 0; jr < n; jr += NR) {
      // Panel jr / NR of the packed B, from row pc.
      const bPanel = bPack + 4 * (jr * k + pc * NR);
      const w = Math.min(NR, n - jr);
      for (let ir = 0; ir < mc; ir += MR) {
        const aPanel = aPack + ir * kc * 4, h = Math.min(MR, mc - ir);
        const c = c0 + 4 * (ir * n + jr);
        if (h === MR && w === NR) mm(aPanel, bPanel, c, n * 4, kc, add);
        else {
          mm(aPanel, bPanel, tile, NR * 4, kc, 0);
          const T = rt.f32, t = tile / 4, c4 = c / 4;
          for (let r = 0; r < h; r++) {
            for (let q = 0; q < w; q++) {
              const v = T[t + r * NR + q], at = c4 + r * n + q;
              T[at] = add ? T[at] + v : v;
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
  if (device.blas && m * n * k >= matmulLimits.blasMinMacs) {
    blasMatmul(device, a, b, out, spec, count);
    return out;
  }
  const skinny = isSkinny(spec);
  const offsets = device.scratch(count * 8);
  const I = () => device.runtime.i32;
  const base: number[] = [];
  base[Arg.A] = a.offset;
  base[Arg.B] = b.offset;
  base[Arg.C] = out.offset;
  base[Arg.M] = m;
  base[Arg.N] = n;
  base[Arg.K] = k;
  base[Arg.TransA] = spec.transA ? 1 : 0;
  base[Arg.TransB] = spec.transB ? 1 : 0;
  base[Arg.Count] = count;
  base[Arg.Offsets] = offsets.offset;
  base[Arg.Skinny] = skinny ? 1 : 0;
  const inline = 2 * count * m * n * k < PARALLEL_MIN_FLOPS;
  const run = (args: number[]) => device.run(JOB_MATMUL, args, inline);
  try {
    if (skinny) {
      for (let z = 0; z < count; z++) {
        const [ao, bo] = batchOffsets(spec, z);
        I()[offsets.offset / 4 + 2 * z] = ao;
        I()[offsets.offset / 4 + 2 * z + 1] = bo;
      }
      run(base);
      return out;
    }
    const packedBytes = 4 * Math.ceil(n / NR) * NR * k;
    const perPair = Math.max(1, Math.floor(matmulLimits.packedBBytes / packedBytes));
    for (let z0 = 0; z0 < count;) {
      // Batch indices z0 .. z1 whose distinct Bs fit in one packed buffer.
      const distinct = new Map<number, number>();
      let z1 = z0;
      for (; z1 < count; z1++) {
        const [, bo] = batchOffsets(spec, z1);
        if (!distinct.has(bo) && distinct.size === perPair) break;
        if (!distinct.has(bo)) distinct.set(bo, distinct.size);
      }
      const packed = device.scratch(distinct.size * packedBytes);
      const list = device.scratch(4 * distinct.size);
      const scratch = device.scratch(4 * SCRATCH * (inline ? 1 : device.threads));
      try {
        for (const [bo, u] of distinct) I()[list.offset / 4 + u] = bo;
        for (let z = z0; z < z1; z++) {
          const [ao, bo] = batchOffsets(spec, z);
          I()[offsets.offset / 4 + 2 * z] = ao;
          I()[offsets.offset / 4 + 2 * z + 1] = distinct.get(bo)! * packedBytes;
        }
        const args = [...base];
        args[Arg.Scratch] = scratch.offset;
        args[Arg.Z0] = z0;
        args[Arg.Z1] = z1;
        args[Arg.Packed] = packed.offset;
        args[Arg.PackCount] = distinct.size;
        args[Arg.PackList] = list.offset;
        args[Arg.Rows] = rowBlock(m, z1 - z0, inline ? 1 : device.threads);
        run(args);
        args[Arg.PackCount] = 0;
        run(args);
      } finally {
        for (const s of [packed, list, scratch]) device.release(s);
      }
      z0 = z1;
    }
  } finally {
    device.release(offsets);
  }
  return out;
}

/** This job's index in `jobs.ts`. */
export const JOB_MATMUL = 0;
