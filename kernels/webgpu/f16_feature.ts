/**
 * The `shader-f16` feature: f16 tensors live on the GPU as `array<f16>`, which needs it (and
 * `enable f16;` in the shader), and the optional features the device is requested with.
 * @module
 */

/** The WebGPU feature that f16 storage (`array<f16>` in shaders) needs. */
export const F16_FEATURE = "shader-f16";

/**
 * Throws a TypeError naming the missing `shader-f16` feature when `features` lacks it: f16
 * tensors live on the GPU as `array<f16>`, which needs the feature (and `enable f16;`).
 */
export function requireF16(
  features: { has(name: string): boolean },
  adapter: string,
  what = "f16 tensors",
): void {
  if (!features.has(F16_FEATURE)) {
    throw new TypeError(
      `webgpu: ${what} need the WebGPU feature "${F16_FEATURE}", which the adapter ` +
        `(${adapter}) does not offer; use f32, or the cpu device for f16`,
    );
  }
}

/** Whether WGSL source uses the `f16` type (it then needs `enable f16;`). */
export const USES_F16 = /\bf16\b/;

/**
 * The optional features the adapter has: `timestamp-query` (used only while a profile is
 * open) and `shader-f16` (f16 tensors).
 */
export function optionalFeatures(adapter: GPUAdapter): GPUFeatureName[] {
  return (["timestamp-query", F16_FEATURE] as const).filter((f) => adapter.features.has(f));
}
