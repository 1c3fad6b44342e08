/**
 * `gatherByIndex` and `scatterByIndex` of the wasm backend (the LSH sort and unsort): pure data
 * movement of 4-byte elements within the shared memory, by the module's `permute_rows`, on the
 * calling thread (a memory-bound copy gains nothing from a second core,
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
  // The view is taken after the allocation, which may have grown the memory.
  device.runtime.i32.fill(0, out.offset / 4, out.offset / 4 + total);
  device.runtime.kernels.permute_rows(out.offset, x.offset, idx.offset, rows, n, inner, +scatter);
  return out;
}
