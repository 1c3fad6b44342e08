/**
 * Fused chunk-attention forward on the wasm device, for the {@linkcode ChunkAttnSpec} and
 * input layout of `kernels/cpu/chunk_attention.ts`. For a block of a row's queries (the whole
 * row when their logits fit, see {@linkcode queryBlock}): the logits against each block of
 * `Kc` keys come from `gemm_acc` on the key block transposed (`logits`); per query, masks,
 * self and bias are applied by `mask_row` and the row is max-shifted and exponentiated
 * (`expsub_row`), for the block's queries in one call (`softmax_rows`); then the outputs accumulate `p[j] * v[j]` key block by key block
 * (`gemm_acc`, `j` ascending). Rows of queries are claimed by the threads one at a time; each
 * query is computed whole by one thread, so results do not depend on the thread count.
 * Arithmetic is f32 (the reference accumulates in float64).
 * @module
 */
import type { ChunkAttnSpec } from "../specs/chunk_attention.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { MAX_ARGS, type Runtime } from "./runtime.ts";

/** This job's index in `jobs.ts`. */
export const JOB_CHUNK_ATTENTION = 4;

/** Argument slots before the chunk offsets. */
const FIXED = 22;

/** Whether {@linkcode chunkAttentionWasm} takes this spec (else use a fallback). */
export function chunkAttentionSupported(s: ChunkAttnSpec): boolean {
  return FIXED + s.offsets.length <= MAX_ARGS;
}

/**
 * Forward pass: `o [R, C, D]`, `lse [R, C]` and `stat [R, C, 2]` = `(max logit, log sum)`,
 * from `q`, `k`, `v` (f32), `qpos`, `kcode` (i32) and an optional f32 `bias`.
 */
export function chunkAttentionWasm(
  device: WasmDevice,
  [q, k, v, qpos, kcode, bias]: (WasmStorage | null)[],
  s: ChunkAttnSpec,
): [WasmStorage, WasmStorage, WasmStorage] {
  if (!chunkAttentionSupported(s)) throw new RangeError("wasm: too many chunk offsets");
  const { rows, nq, nk, kc, dim } = s;
  const o = device.alloc("f32", rows * nq * dim);
  const lse = device.alloc("f32", rows * nq);
  const stat = device.alloc("f32", rows * nq * 2);
  if (rows * nq === 0) return [o, lse, stat];
  const qb = queryBlock(nq, nk);
  const stride = Math.ceil((qb * nk + 2 * qb + kc * dim) / 16) * 64 + 64;
  const scratch = device.scratch(stride * device.threads);
  try {
    const args = [
      q!.offset,
      k!.offset,
      v!.offset,
      qpos!.offset,
      kcode!.offset,
      bias ? bias.offset : -1,
      o.offset,
      lse.offset,
      stat.offset,
      rows,
      nq,
      nk,
      kc,
      s.chunks,
      dim,
      s.causal ? 1 : 0,
      s.selfMask ? 1 : 0,
      s.maskValue,
      s.selfValue,
      scratch.offset,
      stride,
      s.offsets.length,
      ...s.offsets,
    ];
    device.run(JOB_CHUNK_ATTENTION, args, rows * nq * nk * dim < 1 << 15);
  } finally {
    device.release(scratch);
  }
  return [o, lse, stat];
}

/**
 * The job: rows of `C` queries, claimed one at a time (a thread slowed by a busy machine takes
 * fewer); `part` only picks the thread's scratch.
 */
export function chunkAttentionJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  _parts: number,
  claim: () => number,
): void {
  const [q, k, v, qpos, kcode, bias, o, lse, stat, rows, nq, nk, kc, chunks, dim] = args;
  const [causal, selfMask, maskValue, selfValue, scratch, stride, blocks] = args.subarray(15);
  const offsets = args.subarray(FIXED, FIXED + blocks);
  const F = rt.f32, K = rt.kernels;
  const qb = queryBlock(nq, nk);
  const P = scratch + part * stride, sums = P + 4 * qb * nk, maxes = sums + 4 * qb;
  const kt = maxes + 4 * qb;
  for (let r = claim(); r < rows; r = claim()) {
    const c = r % chunks;
    const keyRows = Array.from(offsets, (off) => r - c + (((c + off) % chunks) + chunks) % chunks);
    for (let i0 = 0; i0 < nq; i0 += qb) {
      const n = Math.min(qb, nq - i0), first = r * nq + i0;
      logits(rt, P, q + 4 * first * dim, k, keyRows, kt, n, kc, dim);
      const at = bias >= 0 ? bias + 4 * first * nk : -1;
      K.softmax_rows(
        P,
        kcode + 4 * r * nk,
        at,
        nk,
        qpos + 4 * first,
        causal,
        selfMask,
        maskValue,
        selfValue,
        sums,
        maxes,
        n,
      );
      for (let i = 0; i < n; i++) {
        const row = first + i, m = F[maxes / 4 + i], ls = Math.log(F[sums / 4 + i]);
        F[lse / 4 + row] = m + ls;
        F[stat / 4 + 2 * row] = m;
        F[stat / 4 + 2 * row + 1] = ls;
      }
      // o = p v for the block's queries at once, key block by key block, then / sum.
      const out = o + 4 * first * dim;
      F.fill(0, out / 4, out / 4 + n * dim);
      keyRows.forEach((kr, b) => {
        const vb = v + 4 * kr * kc * dim;
        K.gemm_acc(out, 4 * dim, P + 4 * b * kc, 4 * nk, 4, vb, 4 * dim, n, dim, kc);
      });
      K.div_vs_2d(out, sums, out, dim, n, 4 * dim, 4);
    }
  }
}

/** Most bytes of one thread's logit rows. */
const ROW_BYTES = 1 << 20;

/** Queries whose logits a thread holds at once: a whole row of `nq` when they fit. */
export function queryBlock(nq: number, nk: number): number {
  return Math.max(1, Math.min(nq, Math.floor(ROW_BYTES / (4 * Math.max(nk, 1)))));
}

/**
 * `L [nq, blocks * kc] = Q K^T` for `nq` consecutive query rows at `Q` and the key blocks
 * `keyRows` of `keys`, by `gemm_acc` on each block transposed into `kt` (`dim * kc` floats):
 * each logit sums its products in `d` order.
 */
export function logits(
  rt: Runtime,
  L: number,
  Q: number,
  keys: number,
  keyRows: readonly number[],
  kt: number,
  nq: number,
  kc: number,
  dim: number,
): void {
  const F = rt.f32, K = rt.kernels, nk = keyRows.length * kc;
  F.fill(0, L / 4, L / 4 + nq * nk);
  keyRows.forEach((kr, b) => {
    // One panel of kc lines (keys) of dim elements: kt[d * kc + j] = key j's element d.
    K.pack_p(kt, keys + 4 * kr * kc * dim, 4 * dim, 4, kc, dim, kc);
    K.gemm_acc(L + 4 * b * kc, 4 * nk, Q, 4 * dim, 4, kt, 4 * kc, nq, kc, dim);
  });
}
