/**
 * The layer contract: a factory returns `{ init, apply }`. Params are plain nested objects of
 * tensors; randomness comes from explicit keys.
 * @module
 */
import type { Tensor } from "../ops/tensor.ts";

/** Options every layer's `apply` accepts. */
export interface ApplyOptions {
  /** PRNG key for dropout and other randomness (required when `training` and the layer is random). */
  key?: Tensor;
  /** Training mode (dropout active). Default false. */
  training?: boolean;
}

/**
 * A layer: `init(key)` makes params (a plain object of tensors); `apply(params, x, opts)` is a
 * pure function of its arguments.
 */
export interface Layer<P = unknown, X = Tensor, Y = Tensor, O extends ApplyOptions = ApplyOptions> {
  /** Creates fresh params from a PRNG key. */
  init(key: Tensor): P;
  /** Applies the layer. */
  apply(params: P, x: X, opts?: O): Y;
}
