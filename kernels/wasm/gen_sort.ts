/**
 * The radix sort's row functions in the kernel module (driven per row by `sort.ts`), over
 * pointers in bytes: the order-preserving u32 keys of a row, one stable counting pass on one
 * 8-bit digit, and the gather of the values by the final order.
 * @module
 */
import { type FuncBuilder, I32, type ModuleBuilder } from "./emit.ts";

const AND = 0x71, OR = 0x72, XOR = 0x73, SHR_U = 0x76, GT_U = 0x4b, LT_S = 0x48;
const SELECT = 0x1b;

/** `for (i = 0; i < n; i++) body()` over the local `i`. */
function loop(f: FuncBuilder, i: number, n: number, body: () => void) {
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).get(n).geS().brIf(1);
  body();
  f.inc(i, 1).br(0).end().end();
}

/** Pushes the byte address `base + 4 * i`. */
function at(f: FuncBuilder, base: number, i: number) {
  f.get(base).get(i).i32(2).shl().add();
}

/**
 * `sort_keys_f32(x, keys, n, flip)` and `sort_keys_xor(x, keys, n, c)` write the keys of a
 * row and return the bits in which some keys differ. f32: -0 folded into +0 and every NaN the
 * largest key, negatives inverted, positives with the sign bit set, then XOR `flip` (all ones
 * for a descending sort); i32 and u32: XOR `c` (the sign bit for i32, then `flip`).
 */
function keyFunctions(m: ModuleBuilder) {
  for (const kind of ["f32", "xor"] as const) {
    const f = m.func(`sort_keys_${kind}`, [I32, I32, I32, I32], [I32]);
    const [x, keys, n, c] = [0, 1, 2, 3];
    const [i, b, mag, and, or] = [
      f.local(I32),
      f.local(I32),
      f.local(I32),
      f.local(I32),
      f.local(I32),
    ];
    f.i32(-1).set(and).i32(0).set(or);
    loop(f, i, n, () => {
      at(f, x, i);
      f.i32Load().set(b);
      if (kind === "f32") {
        f.get(b).i32(0x7fffffff).op(AND).set(mag);
        // The value as a key, then the zero and NaN overrides (select: cond ? first : second).
        f.i32(-1);
        f.i32(0x80000000 | 0);
        f.get(b).i32(-1).op(XOR).get(b).i32(0x80000000 | 0).op(OR).get(b).i32(0).op(LT_S);
        f.op(SELECT);
        f.get(mag).eqz().op(SELECT);
        f.get(mag).i32(0x7f800000).op(GT_U).op(SELECT);
        f.get(c).op(XOR).set(b);
      } else {
        f.get(b).get(c).op(XOR).set(b);
      }
      at(f, keys, i);
      f.get(b).i32Store();
      f.get(and).get(b).op(AND).set(and).get(or).get(b).op(OR).set(or);
    });
    f.get(and).get(or).op(XOR);
  }
}

/**
 * `sort_pass(keys, idx, keys2, idx2, counts, n, shift)`: one stable counting pass on the digit
 * `(key >>> shift) & 255`, from `(keys, idx)` into `(keys2, idx2)`, with 256 i32 `counts`;
 * `sort_pass_first` reads the indices as `0..n-1` instead of from `idx`.
 */
function passFunctions(m: ModuleBuilder) {
  for (const first of [false, true]) {
    const f = m.func(first ? "sort_pass_first" : "sort_pass", [I32, I32, I32, I32, I32, I32, I32]);
    const [keys, idx, keys2, idx2, counts, n, shift] = [0, 1, 2, 3, 4, 5, 6];
    const [i, k, slot, t, sum] = [
      f.local(I32),
      f.local(I32),
      f.local(I32),
      f.local(I32),
      f.local(I32),
    ];
    const digitSlot = () => {
      f.get(k).get(shift).op(SHR_U).i32(255).op(AND).set(slot);
      at(f, counts, slot);
      f.set(slot);
    };
    f.get(counts).i32(0).i32(1024).op(0xfc, 11, 0); // memory.fill
    loop(f, i, n, () => {
      at(f, keys, i);
      f.i32Load().set(k);
      digitSlot();
      f.get(slot).get(slot).i32Load().i32(1).add().i32Store();
    });
    f.i32(0).set(sum);
    const j = f.local(I32), end = f.local(I32);
    f.i32(256).set(end);
    loop(f, j, end, () => {
      at(f, counts, j);
      f.i32Load().set(t);
      at(f, counts, j);
      f.get(sum).i32Store();
      f.get(sum).get(t).add().set(sum);
    });
    loop(f, i, n, () => {
      at(f, keys, i);
      f.i32Load().set(k);
      digitSlot();
      f.get(slot).i32Load().set(t); // the key's position
      f.get(slot).get(t).i32(1).add().i32Store();
      at(f, keys2, t);
      f.get(k).i32Store();
      at(f, idx2, t);
      if (first) f.get(i);
      else {
        at(f, idx, i);
        f.i32Load();
      }
      f.i32Store();
    });
  }
}

/**
 * `sort_gather(x, idx, vals, n)`: `vals[j] = x[idx[j]]` (raw bits); `sort_iota(out, n)`:
 * `out[j] = j`.
 */
function outputFunctions(m: ModuleBuilder) {
  {
    const f = m.func("sort_gather", [I32, I32, I32, I32]);
    const [x, idx, vals, n] = [0, 1, 2, 3];
    const [j, t] = [f.local(I32), f.local(I32)];
    loop(f, j, n, () => {
      at(f, vals, j);
      at(f, idx, j);
      f.i32Load().set(t);
      at(f, x, t);
      f.i32Load().i32Store();
    });
  }
  const f = m.func("sort_iota", [I32, I32]);
  const [out, n] = [0, 1];
  const j = f.local(I32);
  loop(f, j, n, () => {
    at(f, out, j);
    f.get(j).i32Store();
  });
}

/** Adds the sort's row functions to the module. */
export function sortHelpers(m: ModuleBuilder) {
  keyFunctions(m);
  passFunctions(m);
  outputFunctions(m);
}
