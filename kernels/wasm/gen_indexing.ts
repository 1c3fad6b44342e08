/**
 * Row helpers of the kernel module for the indexing kernels (`indexing.ts`): a byte copy
 * (`memory.copy`), and the float64 row sums of the f32 scatter-add, which widen, add and
 * round exactly as the reference's `Float64Array` accumulator does (IEEE round-to-nearest
 * throughout; only the payload of a NaN may differ, as it may between JIT tiers in JS).
 * @module
 */
import { type FuncBuilder, I32, type ModuleBuilder } from "./emit.ts";

/** `for (; n > 0; n--) { body(); }`, where the body advances its own pointers. */
function each(f: FuncBuilder, n: number, body: () => void) {
  f.block().loop();
  f.get(n).i32(1).ltS().brIf(1);
  body();
  f.inc(n, -1).br(0).end().end();
}

const f32Load = [0x2a, 2, 0], f32Store = [0x38, 2, 0];
const f64Load = [0x2b, 3, 0], f64Store = [0x39, 3, 0];
const F64_ADD = 0xa0, F64_PROMOTE_F32 = 0xbb, F32_DEMOTE_F64 = 0xb6;
/** SIMD: `v128.load64_zero`, `f64x2.promote_low_f32x4`, `f64x2.add`. */
const LOAD64_ZERO = [0xfd, 0x5d, 3, 0],
  F64X2_PROMOTE_LOW = [0xfd, 0x5f],
  F64X2_ADD = [0xfd, 0xf0, 0x01];

/**
 * Adds `copy_bytes(dst, src, n)` (`n` bytes), and over rows of `n` elements, with `acc`
 * float64 and `src`/`dst` f32: `f64_from_f32(acc, src, n)` (`acc = src`),
 * `f64_add_f32(acc, src, n)` (`acc += src`) and `f32_from_f64(dst, acc, n)` (`dst = acc`,
 * rounded). Pointers in bytes.
 */
export function indexingHelpers(m: ModuleBuilder) {
  m.func("copy_bytes", [I32, I32, I32]).get(0).get(1).get(2).op(0xfc, 10, 0, 0);
  {
    const f = m.func("f64_from_f32", [I32, I32, I32]);
    const [acc, src, n] = [0, 1, 2];
    each(f, n, () => {
      f.get(acc).get(src).op(...f32Load, F64_PROMOTE_F32).op(...f64Store);
      f.inc(acc, 8).inc(src, 4);
    });
  }
  {
    const f = m.func("f64_add_f32", [I32, I32, I32]);
    const [acc, src, n] = [0, 1, 2];
    // Two lanes at a time (each lane's sum is the scalar one), then the odd last element.
    f.block().loop();
    f.get(n).i32(2).ltS().brIf(1);
    f.get(acc).get(acc).v128Load().get(src).op(...LOAD64_ZERO, ...F64X2_PROMOTE_LOW, ...F64X2_ADD);
    f.v128Store().inc(acc, 16).inc(src, 8).inc(n, -2).br(0).end().end();
    each(f, n, () => {
      f.get(acc).get(acc).op(...f64Load).get(src).op(...f32Load, F64_PROMOTE_F32, F64_ADD);
      f.op(...f64Store).inc(acc, 8).inc(src, 4);
    });
  }
  {
    const f = m.func("f32_from_f64", [I32, I32, I32]);
    const [dst, acc, n] = [0, 1, 2];
    each(f, n, () => {
      f.get(dst).get(acc).op(...f64Load, F32_DEMOTE_F64).op(...f32Store);
      f.inc(dst, 4).inc(acc, 8);
    });
  }
}
