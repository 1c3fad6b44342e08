/**
 * File access for checkpoints: the header is read first (its 8-byte length checked against the
 * file size before anything else), then only the byte ranges of the tensors, so loading needs
 * no copy of the whole file; and the removal of temporary files a killed save left behind.
 * @module
 */
import { MAX_HEADER_BYTES, parseSafetensorsHeader, type SafetensorsHeader } from "./safetensors.ts";

/**
 * A temporary file of a checkpoint whose last change is older than this (milliseconds) is taken
 * to be left over from a killed save and removed when a save or load of that checkpoint starts.
 * A live save writes its temporary file as it goes, so only an abandoned one gets this old.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STALE_TEMP_MS } from "@longseq/tensor";
 * assert.equal(STALE_TEMP_MS, 60_000); // one minute
 * ```
 */
export const STALE_TEMP_MS = 60_000;

/** The temporary file a save of `path` writes first: `path.tmp-` and 8 random hex digits. */
export function tempPathFor(path: string): string {
  return `${path}.tmp-${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
}

function splitPath(path: string): [string, string] {
  const slash = path.lastIndexOf("/");
  return slash < 0
    ? [".", path]
    : [slash === 0 ? "/" : path.slice(0, slash), path.slice(slash + 1)];
}

/**
 * Removes temporary files of the checkpoint `path` (exactly `path.tmp-` + 8 hex digits, as
 * {@linkcode tempPathFor} makes them) last modified more than `staleMs` ago. Best effort:
 * files that vanish or cannot be removed are skipped. Returns the paths removed.
 */
export async function removeStaleTemps(path: string, staleMs = STALE_TEMP_MS): Promise<string[]> {
  const [dir, base] = splitPath(path);
  const prefix = `${base}.tmp-`;
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const suffix = e.name.slice(prefix.length);
      if (!e.isFile || !e.name.startsWith(prefix) || !/^[0-9a-f]{8}$/.test(suffix)) continue;
      const full = dir === "." && !path.startsWith("./") ? e.name : `${dir}/${e.name}`;
      try {
        const { mtime } = await Deno.stat(full);
        if (mtime && Date.now() - mtime.getTime() > staleMs) {
          await Deno.remove(full);
          removed.push(full);
        }
      } catch {
        // Gone already, or not ours to remove.
      }
    }
  } catch {
    // The folder cannot be listed (it may not exist yet); nothing to clean.
  }
  return removed;
}

/** Reads exactly `length` bytes at `offset`; throws if the file ends first. */
export async function readRange(
  file: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  for (let at = 0; at < length;) {
    const n = await file.read(out.subarray(at));
    if (n === null) {
      throw new RangeError(`the file ended at byte ${offset + at} while reading ${length} bytes`);
    }
    at += n;
  }
  return out;
}

/**
 * Reads and validates the safetensors header of an open file of `size` bytes: the 8-byte
 * length first, checked against the size and the format's cap before the header itself is read.
 */
export async function readHeader(file: Deno.FsFile, size: number): Promise<SafetensorsHeader> {
  const first = await readRange(file, 0, Math.min(size, 8));
  if (size < 8) return parseSafetensorsHeader(first, size);
  const n = new DataView(first.buffer).getBigUint64(0, true);
  // A bad length is reported by the parser from the first 8 bytes alone.
  if (n > BigInt(MAX_HEADER_BYTES) || 8 + Number(n) > size) {
    return parseSafetensorsHeader(first, size);
  }
  return parseSafetensorsHeader(await readRange(file, 0, 8 + Number(n)), size);
}
