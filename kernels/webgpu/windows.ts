/**
 * Splitting a dispatch whose tensors exceed one storage binding
 * ({@linkcode GpuDevice.maxBindingBytes}) into pieces that each bind windows of them.
 *
 * A window's offset must be a multiple of the adapter's `minStorageBufferOffsetAlignment`
 * (256 bytes on most). Two planners cover the kernels:
 * - {@linkcode rowPieces}: kernels over independent rows whose operands hold a fixed number of
 *   elements per row. Pieces are whole numbers of rows chosen so each window starts at its
 *   piece's first row, so the unchanged shader sees a smaller problem starting at row 0.
 * - {@linkcode flatPieces}: kernels with one thread per element of an "anchored" operand (a
 *   contiguous output or source) reading or writing others through strides. The anchored
 *   windows start at the piece's first element; each strided operand's window covers the
 *   bounding box of the indices the piece touches, and the shader subtracts its start (the
 *   piece's `base`) from its element offset.
 * When every storage fits in one binding both give one piece binding whole storages, so small
 * tensors run exactly as before.
 * @module
 */
import type { GpuBindable, GpuDevice, GpuStorage, GpuWindow } from "./device.ts";

/** A RangeError naming `op`, the shape and the binding limit, for work that cannot split. */
export function bindingRefusal(
  device: GpuDevice,
  op: string,
  shape: readonly number[] | string,
  why: string,
): RangeError {
  const what = typeof shape === "string" ? shape : `[${shape.join(",")}]`;
  return new RangeError(
    `${op}: ${what} needs more than the webgpu limit of ${device.maxBindingBytes} bytes per ` +
      `storage binding, and ${why}`,
  );
}

/** Whether `storage` is too large to bind whole. */
export const tooLarge = (device: GpuDevice, storage: GpuStorage): boolean =>
  storage.byteLength > device.maxBindingBytes;

/**
 * The window over elements `[first, end)` of `storage` (elements of `eb` bytes), starting at
 * the aligned byte at or before `first`, and the element index it starts at; null if the
 * window passes the binding limit.
 */
export function windowOver(
  device: GpuDevice,
  storage: GpuStorage,
  eb: number,
  first: number,
  end: number,
): { bind: GpuWindow; base: number } | null {
  const align = device.bindingAlignment;
  const start = Math.floor((first * eb) / align) * align;
  const stop = Math.min(Math.ceil((end * eb) / 4) * 4, storage.buffer.size);
  const size = Math.max(4, stop - start);
  if (size > device.maxBindingBytes || start + size > storage.buffer.size) return null;
  return { bind: { storage, offset: start, size }, base: start / eb };
}

/**
 * The window over elements `[first, end)` of `storage` starting exactly at `first` (for a
 * shader that indexes from the window's start), or null when `first` is not at an aligned
 * byte or the window passes the binding limit.
 */
export function exactWindow(
  device: GpuDevice,
  storage: GpuStorage,
  eb: number,
  first: number,
  end: number,
): GpuWindow | null {
  const w = windowOver(device, storage, eb, first, end);
  return w && w.base === first ? w.bind : null;
}

/** One operand of a row-split kernel: `perRow` elements of `eb` bytes per row (0: shared). */
export interface RowOperand {
  readonly storage: GpuStorage;
  readonly eb: number;
  readonly perRow: number;
}

/** One piece of a row split: rows `[start, start + count)` and the operands to bind. */
export interface RowPiece {
  readonly start: number;
  readonly count: number;
  readonly binds: GpuBindable[];
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Splits `rows` into pieces whose per-row operands' windows each fit one binding and start at
 * the piece's first row (so piece sizes are multiples of `multiple` and of the rows that
 * make every operand's window offset aligned). Shared operands (`perRow` 0) bind whole.
 * Throws the RangeError of {@linkcode bindingRefusal} (naming `op` and `shape`) when even the
 * smallest such piece does not fit.
 */
export function rowPieces(
  device: GpuDevice,
  op: string,
  shape: readonly number[],
  rows: number,
  operands: readonly RowOperand[],
  multiple = 1,
): RowPiece[] {
  if (!operands.some((o) => tooLarge(device, o.storage))) {
    return [{ start: 0, count: rows, binds: operands.map((o) => o.storage) }];
  }
  // Whole words: a window's size is rounded up to one.
  const align = device.bindingAlignment, limit = Math.floor(device.maxBindingBytes / 4) * 4;
  let step = multiple, most = Infinity;
  for (const o of operands) {
    if (o.perRow === 0) {
      if (tooLarge(device, o.storage)) {
        throw bindingRefusal(device, op, shape, "an operand shared by every row is that large");
      }
      continue;
    }
    const rowBytes = o.perRow * o.eb;
    const need = align / gcd(align, rowBytes);
    step = (step * need) / gcd(step, need);
    most = Math.min(most, Math.floor(limit / rowBytes));
  }
  const per = Math.floor(most / step) * step;
  if (per < 1) {
    throw bindingRefusal(
      device,
      op,
      shape,
      `its rows cannot be split into aligned pieces that fit (${step} rows per piece at least)`,
    );
  }
  const pieces: RowPiece[] = [];
  for (let start = 0; start < rows; start += per) {
    const count = Math.min(per, rows - start);
    const binds = operands.map((o) => {
      if (o.perRow === 0) return o.storage;
      const w = windowOver(device, o.storage, o.eb, start * o.perRow, (start + count) * o.perRow);
      if (!w || w.base !== start * o.perRow) throw new Error("rowPieces: misaligned window");
      return w.bind;
    });
    pieces.push({ start, count, binds });
  }
  return pieces;
}

/** A strided operand of a flat split: element `offset + sum(index[d] * strides[d])`. */
export interface StridedOperand {
  readonly storage: GpuStorage;
  readonly eb: number;
  readonly strides: readonly number[];
  readonly offset: number;
}

/** One piece of a flat split: elements `[first, first + count)` of the anchored operands. */
export interface FlatPiece {
  readonly first: number;
  readonly count: number;
  /**
   * Anchored operands' bindings, in order, and the element each starts at: the shader reads
   * element `i` of the piece at `i + first - base`.
   */
  readonly anchored: { bind: GpuBindable; base: number }[];
  /** Strided operands' bindings and the element each starts at (subtract from offsets). */
  readonly strided: { bind: GpuBindable; base: number }[];
}

/** Lowest and highest element a strided operand reads for flat indices `[lo, hi)`. */
export function stridedSpan(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  lo: number,
  hi: number,
): [number, number] {
  const a = unravel(shape, lo), b = unravel(shape, hi - 1);
  let min = offset, max = offset, d = 0;
  for (; d < shape.length && a[d] === b[d]; d++) {
    (min += a[d] * strides[d], max += a[d] * strides[d]);
  }
  if (d < shape.length) {
    const [x, y] = [a[d] * strides[d], b[d] * strides[d]];
    min += Math.min(x, y), max += Math.max(x, y);
    for (d++; d < shape.length; d++) {
      const far = (shape[d] - 1) * strides[d];
      min += Math.min(0, far), max += Math.max(0, far);
    }
  }
  return [min, max];
}

function unravel(shape: readonly number[], i: number): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return c;
}

/**
 * A smaller count for a piece `[first, first + count)` that did not fit. Its outermost varying
 * axis `d` has blocks of `inner` flat indices (the product of the axes after it): a piece not
 * starting at a block boundary ends at the next one; one that does is halved in whole blocks
 * (at least one). A piece within one block varies only in inner axes, whose strided ranges
 * are narrower, so the next try looks there.
 */
function shrink(shape: readonly number[], first: number, count: number): number {
  const last = first + count - 1;
  let inner = 1;
  for (const d of shape) inner *= d;
  for (const d of shape) {
    inner /= d;
    if (Math.floor(first / inner) === Math.floor(last / inner)) continue;
    if (first % inner !== 0) return (Math.floor(first / inner) + 1) * inner - first;
    return Math.max(inner, Math.floor(count / 2 / inner) * inner);
  }
  return Math.ceil(count / 2);
}

/**
 * Splits `n` flat indices over `shape` (the collapsed iteration shape) into pieces whose
 * windows fit one binding: anchored operands (element `i` at flat index `i`, `eb` bytes each)
 * bind the piece's elements, strided operands the bounding box of what the piece touches.
 * A piece that does not fit shrinks (see {@linkcode shrink}); a one-element piece that does not fit throws the RangeError of
 * {@linkcode bindingRefusal} (naming `op` and `reported`, the op's shape).
 */
export function flatPieces(
  device: GpuDevice,
  op: string,
  shape: readonly number[],
  anchored: readonly { storage: GpuStorage; eb: number }[],
  strided: readonly StridedOperand[],
  reported: readonly number[] = shape,
): FlatPiece[] {
  let n = 1;
  for (const d of shape) n *= d;
  const all = [...anchored.map((a) => a.storage), ...strided.map((s) => s.storage)];
  if (!all.some((s) => tooLarge(device, s))) {
    const whole = (s: GpuStorage) => ({ bind: s, base: 0 });
    return [{
      first: 0,
      count: n,
      anchored: anchored.map((a) => whole(a.storage)),
      strided: strided.map((s) => whole(s.storage)),
    }];
  }
  const room = device.maxBindingBytes - device.bindingAlignment;
  const top = Math.max(1, Math.min(n, ...anchored.map((a) => Math.floor(room / a.eb))));
  const pieces: FlatPiece[] = [];
  for (let first = 0; first < n;) {
    let count = Math.min(top, n - first);
    for (;;) {
      const piece = flatPiece(device, shape, anchored, strided, first, count);
      if (piece) {
        pieces.push(piece);
        break;
      }
      if (count === 1) {
        throw bindingRefusal(
          device,
          op,
          reported,
          "a piece of its work reads or writes a strided range that wide",
        );
      }
      count = shrink(shape, first, count);
    }
    first += count;
  }
  return pieces;
}

function flatPiece(
  device: GpuDevice,
  shape: readonly number[],
  anchored: readonly { storage: GpuStorage; eb: number }[],
  strided: readonly StridedOperand[],
  first: number,
  count: number,
): FlatPiece | null {
  const a: { bind: GpuBindable; base: number }[] = [];
  for (const o of anchored) {
    const w = windowOver(device, o.storage, o.eb, first, first + count);
    if (!w) return null;
    a.push(w);
  }
  const s: { bind: GpuBindable; base: number }[] = [];
  for (const o of strided) {
    if (!tooLarge(device, o.storage)) {
      s.push({ bind: o.storage, base: 0 });
      continue;
    }
    const [lo, hi] = stridedSpan(shape, o.strides, o.offset, first, first + count);
    const w = windowOver(device, o.storage, o.eb, lo, hi + 1);
    if (!w) return null;
    s.push(w);
  }
  return { first, count, anchored: a, strided: s };
}

/** Runs `plan`, freeing `out` (allocated by the caller) if it throws. */
export function guarded<T>(device: GpuDevice, out: GpuStorage | GpuStorage[], plan: () => T): T {
  try {
    return plan();
  } catch (e) {
    for (const o of Array.isArray(out) ? out : [out]) device.free(o);
    throw e;
  }
}
