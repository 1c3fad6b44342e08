/**
 * The position-wise feed-forward block of a Transformer.
 * @module
 */
import * as random from "../../ops/random.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import { linear, type LinearParams } from "./linear.ts";
import { applyDropout } from "./dropout.ts";
import { type ActivationFn, type ActivationName, resolveActivation } from "./activation.ts";
import { checkDropoutRate, checkLastDim, checkParam, checkPositiveInt } from "../validate.ts";

/** Options of {@linkcode feedForward}. */
export interface FeedForwardOptions {
  /** Size of the input and output (last) axis. */
  dModel: number;
  /** Size of the hidden axis. */
  dFF: number;
  /**
   * Hidden activation: a name (default `"gelu"`, the tanh approximation; see
   * {@linkcode ActivationName}) or any elementwise function of a tensor.
   */
  activation?: ActivationName | ActivationFn;
  /** Dropout rate on the hidden activation when training (default 0). */
  dropout?: number;
}

/** Params of {@linkcode feedForward}: the two dense layers. */
export interface FeedForwardParams {
  /** `dModel -> dFF`: `w: [dModel, dFF]`, `b: [dFF]`. */
  in: LinearParams;
  /** `dFF -> dModel`: `w: [dFF, dModel]`, `b: [dModel]`. */
  out: LinearParams;
  /** Params are plain objects (pytrees), indexable by key. */
  [k: string]: LinearParams;
}

/**
 * `y = dropout(act(x W1 + b1)) W2 + b2`, applied independently at every position, so it can be
 * wrapped in {@linkcode chunked} to hold only a slice of the `dFF`-wide hidden activation at a
 * time. Dropout (hidden only; residual dropout belongs to the enclosing block) draws its mask
 * from `opts.key` and is off unless `opts.training`.
 *
 * Shapes: `x: [..., dModel]` to `y: [..., dModel]`; params `in.w: [dModel, dFF]`,
 * `in.b: [dFF]`, `out.w: [dFF, dModel]`, `out.b: [dModel]` (Glorot normal weights, zero biases).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const ff = nn.feedForward({ dModel: 8, dFF: 32, activation: "relu" });
 * const y = ff.apply(ff.init(random.key(0)), ones([2, 5, 8]));
 * assert.deepEqual(y.shape, [2, 5, 8]);
 * const swiglu = nn.feedForward({ dModel: 8, dFF: 32, activation: "silu" });
 * const z = swiglu.apply(swiglu.init(random.key(1)), ones([2, 8]));
 * assert.deepEqual(z.shape, [2, 8]);
 * ```
 */
export function feedForward(options: FeedForwardOptions): Layer<FeedForwardParams> {
  const { dModel, dFF, activation = "gelu", dropout = 0 } = options ?? {};
  checkPositiveInt("feedForward", "dModel", dModel);
  checkPositiveInt("feedForward", "dFF", dFF);
  const act = resolveActivation("feedForward", activation);
  checkDropoutRate("feedForward", dropout);
  const first = linear({ inFeatures: dModel, outFeatures: dFF });
  const second = linear({ inFeatures: dFF, outFeatures: dModel });
  return {
    init(key) {
      const [k1, k2] = random.splitN(key, 2);
      try {
        return { in: first.init(k1), out: second.init(k2) };
      } finally {
        k1.dispose();
        k2.dispose();
      }
    },
    apply(params, x, opts: ApplyOptions = {}) {
      if (params === null || typeof params !== "object") {
        throw new TypeError(`feedForward: params must be { in, out }, got ${typeof params}`);
      }
      checkLastDim("feedForward", x, dModel);
      checkParam("feedForward", "in.w", params.in?.w, [dModel, dFF]);
      checkParam("feedForward", "out.w", params.out?.w, [dFF, dModel]);
      using h = first.apply(params.in, x);
      using a = act(h);
      using d = applyDropout(a, dropout, opts);
      return second.apply(params.out, d);
    },
  };
}
