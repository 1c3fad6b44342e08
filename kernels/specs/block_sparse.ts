/**
 * Spec of the block-sparse attention kernels: the factorised pattern, its tile layout and the
 * tensor geometry.
 * @module
 */

/**
 * A causal factorised pattern with stride `l` (Child et al. 2019). Component `a` is the local
 * part (strided: the previous `l` positions; fixed: the own block), `b` the long-range part
 * (strided: every `l`-th position back; fixed: the last `c` positions of every block).
 */
export interface PatternSpec {
  /** `"strided"` or `"fixed"`. */
  readonly kind: "strided" | "fixed";
  /** The stride `l` (block length of the fixed pattern). */
  readonly stride: number;
  /** Summary positions per block of the fixed pattern (`1 <= c <= stride`; unused if strided). */
  readonly c: number;
  /** Which component: `"a"`, `"b"` or their union (`"union"`, the merged head). */
  readonly part: "a" | "b" | "union";
}

/**
 * The score tiles one pattern touches, as compressed lists in both directions. Block `t`
 * covers positions `t * blockSize ... min((t + 1) * blockSize, len) - 1`.
 */
export interface BlockLayout {
  /** Sequence length the layout was made for. */
  readonly len: number;
  /** Tile side. */
  readonly blockSize: number;
  /** `ceil(len / blockSize)`. */
  readonly nBlocks: number;
  /** Query block `qb` visits key blocks `cols[rowPtr[qb] ... rowPtr[qb + 1] - 1]` (ascending). */
  readonly rowPtr: Int32Array;
  /** Key block of each tile, grouped by query block. */
  readonly cols: Int32Array;
  /** Key block `kb` is visited by query blocks `rows[colPtr[kb] ... colPtr[kb + 1] - 1]`. */
  readonly colPtr: Int32Array;
  /** Query block of each tile, grouped by key block. */
  readonly rows: Int32Array;
  /** Number of tiles (`cols.length`). */
  readonly tiles: number;
}

/** What the kernels need: the pattern, its layout and the tensor geometry. */
export interface BlockSparseSpec {
  /** `batch * heads` independent sequences. */
  readonly groups: number;
  /** Heads per batch row (a key mask row serves `heads` consecutive groups). */
  readonly heads: number;
  /** Sequence length. */
  readonly n: number;
  /** Width of a query, key and value vector. */
  readonly d: number;
  readonly pattern: PatternSpec;
  readonly layout: BlockLayout;
  /**
   * Set by `ops/widen.ts` for a kernel whose backend reads f16 (`readsF16`): `q`, `k`, `v`
   * and `dout` are f16, and so are `o`, `dq`, `dk` and `dv` (not `lse` nor `delta`).
   */
  readonly half?: boolean;
}
