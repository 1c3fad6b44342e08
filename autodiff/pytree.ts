/**
 * Pytrees: nested arrays, plain objects and Maps whose leaves are tensors (or anything else).
 * Model parameters are pytrees, and so are the arguments, outputs and cotangents of `vjp`, the
 * results `scope` keeps and the states of the optimizers. Flattening gives the leaves in a
 * fixed order and a structure that can rebuild the tree. This is the library's one tree
 * walker: {@linkcode containerOf} decides what is a container.
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
  }
  | {
    readonly kind: "map";
    readonly keys: readonly unknown[];
    readonly children: readonly TreeDef[];
  };

const LEAF: TreeDef = Object.freeze({ kind: "leaf" });

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== "object" || x instanceof Tensor) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * The container view of a tree node: its kind, keys and children (arrays by index, plain
 * objects by own enumerable keys in insertion order, Maps by insertion order), or `null` for a
 * leaf (tensors, numbers, class instances, `null`, ...).
 */
export function containerOf(
  x: unknown,
): { kind: "array" | "object" | "map"; keys: unknown[]; values: unknown[] } | null {
  if (Array.isArray(x)) return { kind: "array", keys: [], values: x };
  if (x instanceof Map) return { kind: "map", keys: [...x.keys()], values: [...x.values()] };
  if (isPlainObject(x)) {
    const keys = Object.keys(x);
    return { kind: "object", keys, values: keys.map((k) => x[k]) };
  }
  return null;
}

/** Calls `visit` on every leaf of `tree`, depth first, in flattening order. */
export function forEachLeaf(tree: unknown, visit: (leaf: unknown) => void): void {
  const c = containerOf(tree);
  if (c === null) visit(tree);
  else for (const v of c.values) forEachLeaf(v, visit);
}

/**
 * Splits a pytree into its leaves (depth first; object and Map keys in insertion order) and
 * its structure. Arrays, plain objects and Maps are containers; everything else, tensors
 * included, is a leaf.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flattenTree, tensor } from "@longseq/tensor";
 * const [leaves, def] = flattenTree({ w: tensor([1]), layers: [tensor([2]), 3] });
 * assert.equal(leaves.length, 3);
 * assert.equal(def.kind, "object");
 * assert.equal(leaves[2], 3);
 * ```
 */
export function flattenTree(tree: unknown): [unknown[], TreeDef] {
  const leaves: unknown[] = [];
  const walk = (x: unknown): TreeDef => {
    const c = containerOf(x);
    if (c === null) {
      leaves.push(x);
      return LEAF;
    }
    const children = c.values.map(walk);
    if (c.kind === "array") return { kind: "array", children };
    if (c.kind === "map") return { kind: "map", keys: c.keys, children };
    return { kind: "object", keys: c.keys as string[], children };
  };
  const def = walk(tree);
  return [leaves, def];
}

/**
 * Rebuilds a pytree of structure `def` from leaves in flattening order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flattenTree, unflattenTree } from "@longseq/tensor";
 * const [leaves, def] = flattenTree({ a: [1, 2], b: 3 });
 * const tree = unflattenTree(def, leaves.map((x) => (x as number) * 10));
 * assert.deepEqual(tree, { a: [10, 20], b: 30 });
 * ```
 */
export function unflattenTree<T = unknown>(def: TreeDef, leaves: readonly unknown[]): T {
  let i = 0;
  const build = (d: TreeDef): unknown => {
    if (d.kind === "leaf") return leaves[i++];
    if (d.kind === "array") return d.children.map(build);
    if (d.kind === "map") return new Map(d.keys.map((k, j) => [k, build(d.children[j])]));
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
  if (def.kind === "map") {
    return `Map{${
      def.keys.map((k, i) => `${String(k)}: ${describeTree(def.children[i])}`).join(", ")
    }}`;
  }
  return `{${def.keys.map((k, i) => `${k}: ${describeTree(def.children[i])}`).join(", ")}}`;
}

/** Paths of a structure's leaves in flattening order, like `layers[0].w`. */
export function leafPaths(def: TreeDef): string[] {
  const out: string[] = [];
  const walk = (d: TreeDef, path: string) => {
    if (d.kind === "leaf") out.push(path);
    else if (d.kind === "array") d.children.forEach((c, i) => walk(c, `${path}[${i}]`));
    else if (d.kind === "map") {
      d.children.forEach((c, i) => walk(c, `${path}.get(${String(d.keys[i])})`));
    } else d.children.forEach((c, i) => walk(c, path === "" ? d.keys[i] : `${path}.${d.keys[i]}`));
  };
  walk(def, "");
  return out;
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
      if (containerOf(x) !== null) fail(path, "expected a leaf, got a container");
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
    if (d.kind === "map") {
      if (!(x instanceof Map)) fail(path, `expected a Map of ${d.children.length}`);
      const m = x as Map<unknown, unknown>;
      const missing = d.keys.filter((k) => !m.has(k));
      if (missing.length || m.size !== d.keys.length) {
        fail(path, `expected Map keys ${d.keys.map(String).join(", ")}`);
      }
      d.children.forEach((c, i) => walk(c, m.get(d.keys[i]), `${path}.get(${String(d.keys[i])})`));
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
 * import assert from "node:assert/strict";
 * import { mapTree } from "@longseq/tensor";
 * assert.deepEqual(mapTree({ a: [1, 2] }, (x) => (x as number) + 1), { a: [2, 3] });
 * ```
 */
export function mapTree<T = unknown>(tree: unknown, fn: (leaf: unknown, i: number) => unknown): T {
  const [leaves, def] = flattenTree(tree);
  return unflattenTree<T>(def, leaves.map(fn));
}

/**
 * The tensors among a pytree's leaves, in flattening order (a tensor reachable twice is listed
 * twice).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, treeTensors } from "@longseq/tensor";
 * const w = tensor([1, 2]);
 * const ts = treeTensors({ w, layers: [{ b: tensor([3]) }], name: "mlp" });
 * assert.equal(ts.length, 2);
 * assert.equal(ts[0], w);
 * ```
 */
export function treeTensors(tree: unknown): Tensor[] {
  const out: Tensor[] = [];
  forEachLeaf(tree, (x) => {
    if (x instanceof Tensor) out.push(x);
  });
  return out;
}

/**
 * Disposes every tensor of a pytree (params, gradients, optimizer states), each once even
 * when the tree holds it at several places; other leaves are left alone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { disposeTree, ones, zeros } from "@longseq/tensor";
 * const shared = ones([2]);
 * const state = { m: zeros([2]), tied: [shared, shared], step: 3 };
 * disposeTree(state);
 * assert.ok(state.m.disposed && shared.disposed);
 * ```
 */
export function disposeTree(tree: unknown): void {
  for (const t of new Set(treeTensors(tree))) t.dispose();
}
