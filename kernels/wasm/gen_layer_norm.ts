/**
 * Generators of the layer-norm helpers in the kernel module, over one row (four lanes at a
 * time, then the tail; the tail reuses the vector code on a splat, keeping lane 0):
 *
 * - `ln_row(x, gamma, beta, y, n, m, rs)` writes `y = (x - m) * rs * gamma + beta` (rounded
 *   after each operation, in that order); `ln_row_plain` writes `(x - m) * rs`.
 * - `ln_grad_row(x, dy, gamma, dx, n, m, rs)` writes `dx = rs * (gg - s1 - xhat * s2)` for one
 *   row, with `xhat = (x - m) * rs`, `gg = dy * gamma` and `s1`, `s2` the means of `gg` and
 *   `gg * xhat` (lane sums combined as (l0 + l1) + (l2 + l3), then the tail added in order);
 *   `ln_grad_row_plain` is the same without `gamma` (the pointer is ignored).
 * - `ln_cols(x, dy, mean, rstd, dg, db, rows, w, ld)` adds `dy * xhat` to `dg` and `dy` to
 *   `db` over `w` columns for `rows` rows in ascending order (rows `ld` bytes apart; `mean`,
 *   `rstd` one f32 per row), so a column block's sums keep the rows' order.
 * @module
 */
import { F32, type FuncBuilder, I32, type ModuleBuilder, V128 } from "./emit.ts";

/**
 * `for (; n >= 4; n -= 4) step(16); between(); for (; n > 0; n--) step(4);` on a copy of
 * `len` in `n`.
 */
function lanes(
  f: FuncBuilder,
  len: number,
  n: number,
  step: (w: number) => void,
  between = () => {},
) {
  f.get(len).set(n);
  f.block().loop().get(n).i32(4).ltS().brIf(1);
  step(16);
  f.inc(n, -4).br(0).end().end();
  between();
  f.block().loop().get(n).i32(1).ltS().brIf(1);
  step(4);
  f.inc(n, -1).br(0).end().end();
}

/** Loads four lanes (`w` 16) or one value splat (`w` 4) from the pointer in local `p`. */
function load(f: FuncBuilder, p: number, w: number) {
  f.get(p);
  if (w === 16) f.v128Load();
  else f.v128Load32Splat();
}

/** Stores the vector on the stack (after the pointer) as four lanes or lane 0. */
function store(f: FuncBuilder, w: number) {
  if (w === 16) f.v128Store();
  else f.f32x4ExtractLane(0).f32Store();
}

/** `ln_row` (with `gamma` and `beta` when `affine`). */
function forwardRow(m: ModuleBuilder, affine: boolean) {
  const f = m.func(affine ? "ln_row" : "ln_row_plain", [I32, I32, I32, I32, I32, F32, F32]);
  const [x, gamma, beta, y, len, mean, rs] = [0, 1, 2, 3, 4, 5, 6];
  const n = f.local(I32);
  const [vm, vrs] = [f.local(V128), f.local(V128)];
  f.get(mean).f32x4Splat().set(vm).get(rs).f32x4Splat().set(vrs);
  lanes(f, len, n, (w) => {
    f.get(y);
    load(f, x, w);
    f.get(vm).f32x4("sub").get(vrs).f32x4("mul");
    if (affine) {
      load(f, gamma, w);
      f.f32x4("mul");
      load(f, beta, w);
      f.f32x4("add");
      f.inc(gamma, w).inc(beta, w);
    }
    store(f, w);
    f.inc(x, w).inc(y, w);
  });
}

/** `ln_grad_row` (with `gamma` when `affine`). */
function gradRow(m: ModuleBuilder, affine: boolean) {
  const f = m.func(affine ? "ln_grad_row" : "ln_grad_row_plain", [
    I32,
    I32,
    I32,
    I32,
    I32,
    F32,
    F32,
  ]);
  const [x, dy, gamma, dx, len, mean, rs] = [0, 1, 2, 3, 4, 5, 6];
  const [n, px, pdy, pg] = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const [vm, vrs, a1, a2, h, g] = Array.from({ length: 6 }, () => f.local(V128));
  const s = f.local(F32);
  f.get(mean).f32x4Splat().set(vm).get(rs).f32x4Splat().set(vrs);
  f.f32x4Const(0).set(a1).f32x4Const(0).set(a2);
  // Leaves `xhat` in h and `gg` in g for the element(s) at the pointers, then advances them.
  const hg = (w: number) => {
    load(f, px, w);
    f.get(vm).f32x4("sub").get(vrs).f32x4("mul").set(h);
    load(f, pdy, w);
    if (affine) {
      load(f, pg, w);
      f.f32x4("mul");
      f.inc(pg, w);
    }
    f.set(g).inc(px, w).inc(pdy, w);
  };
  const start = () => f.get(x).set(px).get(dy).set(pdy).get(gamma).set(pg);
  start();
  lanes(f, len, n, (w) => {
    hg(w);
    f.get(a1).get(g).f32x4("add").set(a1);
    f.get(a2).get(g).get(h).f32x4("mul").f32x4("add").set(a2);
  }, () => {
    // The lanes are combined before the tail, which every lane then adds alike.
    for (const a of [a1, a2]) {
      f.get(a).f32x4ExtractLane(0).get(a).f32x4ExtractLane(1).f32Add();
      f.get(a).f32x4ExtractLane(2).get(a).f32x4ExtractLane(3).f32Add().f32Add();
      f.f32x4Splat().set(a);
    }
  });
  // a1, a2 hold the lane-combined sums plus the tail in every lane; divide by n.
  f.get(len).op(0xb2).set(s); // f32.convert_i32_s
  f.get(a1).get(s).f32x4Splat().f32x4("div").set(a1);
  f.get(a2).get(s).f32x4Splat().f32x4("div").set(a2);
  start();
  f.get(dx).set(x); // x's pointer is no longer needed: reuse it as the output pointer
  lanes(f, len, n, (w) => {
    hg(w);
    f.get(x);
    f.get(g).get(a1).f32x4("sub").get(h).get(a2).f32x4("mul").f32x4("sub");
    f.get(vrs).f32x4("mul");
    store(f, w);
    f.inc(x, w);
  });
}

/** `ln_cols`. */
function columns(m: ModuleBuilder) {
  const f = m.func("ln_cols", [I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [x, dy, mean, rstd, dg, db, rows, len, ld] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [n, px, pdy, pg, pb] = Array.from({ length: 5 }, () => f.local(I32));
  const [vm, vrs, d] = [f.local(V128), f.local(V128), f.local(V128)];
  f.block().loop().get(rows).i32(1).ltS().brIf(1);
  f.get(mean).v128Load32Splat().set(vm).get(rstd).v128Load32Splat().set(vrs);
  f.get(x).set(px).get(dy).set(pdy).get(dg).set(pg).get(db).set(pb);
  lanes(f, len, n, (w) => {
    load(f, pdy, w);
    f.set(d);
    f.get(pg);
    load(f, pg, w);
    f.get(d);
    load(f, px, w);
    f.get(vm).f32x4("sub").get(vrs).f32x4("mul").f32x4("mul").f32x4("add");
    store(f, w);
    f.get(pb);
    load(f, pb, w);
    f.get(d).f32x4("add");
    store(f, w);
    f.inc(px, w).inc(pdy, w).inc(pg, w).inc(pb, w);
  });
  f.get(x).get(ld).add().set(x).get(dy).get(ld).add().set(dy);
  f.inc(mean, 4).inc(rstd, 4).inc(rows, -1).br(0).end().end();
}

/** Adds `ln_row`, `ln_row_plain`, `ln_grad_row`, `ln_grad_row_plain` and `ln_cols`. */
export function layerNormHelpers(m: ModuleBuilder) {
  forwardRow(m, true);
  forwardRow(m, false);
  gradRow(m, true);
  gradRow(m, false);
  columns(m);
}
