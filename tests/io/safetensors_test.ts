import assert from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  parseSafetensorsHeader,
} from "../../io/safetensors.ts";
import { bytesOf, hostTensors, readHeader } from "./fixtures.ts";

Deno.test("safetensors encode/decode", async (t) => {
  await t.step("round trip is bit-exact for every dtype", () => {
    const tensors = hostTensors();
    const out = decodeSafetensors(encodeSafetensors(tensors, { a: "1", b: "{}" }));
    assert.deepEqual(out.metadata, { a: "1", b: "{}" });
    assert.deepEqual([...out.tensors.keys()], tensors.map(([n]) => n));
    for (const [name, want] of tensors) {
      const got = out.tensors.get(name)!;
      assert.equal(got.dtype, want.dtype, name);
      assert.deepEqual(got.shape, want.shape, name);
      assert.equal(got.data.constructor, want.data.constructor, name);
      assert.deepEqual(bytesOf(got.data), bytesOf(want.data), name);
    }
  });

  await t.step("the file follows the format's rules", () => {
    const tensors = hostTensors();
    const bytes = encodeSafetensors(tensors, { note: "x" });
    const [n, header] = readHeader(bytes);
    assert.equal((8 + n) % 8, 0, "data starts 8-byte aligned");
    assert.equal(bytes[8], "{".charCodeAt(0));
    assert.deepEqual(header.__metadata__, { note: "x" });
    const names = { f32: "F32", f16: "F16", i32: "I32", u32: "U32", bool: "BOOL" };
    let at = 0;
    for (const [name, want] of tensors) {
      const e = header[name] as { dtype: string; shape: number[]; data_offsets: number[] };
      assert.equal(e.dtype, names[want.dtype]);
      assert.deepEqual(e.shape, want.shape);
      assert.deepEqual(e.data_offsets, [at, at + want.data.byteLength], name);
      const raw = bytes.subarray(8 + n + at, 8 + n + at + want.data.byteLength);
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < want.data.length; i++) {
        const v = want.dtype === "bool"
          ? dv.getUint8(i)
          : want.dtype === "f16"
          ? dv.getUint16(2 * i, true)
          : want.dtype === "i32"
          ? dv.getInt32(4 * i, true)
          : dv.getUint32(4 * i, true);
        const expected = want.dtype === "f32"
          ? new Uint32Array(want.data.buffer, want.data.byteOffset)[i]
          : want.dtype === "f16"
          ? new Uint16Array(want.data.buffer, want.data.byteOffset)[i]
          : want.data[i];
        assert.equal(v, expected, `${name}[${i}] is little-endian`);
      }
      at += want.data.byteLength;
    }
    assert.equal(bytes.length, 8 + n + at, "no bytes after the last tensor");
  });

  await t.step("bad files are rejected with clear errors", () => {
    const good = encodeSafetensors(hostTensors());
    const [n] = readHeader(good);
    assert.throws(() => decodeSafetensors(good.subarray(0, 5)), /5 bytes.*8-byte header length/);
    assert.throws(() => decodeSafetensors(good.subarray(0, 20)), /header length \d+ does not fit/);
    assert.throws(
      () => decodeSafetensors(good.subarray(0, good.length - 3)),
      /truncated: tensor "b" \(BOOL\[5\]\) ends at byte/,
    );
    assert.throws(
      () => decodeSafetensors(good.subarray(0, 8 + n + 4)),
      /truncated: tensor "f.special"/,
    );
    const extra = new Uint8Array(good.length + 2);
    extra.set(good);
    assert.throws(() => decodeSafetensors(extra), /2 bytes follow the last tensor/);
    const make = (json: string) => {
      const text = new TextEncoder().encode(json);
      const out = new Uint8Array(8 + text.length + 8);
      new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
      out.set(text, 8);
      return out;
    };
    assert.throws(() => decodeSafetensors(make("[1]")), /does not start with '\{'/);
    assert.throws(() => decodeSafetensors(make("{oops")), /not valid UTF-8 JSON/);
    const entry = (dtype: string, shape: number[], offs: number[]) =>
      JSON.stringify({ x: { dtype, shape, data_offsets: offs } });
    assert.throws(
      () => decodeSafetensors(make(entry("Q8", [2], [0, 8]))),
      /tensor "x": unknown dtype "Q8"/,
    );
    assert.throws(
      () => decodeSafetensors(make(entry("F32", [3], [0, 8]))),
      /tensor "x": F32\[3\] needs 12 bytes but data_offsets \[0,8\] span 8/,
    );
    assert.throws(
      () => decodeSafetensors(make(entry("F32", [1], [4, 8]))),
      /start at 4 .* \(a hole\)/,
    );
    assert.throws(() => decodeSafetensors(make(entry("F32", [-1], [0, 8]))), /shape \[-1\]/);
    assert.throws(
      () => decodeSafetensors(make(entry("F64", [1], [0, 8]))),
      /dtype F64, which this library/,
    );
    const meta = JSON.stringify({ __metadata__: { k: 1 } });
    assert.throws(
      () => decodeSafetensors(make(meta).subarray(0, 8 + meta.length)),
      /value of "k" is not a string/,
    );
    assert.throws(
      () => encodeSafetensors({ w: { dtype: "f32", shape: [3], data: new Float32Array(2) } }),
      /needs a Float32Array of 3 values, got a Float32Array of 2/,
    );
    const h = parseSafetensorsHeader(make(entry("F64", [1], [0, 8])));
    assert.equal(h.entries[0].dtype, null, "foreign dtypes still parse");
  });
});
