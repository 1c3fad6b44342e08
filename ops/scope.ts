/**
 * Scoped memory management: `scope(fn)` frees every tensor created inside `fn` except those it
 * returns. Works with async functions (the scope follows the async context, so concurrent
 * scopes do not see each other's tensors).
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Tensor } from "./tensor.ts";
import { treeTensors } from "../autodiff/pytree.ts";

interface Frame {
  readonly tensors: Set<Tensor>;
}

const current = new AsyncLocalStorage<Frame>();

/** Whether something outside the scope (a running `vjp` trace) still needs a tensor. */
let isHeld: (t: Tensor) => boolean = () => false;

/**
 * Sets the predicate saying which tensors a scope must hand to its enclosing scope instead of
 * disposing them (autodiff sets it to "held by a node of a running `vjp` trace").
 */
export function setScopeHold(held: (t: Tensor) => boolean): void {
  isHeld = held;
}
const owner = new WeakMap<Tensor, Frame>();

/** Adds a new tensor to the innermost scope (called by the Tensor constructor). */
export function registerInScope(t: Tensor): void {
  const frame = current.getStore();
  if (frame) {
    frame.tensors.add(t);
    owner.set(t, frame);
  }
}

/** Removes a disposed tensor from its scope. */
export function unregisterFromScope(t: Tensor): void {
  owner.get(t)?.tensors.delete(t);
  owner.delete(t);
}

/**
 * Exempts tensors from every enclosing scope: they live until disposed by hand.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keep, ones, scope, type Tensor } from "@longseq/tensor";
 * let saved: Tensor | undefined;
 * scope(() => {
 *   saved = keep(ones([2]));
 * });
 * assert.equal(saved!.disposed, false); // survives the scope
 * saved!.dispose();
 * ```
 */
export function keep<T>(tree: T): T {
  for (const t of tensorsIn(tree)) unregisterFromScope(t);
  return tree;
}

/** Every tensor found in arrays, plain objects and Maps nested in `tree` (its pytree leaves). */
export function tensorsIn(tree: unknown, out: Set<Tensor> = new Set()): Set<Tensor> {
  for (const t of treeTensors(tree)) out.add(t);
  return out;
}

/**
 * Runs `fn` and disposes every tensor it created, except the tensors in its result (arrays,
 * plain objects and Maps are searched), which move to the enclosing scope, as do tensors held
 * for the backward pass of a `vjp` whose function is still running. If `fn` throws,
 * everything else it created is disposed. Async functions are awaited.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { add, memory, ones, scope } from "@longseq/tensor";
 * const before = memory().liveBytes;
 * const y = scope(() => add(add(ones([4]), ones([4])), ones([4])));
 * assert.equal(memory().liveBytes - before, 16); // only y (4 f32) is left
 * y.dispose();
 * ```
 */
export function scope<T>(fn: () => T): T {
  const frame: Frame = { tensors: new Set() };
  const parent = current.getStore();
  const finish = (result: unknown, failed: boolean) => {
    const kept = failed ? new Set<Tensor>() : tensorsIn(result);
    for (const t of frame.tensors) {
      // A tensor a node of a running `vjp` trace holds is the backward pass's, not this
      // scope's: it moves out like a result, so scopes inside differentiated code are safe.
      if (kept.has(t) || isHeld(t)) {
        owner.delete(t);
        if (parent) {
          parent.tensors.add(t);
          owner.set(t, parent);
        }
      } else t.dispose();
    }
    frame.tensors.clear();
  };
  let result: T;
  try {
    result = current.run(frame, fn);
  } catch (e) {
    finish(undefined, true);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => (finish(v, false), v),
      (e) => {
        finish(undefined, true);
        throw e;
      },
    ) as T;
  }
  finish(result, false);
  return result;
}
