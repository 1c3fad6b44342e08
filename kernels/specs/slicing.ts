/**
 * Spec of the `place` kernel behind concat, pad and the slice gradient: a fresh output,
 * optionally filled with a constant, into which each input (in order) is written once.
 * @module
 */
import type { DType } from "../dtype.ts";
import type { Storage } from "../device.ts";

/**
 * One input of a place kernel: a contiguous `shape` whose element at index `i[]` lands at
 * output element `offset + sum(i[d] * strides[d])`. Strides may be negative (reversed steps).
 */
export interface Placed {
  readonly storage: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/** Spec of `place`: the output and where each input lands (inputs: the pieces' storages). */
export interface PlaceSpec {
  readonly dtype: DType;
  /** Elements of the output. */
  readonly size: number;
  /** Value of the elements no piece covers (undefined when the pieces cover everything). */
  readonly fill: number | undefined;
  /** Where each input lands. */
  readonly pieces: readonly Omit<Placed, "storage">[];
}

/** The pieces of a place spec joined with their storages. */
export function placed(inputs: readonly Storage[], spec: PlaceSpec): Placed[] {
  return spec.pieces.map((p, i) => ({ ...p, storage: inputs[i] }));
}
