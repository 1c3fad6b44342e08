/**
 * A careful reader of zip archives (for `enwik8.zip`): the central directory is parsed here,
 * deflated members are inflated with fflate's streaming `Inflate` a slice at a time, and every
 * member is checked: its declared size against a cap before anything is inflated, the bytes
 * inflated against the declared size (stopping as soon as a member holds more than it
 * declares, so a decompression bomb costs at most the cap), and its CRC-32. Errors name the
 * archive and the member.
 * @module
 */
import { Inflate } from "fflate";

/** Default cap on a member's size: 256 MiB (enwik8 is 100,000,000 bytes). */
export const DEFAULT_MAX_MEMBER_BYTES = 256 * 2 ** 20;

/** Options of {@linkcode readZipMember} and the enwik8 loaders. */
export interface ZipReadOptions {
  /** Most bytes one member may inflate to (default {@linkcode DEFAULT_MAX_MEMBER_BYTES}). */
  maxBytes?: number;
  /** Name of the archive in error messages (default `"the zip archive"`). */
  source?: string;
}

/** One member as the central directory describes it. */
export interface ZipMember {
  /** Path inside the archive. */
  name: string;
  /** 0: stored, 8: deflated. */
  method: number;
  /** Declared CRC-32 of the uncompressed bytes. */
  crc: number;
  /** Declared compressed size. */
  compressedSize: number;
  /** Declared uncompressed size. */
  size: number;
  /** Where its local header starts. */
  localOffset: number;
  /** General-purpose flags (bit 0: encrypted). */
  flags: number;
}

let CRC_TABLE: Uint32Array | undefined;

/**
 * The CRC-32 (IEEE 802.3, as zip and gzip use) of `bytes`, continuing from `crc` (0 to start).
 *
 * @example
 * ```ts
 * console.log(crc32(new TextEncoder().encode("123456789")).toString(16)); // cbf43926
 * ```
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const zipError = (source: string, msg: string) => new RangeError(`${source}: ${msg}`);

/** The members listed in the archive's central directory (no ZIP64, no multi-disk). */
export function zipMembers(zip: Uint8Array, source = "the zip archive"): ZipMember[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw zipError(source, "no end of central directory record: not a zip archive");
  const count = view.getUint16(end + 10, true);
  const dirSize = view.getUint32(end + 12, true);
  const dirStart = view.getUint32(end + 16, true);
  if (count === 0xffff || dirStart === 0xffffffff || dirSize === 0xffffffff) {
    throw zipError(source, "ZIP64 archives are not supported");
  }
  if (dirStart + dirSize > end) {
    throw zipError(source, `the central directory (${dirSize} bytes at ${dirStart}) overruns`);
  }
  const members: ZipMember[] = [];
  let at = dirStart;
  for (let k = 0; k < count; k++) {
    if (at + 46 > end || view.getUint32(at, true) !== 0x02014b50) {
      throw zipError(source, `central directory entry ${k} at byte ${at} is malformed`);
    }
    const nameLen = view.getUint16(at + 28, true);
    const skip = nameLen + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
    if (at + 46 + skip > end) throw zipError(source, `central directory entry ${k} overruns`);
    members.push({
      name: new TextDecoder().decode(zip.subarray(at + 46, at + 46 + nameLen)),
      flags: view.getUint16(at + 8, true),
      method: view.getUint16(at + 10, true),
      crc: view.getUint32(at + 16, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localOffset: view.getUint32(at + 42, true),
    });
    at += 46 + skip;
  }
  return members;
}

/**
 * The uncompressed bytes of one member, checked: declared size within `maxBytes`, exactly the
 * declared size inflated (inflating stops at the first byte beyond it), CRC-32 equal to the
 * declared one. Stored (0) and deflated (8) members only; fflate's errors come back prefixed
 * with the archive and member names.
 */
export function readZipMember(
  zip: Uint8Array,
  m: ZipMember,
  options: ZipReadOptions = {},
): Uint8Array {
  const { maxBytes = DEFAULT_MAX_MEMBER_BYTES, source = "the zip archive" } = options;
  const fail = (msg: string): never => {
    throw zipError(source, `member ${JSON.stringify(m.name)} ${msg}`);
  };
  if (m.flags & 1) fail("is encrypted");
  if (m.size > maxBytes) {
    fail(
      `declares ${m.size} bytes, over the limit of ${maxBytes} (a decompression bomb? pass a ` +
        "larger maxBytes to allow it)",
    );
  }
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const h = m.localOffset;
  if (h + 30 > zip.length || view.getUint32(h, true) !== 0x04034b50) {
    fail(`has no local header at byte ${h}`);
  }
  const start = h + 30 + view.getUint16(h + 26, true) + view.getUint16(h + 28, true);
  if (start + m.compressedSize > zip.length) {
    fail(`runs past the end of the archive (${m.compressedSize} bytes at ${start})`);
  }
  const packed = zip.subarray(start, start + m.compressedSize);
  let out: Uint8Array;
  if (m.method === 0) {
    if (m.compressedSize !== m.size) {
      fail(`is stored but declares ${m.size} bytes in ${m.compressedSize}`);
    }
    out = packed.slice();
  } else if (m.method === 8) {
    out = inflateCapped(packed, m.size, fail);
  } else {
    return fail(`uses compression method ${m.method}; only stored (0) and deflate (8) are read`);
  }
  const crc = crc32(out);
  if (crc !== m.crc) {
    fail(
      `is corrupt: CRC-32 ${crc.toString(16).padStart(8, "0")} but the archive says ` +
        m.crc.toString(16).padStart(8, "0"),
    );
  }
  return out;
}

/** Inflates `packed` into exactly `size` bytes, refusing as soon as it yields more. */
function inflateCapped(packed: Uint8Array, size: number, fail: (msg: string) => never) {
  const out = new Uint8Array(size);
  let got = 0;
  let done = false;
  let over = false;
  const inflater = new Inflate((chunk, final) => {
    if (got + chunk.length > size) {
      over = true;
      fail(`holds more than the ${size} bytes it declares (inflating stopped there)`);
    }
    out.set(chunk, got);
    got += chunk.length;
    done ||= final;
  });
  const SLICE = 16 * 1024; // compressed bytes per push: at most ~17 MB of output each
  try {
    for (let at = 0; at < packed.length; at += SLICE) {
      const end = Math.min(packed.length, at + SLICE);
      inflater.push(packed.subarray(at, end), end === packed.length);
    }
    if (packed.length === 0) inflater.push(packed, true);
  } catch (e) {
    if (over) throw e;
    fail(`cannot be inflated: ${(e as Error).message}`);
  }
  if (!done) fail("ends before its deflate stream does (truncated)");
  if (got !== size) fail(`holds ${got} bytes but declares ${size}`);
  return out;
}
