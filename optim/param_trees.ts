/**
 * Trees of tensors shaped like the params (updates, gradients, optimizer moments): flattened
 * to their tensors with paths, matched against the params' structure, rebuilt. Built on
 * `autodiff/pytree.ts`, so every transformation reports mismatched trees the same way.
 * @module
 */
import { Tensor } from "../ops/tensor.ts";
import type { DeviceName } from "../kernels/device.ts";
import { dtypeInfo } from "../kernels/dtype.ts";
import { flattenTree, leafPaths, leavesLike, unflattenTree } from "../autodiff/pytree.ts";
import type { Tree } from "./gradient_transformation.ts";

function describe(x: unknown): string {
  if (x instanceof Tensor) return `a tensor ${x.dtype}[${x.shape.join(",")}]`;
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return "an array";
  return typeof x === "object" ? `a ${x.constructor?.name ?? "object"}` : `a ${typeof x}`;
}

const at = (path: string) => path === "" ? "the root" : `"${path}"`;

/** The tensors of a tree in pytree order, with their paths. */
export interface Flat {
  /** The tensors (`null`/`undefined` leaves are skipped: they are empty subtrees). */
  readonly leaves: Tensor[];
  /** Their paths (`layers[0].w`). */
  readonly paths: string[];
}

/**
 * The tensors of a tree with their paths; `null`/`undefined` leaves are kept out (empty
 * subtrees) and any other non-tensor leaf is a TypeError naming its path.
 */
export function flattenTensors(op: string, name: string, tree: Tree): Flat {
  const [all, def] = flattenTree(tree);
  const allPaths = leafPaths(def);
  const leaves: Tensor[] = [], paths: string[] = [];
  all.forEach((x, i) => {
    if (x instanceof Tensor) (leaves.push(x), paths.push(allPaths[i]));
    else if (x !== null && x !== undefined) {
      throw new TypeError(
        `${op}: ${name} holds ${describe(x)} at ${at(allPaths[i])}; ` +
          "trees may only nest tensors in arrays, plain objects and Maps",
      );
    }
  });
  return { leaves, paths };
}

/**
 * The leaves of `tree` at the tensor positions of `ref`, checking that both have the same
 * structure (pytree's `leavesLike`, so object key order may differ). With `allowNull`, `tree`
 * may hold `null` where `ref` has a tensor. With `sameShape`, each leaf must have its reference
 * leaf's shape.
 */
export function flattenLike(
  op: string,
  name: string,
  tree: Tree,
  ref: Tree,
  options: { refName?: string; allowNull?: boolean; sameShape?: boolean } = {},
): (Tensor | null)[] {
  const refName = options.refName ?? "params";
  const [refLeaves, def] = flattenTree(ref);
  const xs = leavesLike(op, def, tree, name);
  const paths = leafPaths(def);
  const out: (Tensor | null)[] = [];
  refLeaves.forEach((r, i) => {
    const x = xs[i];
    const fail = (): never => {
      throw new TypeError(
        `${op}: ${name} does not match ${refName} at ${at(paths[i])}: ` +
          `expected ${r instanceof Tensor ? "a tensor" : describe(r)}, got ${describe(x)}`,
      );
    };
    if (!(r instanceof Tensor)) {
      if (x !== null && x !== undefined) fail();
    } else if (x instanceof Tensor) {
      if (options.sameShape && x.shape.join(",") !== r.shape.join(",")) {
        throw new RangeError(
          `${op}: ${name} at ${at(paths[i])} has shape [${x.shape.join(",")}] but ${refName} ` +
            `has [${r.shape.join(",")}]`,
        );
      }
      out.push(x);
    } else if (options.allowNull && x === null) out.push(null);
    else fail();
  });
  return out;
}

/** Rebuilds the structure of `ref` with `leaves` in place of its tensors (in flatten order). */
export function unflattenLike<T>(ref: T, leaves: readonly (Tensor | null)[]): T {
  const [all, def] = flattenTree(ref);
  let k = 0;
  const filled = all.map((x) => (x instanceof Tensor ? leaves[k++] : x));
  if (k !== leaves.length) {
    throw new RangeError(`unflattenLike: ${leaves.length} leaves for a tree of ${k} tensors`);
  }
  return unflattenTree<T>(def, filled);
}

/**
 * Flattens the updates tree and checks its leaves: float dtypes, and (when given) the same
 * structure and shapes as params. Returns the leaves, their paths and the params' leaves.
 */
export function flattenUpdates(
  op: string,
  updates: Tree,
  params?: Tree,
): { leaves: Tensor[]; paths: string[]; params: Tensor[] | null } {
  const flat = flattenTensors(op, "updates", updates);
  flat.leaves.forEach((t, i) => {
    if (!dtypeInfo(t.dtype).isFloat) {
      throw new TypeError(
        `${op}: updates at ${at(flat.paths[i])} are ${t.dtype}; optimizers need float tensors`,
      );
    }
  });
  if (params === undefined) return { ...flat, params: null };
  const p = flattenLike(op, "params", params, updates, { refName: "updates", sameShape: true });
  return { ...flat, params: p as Tensor[] };
}

/** The device of the first tensor of a tree (undefined for a tree without tensors). */
export function deviceOf(tree: Tree): DeviceName | undefined {
  const { leaves } = flattenTensors("deviceOf", "tree", tree);
  return leaves[0]?.device;
}
