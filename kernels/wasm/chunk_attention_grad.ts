/**
 * Fused chunk-attention backward on the wasm device, for the {@linkcode ChunkAttnSpec} and
 * inputs of `chunkAttentionGradCpu` (`kernels/cpu/chunk_attention.ts`): `dq`, `dk`, `dv` from
 * `q, k, v, qpos, kcode, bias?, stat, dO, delta`, the probabilities rebuilt from `stat` as
 * the reference does.
 *
 * Two passes per batch of row groups, each a pool job, so that every output element has one
 * owner and one summation order whatever the thread count:
 * 1. per row of queries (owners of their `dq` rows), in blocks of `queryBlock`: logits and
 *    `dO . v` (`logits`), then masks, `p = e^((l - max) - log sum)` and
 *    `ds = p (dO . v - delta)` by `grad_row`, into scratch `[row, query, slot]`; then
 *    `dq = sum_j ds[j] k[j]` for the row's queries (`gemm_acc`, `j` ascending).
 * 2. per key row of `k`/`v` (owner of its `dk`, `dv` rows): the rows reading it through each
 *    offset are found by inverting the look-around, and `dk = sum ds q`, `dv = sum p dO` are
 *    gathered offset by offset, queries ascending (`gemm_acc` reading the scratch transposed).
 * Arithmetic is f32 (the reference accumulates in float64).
 * @module
 */
import type { ChunkAttnSpec } from "../specs/chunk_attention.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { MAX_ARGS, type Runtime } from "./runtime.ts";
import { logits, queryBlock } from "./chunk_attention.ts";

/** This job's index in `jobs.ts`. */
export const JOB_CHUNK_ATTENTION_GRAD = 6;

/** Argument slots before the chunk offsets. */
const FIXED = 29;

/** Most bytes of `p` and `ds` scratch per batch of row groups, by default. */
export const BATCH_BYTES = 32 << 20;

/** Most bytes of `p` and `ds` scratch for one row group (else the reference runs the call). */
export const GROUP_BYTES = 256 << 20;

/**
 * Whether {@linkcode chunkAttentionGradWasm} takes this spec (else use a fallback): the offsets
 * fit in the job arguments and one row group's `p` and `ds` in {@linkcode GROUP_BYTES}.
 */
export function chunkAttentionGradSupported(s: ChunkAttnSpec): boolean {
  return FIXED + s.offsets.length <= MAX_ARGS && 8 * s.chunks * s.nk * s.nq <= GROUP_BYTES;
}

/**
 * Backward pass: `dq [R, C, D]`, `dk`, `dv [R, Kc, D]` from `q`, `k`, `v`, `qpos`, `kcode`,
 * an optional `bias`, the forward's `stat [R, C, 2]`, `dO [R, C, D]` and
 * `delta = rowsum(dO * o) - dLse [R, C]`. Row groups go in batches whose scratch stays
 * under `batchBytes` (a whole group at least).
 */
export function chunkAttentionGradWasm(
  device: WasmDevice,
  [q, k, v, qpos, kcode, bias, stat, dO, delta]: (WasmStorage | null)[],
  s: ChunkAttnSpec,
  batchBytes: number = BATCH_BYTES,
): [WasmStorage, WasmStorage, WasmStorage] {
  if (!chunkAttentionGradSupported(s)) {
    throw new RangeError("wasm: too many chunk offsets or too large row groups");
  }
  const { rows, nq, nk, kc, chunks, dim } = s;
  const dq = device.alloc("f32", rows * nq * dim);
  const dk = device.alloc("f32", rows * kc * dim);
  const dv = device.alloc("f32", rows * kc * dim);
  if (rows === 0) return [dq, dk, dv];
  const groupBytes = 8 * chunks * nk * nq;
  const groups = rows / chunks;
  const perBatch = Math.max(1, Math.min(groups, Math.floor(batchBytes / Math.max(groupBytes, 1))));
  const stride = Math.ceil((2 * queryBlock(nq, nk) * nk + kc * dim) / 16) * 64 + 64;
  const half = Math.ceil((perBatch * groupBytes) / 2 / 64) * 64;
  const scratch = device.scratch(2 * half + stride * device.threads + 64);
  const inline = rows * nq * nk * dim < 1 << 15 || device.threads === 1;
  try {
    for (let g = 0; g < groups; g += perBatch) {
      const lo = g * chunks, hi = Math.min(groups, g + perBatch) * chunks;
      for (const phase of [0, 1]) {
        const args = [
          q!.offset,
          k!.offset,
          v!.offset,
          qpos!.offset,
          kcode!.offset,
          bias ? bias.offset : -1,
          stat!.offset,
          dO!.offset,
          delta!.offset,
          dq.offset,
          dk.offset,
          dv.offset,
          lo,
          hi,
          nq,
          nk,
          kc,
          chunks,
          dim,
          s.causal ? 1 : 0,
          s.selfMask ? 1 : 0,
          s.maskValue,
          s.selfValue,
          scratch.offset,
          scratch.offset + half,
          scratch.offset + 2 * half,
          stride,
          phase,
          s.offsets.length,
          ...s.offsets,
        ];
        device.run(JOB_CHUNK_ATTENTION_GRAD, args, inline);
      }
    }
  } finally {
    device.release(scratch);
  }
  return [dq, dk, dv];
}

/**
 * The job: phase 0 takes rows `[lo, hi)` of queries one row at a time (`claim`), phase 1 the
 * key rows `[lo, hi)`; which thread takes an item never changes what it computes (`part`
 * only picks the thread's row scratch).
 */
export function chunkAttentionGradJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  _parts: number,
  claim: () => number,
): void {
  const [lo, hi, nq, nk, kc, chunks, dim, causal, selfMask] = args.subarray(12);
  const [maskValue, selfValue, pt, dst, rowScratch, stride, phase, blocks] = args.subarray(21);
  const offsets = args.subarray(FIXED, FIXED + blocks);
  const F = rt.f32, K = rt.kernels;
  if (phase === 1) {
    const [q, , , , , , , dO, , , dk, dv] = args;
    for (let kr = lo + claim(); kr < hi; kr = lo + claim()) {
      const c = kr % chunks, g = kr - c;
      const readers = Array.from(offsets, (off) => g + (((c - off) % chunks) + chunks) % chunks);
      const at = 4 * kr * kc * dim;
      F.fill(0, (dk + at) / 4, (dk + at) / 4 + kc * dim);
      F.fill(0, (dv + at) / 4, (dv + at) / 4 + kc * dim);
      readers.forEach((r, b) => {
        const from = 4 * ((r - lo) * nq * nk + b * kc), rows = 4 * r * nq * dim;
        K.gemm_acc(dk + at, 4 * dim, dst + from, 4, 4 * nk, q + rows, 4 * dim, kc, dim, nq);
        K.gemm_acc(dv + at, 4 * dim, pt + from, 4, 4 * nk, dO + rows, 4 * dim, kc, dim, nq);
      });
    }
    return;
  }
  const [q, k, v, qpos, kcode, bias, stat, dO, delta, dq] = args;
  const qb = queryBlock(nq, nk);
  const L = rowScratch + part * stride, dp = L + 4 * qb * nk, kt = dp + 4 * qb * nk;
  for (let r = lo + claim(); r < hi; r = lo + claim()) {
    const c = r % chunks;
    const keyRows = Array.from(offsets, (off) => r - c + (((c + off) % chunks) + chunks) % chunks);
    for (let i0 = 0; i0 < nq; i0 += qb) {
      const n = Math.min(qb, nq - i0), first = r * nq + i0;
      logits(rt, L, q + 4 * first * dim, k, keyRows, kt, n, kc, dim);
      logits(rt, dp, dO + 4 * first * dim, v, keyRows, kt, n, kc, dim);
      const out = 4 * (first - lo * nq) * nk;
      K.grad_rows(
        L,
        dp,
        kcode + 4 * r * nk,
        bias >= 0 ? bias + 4 * first * nk : -1,
        nk,
        qpos + 4 * first,
        causal,
        selfMask,
        maskValue,
        selfValue,
        stat + 8 * first,
        delta + 4 * first,
        pt + out,
        dst + out,
        n,
      );
    }
    // dq = ds k for the row's queries at once, block by block.
    const out = dq + 4 * r * nq * dim, ds = dst + 4 * (r - lo) * nq * nk;
    F.fill(0, out / 4, out / 4 + nq * dim);
    keyRows.forEach((kr, b) =>
      K.gemm_acc(
        out,
        4 * dim,
        ds + 4 * b * kc,
        4 * nk,
        4,
        k + 4 * kr * kc * dim,
        4 * dim,
        nq,
        dim,
        kc,
      )
    );
  }
}
