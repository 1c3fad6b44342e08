/**
 * The dense (affine) layer: `y = x W + b` over the last axis.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { add, mul } from "../../ops/binary.ts";
import { zeros } from "../../ops/creation.ts";
import { matmul } from "../../ops/matmul.ts";
import { reshape } from "../../ops/shape.ts";
import * as random from "../../ops/random.ts";
import type { Layer } from "../layer.ts";
import { checkLastDim, checkNonNegative, checkParam, checkPositiveInt } from "../validate.ts";

/** Options of {@linkcode linear}. */
export interface LinearOptions {
  /** Size of the input's last axis. */
  inFeatures: number;
  /** Size of the output's last axis. */
  outFeatures: number;
  /** Whether to add a learned bias (default true). */
  bias?: boolean;
  /**
   * Standard deviation of the weights at init. Default: Glorot (Xavier) normal,
   * `sqrt(2 / (inFeatures + outFeatures))`, which keeps activations and gradients at unit scale
   * through a stack of layers.
   */
  initStd?: number;
}

/** Params of {@linkcode linear}: `w: [inFeatures, outFeatures]`, `b: [outFeatures]` (when biased). */
export interface LinearParams {
  /** Weights, `[inFeatures, outFeatures]`. */
  w: Tensor;
  /** Bias, `[outFeatures]` (absent with `bias: false`). */
  b?: Tensor;
  /** Params are plain objects (pytrees), indexable by key. */
  [k: string]: Tensor | undefined;
}

/**
 * A dense layer `y = x @ w + b` on the last axis.
 *
 * Shapes: `x: [..., inFeatures]` to `y: [..., outFeatures]`; params `w: [inFeatures,
 * outFeatures]` (Glorot normal at init, see {@linkcode LinearOptions.initStd}) and `b:
 * [outFeatures]` (zeros). Leading axes are flattened into one before the product, so the
 * weight gradient is one `[in, out]` product rather than one per batch entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const layer = nn.linear({ inFeatures: 4, outFeatures: 3 });
 * const params = layer.init(random.key(0));
 * const y = layer.apply(params, ones([2, 5, 4]));
 * assert.deepEqual(y.shape, [2, 5, 3]);
 * assert.deepEqual(params.w.shape, [4, 3]);
 * ```
 */
export function linear(options: LinearOptions): Layer<LinearParams> {
  const { inFeatures, outFeatures, bias = true } = options ?? {};
  checkPositiveInt("linear", "inFeatures", inFeatures);
  checkPositiveInt("linear", "outFeatures", outFeatures);
  const std = options.initStd ?? Math.sqrt(2 / (inFeatures + outFeatures));
  checkNonNegative("linear", "initStd", std);
  return {
    init(key) {
      using n = random.normal(key, [inFeatures, outFeatures]);
      const w = mul(n, std);
      return bias ? { w, b: zeros([outFeatures], { device: w.device }) } : { w };
    },
    apply(params, x) {
      checkLastDim("linear", x, inFeatures);
      checkParam("linear", "w", params?.w, [inFeatures, outFeatures]);
      if (bias) checkParam("linear", "b", params.b, [outFeatures]);
      return affine(params.w, bias ? params.b : undefined, x);
    },
  };
}

/** `x @ w (+ b)` with the leading axes of `x` flattened (shapes already checked). */
export function affine(w: Tensor, b: Tensor | undefined, x: Tensor): Tensor {
  const lead = x.shape.slice(0, -1);
  const flat = x.rank === 2 ? null : reshape(x, [-1, x.shape[x.rank - 1]]);
  try {
    using y = matmul(flat ?? x, w);
    using yb = b ? add(y, b) : null;
    return reshape(yb ?? y, [...lead, w.shape[1]]);
  } finally {
    flat?.dispose();
  }
}
