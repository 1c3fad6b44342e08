/**
 * The `longseq.tree` metadata of checkpoints: how a tree's structure and non-tensor leaves are
 * stored, the validation of what a file claims (a tampered file gets an error naming the path,
 * not a raw JavaScript error), the checks a tree must pass before saving (no cycles, bounded
 * depth), and the check of restored leaves against a template.
 * @module
 */
import { Tensor } from "../ops/tensor.ts";
import type { TreeDef } from "../autodiff/pytree.ts";
import type { HeaderEntry } from "./safetensors.ts";

/**
 * Deepest nesting of containers a checkpoint tree may have (saving and loading).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_TREE_DEPTH } from "@longseq/tensor";
 * assert.equal(MAX_TREE_DEPTH, 256);
 * ```
 */
export const MAX_TREE_DEPTH = 256;
/**
 * Most nodes (containers and leaves) a stored tree description may have.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_TREE_NODES } from "@longseq/tensor";
 * assert.equal(MAX_TREE_NODES, 1_000_000);
 * ```
 */
export const MAX_TREE_NODES = 1_000_000;

/** How one leaf is stored in the `longseq.tree` entry. */
export type StoredLeaf =
  | { tensor: string }
  | { value: number | string | boolean | null }
  | { number: string }
  | { undefined: true };

/** The parsed `longseq.tree` entry. */
export interface StoredTree {
  /** The structure. */
  def: TreeDef;
  /** One entry per leaf, in flattening order. */
  leaves: StoredLeaf[];
}

const join = (path: string, k: string | number) => (path ? `${path}.${k}` : `${k}`);
/** A path for messages: `the root`, or the dotted path cut to 120 characters. */
export const showPath = (path: string) =>
  path === "" ? "the root" : path.length > 120 ? `${path.slice(0, 120)}…` : path;

/** Dotted names of a structure's leaves, in flattening order (`root` for a lone leaf). */
export function leafNames(def: TreeDef): string[] {
  const out: string[] = [];
  const walk = (d: TreeDef, path: string) => {
    if (d.kind === "leaf") out.push(path === "" ? "root" : path);
    else if (d.kind === "array") d.children.forEach((c, i) => walk(c, join(path, i)));
    else d.keys.forEach((k, i) => walk(d.children[i], join(path, String(k))));
  };
  walk(def, "");
  return out;
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  x !== null && typeof x === "object" && !Array.isArray(x);

/**
 * Validates a parsed `longseq.tree` entry without recursion: node kinds, container shapes,
 * unique keys, depth at most {@linkcode MAX_TREE_DEPTH}, at most {@linkcode MAX_TREE_NODES}
 * nodes, and one well-formed stored leaf per leaf. Returns the tree or a message naming the
 * path at fault.
 */
export function validateStoredTree(json: unknown): StoredTree | string {
  if (!isObject(json)) return "is not a JSON object";
  const { def, leaves } = json;
  let nodes = 0;
  let leafCount = 0;
  const todo: [unknown, string, number][] = [[def, "", 0]];
  while (todo.length) {
    const [d, path, depth] = todo.pop()!;
    const at = `def at ${showPath(path)}`;
    if (++nodes > MAX_TREE_NODES) return `def has more than ${MAX_TREE_NODES} nodes`;
    if (depth > MAX_TREE_DEPTH) return `${at} is nested deeper than ${MAX_TREE_DEPTH} levels`;
    if (!isObject(d)) return `${at} is not an object`;
    if (d.kind === "leaf") {
      leafCount++;
      continue;
    }
    if (d.kind !== "array" && d.kind !== "object") {
      return `${at} has unknown kind ${JSON.stringify(d.kind)?.slice(0, 40)}`;
    }
    const children = d.children;
    if (!Array.isArray(children)) return `${at}: children is not an array`;
    if (d.kind === "array") {
      for (let i = children.length - 1; i >= 0; i--) {
        todo.push([children[i], join(path, i), depth + 1]);
      }
      continue;
    }
    const keys = d.keys;
    if (!Array.isArray(keys) || keys.length !== children.length) {
      return `${at}: keys is not an array as long as children`;
    }
    const seen = new Set<string>();
    for (const k of keys) {
      if (typeof k !== "string") return `${at}: a key is not a string`;
      if (k === "__proto__") return `${at}: key "__proto__" cannot be restored`;
      if (seen.has(k)) return `${at}: key ${JSON.stringify(k).slice(0, 60)} appears twice`;
      seen.add(k);
    }
    for (let i = children.length - 1; i >= 0; i--) {
      todo.push([children[i], join(path, keys[i]), depth + 1]);
    }
  }
  if (!Array.isArray(leaves)) return "leaves is not an array";
  if (leaves.length !== leafCount) {
    return `leaves has ${leaves.length} entries but def has ${leafCount} leaves`;
  }
  const names = leafNames(def as TreeDef);
  for (const [i, s] of leaves.entries()) {
    const why = storedLeafProblem(s);
    if (why) return `leaf ${showPath(names[i])}: ${why}`;
  }
  return { def: def as TreeDef, leaves: leaves as StoredLeaf[] };
}

function storedLeafProblem(s: unknown): string | null {
  if (!isObject(s)) return "is not an object";
  const keys = Object.keys(s);
  if (keys.length !== 1) return `has fields ${JSON.stringify(keys).slice(0, 60)}, expected one`;
  const v = s[keys[0]];
  switch (keys[0]) {
    case "tensor":
      return typeof v === "string" ? null : "tensor is not a name";
    case "undefined":
      return v === true ? null : "undefined is not true";
    case "number":
      return typeof v === "string" && ["NaN", "Infinity", "-Infinity", "-0"].includes(v)
        ? null
        : `number ${JSON.stringify(v)?.slice(0, 40)} is not NaN, Infinity, -Infinity or -0`;
    case "value":
      return v === null || ["string", "boolean"].includes(typeof v) ||
          (typeof v === "number" && Number.isFinite(v))
        ? null
        : "value is not a number, string, boolean or null";
    default:
      return `unknown field ${JSON.stringify(keys[0]).slice(0, 40)}`;
  }
}

/** The value a stored non-tensor leaf stands for. */
export function restoreLeaf(s: StoredLeaf): unknown {
  if ("undefined" in s) return undefined;
  if ("number" in s) return s.number === "-0" ? -0 : Number(s.number);
  if ("value" in s) return s.value;
  return null;
}

/** How a non-tensor leaf is stored (`name` only serves the error for an unsavable leaf). */
export function storeLeaf(leaf: unknown, name: string): StoredLeaf {
  if (leaf instanceof Tensor) return { tensor: name };
  if (leaf === undefined) return { undefined: true };
  if (typeof leaf === "number") {
    // JSON has no NaN, Infinity or -0: keep those as text.
    return Number.isFinite(leaf) && !Object.is(leaf, -0)
      ? { value: leaf }
      : { number: Object.is(leaf, -0) ? "-0" : String(leaf) };
  }
  if (leaf === null || typeof leaf === "string" || typeof leaf === "boolean") {
    return { value: leaf };
  }
  throw new TypeError(
    `saveCheckpoint: leaf ${JSON.stringify(name)} is ${
      typeof leaf === "object" ? leaf.constructor?.name ?? "an object" : `a ${typeof leaf}`
    }; ` +
      "only tensors, numbers, strings, booleans, null and undefined can be saved",
  );
}

function isContainer(x: unknown): x is object {
  if (Array.isArray(x)) return true;
  if (x === null || typeof x !== "object" || x instanceof Tensor) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * Throws a TypeError naming the path when `tree` contains itself (a cycle, which would recurse
 * forever) or nests containers deeper than {@linkcode MAX_TREE_DEPTH}. Shared subtrees that
 * are not cycles are fine (they are saved once per place).
 */
export function checkTreeShape(op: string, tree: unknown): void {
  const onPath = new Map<object, string>();
  const walk = (x: unknown, path: string, depth: number) => {
    if (!isContainer(x)) return;
    const seenAt = onPath.get(x);
    if (seenAt !== undefined) {
      throw new TypeError(
        `${op}: the tree is cyclic: ${showPath(path)} is its own ancestor ${showPath(seenAt)}`,
      );
    }
    if (depth >= MAX_TREE_DEPTH) {
      throw new TypeError(
        `${op}: the tree nests deeper than ${MAX_TREE_DEPTH} levels at ${showPath(path)}`,
      );
    }
    onPath.set(x, path);
    if (Array.isArray(x)) x.forEach((c, i) => walk(c, join(path, i), depth + 1));
    else for (const [k, c] of Object.entries(x)) walk(c, join(path, k), depth + 1);
    onPath.delete(x);
  };
  walk(tree, "", 0);
}

const describeValue = (v: unknown) =>
  typeof v === "string"
    ? `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`
    : v === null || v === undefined
    ? String(v)
    : `${typeof v} ${String(v)}`;

/**
 * Why a restored non-tensor leaf does not fit its template leaf, or `null` when it does. A
 * `null` or `undefined` template accepts anything; otherwise the type must match, and for a
 * number template: a finite one asks for a finite number, an integer one for a safe integer,
 * a non-negative one for a non-negative number (so a step counter saved from `0` must come back
 * as a non-negative safe integer). Use `NaN` in a template to accept any number.
 */
export function leafMismatch(template: unknown, value: unknown): string | null {
  if (template === null || template === undefined) return null;
  if (typeof value !== typeof template || value === null) {
    return `expected a ${typeof template} like the template's, found ${describeValue(value)}`;
  }
  if (typeof template !== "number") return null;
  const v = value as number;
  if (Number.isNaN(template)) return null;
  if (Number.isFinite(template) && !Number.isFinite(v)) {
    return `expected a finite number, found ${v}`;
  }
  if (Number.isInteger(template) && !Number.isSafeInteger(v)) {
    return `expected a safe integer like the template's ${template}, found ${v}`;
  }
  if (template >= 0 && v < 0) return `expected a non-negative number, found ${v}`;
  return null;
}

/** Nested objects from dotted names, for files without the tree entry. */
export function planFromNames(
  entries: HeaderEntry[],
  bad: (msgs: string[]) => never,
): [TreeDef, HeaderEntry[]] {
  type Dir = Map<string, Dir | HeaderEntry>;
  const root: Dir = new Map();
  for (const e of entries) {
    const parts = e.name.split(".");
    if (parts.length > MAX_TREE_DEPTH) {
      bad([
        `tensor ${JSON.stringify(e.name.slice(0, 60))}… has ${parts.length} dotted parts; ` +
        `at most ${MAX_TREE_DEPTH} are read as nesting`,
      ]);
    }
    let dir = root;
    for (const p of parts.slice(0, -1)) {
      const next = dir.get(p) ?? new Map();
      if (!(next instanceof Map)) {
        bad([`tensor ${JSON.stringify(e.name)} clashes with ${JSON.stringify(next.name)}`]);
      }
      dir.set(p, next);
      dir = next as Dir;
    }
    const last = parts.at(-1)!;
    if (dir.has(last)) bad([`tensor ${JSON.stringify(e.name)} clashes with another tensor's name`]);
    dir.set(last, e);
  }
  const order: HeaderEntry[] = [];
  const walk = (x: Dir | HeaderEntry): TreeDef => {
    if (!(x instanceof Map)) {
      order.push(x);
      return { kind: "leaf" };
    }
    return { kind: "object", keys: [...x.keys()], children: [...x.values()].map(walk) };
  };
  return [walk(root), order];
}
