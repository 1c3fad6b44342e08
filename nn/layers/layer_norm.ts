/**
 * Layer normalisation over the last axis, with a learned scale and bias.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { cast } from "../../ops/binary.ts";
import { ones, zeros } from "../../ops/creation.ts";
import { fusedLayerNorm } from "../../ops/layer_norm.ts";
import type { Layer } from "../layer.ts";
import { checkLastDim, checkNonNegative, checkParam, checkPositiveInt } from "../validate.ts";

/** Options of {@linkcode layerNorm}. */
export interface LayerNormOptions {
  /** Size of the normalised (last) axis. */
  dim: number;
  /** Added to the variance before the square root (default `1e-6`, as trax). */
  eps?: number;
}

/** Params of {@linkcode layerNorm}: `scale: [dim]` (ones at init) and `bias: [dim]` (zeros). */
export interface LayerNormParams {
  /** Multiplies the normalised values, `[dim]`. */
  scale: Tensor;
  /** Added after scaling, `[dim]`. */
  bias: Tensor;
  /** Params are plain objects (pytrees), indexable by key. */
  [k: string]: Tensor;
}

/**
 * `y = (x - mean) / sqrt(var + eps) * scale + bias`, with the mean and (population) variance
 * taken over the last axis. One fused primitive ({@linkcode fusedLayerNorm}): a single kernel
 * forward and a single kernel backward, which keeps only `x`, `scale` and each row's mean and
 * reciprocal standard deviation for the backward pass. An f16 input (mixed precision) is
 * normalised in f32 arithmetic and the result rounded back to f16.
 *
 * Shapes: `x: [..., dim]` to `y: [..., dim]`; params `scale: [dim]`, `bias: [dim]`. The init
 * key is unused (the params are deterministic) but accepted for the layer contract; params are
 * created on the key's device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, nn, random, tensor } from "@longseq/tensor";
 * const ln = nn.layerNorm({ dim: 3 });
 * const y = ln.apply(ln.init(random.key(0)), tensor([[1, 2, 3]]));
 * assert.ok(await allClose(y, [[-1.2247, 0, 1.2247]], { rtol: 1e-4, atol: 1e-4 }));
 * ```
 */
export function layerNorm(options: LayerNormOptions): Layer<LayerNormParams> {
  const { dim, eps = 1e-6 } = options ?? {};
  checkPositiveInt("layerNorm", "dim", dim);
  checkNonNegative("layerNorm", "eps", eps);
  return {
    init(key) {
      const device = key.device;
      return { scale: ones([dim], { device }), bias: zeros([dim], { device }) };
    },
    apply(params, x) {
      checkLastDim("layerNorm", x, dim);
      checkParam("layerNorm", "scale", params?.scale, [dim]);
      checkParam("layerNorm", "bias", params.bias, [dim]);
      // Under mixed precision the params may be f32 masters of an f16 input: x's dtype wins
      // (the kernels widen f16 to f32 for the arithmetic and statistics either way).
      using scale = params.scale.dtype === x.dtype ? null : cast(params.scale, x.dtype);
      using bias = params.bias.dtype === x.dtype ? null : cast(params.bias, x.dtype);
      return fusedLayerNorm(x, {
        scale: scale ?? params.scale,
        bias: bias ?? params.bias,
        eps,
      });
    },
  };
}
