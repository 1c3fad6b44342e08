/**
 * Generators of the attention helpers in the kernel module, over rows of `dim` f32s (four
 * lanes at a time, then the tail): `dots(out, q, K, count, dim)` writes `q . K[j]` for `count`
 * consecutive rows `K[j]` (lane sums combined as (l0 + l1) + (l2 + l3), then the tail), and
 * `axpys(acc, V, p, count, dim, ldv)` adds `p[j] * V[j]` to `acc` for `j` ascending, rows of
 * `V` being `ldv` bytes apart.
 * @module
 */
import { type FuncBuilder, I32, type ModuleBuilder, V128 } from "./emit.ts";

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

/** Adds `dots` and `axpys` to the module. */
export function attentionHelpers(m: ModuleBuilder) {
  {
    const f = m.func("dots", [I32, I32, I32, I32, I32]);
    const [out, q, K, count, dim] = [0, 1, 2, 3, 4];
    const [n, x] = [f.local(I32), f.local(I32)];
    const acc = f.local(V128);
    const s = f.local(0x7d);
    f.block().loop().get(count).i32(1).ltS().brIf(1);
    f.f32x4Const(0).set(acc).get(q).set(x);
    lanes(f, dim, n, () => {
      f.get(acc).get(x).v128Load().get(K).v128Load().f32x4("mul").f32x4("add").set(acc);
      f.inc(x, 16).inc(K, 16);
    }, () => {
      f.get(s).get(x).f32Load().get(K).f32Load().f32Mul().f32Add().set(s);
      f.inc(x, 4).inc(K, 4);
    });
    // s held the tail; the lanes go first.
    f.get(out);
    f.get(acc).f32x4ExtractLane(0).get(acc).f32x4ExtractLane(1).f32Add();
    f.get(acc).f32x4ExtractLane(2).get(acc).f32x4ExtractLane(3).f32Add().f32Add();
    f.get(s).f32Add().f32Store();
    f.f32(0).set(s).inc(out, 4).inc(count, -1).br(0).end().end();
  }
  {
    const f = m.func("axpys", [I32, I32, I32, I32, I32, I32]);
    const [acc, V, p, count, dim, ldv] = [0, 1, 2, 3, 4, 5];
    const [n, y, x] = [f.local(I32), f.local(I32), f.local(I32)];
    const alpha = f.local(V128);
    f.block().loop().get(count).i32(1).ltS().brIf(1);
    f.get(p).v128Load32Splat().set(alpha).get(acc).set(y).get(V).set(x);
    lanes(f, dim, n, () => {
      f.get(y).get(y).v128Load().get(alpha).get(x).v128Load().f32x4("mul").f32x4("add");
      f.v128Store().inc(y, 16).inc(x, 16);
    }, () => {
      f.get(y).get(y).f32Load().get(alpha).f32x4ExtractLane(0).get(x).f32Load().f32Mul();
      f.f32Add().f32Store().inc(y, 4).inc(x, 4);
    });
    f.get(V).get(ldv).add().set(V).inc(p, 4).inc(count, -1).br(0).end().end();
  }
}
