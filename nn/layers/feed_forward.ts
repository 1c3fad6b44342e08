/**
 * The position-wise feed-forward block of a Transformer.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { gelu, relu } from "../../ops/unary.ts";
import * as random from "../../ops/random.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import { checkLastDim, checkParam, checkPositiveInt, linear, type LinearParams } from "./linear.ts";
import { applyDropout, checkRate } from "./dropout.ts";

/** Options of {@linkcode feedForward}. */
export interface FeedForwardOptions {
  /** Size of the input and output (last) axis. */
  dModel: number;
  /** Size of the hidden axis. */
  dFF: number;
  /**
   * Hidden activation (default `"gelu"`, the tanh approximation; `"gelu_exact"` is the erf
   * form).
   */
  activation?: "gelu" | "relu" | "gelu_exact";
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
 * import { nn, ones, random } from "@longseq/tensor";
 * const ff = nn.feedForward({ dModel: 8, dFF: 32, activation: "relu" });
 * const y = ff.apply(ff.init(random.key(0)), ones([2, 5, 8])); // [2, 5, 8]
 * ```
 */
export function feedForward(options: FeedForwardOptions): Layer<FeedForwardParams> {
  const { dModel, dFF, activation = "gelu", dropout = 0 } = options ?? {};
  checkPositiveInt("feedForward", "dModel", dModel);
  checkPositiveInt("feedForward", "dFF", dFF);
  if (activation !== "gelu" && activation !== "relu" && activation !== "gelu_exact") {
    throw new TypeError(
      `feedForward: activation must be "gelu" or "relu" (or "gelu_exact"), got ${
        JSON.stringify(activation)
      }`,
    );
  }
  checkRate("feedForward", dropout);
  const first = linear({ inFeatures: dModel, outFeatures: dFF });
  const second = linear({ inFeatures: dFF, outFeatures: dModel });
  const act = activation === "relu"
    ? relu
    : (t: Tensor) => gelu(t, { approximate: activation === "gelu" });
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
