/**
 * Spec of the elementwise kernels, one per op name (`add`, `exp`, `cast`, `where`, `copy`,
 * ...): `out[i] = op(a, b, c)` over up to three inputs read through strides (broadcast,
 * transposed or sliced) into a fresh contiguous output. Each backend keeps its expression of
 * every op in a table keyed by the op name (`kernels/<backend>/elementwise_ops.ts`).
 * @module
 */
import type { DType } from "../dtype.ts";
import type { Storage } from "../device.ts";
import type { StridedInput } from "../strided.ts";

/** Spec of an elementwise kernel. */
export interface ElementwiseSpec {
  /** How each input is read: dtype, strides over the output shape, element offset. */
  readonly inputs: readonly Omit<StridedInput, "storage">[];
  /** The output's shape. */
  readonly shape: readonly number[];
  /** The output's dtype. */
  readonly dtype: DType;
}

/** The spec's inputs joined with their storages. */
export function stridedInputs(
  storages: readonly Storage[],
  spec: ElementwiseSpec,
): StridedInput[] {
  return spec.inputs.map((x, i) => ({ ...x, storage: storages[i] }));
}
