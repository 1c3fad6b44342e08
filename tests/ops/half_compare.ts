/**
 * Helpers of the mixed-precision kernel tests: f16-valued inputs, the tolerance of an f16
 * result against f32, and a forced choice of WebGPU attention kernel.
 */
import type { Tensor } from "../../mod.ts";
import { assertAllClose } from "../../ops/testing.ts";
import { randomArray } from "../util.ts";

/** Rounds to the nearest f16. */
export const h = Math.f16round;

/** About two f16 ulps, relative (an ulp is 2^-10 of the leading power of two). */
export const RTOL = 2 ** -9;

/** Tolerance of f16 gradients, relative to the largest f32 value (a few ulps of rounding). */
export const GRAD_RTOL = 8 * 2 ** -10;

/** `n` values in `[lo, hi)` rounded to f16, so the f16 and f32 runs read the same numbers. */
export const halfValues = (rand: () => number, n: number, lo = -1, hi = 1): number[] =>
  [...randomArray(rand, n, lo, hi)].map(h);

/** Runs `fn` with `LONGSEQ_ATTN_KERNEL` set to `kind` (the WebGPU attention kernel choice). */
export async function withKernel<R>(kind: "rows" | "tiled", fn: () => Promise<R>): Promise<R> {
  const prev = Deno.env.get("LONGSEQ_ATTN_KERNEL");
  Deno.env.set("LONGSEQ_ATTN_KERNEL", kind);
  try {
    return await fn();
  } finally {
    if (prev === undefined) Deno.env.delete("LONGSEQ_ATTN_KERNEL");
    else Deno.env.set("LONGSEQ_ATTN_KERNEL", prev);
  }
}

/** Asserts the f16 `got` within `rtol` of the f32 `want`, relative to `want`'s largest value. */
export async function assertNear(got: Tensor, want: Tensor, rtol: number, message: string) {
  const w = [...await want.data()].map(Number);
  const scale = w.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  await assertAllClose(got, w, { rtol, atol: rtol * scale, message });
}

/** The f16 `got` within two ulps of the f32 `want` rounded to f16. */
export async function assertRounded(got: Tensor, want: Tensor, atol: number, message: string) {
  const w = [...await want.data()].map(h);
  await assertAllClose(got, w, { rtol: RTOL, atol, message });
}
