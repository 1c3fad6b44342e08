import assert from "node:assert/strict";
import {
  F32,
  hasRelaxedSimd,
  I32,
  ModuleBuilder,
  sleb,
  uleb,
  V128,
} from "../../../kernels/wasm/emit.ts";

Deno.test("LEB128 encodings", () => {
  assert.deepEqual(uleb(0), [0]);
  assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]);
  assert.deepEqual(sleb(-1), [0x7f]);
  assert.deepEqual(sleb(63), [0x3f]);
  assert.deepEqual(sleb(64), [0xc0, 0x00]);
  assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
});

Deno.test("emitted modules validate and run", async (t) => {
  const m = new ModuleBuilder({ initial: 1, maximum: 4, shared: true });
  // fma3(a, b, c) = a * b + c on i32
  m.func("fma3", [I32, I32, I32], [I32]).get(0).get(1).mul().get(2).add();
  // sum(p, n): f32 sum of n floats at byte offset p, with a loop
  {
    const f = m.func("sum", [I32, I32], [F32]);
    const s = f.local(F32);
    f.block().loop().get(1).i32(1).ltS().brIf(1);
    f.get(s).get(0).f32Load().f32Add().set(s).inc(0, 4).inc(1, -1).br(0).end().end().get(s);
  }
  // axpy4(x, y, a): y[0..4] += a * x[0..4] with f32x4
  {
    const f = m.func("axpy4", [I32, I32, F32]);
    const v = f.local(V128);
    f.get(2).f32x4Splat().set(v);
    f.get(1).get(0).v128Load().get(v).f32x4("mul").get(1).v128Load().f32x4("add").v128Store();
  }
  // twice(a, b) = fma3(a, b, fma3(a, b, 0)), by calling fma3
  m.func("twice", [I32, I32], [I32]).get(0).get(1).get(0).get(1).i32(0).call(m.index("fma3"))
    .call(m.index("fma3"));
  assert.throws(() => m.index("nope"), /no function "nope"/);
  const bytes = m.build();
  assert.ok(WebAssembly.validate(bytes));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  const { instance } = await WebAssembly.instantiate(bytes, { env: { memory } });
  const e = instance.exports as Record<string, (...a: number[]) => number>;
  const F = new Float32Array(memory.buffer);
  await t.step("scalar i32", () => assert.equal(e.fma3(6, 7, -2), 40));
  await t.step("calls", () => assert.equal(e.twice(6, 7), 84));
  await t.step("loop and f32 loads", () => {
    F.set([1, 2, 3.5], 0);
    assert.equal(e.sum(0, 3), 6.5);
    assert.equal(e.sum(0, 0), 0);
  });
  await t.step("f32x4", () => {
    F.set([1, 2, 3, 4, 10, 20, 30, 40], 0);
    e.axpy4(0, 16, 2);
    assert.deepEqual([...F.slice(4, 8)], [12, 24, 36, 48]);
  });
});

Deno.test("relaxed-SIMD detection answers a boolean, and relaxed madd validates when it says so", () => {
  const relaxed = hasRelaxedSimd();
  assert.equal(typeof relaxed, "boolean");
  const m = new ModuleBuilder({ initial: 1, maximum: 1, shared: false });
  m.func("f", [], [V128]).f32x4Const(1).f32x4Const(2).f32x4Const(3).f32x4RelaxedMadd();
  assert.equal(WebAssembly.validate(m.build()), relaxed);
});

Deno.test("i32x4 compares, shifts and bitwise selects", async () => {
  const m = new ModuleBuilder({ initial: 1, maximum: 4, shared: true });
  // sel(p, x, o): o = (v > x) ? v : (v == x ? -1 : v >> 31), lane-wise over the i32s v at p,
  // and o + 16 = v & (v ^ x) & ~0: the operations mask_row is built from.
  const f = m.func("sel", [I32, I32, I32]);
  const [v, x, gt, eq] = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  f.get(0).v128Load().set(v).get(1).i32x4Splat().set(x);
  f.get(v).get(x).i32x4GtS().set(gt).get(v).get(x).i32x4Eq().set(eq);
  f.get(2).get(v).i32x4Const(-1).get(v).i32(31).i32x4ShrS().get(eq).v128Bitselect();
  f.get(gt).v128Bitselect().v128Store();
  f.get(2).get(v).get(v).get(x).v128("xor").v128("and").i32x4Const(0).v128("not").v128("and");
  f.v128Store(16);
  const bytes = m.build();
  assert.ok(WebAssembly.validate(bytes));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  const { instance } = await WebAssembly.instantiate(bytes, { env: { memory } });
  const I = new Int32Array(memory.buffer);
  I.set([5, 3, -7, 2], 0);
  (instance.exports.sel as (...a: number[]) => void)(0, 3, 64);
  assert.deepEqual([...I.slice(16, 20)], [5, -1, -1, 0]);
  assert.deepEqual([...I.slice(20, 24)], [5 & (5 ^ 3), 0, -7 & (-7 ^ 3), 2 & (2 ^ 3)]);
});
