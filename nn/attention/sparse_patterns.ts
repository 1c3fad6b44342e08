/**
 * The Sparse Transformer's factorised attention patterns (Child et al. 2019 §4.3 and §5;
 * docs/algorithms.md#sparse-transformer-patterns) as boolean masks, and their block layouts: the
 * `blockSize x blockSize` score tiles a pattern touches, which is all a block-sparse kernel
 * computes.
 *
 * Every pattern is causal. For query `i`, stride `l` and `c` summary positions:
 * - strided A: `i - l < j <= i` (the previous `l` positions, the query's own included; for
 *   `i < l` the window simply stops at position 0, so query 0 still sees itself);
 * - strided B: `j <= i` and `(i - j) mod l == 0`;
 * - fixed A: `j <= i` and `floor(j / l) == floor(i / l)` (the own block);
 * - fixed B: `j <= i` and `j mod l >= l - c` (the last `c` positions of every block).
 * @module
 */
import type { DeviceName } from "../../kernels/device.ts";
import type { BlockLayout, PatternSpec } from "../../ops/block_sparse.ts";
import { fromTypedArray } from "../../ops/creation.ts";
import type { Tensor } from "../../ops/tensor.ts";
import { checkIntAtLeast } from "../validate.ts";

export type { BlockLayout, PatternSpec };

/** Options of the mask functions. */
export interface PatternMaskOptions {
  /** Device of the returned masks (default: the default device). */
  device?: DeviceName;
}

/**
 * Validates a pattern description and returns it with its defaults (`c` of a strided pattern
 * is unused and set to 0).
 */
export function checkPattern(op: string, p: unknown): PatternSpec {
  const { kind, stride, c, part } = (p ?? {}) as Partial<PatternSpec>;
  if (kind !== "strided" && kind !== "fixed") {
    throw new TypeError(`${op}: pattern must be "strided" or "fixed", got ${JSON.stringify(kind)}`);
  }
  checkIntAtLeast(op, "stride", stride, 1);
  if (part !== "a" && part !== "b" && part !== "union") {
    throw new TypeError(`${op}: part must be "a", "b" or "union", got ${JSON.stringify(part)}`);
  }
  if (kind === "strided") return { kind, stride: stride!, c: 0, part };
  checkIntAtLeast(op, "c", c, 1);
  if (c! > stride!) {
    throw new RangeError(`${op}: c (${c}) must be at most the stride (${stride}) of the block`);
  }
  return { kind, stride: stride!, c: c!, part };
}

/**
 * Whether query `i` attends to key `j`: the formulas of the module notes written out one by
 * one (the kernels use an equivalent compact form, checked against this one by the tests).
 */
export function patternMaskValue(p: PatternSpec, i: number, j: number): boolean {
  const l = p.stride;
  const a = p.kind === "strided"
    ? i - l < j && j <= i
    : j <= i && Math.floor(j / l) === Math.floor(i / l);
  const b = p.kind === "strided" ? j <= i && (i - j) % l === 0 : j <= i && j % l >= l - p.c;
  return p.part === "a" ? a : p.part === "b" ? b : a || b;
}

/**
 * The `[len, len]` bool mask of one pattern component (true = query row `i` attends to key
 * column `j`); `part` `"a"`, `"b"` or `"union"` of the two (see {@linkcode stridedPattern} and
 * {@linkcode fixedPattern}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * const m = nn.patternMask({ kind: "strided", stride: 2, c: 0, part: "union" }, 4);
 * const [T, F] = [true, false];
 * assert.deepEqual(await m.array(), [[T, F, F, F], [T, T, F, F], [T, T, T, F], [F, T, T, T]]);
 * ```
 */
export function patternMask(p: PatternSpec, len: number, options: PatternMaskOptions = {}): Tensor {
  const spec = checkPattern("patternMask", p);
  checkIntAtLeast("patternMask", "len", len, 1);
  const data = new Uint8Array(len * len);
  for (let i = 0; i < len; i++) {
    for (let j = 0; j <= i; j++) data[i * len + j] = patternMaskValue(spec, i, j) ? 1 : 0;
  }
  return fromTypedArray(data, [len, len], "bool", options.device);
}

/**
 * The two component masks of the strided pattern, each `[len, len]` bool (true = query row
 * `i` attends to key column `j`): head A sees the previous `stride` positions
 * (`i - stride < j <= i`, `j >= 0`), head B every `stride`-th position back
 * (`j <= i`, `(i - j) mod stride == 0`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * const [a, b] = nn.stridedPattern(4, 2);
 * const [T, F] = [true, false];
 * assert.deepEqual(await a.array(), [[T, F, F, F], [T, T, F, F], [F, T, T, F], [F, F, T, T]]);
 * assert.deepEqual(await b.array(), [[T, F, F, F], [F, T, F, F], [T, F, T, F], [F, T, F, T]]);
 * ```
 */
export function stridedPattern(
  len: number,
  stride: number,
  options: PatternMaskOptions = {},
): [Tensor, Tensor] {
  const a = patternMask({ kind: "strided", stride, c: 0, part: "a" }, len, options);
  try {
    return [a, patternMask({ kind: "strided", stride, c: 0, part: "b" }, len, options)];
  } catch (e) {
    a.dispose();
    throw e;
  }
}

/**
 * The two component masks of the fixed pattern, each `[len, len]` bool: head A sees its own
 * block of `stride` positions (`j <= i`, `floor(j / stride) == floor(i / stride)`), head B the
 * last `c` positions of every block (`j <= i`, `j mod stride >= stride - c`). Rows of head B
 * before the first summary position have no key at all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * const [a, b] = nn.fixedPattern(4, 2, 1);
 * const [T, F] = [true, false];
 * assert.deepEqual(await a.array(), [[T, F, F, F], [T, T, F, F], [F, F, T, F], [F, F, T, T]]);
 * assert.deepEqual(await b.array(), [[F, F, F, F], [F, T, F, F], [F, T, F, F], [F, T, F, T]]);
 * ```
 */
export function fixedPattern(
  len: number,
  stride: number,
  c: number,
  options: PatternMaskOptions = {},
): [Tensor, Tensor] {
  const a = patternMask({ kind: "fixed", stride, c, part: "a" }, len, options);
  try {
    return [a, patternMask({ kind: "fixed", stride, c, part: "b" }, len, options)];
  } catch (e) {
    a.dispose();
    throw e;
  }
}

/**
 * Whether the tile of queries `qs..qe` and keys `ks..ke` (inclusive, `ks <= qe`) holds an
 * attended pair, decided from the interval arithmetic of each component.
 */
function tileTouched(p: PatternSpec, qs: number, qe: number, ks: number, ke: number): boolean {
  const l = p.stride;
  // Over the tile, i - j takes every integer value in [qs - ke, qe - ks]; causal keeps >= 0.
  const lo = Math.max(0, qs - ke), hi = qe - ks;
  let a: boolean, b: boolean;
  if (p.kind === "strided") {
    a = lo <= l - 1;
    b = Math.ceil(lo / l) * l <= hi;
  } else {
    a = false;
    for (let t = Math.floor(ks / l); t <= Math.floor(Math.min(ke, qe) / l) && !a; t++) {
      const iHi = Math.min(qe, t * l + l - 1), iLo = Math.max(qs, t * l);
      const jLo = Math.max(ks, t * l), jHi = Math.min(ke, t * l + l - 1);
      a = iLo <= iHi && jLo <= jHi && jLo <= iHi;
    }
    const r = ks % l;
    const first = r >= l - p.c ? ks : ks - r + l - p.c;
    b = first <= Math.min(ke, qe);
  }
  return p.part === "a" ? a : p.part === "b" ? b : a || b;
}

/**
 * The block layout of a pattern: which `blockSize x blockSize` tiles of the `[len, len]` score
 * matrix hold at least one attended pair (never a tile above the diagonal tile). `len` need not
 * be a multiple of `blockSize`; the last block is short. Computed per tile by interval
 * arithmetic in `O(nBlocks^2)`, without building the mask.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * const layout = nn.blockLayout({ kind: "strided", stride: 4, c: 0, part: "a" }, 16, 4);
 * assert.equal(layout.tiles, 7); // the diagonal tiles and the tiles just below them
 * assert.deepEqual(nn.layoutTiles(layout), [[0, 0], [1, 0], [1, 1], [2, 1], [2, 2], [3, 2], [3, 3]]);
 * ```
 */
export function blockLayout(p: PatternSpec, len: number, blockSize: number): BlockLayout {
  const op = "blockLayout";
  const spec = checkPattern(op, p);
  checkIntAtLeast(op, "len", len, 1);
  checkIntAtLeast(op, "blockSize", blockSize, 1);
  const nb = Math.ceil(len / blockSize);
  const end = (t: number) => Math.min(t * blockSize + blockSize, len) - 1;
  const rowPtr = new Int32Array(nb + 1);
  const cols: number[] = [];
  const perCol = new Int32Array(nb);
  for (let qb = 0; qb < nb; qb++) {
    for (let kb = 0; kb <= qb; kb++) {
      if (tileTouched(spec, qb * blockSize, end(qb), kb * blockSize, end(kb))) {
        cols.push(kb);
        perCol[kb]++;
      }
    }
    rowPtr[qb + 1] = cols.length;
  }
  const colPtr = new Int32Array(nb + 1);
  for (let kb = 0; kb < nb; kb++) colPtr[kb + 1] = colPtr[kb] + perCol[kb];
  const rows = new Int32Array(cols.length);
  const fill = colPtr.slice(0, nb);
  for (let qb = 0; qb < nb; qb++) {
    for (let t = rowPtr[qb]; t < rowPtr[qb + 1]; t++) rows[fill[cols[t]]++] = qb;
  }
  return Object.freeze({
    len,
    blockSize,
    nBlocks: nb,
    rowPtr,
    cols: Int32Array.from(cols),
    colPtr,
    rows,
    tiles: cols.length,
  });
}

/**
 * The tiles of a layout as `[queryBlock, keyBlock]` pairs, by query block then key block.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * const l = nn.blockLayout({ kind: "fixed", stride: 2, c: 1, part: "b" }, 6, 2);
 * assert.deepEqual(nn.layoutTiles(l), [[0, 0], [1, 0], [1, 1], [2, 0], [2, 1], [2, 2]]);
 * ```
 */
export function layoutTiles(layout: BlockLayout): [number, number][] {
  const out: [number, number][] = [];
  for (let qb = 0; qb < layout.nBlocks; qb++) {
    for (let t = layout.rowPtr[qb]; t < layout.rowPtr[qb + 1]; t++) out.push([qb, layout.cols[t]]);
  }
  return out;
}
