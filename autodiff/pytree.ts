/**
 * Pytrees: nested arrays and plain objects whose leaves are tensors (or anything else). Model
 * parameters are pytrees, and so are the arguments, outputs and cotangents of `vjp`.
 * Flattening gives the leaves in a fixed order and a structure that can rebuild the tree.
 * @module
 */
import { Tensor } from "../ops/tensor.ts";

/** The shape of a pytree: where its arrays, objects and leaves are. */
export type TreeDef =
  | { readonly kind: "leaf" }
  | { readonly kind: "array"; readonly children: readonly TreeDef[] }
  | {
    readonly kind: "object";
    readonly keys: readonly string[];
    readonly children: readonly TreeDef[];
  };

const LEAF: TreeDef = Object.freeze({ kind: "leaf" });

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== "object" || x instanceof Tensor) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * Splits a pytree into its leaves (depth first; object keys in insertion order) and its
 * structure. Arrays and plain objects are containers; everything else, tensors included, is a
 * leaf.
 *
 * @example
 * ```ts
 * import { flattenTree, tensor } from "@longseq/tensor";
 * const [leaves, def] = flattenTree({ w: tensor([1]), layers: [tensor([2]), 3] });
 * console.log(leaves.length, def.kind); // 3 "object"
 * ```
 */
export function flattenTree(tree: unknown): [unknown[], TreeDef] {
  const leaves: unknown[] = [];
  const walk = (x: unknown): TreeDef => {
    if (Array.isArray(x)) return { kind: "array", children: x.map(walk) };
    if (isPlainObject(x)) {
      const keys = Object.keys(x);
      return { kind: "object", keys, children: keys.map((k) => walk(x[k])) };
    }
    leaves.push(x);
    return LEAF;
  };
  const def = walk(tree);
  return [leaves, def];
}

/**
 * Rebuilds a pytree of structure `def` from leaves in flattening order.
 *
 * @example
 * ```ts
 * import { flattenTree, unflattenTree } from "@longseq/tensor";
 * const [leaves, def] = flattenTree({ a: [1, 2], b: 3 });
 * console.log(unflattenTree(def, leaves.map((x) => (x as number) * 10))); // { a: [10, 20], b: 30 }
 * ```
 */
export function unflattenTree<T = unknown>(def: TreeDef, leaves: readonly unknown[]): T {
  let i = 0;
  const build = (d: TreeDef): unknown => {
    if (d.kind === "leaf") return leaves[i++];
    if (d.kind === "array") return d.children.map(build);
    const out: Record<string, unknown> = {};
    d.keys.forEach((k, j) => (out[k] = build(d.children[j])));
    return out;
  };
  const tree = build(def);
  if (i !== leaves.length) {
    throw new RangeError(`unflattenTree: structure has ${i} leaves, got ${leaves.length}`);
  }
  return tree as T;
}

/** Number of leaves of a structure. */
export function leafCount(def: TreeDef): number {
  return def.kind === "leaf" ? 1 : def.children.reduce((n, c) => n + leafCount(c), 0);
}

/** Describes a structure compactly for error messages, e.g. `{a: [*, *], b: *}`. */
export function describeTree(def: TreeDef): string {
  if (def.kind === "leaf") return "*";
  if (def.kind === "array") return `[${def.children.map(describeTree).join(", ")}]`;
  return `{${def.keys.map((k, i) => `${k}: ${describeTree(def.children[i])}`).join(", ")}}`;
}

/**
 * Reads the leaves of `tree` in the order of structure `def`, matching object keys by name
 * (so key order may differ). A `null` or `undefined` in place of a whole subtree stands for
 * all its leaves (read as `null`). Throws a TypeError naming `op` and the path where the
 * structures differ.
 */
export function leavesLike(op: string, def: TreeDef, tree: unknown, what: string): unknown[] {
  const out: unknown[] = [];
  const fail = (path: string, why: string): never => {
    throw new TypeError(
      `${op}: ${what} does not match the structure ${describeTree(def)}: at ${
        path || "the root"
      }, ${why}`,
    );
  };
  const walk = (d: TreeDef, x: unknown, path: string) => {
    if (d.kind === "leaf") {
      if (Array.isArray(x) || isPlainObject(x)) fail(path, "expected a leaf, got a container");
      out.push(x);
      return;
    }
    if (x === null || x === undefined) {
      for (let i = leafCount(d); i > 0; i--) out.push(null);
      return;
    }
    if (d.kind === "array") {
      if (!Array.isArray(x)) fail(path, `expected an array of ${d.children.length}`);
      const arr = x as unknown[];
      if (arr.length !== d.children.length) {
        fail(path, `expected ${d.children.length} entries, got ${arr.length}`);
      }
      d.children.forEach((c, i) => walk(c, arr[i], `${path}[${i}]`));
      return;
    }
    if (!isPlainObject(x)) fail(path, `expected an object with keys ${d.keys.join(", ")}`);
    const obj = x as Record<string, unknown>;
    const keys = Object.keys(obj);
    const extra = keys.filter((k) => !d.keys.includes(k));
    const missing = d.keys.filter((k) => !keys.includes(k));
    if (extra.length || missing.length) {
      fail(
        path,
        [
          missing.length ? `missing keys ${missing.join(", ")}` : "",
          extra.length ? `unexpected keys ${extra.join(", ")}` : "",
        ].filter(Boolean).join("; "),
      );
    }
    d.keys.forEach((k, i) => walk(d.children[i], obj[k], `${path}.${k}`));
  };
  walk(def, tree, "");
  return out;
}

/**
 * Applies `fn` to every leaf of a pytree, keeping the structure.
 *
 * @example
 * ```ts
 * import { mapTree } from "@longseq/tensor";
 * console.log(mapTree({ a: [1, 2] }, (x) => (x as number) + 1)); // { a: [2, 3] }
 * ```
 */
export function mapTree<T = unknown>(tree: unknown, fn: (leaf: unknown, i: number) => unknown): T {
  const [leaves, def] = flattenTree(tree);
  return unflattenTree<T>(def, leaves.map(fn));
}

/** The tensors among a pytree's leaves, in flattening order. */
export function treeTensors(tree: unknown): Tensor[] {
  return flattenTree(tree)[0].filter((x): x is Tensor => x instanceof Tensor);
}
