/**
 * `gatherByIndex` and `scatterByIndex` of the wasm backend (the LSH sort and unsort): pure data
 * movement of 4-byte elements within the shared memory, each `inner`-long run moved by one
 * `copyWithin`, on the calling thread (a memory-bound copy gains nothing from a second core,
 * and its result is the same bits whatever the thread count). Semantics as the reference's:
 * `out[r, j, :] = x[r, idx[r, j], :]` (an index outside `[0, n)` reads zeros), and the scatter
 * `out[r, idx[r, j], :] = x[r, j, :]` (rows no index hits are zero, bad indices skipped).
 * @module
 */
import type { PermSpec } from "../specs/sort.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";

/** Whether the permutation kernels take this dtype: any 4-byte element. */
export function permuteSupported(dtype: string): boolean {
  return dtype === "f32" || dtype === "i32" || dtype === "u32";
}

/** The gather (`scatter` false) or scatter of `x` by the i32 `idx`, as a new storage. */
export function permuteWasm(
  device: WasmDevice,
  x: WasmStorage,
  idx: WasmStorage,
  { dtype, layout: { rows, n, inner } }: PermSpec,
  scatter: boolean,
): WasmStorage {
  const total = rows * n * inner;
  const out = device.alloc(dtype, total);
  if (total === 0) return out;
  // Views taken after the allocation, which may have grown the memory.
  const I = device.runtime.i32;
  const o = out.offset / 4, src = x.offset / 4, ix = idx.offset / 4;
  I.fill(0, o, o + total);
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    for (let j = 0; j < n; j++) {
      const k = I[ix + base + j];
      if (k < 0 || k >= n) continue;
      const [from, to] = scatter ? [base + j, base + k] : [base + k, base + j];
      I.copyWithin(o + to * inner, src + from * inner, src + (from + 1) * inner);
    }
  }
  return out;
}
