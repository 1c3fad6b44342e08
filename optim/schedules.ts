/**
 * Learning-rate schedules: plain functions `(step) => rate` of the 0-based count of updates
 * already applied, evaluated on the host (no tensors, no readback). Compose them with
 * {@linkcode joinSchedules} and {@linkcode warmupThen}.
 * @module
 */
import { checkNumber } from "./validate.ts";
import type { Schedule } from "./gradient_transformation.ts";

function checkStep(op: string, step: number): number {
  if (typeof step !== "number" || !Number.isInteger(step) || step < 0) {
    throw new RangeError(`${op}: step must be a non-negative integer, got ${String(step)}`);
  }
  return step;
}

/**
 * A constant rate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim } from "@longseq/tensor";
 * assert.equal(optim.constant(0.1)(1000), 0.1);
 * ```
 */
export function constant(value: number): Schedule {
  checkNumber("constant", "value", value);
  return (step) => (checkStep("constant", step), value);
}

/**
 * Goes linearly from `from` to `to` over `steps` steps, then stays at `to`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim } from "@longseq/tensor";
 * const s = optim.linearSchedule(1, 0, 4);
 * assert.deepEqual([s(0), s(1), s(4), s(9)], [1, 0.75, 0, 0]);
 * ```
 */
export function linearSchedule(from: number, to: number, steps: number): Schedule {
  const op = "linearSchedule";
  checkNumber(op, "from", from);
  checkNumber(op, "to", to);
  checkNumber(op, "steps", steps, { min: 1, integer: true });
  return (step) => from + (to - from) * Math.min(checkStep(op, step), steps) / steps;
}

/**
 * Linear warmup from 0 to `peak` over `warmupSteps` steps, then constant `peak`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim } from "@longseq/tensor";
 * const s = optim.linearWarmup(1e-3, 100);
 * assert.ok(await allClose([s(0), s(50), s(500)], [0, 0.0005, 0.001]));
 * ```
 */
export function linearWarmup(peak: number, warmupSteps: number): Schedule {
  checkNumber("linearWarmup", "peak", peak);
  checkNumber("linearWarmup", "warmupSteps", warmupSteps, { min: 1, integer: true });
  return linearSchedule(0, peak, warmupSteps);
}

/**
 * Reciprocal square-root decay with linear warmup, as in the Transformer and trax's
 * `constant * linear_warmup * rsqrt_decay`: `peak * step / warmupSteps` during the warmup, then
 * `peak * sqrt(warmupSteps / step)`. The Transformer's schedule is
 * `rsqrtDecay(dModel ** -0.5 * warmupSteps ** -0.5, warmupSteps)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim } from "@longseq/tensor";
 * const s = optim.rsqrtDecay(1e-3, 100);
 * assert.ok(await allClose([s(50), s(100), s(400)], [0.0005, 0.001, 0.0005]));
 * ```
 */
export function rsqrtDecay(peak: number, warmupSteps: number): Schedule {
  const op = "rsqrtDecay";
  checkNumber(op, "peak", peak);
  checkNumber(op, "warmupSteps", warmupSteps, { min: 1, integer: true });
  return (step) => {
    checkStep(op, step);
    return step < warmupSteps ? peak * step / warmupSteps : peak * Math.sqrt(warmupSteps / step);
  };
}

/**
 * Cosine decay from `init` to `init * alpha` over `decaySteps` steps, then constant:
 * `init * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decaySteps) / decaySteps)) + alpha)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim } from "@longseq/tensor";
 * const s = optim.cosineDecay(1, 10);
 * assert.ok(await allClose([s(0), s(5), s(10)], [1, 0.5, 0], { atol: 1e-12 }));
 * ```
 */
export function cosineDecay(init: number, decaySteps: number, alpha = 0): Schedule {
  const op = "cosineDecay";
  checkNumber(op, "init", init);
  checkNumber(op, "decaySteps", decaySteps, { min: 1, integer: true });
  checkNumber(op, "alpha", alpha, { min: 0, max: 1 });
  return (step) => {
    const t = Math.min(checkStep(op, step), decaySteps) / decaySteps;
    return init * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * t)) + alpha);
  };
}

/**
 * Runs `schedules[i]` from `boundaries[i - 1]` (0 for the first) until `boundaries[i]`, each
 * called with the steps since its start. Needs one boundary fewer than schedules, increasing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim } from "@longseq/tensor";
 * const s = optim.joinSchedules([optim.linearWarmup(1, 10), optim.cosineDecay(1, 90)], [10]);
 * assert.ok(await allClose([s(5), s(10), s(100)], [0.5, 1, 0], { atol: 1e-12 }));
 * ```
 */
export function joinSchedules(
  schedules: readonly Schedule[],
  boundaries: readonly number[],
): Schedule {
  const op = "joinSchedules";
  if (schedules.length === 0 || schedules.some((s) => typeof s !== "function")) {
    throw new TypeError(`${op}: expected a non-empty array of schedules`);
  }
  if (boundaries.length !== schedules.length - 1) {
    throw new RangeError(
      `${op}: ${schedules.length} schedules need ${schedules.length - 1} boundaries, got ` +
        boundaries.length,
    );
  }
  boundaries.forEach((b, i) => {
    checkNumber(op, `boundaries[${i}]`, b, {
      min: i === 0 ? 1 : boundaries[i - 1] + 1,
      integer: true,
    });
  });
  return (step) => {
    checkStep(op, step);
    let i = 0;
    while (i < boundaries.length && step >= boundaries[i]) i++;
    return schedules[i](i === 0 ? step : step - boundaries[i - 1]);
  };
}

/**
 * Linear warmup from 0 to `after(0)` over `warmupSteps` steps, then `after(step - warmupSteps)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim } from "@longseq/tensor";
 * const s = optim.warmupThen(10, optim.cosineDecay(1e-3, 1000));
 * assert.ok(await allClose([s(5), s(10)], [0.0005, 0.001]));
 * ```
 */
export function warmupThen(warmupSteps: number, after: Schedule): Schedule {
  const op = "warmupThen";
  checkNumber(op, "warmupSteps", warmupSteps, { min: 1, integer: true });
  if (typeof after !== "function") throw new TypeError(`${op}: after must be a schedule`);
  const peak = after(0);
  checkNumber(op, "after(0)", peak);
  return joinSchedules([linearWarmup(peak, warmupSteps), after], [warmupSteps]);
}
