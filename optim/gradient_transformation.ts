/**
 * The contract of the optimizers (optax style): a {@linkcode GradientTransformation} is a pure
 * `{ init, update }` pair; schedules are plain `(step) => number` functions; step counts live in
 * the state both as a device scalar (for checkpoints) and as a host integer (so schedules and
 * bias corrections never read the GPU back). Also the per-leaf helpers every update uses.
 * @module
 */
import { Tensor } from "../ops/tensor.ts";
import { add } from "../ops/binary.ts";
import { full } from "../ops/creation.ts";
import { scope } from "../ops/scope.ts";
import type { DeviceName } from "../kernels/device.ts";
import { containerOf } from "../autodiff/pytree.ts";

/**
 * A pytree: a tensor, or arrays and plain objects nesting tensors. `null` and `undefined` are
 * empty subtrees (a missing bias, say) and are kept as they are. Typed `unknown` so that params
 * declared with interfaces are accepted; the helpers check the structure at run time.
 */
export type Tree = unknown;

/** A learning-rate schedule: the rate for 0-based step `step` (updates already applied). */
export type Schedule = (step: number) => number;

/**
 * A pure optimizer building block: `init` makes the state for a params tree, `update` turns
 * gradients (or the updates of the previous block in a {@linkcode chain}) into updates and a new
 * state.
 *
 * Memory contract: `update` never mutates or disposes its inputs (updates, state, params), frees
 * every intermediate it creates, and returns only new handles (at worst new views sharing
 * storage, which is reference counted), so disposing any input or output never invalidates
 * another. The caller owns both the old and the new state: typically run the step inside
 * `scope()`, return the new params and state from it, then dispose the old ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, scope, tensor } from "@longseq/tensor";
 * const opt = optim.sgd(0.1);
 * let params = { w: tensor([1, 2]) };
 * let state = opt.init(params);
 * const next = scope(() => {
 *   const grads = { w: tensor([0.5, -0.5]) };
 *   const [updates, s] = opt.update(grads, state, params);
 *   return { params: optim.applyUpdates(params, updates), state: s };
 * });
 * params.w.dispose();
 * ({ params, state } = next);
 * assert.ok(await allClose(params.w, [0.95, 2.05]));
 * ```
 */
export interface GradientTransformation<S = unknown> {
  /** The initial state for `params` (a tree of tensors mirroring params, plus step counts). */
  init(params: Tree): S;
  /** Transforms `updates` (tree like params); `params` is needed by some blocks only. */
  update<U>(updates: U, state: S, params?: Tree): [U, S];
}

/** The state type of a transformation. */
export type StateOf<T> = T extends GradientTransformation<infer S> ? S : never;

/**
 * A step counter: `count` is an `i32` scalar tensor (what a checkpoint saves) and `step` its
 * host-side mirror (what schedules and bias corrections read, so no step reads the GPU back).
 * After loading a checkpoint, rebuild the mirrors with {@linkcode restoreSteps}.
 */
export interface StepCount {
  /** Updates applied so far, as an `i32` scalar tensor. */
  readonly count: Tensor;
  /** The same number on the host. */
  readonly step: number;
}

function isStepCount(x: unknown): x is StepCount {
  return containerOf(x)?.kind === "object" &&
    (x as StepCount).count instanceof Tensor && typeof (x as StepCount).step === "number";
}

/** A fresh counter at 0 on `device`. */
export function initStep(device: DeviceName | undefined): StepCount {
  return { count: full([], 0, { dtype: "i32", device }), step: 0 };
}

/** The counter after one more update (a new tensor; the old one is untouched). */
export function nextStep(s: StepCount): StepCount {
  return { count: add(s.count, 1), step: s.step + 1 };
}

/**
 * Re-reads every `{ count, step }` counter of a state from its `count` tensor (one readback per
 * counter) and returns a state whose host mirrors match; use it after loading a checkpoint.
 * Tensors are shared with the input, not copied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const opt = optim.adam(1e-3);
 * const state = opt.init({ w: tensor([1]) });
 * const fixed = await optim.restoreSteps(state); // same tensors, `step` read from `count`
 * assert.equal(fixed[0].count, state[0].count);
 * assert.equal(fixed[0].step, 0);
 * ```
 */
export async function restoreSteps<S>(state: S): Promise<S> {
  // Every counter in the state, then one readback each, then the state rebuilt around them.
  const counters: StepCount[] = [];
  const find = (x: unknown) => {
    if (isStepCount(x)) counters.push(x);
    else containerOf(x)?.values.forEach(find);
  };
  find(state);
  const steps = new Map<StepCount, number>();
  for (const c of counters) steps.set(c, Number((await c.count.data())[0]));
  const rebuild = (x: unknown): unknown => {
    if (isStepCount(x)) return { ...x, step: steps.get(x) };
    const c = containerOf(x);
    if (c === null) return x;
    const values = c.values.map(rebuild);
    if (c.kind === "array") return values;
    if (c.kind === "map") return new Map(c.keys.map((k, i) => [k, values[i]]));
    return Object.fromEntries(c.keys.map((k, i) => [k as string, values[i]]));
  };
  return rebuild(state) as S;
}

/** A new handle on the same storage (so outputs never alias inputs by identity). */
export function fresh(t: Tensor): Tensor {
  return t.view(t.shape);
}

/**
 * Runs `f` on each leaf in a scope of its own and regroups the results by output: `f` returns
 * a tuple of `width` entries (a tensor or null each) and `perLeaf` returns `width` arrays, one
 * entry per leaf. Each leaf's temporaries are freed before the next leaf starts, so an
 * update's peak memory holds one leaf's temporaries, not every leaf's.
 */
export function perLeaf<T extends readonly (Tensor | null)[]>(
  leaves: readonly Tensor[],
  width: T["length"],
  f: (leaf: Tensor, i: number) => [...T],
): { [K in keyof T]: T[K][] } {
  const rows = leaves.map((leaf, i) => scope(() => f(leaf, i)));
  return Array.from({ length: width }, (_, j) => rows.map((r) => r[j])) as {
    [K in keyof T]: T[K][];
  };
}
