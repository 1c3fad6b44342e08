/**
 * Generator of `gemm_acc(C, ldc, A, lam, lak, B, ldb, M, N, K)` in the kernel module:
 * `C[M, N] += A[M, K] B[K, N]` on f32, with `A[i, k]` at `A + i lam + k lak` (any layout, a
 * transpose included), rows of `B` and `C` `ldb` and `ldc` bytes apart. Tiles of 4 rows by 8
 * columns stay in registers over the whole `k` loop (then 1 row, 4 columns, 1 column); each
 * element is `c + a0 b0 + a1 b1 + ...` in `k` order, the same bits as `axpys` row by row.
 * @module
 */
import { I32, type ModuleBuilder, V128 } from "./emit.ts";

/** Adds `gemm_acc` to the module; `relaxed` fuses the products as `axpys` does. */
export function gemmAcc(m: ModuleBuilder, relaxed: boolean): void {
  const f = m.func("gemm_acc", [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [C, ldc, A, lam, lak, B, ldb, M, N, K] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [rows, cols, kk, cp, bp] = Array.from({ length: 5 }, () => f.local(I32));
  const ap = Array.from({ length: 4 }, () => f.local(I32));
  const as = Array.from({ length: 4 }, () => f.local(V128));
  const bv = Array.from({ length: 2 }, () => f.local(V128));
  const acc = Array.from({ length: 8 }, () => f.local(V128));
  const [aRow, bCol, cRow] = [f.local(I32), f.local(I32), f.local(I32)];

  /** One tile of `mr` rows by `nw` columns (8, 4 or 1) at `aRow`, `bCol`, `cRow`. */
  const tile = (mr: number, nw: number) => {
    const nv = Math.max(1, nw / 4);
    const load = (off: number) => (nw === 1 ? f.v128Load32Splat(off) : f.v128Load(off));
    const store = (off: number) =>
      nw === 1 ? f.f32x4ExtractLane(0).f32Store(off) : f.v128Store(off);
    for (let r = 0; r < mr; r++) {
      for (let v = 0; v < nv; v++) {
        f.get(cRow).get(ldc).i32(r).mul().add();
        load(16 * v).set(acc[r * 2 + v]);
      }
      f.get(aRow).get(lam).i32(r).mul().add().set(ap[r]);
    }
    f.get(bCol).set(bp).get(K).set(kk);
    f.block().loop().get(kk).i32(1).ltS().brIf(1);
    for (let r = 0; r < mr; r++) {
      f.get(ap[r]).v128Load32Splat().set(as[r]).get(ap[r]).get(lak).add().set(ap[r]);
    }
    for (let v = 0; v < nv; v++) {
      f.get(bp);
      load(16 * v).set(bv[v]);
    }
    for (let r = 0; r < mr; r++) {
      for (let v = 0; v < nv; v++) {
        const a = acc[r * 2 + v];
        f.get(as[r]).get(bv[v]);
        // The last column stays unfused, like the scalar tail of axpys.
        if (relaxed && nw > 1) f.get(a).f32x4RelaxedMadd().set(a);
        else f.f32x4("mul").get(a).f32x4("add").set(a);
      }
    }
    f.get(bp).get(ldb).add().set(bp).inc(kk, -1).br(0).end().end();
    for (let r = 0; r < mr; r++) {
      for (let v = 0; v < nv; v++) {
        f.get(cRow).get(ldc).i32(r).mul().add().get(acc[r * 2 + v]);
        store(16 * v);
      }
    }
  };

  /** Column tiles of `mr` rows across `N`: 8 wide, then 4, then 1. */
  const rowTile = (mr: number) => {
    f.block().loop().get(rows).i32(mr).ltS().brIf(1);
    f.get(N).set(cols).get(B).set(bCol).get(C).set(cp);
    for (const nw of [8, 4, 1]) {
      f.block().loop().get(cols).i32(nw).ltS().brIf(1);
      f.get(cp).set(cRow);
      tile(mr, nw);
      f.inc(bCol, 4 * nw).inc(cp, 4 * nw).inc(cols, -nw).br(0).end().end();
    }
    f.get(aRow).get(lam).i32(mr).mul().add().set(aRow);
    f.get(C).get(ldc).i32(mr).mul().add().set(C);
    f.inc(rows, -mr).br(0).end().end();
  };
  f.get(M).set(rows).get(A).set(aRow);
  rowTile(4);
  rowTile(1);
}
