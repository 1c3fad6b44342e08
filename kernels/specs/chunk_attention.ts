/**
 * Spec of the fused chunk-attention kernels (forward and backward). Inputs, in order: `q`,
 * `k`, `v`, `qpos`, `kcode`, then `bias` when `hasBias`; the backward kernel then takes
 * `stat`, `dO` and `delta`.
 * @module
 */

/** Sizes and flags of one fused chunk-attention call. */
export interface ChunkAttnSpec {
  /** Independent rows `R`. */
  readonly rows: number;
  /** Queries per row `C`. */
  readonly nq: number;
  /** Key slots per row `K` (`offsets.length * kc`). */
  readonly nk: number;
  /** Keys per row of `k` and `v`, `Kc`. */
  readonly kc: number;
  /** Chunk offsets of the key-slot blocks (`[0]`: a row's own keys only). */
  readonly offsets: readonly number[];
  /** Rows per group the offsets wrap around (divides `rows`). */
  readonly chunks: number;
  /** Head width `D`. */
  readonly dim: number;
  /** Mask keys whose position is after the query's. */
  readonly causal: boolean;
  /** Give a query's logit against its own position `selfValue`. */
  readonly selfMask: boolean;
  /** Whether a `[R, C, K]` bias is added to the logits. */
  readonly hasBias: boolean;
  /**
   * Set by `ops/widen.ts` for a kernel whose backend reads f16 (`readsF16`): the float
   * operands are f16, and so are the outputs that carry their precision (not the statistics).
   */
  readonly half?: boolean;
  /** Replacement for masked logits (`-1e9` in f32). */
  readonly maskValue: number;
  /** Replacement for self logits (`-1e5` in f32). */
  readonly selfValue: number;
}

/** The inputs with `null` in the bias slot when the spec has no bias. */
export function withBias<S>(inputs: readonly S[], spec: ChunkAttnSpec): (S | null)[] {
  return spec.hasBias ? [...inputs] : [...inputs.slice(0, 5), null, ...inputs.slice(5)];
}
