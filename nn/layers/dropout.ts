/**
 * Dropout with an explicit, replayable key.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { mul } from "../../ops/binary.ts";
import { where } from "../../ops/compare.ts";
import { reshape } from "../../ops/shape.ts";
import * as random from "../../ops/random.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import { checkDropoutRate, checkFloat } from "../validate.ts";

/** Options of {@linkcode dropout}. */
export interface DropoutOptions {
  /** Probability of zeroing each element, in `[0, 1)`. */
  rate: number;
}

/**
 * Applies dropout to `x`: each element is kept with probability `1 - rate` and scaled by
 * `1 / (1 - rate)`, else zeroed; the mask is `random.bernoulli(key, 1 - rate, x.shape)`, so the
 * same key gives the same mask (this is what lets checkpointed and reversible layers replay it
 * exactly). Returns a new handle on `x` (no copy) when `training` is false or `rate` is 0.
 *
 * Shapes: `x: [...]` to the same shape. Throws a TypeError when training without a key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const y = nn.applyDropout(ones([2, 4]), 0.5, { key: random.key(1), training: true });
 * const again = nn.applyDropout(ones([2, 4]), 0.5, { key: random.key(1), training: true });
 * const values = Array.from(await y.data());
 * assert.ok(values.every((v) => v === 0 || v === 2)); // kept entries scaled by 1 / (1 - rate)
 * assert.deepEqual(Array.from(await again.data()), values); // the same key, the same mask
 * ```
 */
export function applyDropout(x: Tensor, rate: number, opts: ApplyOptions = {}): Tensor {
  checkDropoutRate("dropout", rate);
  if (!(x instanceof Tensor)) throw new TypeError(`dropout: x must be a Tensor, got ${typeof x}`);
  if (!opts.training || rate === 0) return reshape(x, x.shape);
  if (!(opts.key instanceof Tensor)) {
    throw new TypeError(
      `dropout: training mode needs a PRNG key (opts.key) for the mask of x ${fmt(x.shape)}`,
    );
  }
  checkFloat("dropout", "x", x);
  using keepMask = random.bernoulli(opts.key, 1 - rate, x.shape);
  using scaled = mul(x, 1 / (1 - rate));
  // where (not a multiply by 0/1) so an inf or NaN in a dropped entry does not leak through.
  return where(keepMask, scaled, 0);
}

/**
 * The dropout layer (no params): `apply(params, x, { key, training })` calls
 * {@linkcode applyDropout}. Identity unless `training`.
 *
 * Shapes: `x: [...]` to the same shape; params `{}`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const drop = nn.dropout({ rate: 0.1 });
 * const y = drop.apply(drop.init(random.key(0)), ones([8]), { key: random.key(1), training: true });
 * assert.ok(Array.from(await y.data()).every((v) => v === 0 || Math.abs(v - 1 / 0.9) < 1e-6));
 * assert.deepEqual(await drop.apply({}, ones([2])).array(), [1, 1]); // identity at inference
 * ```
 */
export function dropout(options: DropoutOptions): Layer<Record<string, never>> {
  const rate = options?.rate;
  checkDropoutRate("dropout", rate);
  return {
    init: () => ({}),
    apply: (_params, x, opts) => applyDropout(x, rate, opts),
  };
}
