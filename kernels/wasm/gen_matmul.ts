/**
 * Generators of the matmul code in the kernel module: the register-blocked f32x4
 * microkernel and the packing loops that lay A and B out as its panels.
 * @module
 */
import { F32, type FuncBuilder, I32, type ModuleBuilder, V128 } from "./emit.ts";

/** `acc = a * b + acc` on locals, fused when relaxed SIMD is available. */
function madd(f: FuncBuilder, a: number, b: number, acc: number, relaxed: boolean) {
  if (relaxed) f.get(a).get(b).get(acc).f32x4RelaxedMadd().set(acc);
  else f.get(acc).get(a).get(b).f32x4("mul").f32x4("add").set(acc);
}

/**
 * `mm(a, b, c, ldc, kc, accumulate)`: C[MR, NR] (+)= Ap @ Bp where Ap is a packed panel
 * `[kc][MR]`, Bp a packed panel `[kc][NR]`, C row-major with row stride `ldc` bytes. Each
 * output element is summed over `p` in ascending order in f32 from 0, then added to C.
 */
export function microkernel(
  m: ModuleBuilder,
  relaxed: boolean,
  MR: number,
  NR: number,
  unroll = 1,
  name = "mm",
) {
  const f = m.func(name, [I32, I32, I32, I32, I32, I32]);
  const [a, b, c, ldc, kc, accumulate] = [0, 1, 2, 3, 4, 5];
  const nq = NR / 4;
  const acc = Array.from({ length: MR * nq }, () => f.local(V128));
  const bv = Array.from({ length: nq }, () => f.local(V128));
  const av = f.local(V128);
  const row = f.local(I32);
  for (const x of acc) f.f32x4Const(0).set(x);
  // One step of p reads MR values of A and NR of B at memarg offsets `u` steps ahead.
  const step = (u: number) => {
    bv.forEach((v, q) => f.get(b).v128Load(u * NR * 4 + q * 16).set(v));
    for (let r = 0; r < MR; r++) {
      f.get(a).v128Load32Splat(u * MR * 4 + r * 4).set(av);
      for (let q = 0; q < nq; q++) madd(f, av, bv[q], acc[r * nq + q], relaxed);
    }
  };
  // `unroll` steps per iteration while kc allows, then one at a time.
  for (const u of unroll > 1 ? [unroll, 1] : [1]) {
    f.block().loop();
    f.get(kc).i32(u).ltS().brIf(1);
    for (let i = 0; i < u; i++) step(i);
    f.inc(a, u * MR * 4).inc(b, u * NR * 4).inc(kc, -u).br(0);
    f.end().end();
  }
  for (const add of [true, false]) {
    if (add) f.get(accumulate).if();
    else f.else();
    f.get(c).set(row);
    for (let r = 0; r < MR; r++) {
      for (let q = 0; q < nq; q++) {
        f.get(row);
        if (add) f.get(row).v128Load(q * 16).get(acc[r * nq + q]).f32x4("add");
        else f.get(acc[r * nq + q]);
        f.v128Store(q * 16);
      }
      if (r < MR - 1) f.get(row).get(ldc).add().set(row);
    }
  }
  f.end();
}

/**
 * Packers of `len` lines (rows of A or columns of B) of `kc` elements into `[len / W][kc][W]`
 * panels at `dst`, zero-padding the last panel (pointers and strides in bytes):
 * `pack_p(dst, src, li, lp, len, kc, W)` walks each line along `p` (for lines stored along
 * `p`, stride `lp`); `pack_l(dst, src, lp, len, kc, W)` is for lines stored next to each other
 * (`li` = 4 bytes) and copies `W` adjacent elements per `p`, four at a time when it can.
 */
export function packers(m: ModuleBuilder) {
  {
    const f = m.func("pack_p", [I32, I32, I32, I32, I32, I32, I32]);
    const [dst, src, li, lp, len, kc, W] = [0, 1, 2, 3, 4, 5, 6];
    const [i, r, d, s, p, w4] = [I32, I32, I32, I32, I32, I32].map(() => f.local(I32));
    f.get(W).i32(4).mul().set(w4);
    f.block().loop().get(i).get(len).geS().brIf(1); // panels
    f.i32(0).set(r);
    f.block().loop().get(r).get(W).geS().brIf(1); // lines of the panel
    f.get(dst).get(i).get(kc).mul().get(r).add().i32(4).mul().add().set(d);
    f.get(src).get(i).get(r).add().get(li).mul().add().set(s);
    f.get(kc).set(p);
    f.get(i).get(r).add().get(len).geS().if();
    loopDown(f, p, () => f.get(d).f32(0).f32Store().get(d).get(w4).add().set(d));
    f.else();
    loopDown(f, p, () => {
      f.get(d).get(s).f32Load().f32Store();
      f.get(d).get(w4).add().set(d).get(s).get(lp).add().set(s);
    });
    f.end();
    f.inc(r, 1).br(0).end().end();
    f.get(i).get(W).add().set(i).br(0).end().end();
  }
  {
    const f = m.func("pack_l", [I32, I32, I32, I32, I32, I32]);
    const [dst, src, lp, len, kc, W] = [0, 1, 2, 3, 4, 5];
    const [i, r, p, s, h] = [I32, I32, I32, I32, I32].map(() => f.local(I32));
    f.block().loop().get(i).get(len).geS().brIf(1); // panels
    // h: lines present in this panel
    f.get(len).get(i).sub().tee(h).get(W).geS().if().get(W).set(h).end();
    f.get(src).get(i).i32(4).mul().add().set(s);
    f.i32(0).set(p);
    f.block().loop().get(p).get(kc).geS().brIf(1);
    f.i32(0).set(r);
    f.block().loop().get(r).i32(4).add().get(h).op(0x4a).brIf(1); // r + 4 > h (gt_s)
    f.get(dst).get(s).get(r).i32(4).mul().add().v128Load().v128Store();
    f.inc(dst, 16).inc(r, 4).br(0).end().end();
    f.block().loop().get(r).get(W).geS().brIf(1);
    f.get(dst).get(r).get(h).ltS().if(F32);
    f.get(s).get(r).i32(4).mul().add().f32Load();
    f.else().f32(0).end().f32Store();
    f.inc(dst, 4).inc(r, 1).br(0).end().end();
    f.get(s).get(lp).add().set(s).inc(p, 1).br(0).end().end();
    f.get(i).get(W).add().set(i).br(0).end().end();
  }
}

/** `while (n-- > 0) body()` on the i32 local `n`. */
function loopDown(f: FuncBuilder, n: number, body: () => void) {
  f.block().loop().get(n).i32(1).ltS().brIf(1);
  body();
  f.inc(n, -1).br(0).end().end();
}
