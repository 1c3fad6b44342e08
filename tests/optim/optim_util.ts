/** Helpers shared by the optimizer tests: host-side trees, device copies, random arrays. */
import * as T from "../../mod.ts";
import { randomArray, rng } from "../util.ts";

export type Leaf = { shape: number[]; data: number[] };
export type Host = Record<string, Leaf>;
export const TOL = { rtol: 2e-5, atol: 1e-7 };

export const mk = (h: Host, device: T.DeviceName) =>
  Object.fromEntries(
    Object.entries(h).map(([k, v]) => [k, T.tensor(v.data, { shape: v.shape, device })]),
  );
export { disposeTree } from "../../autodiff/pytree.ts";
export const with_ = (h: Host, data: Record<string, number[]>): Host =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k, { shape: v.shape, data: data[k] }]));

const rand = rng(7);
/** `n` uniform values in `[lo, hi)` from one shared stream. */
export const arr = (n: number, lo = -1, hi = 1) => Array.from(randomArray(rand, n, lo, hi));
