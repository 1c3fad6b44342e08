/**
 * Root-mean-square normalisation over the last axis, with a learned scale (no centring, no
 * bias), as in T5 and LLaMA.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { add, mul } from "../../ops/binary.ts";
import { ones } from "../../ops/creation.ts";
import { mean } from "../../ops/reduce.ts";
import { rsqrt, square } from "../../ops/unary.ts";
import type { Layer } from "../layer.ts";
import { checkLastDim, checkNonNegative, checkParam, checkPositiveInt } from "../validate.ts";

/** Options of {@linkcode rmsNorm}. */
export interface RmsNormOptions {
  /** Size of the normalised (last) axis. */
  dim: number;
  /** Added to the mean square before the square root (default `1e-6`, as Flax). */
  eps?: number;
}

/** Params of {@linkcode rmsNorm}: `scale: [dim]` (ones at init). */
export interface RmsNormParams {
  /** Multiplies the normalised values, `[dim]`. */
  scale: Tensor;
  /** Params are plain objects (pytrees), indexable by key. */
  [k: string]: Tensor;
}

/**
 * `y = x / sqrt(mean(x^2) + eps) * scale`, the mean taken over the last axis. A composition
 * of elementwise ops and a reduction, so its gradient comes from its parts.
 *
 * Shapes: `x: [..., dim]` to `y: [..., dim]`; param `scale: [dim]`. The init key is unused
 * (the params are deterministic) but accepted for the layer contract; params are created on
 * the key's device.
 *
 * @example
 * ```ts
 * import { assertAllClose, nn, random, tensor } from "@longseq/tensor";
 * const norm = nn.rmsNorm({ dim: 2, eps: 0 });
 * const y = norm.apply(norm.init(random.key(0)), tensor([[3, 4]]));
 * await assertAllClose(y, [[3 / Math.sqrt(12.5), 4 / Math.sqrt(12.5)]]);
 * ```
 */
export function rmsNorm(options: RmsNormOptions): Layer<RmsNormParams> {
  const { dim, eps = 1e-6 } = options ?? {};
  checkPositiveInt("rmsNorm", "dim", dim);
  checkNonNegative("rmsNorm", "eps", eps);
  return {
    init(key) {
      return { scale: ones([dim], { device: key.device }) };
    },
    apply(params, x) {
      checkLastDim("rmsNorm", x, dim);
      checkParam("rmsNorm", "scale", params?.scale, [dim]);
      using sq = square(x);
      using ms = mean(sq, -1, { keepdims: true });
      using mse = add(ms, eps);
      using inv = rsqrt(mse);
      using normed = mul(x, inv);
      return mul(normed, params.scale);
    },
  };
}
