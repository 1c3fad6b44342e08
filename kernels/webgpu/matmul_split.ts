/**
 * The WebGPU matmul kernel entry, which splits products whose operands exceed one storage
 * binding (see `windows.ts`):
 * - over the batch, when each operand's matrices are contiguous (or broadcast, bound whole),
 *   and over each matrix's rows as well when one matrix is too large;
 * - over the rows of A (A not transposed, B one matrix bound whole; a batch of contiguous A
 *   matrices counts as one tall matrix), when the batch alone does not split finely enough;
 * - over the summed axis `k` for `A^T @ B` with one matrix (a weight gradient `x^T @ dy`):
 *   partial products added in order, so sums round differently from the one-pass kernel.
 * Batch and row pieces use the whole product's tile, so they sum exactly as it would. Other
 * layouts are refused with a RangeError naming the shape and the limit.
 * @module
 */
import type { KernelTable } from "../backend.ts";
import { batchCount, type MatmulSpec } from "../specs/matmul.ts";
import { collapse } from "../strided.ts";
import type { GpuDevice, GpuStorage } from "./device.ts";
import { elementwiseGpu } from "./elementwise.ts";
import { chooseTile, matmulInto, type TileConfig } from "./matmul.ts";
import { bindingRefusal, exactWindow, guarded, rowPieces, tooLarge } from "./windows.ts";

/**
 * `out[z] = A[z] @ B[z]` for every batch index as a new contiguous `[...batch, m, n]`
 * storage, split into pieces where an operand exceeds one binding. `tile` overrides the
 * per-shape choice (for tuning).
 */
export function matmulGpu(
  device: GpuDevice,
  a: GpuStorage,
  b: GpuStorage,
  spec: MatmulSpec,
  tile?: TileConfig,
): GpuStorage {
  const { m, n, k } = spec;
  const count = batchCount(spec);
  const dtype = spec.dtype ?? "f32";
  if (!tooLarge(device, a) && !tooLarge(device, b)) {
    const out = device.alloc(dtype, count * m * n);
    if (!tooLarge(device, out)) {
      matmulInto(device, a, b, out, spec, tile);
      return out;
    }
    device.free(out);
  }
  const whole = tile ?? chooseTile(m, n, count);
  const eb = device.elementBytes(dtype);
  const batch = collapse(spec.batchShape, [spec.aStrides, spec.bStrides]);
  const shape = [...spec.batchShape, m, n];
  const [as, bs] = batch.shape.length === 1 ? [batch.strides[0][0], batch.strides[1][0]] : [0, 0];
  // A batch of matrices against one shared B is one tall matrix when A's are contiguous.
  const rows = batch.shape.length === 0 || (bs === 0 && as === m * k) ? count * m : 0;
  const fits = (perRow: number) => perRow * eb <= device.maxBindingBytes;
  if (rows > 0 && !spec.transA && (batch.shape.length === 0 || !fits(m * k) || !fits(m * n))) {
    const out = device.alloc(dtype, count * m * n);
    const pieces = guarded(device, out, () =>
      rowPieces(device, "matmul", shape, rows, [
        { storage: a, eb, perRow: k },
        { storage: b, eb, perRow: 0 },
        { storage: out, eb, perRow: n },
      ]));
    for (const { count: c, binds: [pa, pb, po] } of pieces) {
      const piece = { ...spec, batchShape: [], aStrides: [], bStrides: [], m: c };
      matmulInto(device, pa, pb, po, piece, whole);
    }
    return out;
  }
  const batched = batch.shape.length === 1 && (as === 0 || as === m * k) &&
    (bs === 0 || bs === k * n);
  if (batched && !spec.transA && !(fits(m * k) && fits(k * n) && fits(m * n))) {
    return batchRows(device, a, b, spec, as, bs, whole);
  }
  if (batched) {
    const out = device.alloc(dtype, count * m * n);
    const pieces = guarded(device, out, () =>
      rowPieces(device, "matmul", shape, count, [
        { storage: a, eb, perRow: as },
        { storage: b, eb, perRow: bs },
        { storage: out, eb, perRow: m * n },
      ]));
    for (const { count: c, binds: [pa, pb, po] } of pieces) {
      const piece = { ...spec, batchShape: [c], aStrides: [as], bStrides: [bs] };
      matmulInto(device, pa, pb, po, piece, whole);
    }
    return out;
  }
  if (batch.shape.length === 0 && spec.transA && !spec.transB) return overK(device, a, b, spec);
  throw bindingRefusal(device, "matmul", shape, "this operand layout cannot be split");
}

/**
 * A batch whose matrices are each too large for one binding: every matrix's product is split
 * over its rows, with windows at each piece's rows of A and of the output and at the
 * matrix of B (or all of a shared A or B).
 */
function batchRows(
  device: GpuDevice,
  a: GpuStorage,
  b: GpuStorage,
  spec: MatmulSpec,
  as: number,
  bs: number,
  tile: TileConfig,
): GpuStorage {
  const { m, n, k } = spec;
  const count = batchCount(spec);
  const dtype = spec.dtype ?? "f32";
  const eb = device.elementBytes(dtype);
  const shape = [...spec.batchShape, m, n];
  const align = device.bindingAlignment;
  const step = [k, n].reduce((s, w) => lcm(s, align / gcd(align, w * eb)), 1);
  const most = Math.floor(Math.floor(device.maxBindingBytes / 4) * 4 / (Math.max(k, n) * eb));
  const per = Math.floor(most / step) * step;
  const out = device.alloc(dtype, count * m * n);
  const refuse = () => {
    device.free(out);
    return bindingRefusal(
      device,
      "matmul",
      shape,
      "its matrices cannot be split into aligned rows",
    );
  };
  if (per < 1) throw refuse();
  // A shared B binds whole; otherwise each piece binds its own matrix of B.
  const bMatrix = (z: number) => bs === 0 ? b : exactWindow(device, b, eb, z * bs, (z + 1) * bs);
  // Every window is planned before any dispatch, so a refusal leaves nothing recorded.
  const jobs = [];
  for (let z = 0; z < count; z++) {
    for (let r = 0; r < m; r += per) {
      const c = Math.min(per, m - r);
      const pa = exactWindow(device, a, eb, z * as + r * k, z * as + (r + c) * k);
      const pb = bMatrix(z);
      const po = exactWindow(device, out, eb, (z * m + r) * n, (z * m + r + c) * n);
      if (!pa || !pb || !po) throw refuse();
      jobs.push({ pa, pb, po, c });
    }
  }
  for (const { pa, pb, po, c } of jobs) {
    const piece = { ...spec, batchShape: [], aStrides: [], bStrides: [], m: c };
    matmulInto(device, pa, pb, po, piece, tile);
  }
  return out;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a * b) / gcd(a, b);

/** `A^T @ B` (A stored `[k, m]`, B `[k, n]`) as a sum of products over pieces of `k`. */
function overK(device: GpuDevice, a: GpuStorage, b: GpuStorage, spec: MatmulSpec): GpuStorage {
  const { m, n, k } = spec;
  const dtype = spec.dtype ?? "f32";
  const eb = device.elementBytes(dtype);
  const shape = [m, n];
  if (m * n * eb > device.maxBindingBytes) {
    throw bindingRefusal(device, "matmul", shape, "its output and its summed axis are both long");
  }
  const pieces = rowPieces(device, "matmul", [k, m, n], k, [
    { storage: a, eb, perRow: m },
    { storage: b, eb, perRow: n },
  ]);
  const tile = chooseTile(m, n, 1);
  let total: GpuStorage | null = null;
  for (const { count, binds: [pa, pb] } of pieces) {
    const part = device.alloc(dtype, m * n);
    matmulInto(device, pa, pb, part, { ...spec, k: count }, tile);
    if (total === null) {
      total = part;
      continue;
    }
    const ins = [total, part].map((storage) => ({ storage, dtype, strides: [1], offset: 0 }));
    const next = elementwiseGpu(device, "a + b", ins, [m * n], dtype);
    device.free(total);
    device.free(part);
    total = next;
  }
  return total!;
}

/** The matmul family's kernels. */
export const matmulKernels: KernelTable = {
  matmul: (d: GpuDevice, [a, b]: GpuStorage[], s: MatmulSpec) => matmulGpu(d, a, b, s),
};
