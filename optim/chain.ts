/**
 * `chain`: composes gradient transformations left to right (optax's `chain`).
 * @module
 */
import { scope } from "../ops/scope.ts";
import { treeTensors } from "../autodiff/pytree.ts";
import type { GradientTransformation, StateOf, Tree } from "./gradient_transformation.ts";
import { identity } from "./transform.ts";

/** A transformation with any state (what {@linkcode chain} accepts). */
// deno-lint-ignore no-explicit-any
export type AnyTransformation = GradientTransformation<any>;

/** The state of a chain: one state per link, in order. */
export type ChainState<T extends readonly AnyTransformation[]> = {
  -readonly [K in keyof T]: StateOf<T[K]>;
};

/**
 * Composes transformations: each `update` feeds its updates to the next one; the state is the
 * array of the links' states. Each link's updates are freed as soon as the next link has
 * consumed them; the inputs are untouched.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, tensor } from "@longseq/tensor";
 * const opt = optim.chain(optim.clipByGlobalNorm(1), optim.scaleByAdam(), optim.scaleByLearningRate(1e-3));
 * const params = { w: tensor([1, 2]) };
 * const [updates, state] = opt.update({ w: tensor([3, 4]) }, opt.init(params), params);
 * assert.equal(state.length, 3); // one state per link
 * assert.ok(await allClose(updates.w, [-1e-3, -1e-3], { rtol: 1e-5 })); // Adam's first step
 * ```
 */
export function chain<T extends readonly AnyTransformation[]>(
  ...transforms: T
): GradientTransformation<ChainState<T>> {
  transforms.forEach((t, i) => {
    if (!t || typeof t.init !== "function" || typeof t.update !== "function") {
      throw new TypeError(`chain: argument ${i} is not a gradient transformation { init, update }`);
    }
  });
  if (transforms.length === 0) {
    const id = identity();
    return {
      init: () => [] as unknown as ChainState<T>,
      update: <U>(updates: U, state: ChainState<T>): [U, ChainState<T>] => {
        checkState(state, 0);
        return [id.update(updates, {})[0], [] as unknown as ChainState<T>];
      },
    };
  }
  return {
    init: (params: Tree) =>
      scope(() => transforms.map((t) => t.init(params))) as unknown as ChainState<T>,
    update: <U>(updates: U, state: ChainState<T>, params?: Tree): [U, ChainState<T>] => {
      checkState(state, transforms.length);
      return scope(() => {
        let u: U = updates;
        const states: unknown[] = [];
        transforms.forEach((t, i) => {
          const [next, s] = t.update(u, (state as unknown[])[i], params);
          states.push(s);
          // Free the previous link's updates now rather than at the end of the chain, keeping
          // any handle a link passed through (the caller's, or into a result or state).
          if (i > 0) {
            const kept = new Set(treeTensors([updates, params, next, states]));
            for (const x of treeTensors(u)) if (!kept.has(x)) x.dispose();
          }
          u = next;
        });
        return [u, states as unknown as ChainState<T>];
      });
    },
  };
}

function checkState(state: unknown, n: number): void {
  if (!Array.isArray(state) || state.length !== n) {
    throw new TypeError(
      `chain: expected a state array of ${n} link states (from init), got ` +
        (Array.isArray(state) ? `an array of length ${state.length}` : typeof state),
    );
  }
}
