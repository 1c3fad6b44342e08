/**
 * Gradient clipping by the global norm over all leaves.
 * @module
 */
import type { Tensor } from "../ops/tensor.ts";
import { add, div, maximum, mul } from "../ops/binary.ts";
import { sqrt, square } from "../ops/unary.ts";
import { full } from "../ops/creation.ts";
import { sum } from "../ops/reduce.ts";
import { scope } from "../ops/scope.ts";
import type { EmptyState } from "./transform.ts";
import { checkNumber } from "./validate.ts";
import { flattenTensors, flattenUpdates, unflattenLike } from "./param_trees.ts";
import { fresh, type GradientTransformation, type Tree } from "./gradient_transformation.ts";

/**
 * The L2 norm of all tensors of a tree taken together, `sqrt(sum_i sum(x_i^2))`, as an `f32`
 * scalar tensor on the leaves' device (0 for a tree without tensors, on the default device).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optim, tensor } from "@longseq/tensor";
 * const n = optim.globalNorm({ a: tensor([3]), b: tensor([[4]]) });
 * assert.equal(await n.array(), 5);
 * ```
 */
export function globalNorm(tree: Tree): Tensor {
  const { leaves } = flattenTensors("globalNorm", "tree", tree);
  if (leaves.length === 0) return full([], 0);
  return scope(() => {
    let total = sum(square(leaves[0]));
    for (const t of leaves.slice(1)) total = add(total, sum(square(t)));
    return sqrt(total);
  });
}

/**
 * Rescales all updates together so that their global norm is at most `maxNorm`:
 * `u * maxNorm / max(globalNorm(u), maxNorm)`. The factor stays on the device (no readback), so
 * updates below the threshold are multiplied by exactly 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, optim, tensor } from "@longseq/tensor";
 * const [u] = optim.clipByGlobalNorm(1).update({ w: tensor([3, 4]) }, {});
 * assert.ok(await allClose(u.w, [0.6, 0.8]));
 * ```
 */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<EmptyState> {
  const op = "clipByGlobalNorm";
  checkNumber(op, "maxNorm", maxNorm, { min: 0, exclusiveMin: true });
  return {
    init: () => ({}),
    update: <U>(updates: U): [U, EmptyState] => {
      const { leaves } = flattenUpdates(op, updates);
      if (leaves.length === 0) return [unflattenLike(updates, leaves.map(fresh)), {}];
      return scope(() => {
        const factor = div(maxNorm, maximum(globalNorm(updates), maxNorm));
        return [unflattenLike(updates, leaves.map((u) => mul(u, factor))), {}];
      });
    },
  };
}
