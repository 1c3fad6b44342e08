/**
 * Numeric comparison helpers for tests and users: `allClose` and `assertAllClose` compare
 * tensors, typed arrays, nested arrays or numbers elementwise with NumPy's rule
 * `|a - b| <= atol + rtol * |b|` (NaNs equal only when `equalNan`).
 * @module
 */
import { Tensor } from "./tensor.ts";

/** Tolerances for {@linkcode allClose}. */
export interface CloseOptions {
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  /** Treat NaN as equal to NaN (default true). */
  equalNan?: boolean;
}

/** Values {@linkcode allClose} accepts: tensors, typed or nested arrays, numbers. */
export type Values = Tensor | ArrayLike<number> | number | readonly unknown[];

async function flat(v: Values): Promise<{ values: ArrayLike<number>; shape: number[] | null }> {
  if (v instanceof Tensor) return { values: await v.data(), shape: [...v.shape] };
  if (typeof v === "number") return { values: [v], shape: [] };
  if (ArrayBuffer.isView(v)) return { values: v as unknown as ArrayLike<number>, shape: null };
  const out: number[] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else out.push(typeof x === "boolean" ? Number(x) : (x as number));
  };
  walk(v);
  return { values: out, shape: null };
}

/**
 * The worst mismatch between two value sets, or null when they are close. Shapes must match
 * when both are tensors; arrays are compared flattened.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeReport, tensor } from "@longseq/tensor";
 * assert.equal(await closeReport(tensor([1, 2]), [1, 2.000001]), null);
 * assert.equal(
 *   await closeReport(tensor([1, 2, 3]), [1, 2, 4]),
 *   "1 of 3 values differ (rtol 0.00001, atol 0.000001); worst at flat index 2: 3 vs 4",
 * );
 * ```
 */
export async function closeReport(
  actual: Values,
  expected: Values,
  options: CloseOptions = {},
): Promise<string | null> {
  const { rtol = 1e-5, atol = 1e-6, equalNan = true } = options;
  const a = await flat(actual);
  const b = await flat(expected);
  if (a.shape && b.shape && a.shape.join(",") !== b.shape.join(",")) {
    return `shapes differ: [${a.shape}] vs [${b.shape}]`;
  }
  if (a.values.length !== b.values.length) {
    return `sizes differ: ${a.values.length} vs ${b.values.length}`;
  }
  let worst = -1, worstExcess = 0, bad = 0;
  for (let i = 0; i < a.values.length; i++) {
    const x = Number(a.values[i]), y = Number(b.values[i]);
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (!(equalNan && Number.isNaN(x) && Number.isNaN(y))) {
        bad++;
        if (worstExcess !== Infinity) (worst = i, worstExcess = Infinity);
      }
      continue;
    }
    if (x === y) continue;
    const excess = Math.abs(x - y) - (atol + rtol * Math.abs(y));
    if (excess > 0 || !Number.isFinite(excess)) {
      bad++;
      if (!(excess <= worstExcess)) (worst = i, worstExcess = excess);
    }
  }
  if (bad === 0) return null;
  return `${bad} of ${a.values.length} values differ (rtol ${rtol}, atol ${atol}); worst at ` +
    `flat index ${worst}: ${a.values[worst]} vs ${b.values[worst]}`;
}

/**
 * Whether two tensors/arrays are elementwise close.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, tensor } from "@longseq/tensor";
 * assert.equal(await allClose(tensor([1, 2]), [1, 2.000001]), true);
 * assert.equal(await allClose(tensor([1, 2]), [1, 2.1]), false);
 * ```
 */
export async function allClose(
  actual: Values,
  expected: Values,
  options?: CloseOptions,
): Promise<boolean> {
  return (await closeReport(actual, expected, options)) === null;
}

/**
 * Throws an Error describing the worst mismatch unless the values are close (see
 * {@linkcode closeReport}); `message` prefixes the error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertAllClose, tensor } from "@longseq/tensor";
 * await assertAllClose(tensor([[0.1, 0.2]]), [[0.1, 0.2]]); // f32 rounding is within rtol
 * await assert.rejects(assertAllClose(tensor([1]), [1.1], { message: "w" }), /^Error: w: 1 of 1/);
 * ```
 */
export async function assertAllClose(
  actual: Values,
  expected: Values,
  options?: CloseOptions & { message?: string },
): Promise<void> {
  const report = await closeReport(actual, expected, options);
  if (report) throw new Error(`${options?.message ? options.message + ": " : ""}${report}`);
}

/**
 * mulberry32: a small, fast, seeded PRNG of uniform numbers in `[0, 1)` for test inputs and
 * data sampling (host-side; model randomness uses PRNG keys, `random.key`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mulberry32 } from "@longseq/tensor";
 * const a = mulberry32(7), b = mulberry32(7);
 * const x = a();
 * assert.ok(x >= 0 && x < 1);
 * assert.equal(b(), x); // same seed, same stream
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
