/** The enwik8 zip reader on crafted archives: lying sizes, corruption, bombs, bad streams. */
import assert from "node:assert/strict";
import { zipSync } from "fflate";
import { crc32, enwik8FromZip, loadEnwik8 } from "../../examples/lib/data.ts";
import { zipMembers } from "../../examples/lib/zip.ts";

/** Sets the declared uncompressed size of the first member (local header and directory). */
function patchSize(zip: Uint8Array, size: number): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  const m = zipMembers(out)[0];
  view.setUint32(m.localOffset + 22, size, true);
  for (let i = out.length - 22; i >= 0; i--) {
    if (view.getUint32(i, true) === 0x02014b50) {
      view.setUint32(i + 24, size, true);
      break;
    }
  }
  return out;
}

/** Offset of the first member's data. */
function dataStart(zip: Uint8Array): number {
  const view = new DataView(zip.buffer, zip.byteOffset);
  const h = zipMembers(zip)[0].localOffset;
  return h + 30 + view.getUint16(h + 26, true) + view.getUint16(h + 28, true);
}

Deno.test("enwik8 zip reader", async (t) => {
  const text = new Uint8Array(105_000).map((_, i) => 32 + ((i * 7919) % 90));

  await t.step("CRC-32 matches the standard check value", () => {
    assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
  });

  await t.step("a member holding more than it declares is refused", () => {
    const zip = patchSize(zipSync({ enwik8: text }), 1000);
    assert.throws(
      () => enwik8FromZip(zip, { source: "x.zip" }),
      /x\.zip: member "enwik8" holds more than the 1000 bytes it declares/,
    );
    const short = patchSize(zipSync({ enwik8: text }), 200_000);
    assert.throws(() => enwik8FromZip(short), /holds 105000 bytes but declares 200000/);
  });

  await t.step("a corrupted stored member fails its CRC", () => {
    const zip = zipSync({ enwik8: [text, { level: 0 }] });
    assert.equal(enwik8FromZip(zip).train.length, 94_500);
    zip[dataStart(zip) + 500] ^= 1;
    assert.throws(
      () => enwik8FromZip(zip, { source: "x.zip" }),
      /x\.zip: member "enwik8" is corrupt: CRC-32 [0-9a-f]{8} but the archive says [0-9a-f]{8}/,
    );
  });

  await t.step("a decompression bomb is refused before it is inflated", () => {
    const zeros = new Uint8Array(16 * 2 ** 20); // deflates to a few kB
    const zip = zipSync({ enwik8: [zeros, { level: 1 }] });
    assert.ok(zip.length < 100_000);
    const bomb = patchSize(zip, 2 ** 30); // 1 GiB declared
    assert.throws(
      () => enwik8FromZip(bomb),
      /member "enwik8" declares 1073741824 bytes, over the limit of 268435456 .*maxBytes/,
    );
    // Declaring less than it holds: inflating stops at the declared size.
    assert.throws(() => enwik8FromZip(patchSize(zip, 4096)), /more than the 4096 bytes/);
    // The cap can be lowered (and raised) by the caller.
    assert.throws(() => enwik8FromZip(zip, { maxBytes: 2 ** 20 }), /over the limit of 1048576/);
    assert.equal(enwik8FromZip(zip, { maxBytes: 2 ** 24 }).test.length, 838_862);
  });

  await t.step("fflate's errors and bad archives name the file", async () => {
    const zip = zipSync({ enwik8: text });
    zip.fill(0xff, dataStart(zip), dataStart(zip) + 4); // reserved block type
    assert.throws(
      () => enwik8FromZip(zip, { source: "x.zip" }),
      /x\.zip: member "enwik8" cannot be inflated: invalid block type/,
    );
    const path = await Deno.makeTempFile({ suffix: ".zip" });
    Deno.writeFileSync(path, new Uint8Array(1000).fill(7));
    await assert.rejects(
      () => loadEnwik8(path),
      (e: Error) => e.message.startsWith(`${path}: no end of central directory record`),
    );
    const whole = zipSync({ enwik8: text });
    Deno.writeFileSync(path, whole.subarray(0, whole.length - 10)); // truncated
    await assert.rejects(() => loadEnwik8(path), (e: Error) => e.message.startsWith(`${path}: `));
    Deno.removeSync(path);
  });
});
