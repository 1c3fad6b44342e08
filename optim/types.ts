/**
 * Core types of the optimizers (optax style): a {@linkcode GradientTransformation} is a pure
 * `{ init, update }` pair; schedules are plain `(step) => number` functions; step counts live in
 * the state both as a device scalar (for checkpoints) and as a host integer (so schedules and
 * bias corrections never read the GPU back).
 *
 * The tree helpers here walk nested arrays and plain objects of tensors along a reference tree
 * (the params), so every transformation reports mismatched trees the same way.
 * @module
 */
import { Tensor } from "../ops/tensor.ts";
import { add } from "../ops/binary.ts";
import { full } from "../ops/creation.ts";
import { scope } from "../ops/scope.ts";
import type { DeviceName } from "../kernels/device.ts";
import { dtypeInfo } from "../kernels/dtype.ts";
import {
  flattenTree as flattenPytree,
  leavesLike,
  type TreeDef,
  unflattenTree,
} from "../autodiff/pytree.ts";

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
 * import { optim, scope, tensor } from "@longseq/tensor";
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
 * console.log(await params.w.array()); // [0.95, 2.05]
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
 * import { optim, tensor } from "@longseq/tensor";
 * const opt = optim.adam(1e-3);
 * const state = opt.init({ w: tensor([1]) });
 * const fixed = await optim.restoreSteps(state); // same tensors, `step` read from `count`
 * ```
 */
export async function restoreSteps<S>(state: S): Promise<S> {
  const walk = async (x: unknown): Promise<unknown> => {
    if (x instanceof Tensor || x === null || typeof x !== "object") return x;
    if (Array.isArray(x)) return await Promise.all(x.map(walk));
    if (!isPlainObject(x)) return x;
    const obj = x as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = await walk(v);
    if (obj.count instanceof Tensor && typeof obj.step === "number") {
      out.step = Number((await obj.count.data())[0]);
    }
    return out;
  };
  return await walk(state) as S;
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

function isPlainObject(x: object): boolean {
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function describe(x: unknown): string {
  if (x instanceof Tensor) return `a tensor ${x.dtype}[${x.shape.join(",")}]`;
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return "an array";
  return typeof x === "object" ? `a ${x.constructor?.name ?? "object"}` : `a ${typeof x}`;
}

const at = (path: string) => path === "" ? "the root" : `"${path}"`;

/** Paths of a structure's leaves in flattening order, like `layers[0].w`. */
export function leafPaths(def: TreeDef): string[] {
  const out: string[] = [];
  const walk = (d: TreeDef, path: string) => {
    if (d.kind === "leaf") out.push(path);
    else if (d.kind === "array") d.children.forEach((c, i) => walk(c, `${path}[${i}]`));
    else d.children.forEach((c, i) => walk(c, path === "" ? d.keys[i] : `${path}.${d.keys[i]}`));
  };
  walk(def, "");
  return out;
}

/** The tensors of a tree in pytree order, with their paths. */
export interface Flat {
  /** The tensors (`null`/`undefined` leaves are skipped: they are empty subtrees). */
  readonly leaves: Tensor[];
  /** Their paths (`layers[0].w`). */
  readonly paths: string[];
}

/**
 * Flattens a tree of tensors with `autodiff/pytree.ts`; `null`/`undefined` leaves are kept out
 * (empty subtrees) and any other non-tensor leaf is a TypeError naming its path.
 */
export function flattenTree(op: string, name: string, tree: Tree): Flat {
  const [all, def] = flattenPytree(tree);
  const allPaths = leafPaths(def);
  const leaves: Tensor[] = [], paths: string[] = [];
  all.forEach((x, i) => {
    if (x instanceof Tensor) (leaves.push(x), paths.push(allPaths[i]));
    else if (x !== null && x !== undefined) {
      throw new TypeError(
        `${op}: ${name} holds ${describe(x)} at ${at(allPaths[i])}; ` +
          "trees may only nest tensors in arrays and plain objects",
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
  const [refLeaves, def] = flattenPytree(ref);
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
  const [all, def] = flattenPytree(ref);
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
  const flat = flattenTree(op, "updates", updates);
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
  const { leaves } = flattenTree("deviceOf", "tree", tree);
  return leaves[0]?.device;
}

/** Checks a hyperparameter: a finite number within `[min, max]` (and an integer if asked). */
export function checkNumber(
  op: string,
  name: string,
  value: unknown,
  { min = -Infinity, max = Infinity, integer = false, exclusiveMin = false, exclusiveMax = false } =
    {},
): number {
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (exclusiveMin ? value > min : value >= min) && (exclusiveMax ? value < max : value <= max) &&
    (!integer || Number.isInteger(value));
  if (!ok) {
    const range = `${exclusiveMin ? "(" : "["}${min}, ${max}${exclusiveMax ? ")" : "]"}`;
    throw new RangeError(
      `${op}: ${name} must be a finite ${integer ? "integer" : "number"} in ${range}, ` +
        `got ${String(value)}`,
    );
  }
  return value as number;
}

/** Checks a learning rate given as a number or a schedule. */
export function checkRate(op: string, lr: unknown): number | Schedule {
  if (typeof lr === "function") return lr as Schedule;
  return checkNumber(op, "learning rate", lr);
}

/** Evaluates a schedule at a step and checks the result is finite. */
export function rateAt(op: string, lr: number | Schedule, step: number): number {
  if (typeof lr === "number") return lr;
  const v = lr(step);
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new RangeError(`${op}: the schedule returned ${String(v)} at step ${step}`);
  }
  return v;
}
