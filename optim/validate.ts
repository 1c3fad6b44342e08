/**
 * Validation of the optimizers' hyperparameters: numbers in a range, learning rates (a number
 * or a schedule) and their values at a step.
 * @module
 */
import type { Schedule } from "./gradient_transformation.ts";

/** Checks a hyperparameter: a finite number within `[min, max]` (and an integer if asked). */
export function checkNumber(
  op: string,
  name: string,
  value: unknown,
  { min = -Infinity, max = Infinity, integer = false, exclusiveMin = false, exclusiveMax = false } =
    {},
): number {
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (exclusiveMin ? value > min : value >= min) && (exclusiveMax ? value < max : value <= max) &&
    (!integer || Number.isInteger(value));
  if (!ok) {
    const range = `${exclusiveMin ? "(" : "["}${min}, ${max}${exclusiveMax ? ")" : "]"}`;
    throw new RangeError(
      `${op}: ${name} must be a finite ${integer ? "integer" : "number"} in ${range}, ` +
        `got ${String(value)}`,
    );
  }
  return value as number;
}

/** Checks a learning rate given as a number or a schedule. */
export function checkLearningRate(op: string, lr: unknown): number | Schedule {
  if (typeof lr === "function") return lr as Schedule;
  return checkNumber(op, "learning rate", lr);
}

/** Evaluates a schedule at a step and checks the result is finite. */
export function rateAt(op: string, lr: number | Schedule, step: number): number {
  if (typeof lr === "number") return lr;
  const v = lr(step);
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new RangeError(`${op}: the schedule returned ${String(v)} at step ${step}`);
  }
  return v;
}
