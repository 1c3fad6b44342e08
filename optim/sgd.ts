/**
 * Stochastic gradient descent with optional (Nesterov) momentum.
 * @module
 */
import { chain } from "./chain.ts";
import {
  type LearningRateState,
  scaleByLearningRate,
  trace,
  type TraceState,
} from "./transform.ts";
import { checkLearningRate, checkNumber } from "./validate.ts";
import type { GradientTransformation, Schedule } from "./gradient_transformation.ts";

/** Options of {@linkcode sgd}. */
export interface SgdOptions {
  /** Momentum decay in `[0, 1]` (default: none, which keeps no momentum buffer). */
  momentum?: number;
  /** Nesterov momentum (needs `momentum`). */
  nesterov?: boolean;
}

/** State of {@linkcode sgd}: the learning-rate state, after the momentum buffer if any. */
export type SgdState = [LearningRateState] | [TraceState, LearningRateState];

/**
 * SGD: `update = -lr * g`, or with momentum `trace = g + momentum * trace`,
 * `update = -lr * trace` (Nesterov: `-lr * (g + momentum * trace)`). Equals
 * `chain(trace(momentum, { nesterov }), scaleByLearningRate(lr))`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, tensor } from "@longseq/tensor";
 * const opt = optim.sgd(0.1, { momentum: 0.9 });
 * const params = { w: tensor([1, 2]) };
 * const [updates] = opt.update({ w: tensor([1, -1]) }, opt.init(params), params);
 * assert.ok(await allClose(updates.w, [-0.1, 0.1]));
 * ```
 */
export function sgd(
  learningRate: number | Schedule,
  { momentum, nesterov = false }: SgdOptions = {},
): GradientTransformation<SgdState> {
  const lr = checkLearningRate("sgd", learningRate);
  if (momentum === undefined) {
    if (nesterov) throw new RangeError("sgd: nesterov needs a momentum");
    return chain(scaleByLearningRate(lr)) as GradientTransformation<SgdState>;
  }
  checkNumber("sgd", "momentum", momentum, { min: 0, max: 1 });
  return chain(trace(momentum, { nesterov }), scaleByLearningRate(lr)) as GradientTransformation<
    SgdState
  >;
}
