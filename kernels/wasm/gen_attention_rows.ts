/**
 * Drivers that run the attention row helpers (`gen_attention.ts`, `module.ts`) over a block of
 * consecutive queries inside wasm, so the chunk-attention kernels call the module once per
 * block of queries instead of three or more times per query (which dominated short heads):
 * - `softmax_rows(L, kcode, bias, nk, qpos, causal, selfMask, mv, sv, sums, maxes, n)`: for
 *   each of `n` logit rows of `nk` at `L` (query `i` at position `qpos[i]`, bias row `i` when
 *   `bias >= 0`): `mask_row`, then `max_row` into `maxes[i]` and `expsub_row` in place, its sum
 *   into `sums[i]`;
 * - `grad_rows(L, dp, kcode, bias, nk, qpos, causal, selfMask, mv, sv, stat, delta, pt, ds,
 *   n)`: `grad_row` for each of `n` rows, with the query's `(max, log sum)` pair from `stat`
 *   and its `delta`, writing rows of `nk` to `pt` and `ds`.
 * Each row runs exactly the instructions the per-query calls ran, so results are unchanged.
 * @module
 */
import { F32, type FuncBuilder, I32, type ModuleBuilder, type ValType } from "./emit.ts";

/** Adds `softmax_rows` and `grad_rows` (after `mask_row`, `grad_row` and the row reductions). */
export function attentionRowDrivers(m: ModuleBuilder): void {
  softmaxRows(m);
  gradRows(m);
}

function softmaxRows(m: ModuleBuilder): void {
  const [maskRow, maxRow, expsub] = ["mask_row", "max_row", "expsub_row"].map((n) => m.index(n));
  const f = m.func("softmax_rows", [...ints(7), F32, F32, ...ints(3)]);
  const [L, kcode, bias, nk, qpos, causal, selfMask, mv, sv, sums, maxes, n] = params(12);
  const [rowBytes, mx] = [f.local(I32), f.local(F32)];
  f.get(nk).i32(4).mul().set(rowBytes);
  f.block().loop().get(n).i32(1).ltS().brIf(1);
  f.get(L).get(kcode).get(bias).get(nk).get(qpos).i32Load().get(causal).get(selfMask).get(mv)
    .get(sv).call(maskRow);
  f.get(L).get(nk).call(maxRow).set(mx);
  f.get(maxes).get(mx).f32Store();
  f.get(sums).get(L).get(L).get(nk).get(mx).call(expsub).f32Store();
  f.get(L).get(rowBytes).add().set(L);
  advanceBias(f, bias, rowBytes);
  f.inc(qpos, 4).inc(sums, 4).inc(maxes, 4).inc(n, -1).br(0).end().end();
}

function gradRows(m: ModuleBuilder): void {
  const gradRow = m.index("grad_row");
  const f = m.func("grad_rows", [...ints(8), F32, F32, ...ints(5)]);
  const [L, dp, kcode, bias, nk, qpos, causal, selfMask, mv, sv, stat, delta, pt, ds, n] = params(
    15,
  );
  const rowBytes = f.local(I32);
  f.get(nk).i32(4).mul().set(rowBytes);
  f.block().loop().get(n).i32(1).ltS().brIf(1);
  f.get(L).get(dp).get(kcode).get(bias).get(nk).get(qpos).i32Load().get(causal).get(selfMask);
  f.get(mv).get(sv).get(stat).f32Load().get(stat).f32Load(4).get(delta).f32Load();
  f.get(pt).get(ds).call(gradRow);
  for (const p of [L, dp, pt, ds]) f.get(p).get(rowBytes).add().set(p);
  advanceBias(f, bias, rowBytes);
  f.inc(qpos, 4).inc(stat, 8).inc(delta, 4).inc(n, -1).br(0).end().end();
}

/** `n` i32 parameter types. */
const ints = (n: number): ValType[] => Array.from({ length: n }, () => I32);
/** The indices of `n` parameters. */
const params = (n: number) => Array.from({ length: n }, (_, i) => i);

/** `if (bias >= 0) bias += rowBytes`: a negative bias means none. */
function advanceBias(f: FuncBuilder, bias: number, rowBytes: number) {
  f.get(bias).i32(0).geS().if().get(bias).get(rowBytes).add().set(bias).end();
}
