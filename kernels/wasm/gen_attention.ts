/**
 * Generators of the attention helpers in the kernel module, over rows of `dim` f32s (four
 * lanes at a time, then the tail): `dots(out, q, K, count, dim, ldk)` writes `q . K[j]` for
 * `count` rows `K[j]` `ldk` bytes apart (lane sums combined as (l0 + l1) + (l2 + l3), then
 * the tail), and
 * `axpys(acc, V, p, count, dim, ldv, ldp)` adds `p[j] * V[j]` to `acc` for `j` ascending, rows
 * of `V` being `ldv` bytes apart and coefficients `p[j]` `ldp` bytes apart.
 * @module
 */
import { F32, type FuncBuilder, I32, type ModuleBuilder, V128 } from "./emit.ts";
import { vexp } from "./gen_exp.ts";

/** `for (; n >= 4; n -= 4) vec(); for (; n > 0; n--) one();` on a copy of `dim` in `n`. */
function lanes(f: FuncBuilder, dim: number, n: number, vec: () => void, one: () => void) {
  f.get(dim).set(n);
  f.block().loop().get(n).i32(4).ltS().brIf(1);
  vec();
  f.inc(n, -4).br(0).end().end();
  f.block().loop().get(n).i32(1).ltS().brIf(1);
  one();
  f.inc(n, -1).br(0).end().end();
}

/**
 * Adds `dots`, `axpys`, `mask_row` and `grad_row` to the module; with `relaxed`, the lane
 * products of `dots` and `axpys` go through `f32x4.relaxed_madd` (fused where the CPU can).
 */
export function attentionHelpers(m: ModuleBuilder, relaxed: boolean) {
  dots(m, relaxed);
  axpys(m, relaxed);
  maskedRow(m, false);
  maskedRow(m, true);
  softgradRow(m);
}

/**
 * `dots`: keys four at a time (each vector of `q` loaded once for the four), then one by one;
 * each key's products go to its own accumulator in order, whichever way it is taken.
 */
function dots(m: ModuleBuilder, relaxed: boolean) {
  const f = m.func("dots", [I32, I32, I32, I32, I32, I32]);
  const [out, q, K, count, dim, ldk] = [0, 1, 2, 3, 4, 5];
  const [n, x] = [f.local(I32), f.local(I32)];
  const ys = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const acc = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const ss = [f.local(F32), f.local(F32), f.local(F32), f.local(F32)];
  const qv = f.local(V128), qs = f.local(F32);
  const keysAtOnce = (k: number) => {
    f.block().loop().get(count).i32(k).ltS().brIf(1);
    for (let i = 0; i < k; i++) {
      f.get(K).get(ldk).i32(i).mul().add().set(ys[i]);
      f.f32x4Const(0).set(acc[i]).f32(0).set(ss[i]);
    }
    f.get(q).set(x);
    lanes(f, dim, n, () => {
      f.get(x).v128Load().set(qv).inc(x, 16);
      for (let i = 0; i < k; i++) {
        f.get(qv).get(ys[i]).v128Load();
        if (relaxed) f.get(acc[i]).f32x4RelaxedMadd().set(acc[i]);
        else f.f32x4("mul").get(acc[i]).f32x4("add").set(acc[i]);
        f.inc(ys[i], 16);
      }
    }, () => {
      f.get(x).f32Load().set(qs).inc(x, 4);
      for (let i = 0; i < k; i++) {
        f.get(ss[i]).get(qs).get(ys[i]).f32Load().f32Mul().f32Add().set(ss[i]).inc(ys[i], 4);
      }
    });
    // The scalar tail goes after the lanes.
    for (let i = 0; i < k; i++) {
      const lane = (l: number) => f.get(acc[i]).f32x4ExtractLane(l);
      f.get(out);
      lane(0), lane(1), f.f32Add(), lane(2), lane(3), f.f32Add().f32Add();
      f.get(ss[i]).f32Add().f32Store(4 * i);
    }
    f.get(K).get(ldk).i32(k).mul().add().set(K).inc(out, 4 * k);
    f.inc(count, -k).br(0).end().end();
  };
  keysAtOnce(4);
  keysAtOnce(1);
}

/**
 * `axpys`: rows four at a time (each vector of `acc` loaded once, the four products added in
 * row order, as one row at a time would), then the remaining rows one by one.
 */
function axpys(m: ModuleBuilder, relaxed: boolean) {
  const f = m.func("axpys", [I32, I32, I32, I32, I32, I32, I32]);
  const [acc, V, p, count, dim, ldv, ldp] = [0, 1, 2, 3, 4, 5, 6];
  const [n, y] = [f.local(I32), f.local(I32)];
  const xs = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const alphas = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const t = f.local(V128), ts = f.local(F32);
  const rowsAtOnce = (k: number) => {
    f.block().loop().get(count).i32(k).ltS().brIf(1);
    for (let i = 0; i < k; i++) {
      f.get(p).get(ldp).i32(i).mul().add().v128Load32Splat().set(alphas[i]);
      f.get(V).get(ldv).i32(i).mul().add().set(xs[i]);
    }
    f.get(acc).set(y);
    lanes(f, dim, n, () => {
      f.get(y).v128Load().set(t);
      for (let i = 0; i < k; i++) {
        f.get(alphas[i]).get(xs[i]).v128Load();
        if (relaxed) f.get(t).f32x4RelaxedMadd().set(t);
        else f.f32x4("mul").get(t).f32x4("add").set(t);
        f.inc(xs[i], 16);
      }
      f.get(y).get(t).v128Store().inc(y, 16);
    }, () => {
      f.get(y).f32Load().set(ts);
      for (let i = 0; i < k; i++) {
        f.get(alphas[i]).f32x4ExtractLane(0).get(xs[i]).f32Load().f32Mul().get(ts).f32Add();
        f.set(ts).inc(xs[i], 4);
      }
      f.get(y).get(ts).f32Store().inc(y, 4);
    });
    f.get(V).get(ldv).i32(k).mul().add().set(V);
    f.get(p).get(ldp).i32(k).mul().add().set(p);
    f.inc(count, -k).br(0).end().end();
  };
  rowsAtOnce(4);
  rowsAtOnce(1);
}

/**
 * `mask_row(L, kcode, bias, n, qp, causal, selfMask, maskValue, selfValue)` replaces the `n`
 * logits at `L` of one query at position `qp` by the reference's rule: `maskValue` where the
 * key code is negative or (causal) the key is after the query, `selfValue` where (selfMask)
 * the positions are equal, then adds `bias` (a row of `n`, or none when negative).
 * `grad_row(L, dp, kcode, bias, n, qp, causal, selfMask, maskValue, selfValue, m, ls, dl, pt,
 * ds)` masks the same way, then writes `p = e^((l - m) - ls)` to `pt` and `p (dp - dl)` to
 * `ds`, 0 where the logit is not `q . k` (masked or self). Flags are 0 or 1.
 */
function maskedRow(m: ModuleBuilder, grad: boolean) {
  const f = grad
    ? m.func("grad_row", [
      I32,
      I32,
      I32,
      I32,
      I32,
      I32,
      I32,
      I32,
      F32,
      F32,
      F32,
      F32,
      F32,
      I32,
      I32,
    ])
    : m.func("mask_row", [I32, I32, I32, I32, I32, I32, I32, F32, F32]);
  const [L, dp, kcode, bias, n, qp, causal, selfMask, mv, sv, mx, ls, dl, pt, ds] = grad
    ? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    : [0, -1, 1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1, -1, -1];
  const v = () => f.local(V128);
  const [qv, cv, selfv, mvv, svv, code, kp, keep, slf, l, x, t, k, mxv, lsv, dlv] = Array.from(
    { length: 16 },
    v,
  );
  const splat = (from: number, to: number, float: boolean) => {
    f.get(from);
    (float ? f.f32x4Splat() : f.i32x4Splat()).set(to);
  };
  splat(qp, qv, false);
  f.i32(0).get(causal).sub().i32x4Splat().set(cv);
  f.i32(0).get(selfMask).sub().i32x4Splat().set(selfv);
  splat(mv, mvv, true);
  splat(sv, svv, true);
  if (grad) splat(mx, mxv, true), splat(ls, lsv, true), splat(dl, dlv, true);
  const step = (w: number) => {
    const load = (p: number) => (w === 16 ? f.get(p).v128Load() : f.get(p).v128Load32Splat());
    const store = () => (w === 16 ? f.v128Store() : f.f32x4ExtractLane(0).f32Store());
    // A masked key's code is -p - 1 = ~p: xor with the sign mask recovers p.
    load(kcode).set(code);
    f.get(code).get(code).i32(31).i32x4ShrS().v128("xor").set(kp);
    f.get(code).i32(31).i32x4ShrS().get(kp).get(qv).i32x4GtS().get(cv).v128("and");
    f.v128("or").v128("not").set(keep);
    f.get(kp).get(qv).i32x4Eq().get(selfv).v128("and").set(slf);
    f.get(svv);
    load(L).get(mvv).get(keep).v128Bitselect();
    f.get(slf).v128Bitselect().set(l);
    f.get(bias).i32(0).geS().if();
    f.get(l);
    load(bias).f32x4("add").set(l).inc(bias, w);
    f.end();
    if (!grad) {
      f.get(L).get(l);
      store();
      f.inc(L, w).inc(kcode, w);
      return;
    }
    f.get(pt).get(l).get(mxv).f32x4("sub").get(lsv).f32x4("sub");
    vexp(f, x, t, k);
    f.tee(l);
    store();
    // dp where the logit passes, else dl: (dp - dl) is then 0 there.
    f.get(ds);
    load(dp).get(dlv).get(keep).get(slf).v128("not").v128("and").v128Bitselect();
    f.get(dlv).f32x4("sub").get(l).f32x4("mul");
    store();
    f.inc(L, w).inc(dp, w).inc(kcode, w).inc(pt, w).inc(ds, w);
  };
  lanes(f, n, f.local(I32), () => step(16), () => step(4));
}

/**
 * `softgrad_row(L, D, C, E, G, n)`: `C[u] = e^(L[u] - E[u])` and `D[u] = C[u] (D[u] - G[u])`
 * over `n` slots: the probabilities and score gradients of listed pairs, from their logits
 * `L`, `dO . v` in `D`, and the log-sum-exp `E` and `delta` `G` of each pair's query.
 */
function softgradRow(m: ModuleBuilder) {
  const f = m.func("softgrad_row", [I32, I32, I32, I32, I32, I32]);
  const [L, D, C, E, G, n] = [0, 1, 2, 3, 4, 5];
  const [x, t, k, p] = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const step = (w: number) => {
    const load = (ptr: number) => (w === 16 ? f.get(ptr).v128Load() : f.get(ptr).v128Load32Splat());
    const store = () => (w === 16 ? f.v128Store() : f.f32x4ExtractLane(0).f32Store());
    load(L);
    load(E).f32x4("sub");
    vexp(f, x, t, k);
    f.set(p).get(C).get(p);
    store();
    f.get(D);
    load(D);
    load(G).f32x4("sub").get(p).f32x4("mul");
    store();
    for (const ptr of [L, D, C, E, G]) f.inc(ptr, w);
  };
  lanes(f, n, f.local(I32), () => step(16), () => step(4));
}
