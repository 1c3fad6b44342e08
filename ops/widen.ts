/**
 * Mixed precision for fused primitives whose kernels compute in f32: a kernel that reads f16
 * operands itself (the backend's `readsF16`) gets them as they are; for any other, f16
 * operands are widened to f32 copies for the one call and freed after it. The outputs that
 * carry the operands' precision are rounded back to f16. The primitive itself takes and saves
 * its f16 operands, so what autodiff keeps for the backward pass is half the size of f32.
 * @module
 */
import { type KernelOutput, launch } from "./primitive.ts";
import { backendOf } from "../kernels/backend.ts";
import { deviceOf, type Tensor } from "./tensor.ts";
import { runElementwise } from "./elementwise.ts";

/**
 * Launches kernel `name` as {@linkcode launch} does, except that when the first input is f16
 * and the kernel does not read f16 itself, every f16 input is read through an f32 copy made
 * for this call; either way the outputs at the
 * indices in `narrow` come back as f16 (the others, such as softmax or normalisation
 * statistics, stay f32).
 */
export function launchWidened(
  name: string,
  xs: readonly Tensor[],
  spec: unknown,
  outputs: KernelOutput[],
  narrow: readonly number[],
): Tensor[] {
  if (xs[0].dtype !== "f16") return launch(name, xs, spec, outputs);
  const direct = backendOf(deviceOf(xs[0])).readsF16?.(name) ?? false;
  if (direct) {
    // The kernel reads f16 and writes the narrowed outputs as f16 itself (`half` in its spec).
    const half = outputs.map((o, i) => narrow.includes(i) ? { ...o, dtype: "f16" as const } : o);
    return launch(name, xs, { ...(spec as object), half: true }, half);
  }
  const wide = direct
    ? xs
    : xs.map((t) => t.dtype === "f16" ? runElementwise("cast", [t], t.shape, "f32") : t);
  let outs: Tensor[];
  try {
    outs = launch(name, wide, spec, outputs);
  } finally {
    wide.forEach((t, i) => t !== xs[i] && t.dispose());
  }
  return outs.map((t, i) => {
    if (!narrow.includes(i)) return t;
    using wideOut = t;
    return runElementwise("cast", [wideOut], wideOut.shape, "f16");
  });
}
