/**
 * Block-sparse causal attention on the wasm device, for the {@linkcode BlockSparseSpec} and
 * inputs of `kernels/cpu/block_sparse.ts`. Per query, its keys are listed (`pairedIn`, no
 * per-pair predicate), kept where their block is one of the query block's tiles, and read in
 * runs of evenly spaced rows by the SIMD `dots` and `axpys` helpers.
 *
 * Every output row has one owner and one summation order, whatever the thread count: the
 * forward and `dq` are computed per query row; `dk` and `dv` per key row, gathering over the
 * queries that see the key (found through the layout's column lists) with `p` and `ds`
 * recomputed there (`softgrad_row`) instead of stored. Work goes out in blocks of
 * {@linkcode ROWS} rows. Arithmetic is f32 (the reference accumulates in float64).
 * @module
 */
import type { BlockSparseSpec } from "../specs/block_sparse.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import type { Runtime } from "./runtime.ts";
import { eachRun, pairedIn, type PatternCode } from "./block_sparse_keys.ts";

/** This job's index in `jobs.ts`. */
export const JOB_BLOCK_SPARSE = 7;

/** Rows per work item. */
export const ROWS = 8;

const FORWARD = 0, DQ = 1, DKV = 2;

/** The call's pattern as numbers (see {@linkcode PatternCode}). */
function patternCode(s: BlockSparseSpec): number[] {
  const p = s.pattern;
  return [p.kind === "fixed" ? 1 : 0, p.stride, p.c, ["a", "b", "union"].indexOf(p.part)];
}

/** Runs `mode` over every row with the layout copied into scratch for the workers. */
function launch(
  device: WasmDevice,
  s: BlockSparseSpec,
  mode: number,
  ptrs: number[],
): void {
  const { groups, heads, n, d, layout } = s;
  if (groups * n === 0) return;
  const lists = [layout.rowPtr, layout.cols, layout.colPtr, layout.rows];
  const ints = lists.reduce((a, x) => a + x.length, 0);
  const stride = Math.ceil((5 * n) / 16) * 64 + 64;
  const scratch = device.scratch(4 * ints + 64 + stride * device.threads);
  try {
    let at = scratch.offset / 4;
    const offs = lists.map((x) => {
      device.runtime.i32.set(x, at);
      at += x.length;
      return 4 * (at - x.length);
    });
    const rowScratch = Math.ceil((scratch.offset + 4 * ints) / 64) * 64;
    const args = [
      mode,
      ...ptrs,
      groups,
      heads,
      n,
      d,
      layout.blockSize,
      ...patternCode(s),
      ...offs,
      rowScratch,
      stride,
    ];
    device.run(JOB_BLOCK_SPARSE, args, groups * n * d < 1 << 12);
  } finally {
    device.release(scratch);
  }
}

/**
 * Forward pass: `o [groups, n, d]` and `lse [groups, n]` (a row without keys: `o = 0`,
 * `lse = -inf`) from f32 `q`, `k`, `v` and an optional bool key mask `[groups / heads, n]`.
 */
export function blockSparseForwardWasm(
  device: WasmDevice,
  [q, k, v, mask]: (WasmStorage | null)[],
  s: BlockSparseSpec,
): [WasmStorage, WasmStorage] {
  const o = device.alloc("f32", s.groups * s.n * s.d);
  const lse = device.alloc("f32", s.groups * s.n);
  const none = -1;
  launch(device, s, FORWARD, [
    q!.offset,
    k!.offset,
    v!.offset,
    mask ? mask.offset : none,
    o.offset,
    lse.offset,
    none,
    none,
    none,
    none,
    none,
  ]);
  return [o, lse];
}

/**
 * Backward pass: `dq`, `dk`, `dv [groups, n, d]` from `q`, `k`, `v`, `dout`, the forward's
 * `lse`, `delta = rowsum(dout * o) - dlse` and the optional key mask.
 */
export function blockSparseBackwardWasm(
  device: WasmDevice,
  [q, k, v, dout, lse, delta, mask]: (WasmStorage | null)[],
  s: BlockSparseSpec,
): [WasmStorage, WasmStorage, WasmStorage] {
  const size = s.groups * s.n * s.d;
  const [dq, dk, dv] = [0, 1, 2].map(() => device.alloc("f32", size));
  const ptrs = [q, k, v, mask, null, lse, dout, delta, dq, dk, dv].map((x) => x ? x.offset : -1);
  launch(device, s, DQ, ptrs);
  launch(device, s, DKV, ptrs);
  return [dq, dk, dv];
}

/** The job: this thread's blocks of {@linkcode ROWS} rows, claimed one at a time. */
export function blockSparseJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  _parts: number,
  claim: () => number,
): void {
  const [mode, q, k, v, mask, o, lse, dO, delta, dq, dk, dv] = args;
  const [groups, heads, n, d, bs, kind, l, c, pt] = args.subarray(12);
  const [rowPtr, cols, colPtr, tileRows, rowScratch, stride] = args.subarray(21);
  const p: PatternCode = { kind, l, c, part: pt };
  const F = rt.f32, I = rt.i32, K = rt.kernels, U = new Uint8Array(F.buffer);
  const L = rowScratch + part * stride, D = L + 4 * n, C = D + 4 * n, E = C + 4 * n;
  const G = E + 4 * n;
  const list = new Int32Array(n), near = new Uint8Array(Math.ceil(n / bs));
  let listed = -1;
  for (let item = claim(); item * ROWS < groups * n; item = claim()) {
    const end = Math.min(groups * n, (item + 1) * ROWS);
    for (let row = item * ROWS; row < end; row++) {
      const g = Math.floor(row / n), x = row % n, at = 4 * row * d, seq = 4 * g * n * d;
      const b = Math.floor(x / bs);
      // The pairs: keys of query x, or queries of key x (none for a masked key).
      if (b !== listed) {
        // The blocks paired with block b: its row of tiles, or (dk, dv) its column.
        listed = b;
        near.fill(0);
        const [ptr, idx] = mode === DKV ? [colPtr, tileRows] : [rowPtr, cols];
        for (let t = I[ptr / 4 + b]; t < I[ptr / 4 + b + 1]; t++) near[I[idx / 4 + t]] = 1;
      }
      const mrow = Math.floor(g / heads) * n;
      let cnt = 0;
      if (mode !== DKV || mask < 0 || U[mask + mrow + x]) {
        const all = pairedIn(p, x, mode !== DKV, 0, n, list, 0);
        for (let u = 0; u < all; u++) {
          const y = list[u];
          if (near[Math.floor(y / bs)] && (mode === DKV || mask < 0 || U[mask + mrow + y])) {
            list[cnt++] = y;
          }
        }
      }
      const out = mode === FORWARD ? o : mode === DQ ? dq : dk;
      F.fill(0, (out + at) / 4, (out + at) / 4 + d);
      if (mode === DKV) F.fill(0, (dv + at) / 4, (dv + at) / 4 + d);
      if (cnt === 0) {
        if (mode === FORWARD) F[lse / 4 + row] = -Infinity;
        continue;
      }
      if (mode === FORWARD) {
        eachRun(
          list,
          cnt,
          (y, slot, len, step) =>
            K.dots(L + 4 * slot, q + at, k + seq + 4 * y * d, len, d, 4 * step * d),
        );
        const m = K.max_row(L, cnt);
        const sum = K.expsub_row(L, L, cnt, m);
        eachRun(
          list,
          cnt,
          (y, slot, len, step) =>
            K.axpys(o + at, v + seq + 4 * y * d, L + 4 * slot, len, d, 4 * step * d, 4),
        );
        F[D / 4] = sum;
        K.div_vs(o + at, D, o + at, d);
        F[lse / 4 + row] = m + Math.log(sum);
        continue;
      }
      // The rows paired with x: keys for dq, queries for dk and dv.
      const [a, bb] = mode === DQ ? [k, v] : [q, dO];
      const [xa, xb] = mode === DQ ? [q + at, dO + at] : [k + at, v + at];
      eachRun(list, cnt, (y, slot, len, step) => {
        K.dots(L + 4 * slot, xa, a + seq + 4 * y * d, len, d, 4 * step * d);
        K.dots(D + 4 * slot, xb, bb + seq + 4 * y * d, len, d, 4 * step * d);
      });
      // Each pair's query's lse and delta, then p and ds in SIMD.
      if (mode === DQ) {
        F.fill(F[lse / 4 + row], E / 4, E / 4 + cnt);
        F.fill(F[delta / 4 + row], G / 4, G / 4 + cnt);
      } else {
        for (let u = 0; u < cnt; u++) {
          F[E / 4 + u] = F[lse / 4 + g * n + list[u]];
          F[G / 4 + u] = F[delta / 4 + g * n + list[u]];
        }
      }
      K.softgrad_row(L, D, C, E, G, cnt);
      eachRun(list, cnt, (y, slot, len, step) => {
        const ld = 4 * step * d;
        K.axpys(out + at, a + seq + 4 * y * d, D + 4 * slot, len, d, ld, 4);
        if (mode === DKV) K.axpys(dv + at, dO + seq + 4 * y * d, C + 4 * slot, len, d, ld, 4);
      });
    }
  }
}
