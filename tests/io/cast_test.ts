/** F16, BF16 and F64 safetensors tensors decoded to f32 (`castTo: "f32"`), against known bits. */
import assert from "node:assert/strict";
import { decodeFloatsToF32, decodeSafetensors, f16BitsToF32 } from "../../io/safetensors.ts";
import { loadCheckpoint } from "../../io/checkpoint.ts";
import * as T from "../../mod.ts";
import { noLeaks } from "../util.ts";

const f32Bits = (x: Float32Array) => [...new Uint32Array(x.buffer, x.byteOffset, x.length)];

/** A safetensors file of tensors in any format dtype, from their raw little-endian bytes. */
function rawFile(entries: { name: string; format: string; shape: number[]; bytes: Uint8Array }[]) {
  const json: Record<string, unknown> = {};
  let at = 0;
  for (const e of entries) {
    json[e.name] = { dtype: e.format, shape: e.shape, data_offsets: [at, at + e.bytes.length] };
    at += e.bytes.length;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const out = new Uint8Array(8 + text.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  let p = 8 + text.length;
  for (const e of entries) (out.set(e.bytes, p), p += e.bytes.length);
  return out;
}

const u16 = (bits: number[]) => new Uint8Array(new Uint16Array(bits).buffer);

Deno.test("float casts to f32", async (t) => {
  await t.step("f16 bit patterns: normals, subnormals, zeros, infinities, NaN", () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x3555, 0.333251953125],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    for (const [bits, want] of cases) assert.equal(f16BitsToF32(bits), want, bits.toString(16));
    assert.ok(Object.is(f16BitsToF32(0x8000), -0));
    assert.ok(Object.is(f16BitsToF32(0x0000), 0));
    const got = decodeFloatsToF32("F16", u16([0x7e00, 0x7c01, 0xfe01, 0x8001]));
    assert.deepEqual(f32Bits(got), [0x7fc00000, 0x7f802000, 0xffc02000, 0xb3800000]);
  });

  await t.step("bf16 is the upper half of an f32; f64 rounds to f32", () => {
    const got = decodeFloatsToF32("BF16", u16([0x3f80, 0xc000, 0x7f80, 0x0001, 0x8000, 0x7fc1]));
    assert.deepEqual(f32Bits(got), [
      0x3f800000,
      0xc0000000,
      0x7f800000,
      0x00010000,
      0x80000000,
      0x7fc10000,
    ]);
    const f64 = new Uint8Array(new Float64Array([1 / 3, 1e300, -1e-50, -0]).buffer);
    const d = decodeFloatsToF32("F64", f64);
    assert.deepEqual([...d], [Math.fround(1 / 3), Infinity, -0, -0]);
    assert.throws(() => decodeFloatsToF32("I64", new Uint8Array(8)), /cannot cast I64 to f32/);
    assert.throws(() => decodeFloatsToF32("F16", new Uint8Array(3)), /not a whole number of F16/);
  });

  const file = rawFile([
    { name: "h", format: "F16", shape: [2], bytes: u16([0x3c00, 0x0001]) },
    { name: "b", format: "BF16", shape: [1], bytes: u16([0xc000]) },
    { name: "d", format: "F64", shape: [1], bytes: new Uint8Array(new Float64Array([0.5]).buffer) },
  ]);

  await t.step("decodeSafetensors needs castTo for BF16 / F64 (F16 loads as f16)", () => {
    assert.throws(() => decodeSafetensors(file), /tensor "b" has dtype BF16.*castTo: "f32"/);
    const { tensors } = decodeSafetensors(file, { castTo: "f32" });
    assert.deepEqual([...tensors.get("h")!.data], [1, 2 ** -24]);
    assert.equal(tensors.get("b")!.dtype, "f32");
    assert.deepEqual([...tensors.get("b")!.data], [-2]);
    assert.deepEqual([...tensors.get("d")!.data], [0.5]);
  });

  await t.step(
    "loadCheckpoint casts with castTo, checks the template as f32",
    () =>
      noLeaks(async () => {
        const path = await Deno.makeTempFile({ suffix: ".safetensors" });
        Deno.writeFileSync(path, file);
        await assert.rejects(() => loadCheckpoint(path), /has dtype BF16, which this library/);
        const like = { h: T.zeros([2]), b: T.zeros([1]), d: T.zeros([1]) };
        const { tree } = await loadCheckpoint(path, {
          like,
          castTo: "f32",
          device: "cpu-reference",
        });
        assert.deepEqual(await tree.h.array(), [1, 2 ** -24]);
        assert.deepEqual(await tree.b.array(), [-2]);
        assert.deepEqual(await tree.d.array(), [0.5]);
        for (const x of [...Object.values(tree), ...Object.values(like)]) x.dispose();
        Deno.removeSync(path);
      }),
  );
});
