/**
 * A finite-difference gradient checker for the autodiff tests. For a function of f32 inputs
 * with a tensor output `y`, it checks `grad(sum(y * w))` against central differences of the
 * same loss along random directions, with Richardson extrapolation. The loss is summed on the
 * host in float64 and the inputs and steps are dyadic (exact in f32), so the only noise is the
 * f32 rounding of `y` itself.
 */
import * as T from "../../mod.ts";
import { grad } from "../../autodiff/mod.ts";
import { sum } from "../../ops/reduce.ts";
import { noLeaks, randomArray } from "../util.ts";

/** Generates `n` input values. */
export type Gen = (rand: () => number, n: number) => number[];

/** One differentiable input of a case. */
export interface Input {
  shape: number[];
  gen?: Gen;
}

/** A gradient-check case: f32 inputs in, one f32 tensor out. */
export interface Case {
  name: string;
  inputs: Input[];
  fn: (xs: T.Tensor[], device: T.DeviceName) => T.Tensor;
}

const q = (x: number, scale: number) => Math.round(x * scale) / scale;

/** Uniform values in `[lo, hi)`. */
export const uniform = (lo = -1, hi = 1): Gen => (rand, n) =>
  Array.from({ length: n }, () => lo + (hi - lo) * rand());

/** Values in `±[margin, hi)`, away from a kink at 0. */
export const away = (margin = 0.1, hi = 1.5): Gen => (rand, n) =>
  Array.from({ length: n }, () => (rand() < 0.5 ? -1 : 1) * (margin + (hi - margin) * rand()));

/** Distinct values at least 0.07 apart (a shuffled ladder with small noise): for max and sort. */
export const distinct: Gen = (rand, n) => {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1 + 0.03 * rand());
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
};

/** Values with fractional part in `[lo, lo + 0.3)`: two such sets with `lo` 0 and 0.5 never tie. */
export const frac = (lo: number): Gen => (rand, n) =>
  Array.from({ length: n }, () => Math.floor(rand() * 4) - 2 + lo + 0.3 * rand());

const sizeOf = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Runs `c` on `device` and asserts the analytic and numeric directional derivatives agree. */
export async function checkGrad(
  c: Case,
  device: T.DeviceName,
  rand: () => number,
  { directions = 2, rtol = 3e-3, atol = 3e-4 } = {},
): Promise<void> {
  await noLeaks(async () => {
    // Dyadic inputs: x +- h v stays exact in f32 for the steps used below.
    const xs = c.inputs.map((inp) =>
      (inp.gen ?? uniform())(rand, sizeOf(inp.shape)).map((v) => q(v, 2048))
    );
    const make = (vals: number[][]) =>
      vals.map((v, i) => T.tensor(Float32Array.from(v), { shape: c.inputs[i].shape, device }));
    const y0 = T.scope(() => c.fn(make(xs), device));
    const yShape = [...y0.shape];
    y0.dispose();
    const w = randomArray(rand, sizeOf(yShape));
    const loss = async (vals: number[][]) => {
      const y = T.scope(() => c.fn(make(vals), device));
      const d = await y.data();
      y.dispose();
      let s = 0;
      for (let i = 0; i < d.length; i++) s += d[i] * w[i];
      return s;
    };
    const all = c.inputs.map((_, i) => i);
    const gs = T.scope(() => {
      const wt = T.tensor(w, { shape: yShape, device });
      const f = (...a: T.Tensor[]) => sum(T.mul(c.fn(a, device), wt));
      return grad(f, { argnums: all })(...make(xs));
    });
    const g = await Promise.all(gs.map((t) => t.data()));
    gs.forEach((t, i) => {
      if (t.shape.join() !== c.inputs[i].shape.join()) {
        throw new Error(
          `${c.name}: gradient ${i} has shape [${t.shape}], want [${c.inputs[i].shape}]`,
        );
      }
      t.dispose();
    });
    for (let d = 0; d < directions; d++) {
      const v = xs.map((x) => x.map(() => q(2 * rand() - 1, 16)));
      const at = (h: number) => xs.map((x, i) => x.map((xj, j) => xj + h * v[i][j]));
      const D = async (h: number) => ((await loss(at(h))) - (await loss(at(-h)))) / (2 * h);
      const h = 1 / 64;
      const numeric = (4 * (await D(h / 2)) - (await D(h))) / 3;
      let analytic = 0, scale = 0;
      g.forEach((gi, i) =>
        gi.forEach((gj, j) => (analytic += gj * v[i][j], scale += Math.abs(gj * v[i][j])))
      );
      const err = Math.abs(numeric - analytic);
      if (!(err <= atol + rtol * scale)) {
        throw new Error(
          `${c.name} on ${device}: directional derivative ${analytic} (autodiff) vs ${numeric} ` +
            `(finite differences), error ${err.toExponential(2)} > ${atol} + ${rtol} * ${
              scale.toFixed(3)
            }`,
        );
      }
    }
  });
}
