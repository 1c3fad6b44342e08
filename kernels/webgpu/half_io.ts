/**
 * WGSL for kernels that compute in f32 but may read and write f16 (mixed precision, `half` in
 * their spec): the element type of the operand bindings, a widening load and a rounding store.
 * @module
 */
import { TO_F16 } from "./elementwise_ops.ts";

/** WGSL element type of the float operands and of the outputs of their precision. */
export const floatOf = (half: boolean | undefined): "f16" | "f32" => half ? "f16" : "f32";

/** A load of an operand element widened to f32 (f32 data is read as it is). */
export const load = (half: boolean | undefined, v: string): string => half ? `f32(${v})` : v;

/**
 * An f32 value as stored in an output of the operands' precision: rounded to nearest even,
 * since WGSL's `f16(x)` is undefined out of range and may round either way.
 */
export const store = (half: boolean | undefined, v: string): string => half ? `to_f16_(${v})` : v;

/** The WGSL functions {@linkcode store} calls (none for f32). */
export const storeHelpers = (half: boolean | undefined): string => half ? TO_F16 : "";
