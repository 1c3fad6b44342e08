/**
 * Reverse mode without a tape. `vjp(f, ...args)` opens a trace, replaces every f32 tensor of
 * the arguments by a traced view, and runs `f`: each primitive applied to a traced tensor
 * records a node reachable only from its outputs (see `ops/primitive.ts`). The pullback walks
 * those nodes in reverse topological order, calling each primitive's VJP rule and summing
 * broadcast cotangents down to the input shapes, the one place where broadcasting is undone.
 *
 * Nesting: a trace leaf is an identity node whose input is the original tensor, so a trace
 * opened inside another one passes its cotangents on to the outer trace; rules run with
 * ordinary ops, so a pullback called while an outer trace is open is itself recorded, which is
 * what makes `grad(grad(f))` work.
 * @module
 */
import {
  closeTrace,
  definePrimitive,
  holdFor,
  isSaved,
  makeNode,
  type Node,
  openTrace,
  openTracesOf,
} from "../ops/primitive.ts";
import { fmt, Tensor } from "../ops/tensor.ts";
import { isFloat } from "../kernels/dtype.ts";
import type { DeviceName } from "../kernels/device.ts";
import { scope } from "../ops/scope.ts";
import { add, cast } from "../ops/binary.ts";
import { zeros } from "../ops/creation.ts";
import { broadcastTo, reshape } from "../ops/shape.ts";
import { sum } from "../ops/reduce.ts";
import { flattenTree, leavesLike, type TreeDef, unflattenTree } from "./pytree.ts";

/**
 * The cotangent of a value of type `T`: the same structure, with a tensor of the same shape
 * in place of each tensor (`null` for tensors that are not f32) and `null` for other leaves.
 */
export type Cotangent<T> = T extends Tensor ? Tensor
  : T extends readonly unknown[] ? { [K in keyof T]: Cotangent<T[K]> }
  : T extends Record<string, unknown> ? { [K in keyof T]: Cotangent<T[K]> }
  : null;

/** Cotangents for each argument of a function with arguments `Args`. */
export type Cotangents<Args extends readonly unknown[]> = { [K in keyof Args]: Cotangent<Args[K]> };

/**
 * A cotangent given to a pullback for a value of type `T`: like {@linkcode Cotangent}, but any
 * subtree may be `null` (zeros).
 */
export type CotangentIn<T> =
  | null
  | undefined
  | (T extends Tensor ? Tensor
    : T extends readonly unknown[] ? { [K in keyof T]: CotangentIn<T[K]> }
    : T extends Record<string, unknown> ? { [K in keyof T]: CotangentIn<T[K]> }
    : null);

/**
 * A pullback: maps a cotangent of the output (same structure; `null` stands for zeros) to
 * one cotangent per argument.
 */
export type Pullback<Out, Args extends readonly unknown[]> = (
  cotangent: CotangentIn<Out>,
) => Cotangents<Args>;

/** The identity that marks a trace's inputs; it hands its cotangent on to outer traces. */
const leafPrim = definePrimitive<undefined>({
  name: "traceInput",
  forward: ([x]) => [x.view(x.shape)],
  vjp: ([g]) => [g],
});

/** A new handle on `t` that keeps its trace marks. */
function own(t: Tensor): Tensor {
  return t.view(t.shape, t.node, t.nodeIndex);
}

/** Makes the traced stand-in for argument tensor `x` in trace `id`. */
function traceLeaf(x: Tensor, id: number): [Tensor, Node] {
  const outer = x.node ? openTracesOf(x.node.traces) : null;
  const traces = new Set([id, ...(outer ?? [])]);
  // Outside any other open trace the leaf needs no input: no walker will go past it.
  const node = makeNode(leafPrim, outer ? [own(x)] : [], undefined, traces);
  holdFor(node, node.inputs);
  node.outputShapes.push(x.shape);
  return [x.view(x.shape, node, 0), node];
}

/**
 * Evaluates `f(...args)` and returns its output with a pullback. Arguments and the output are
 * pytrees (nested arrays and plain objects) whose tensor leaves are traced when they are f32;
 * other leaves pass through unchanged. `f` must be synchronous.
 *
 * The pullback takes a cotangent shaped like the output (`null` anywhere for zeros) and returns
 * one cotangent per argument, shaped like it: a tensor for each f32 tensor (zeros when the
 * output does not depend on it), `null` for every other leaf. It may be called several times.
 * The graph it walks lives in the tensors recorded while `f` ran, which belong to the scope
 * that was current; call the pullback before that scope ends (`grad` does all of this for you).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, mul, scope, sin, type Tensor, tensor, vjp } from "@longseq/tensor";
 * await scope(async () => {
 *   const x = tensor([0, 1, 2]);
 *   const [y, pullback] = vjp((x: Tensor) => mul(sin(x), 2), x);
 *   const [dx] = pullback(tensor([1, 1, 1]));
 *   assert.ok(await allClose(y, [0, 1, 2].map((v) => 2 * Math.sin(v))));
 *   assert.ok(await allClose(dx as Tensor, [0, 1, 2].map((v) => 2 * Math.cos(v))));
 * });
 * ```
 */
export function vjp<Args extends unknown[], Out>(
  f: (...args: Args) => Out,
  ...args: Args
): [Out, Pullback<Out, Args>] {
  if (typeof f !== "function") throw new TypeError(`vjp: f must be a function, got ${typeof f}`);
  const argDefs: TreeDef[] = [];
  const argLeaves: unknown[][] = [];
  for (const arg of args) {
    const [leaves, def] = flattenTree(arg);
    for (const x of leaves) {
      if (x instanceof Tensor && x.disposed) {
        throw new TypeError(`vjp: argument tensor ${x} was disposed before the call`);
      }
    }
    argDefs.push(def);
    argLeaves.push(leaves);
  }
  const id = openTrace();
  const leafIndex = new Map<Node, number>();
  const leafDevice = new Map<number, DeviceName>();
  let out: Out;
  try {
    let k = 0;
    const traced = argLeaves.map((leaves, a) =>
      unflattenTree(
        argDefs[a],
        leaves.map((x) => {
          const i = k++;
          if (!(x instanceof Tensor) || !isFloat(x.dtype)) return x;
          const [leaf, node] = traceLeaf(x, id);
          leafIndex.set(node, i);
          leafDevice.set(i, x.device); // the caller may dispose x before pulling back
          return leaf;
        }),
      )
    );
    out = f(...(traced as Args));
    if (out instanceof Promise) {
      throw new TypeError(
        "vjp: f returned a Promise; differentiated functions must be synchronous " +
          "(read values with await outside them)",
      );
    }
  } finally {
    closeTrace(id);
  }
  const [outLeaves, outDef] = flattenTree(out);
  const outInfo = outLeaves.map((x) =>
    x instanceof Tensor
      ? { shape: x.shape, dtype: x.dtype, node: x.node, index: x.nodeIndex }
      : null
  );
  const pullback = (cotangent: unknown) => {
    const cts = leavesLike("pullback", outDef, cotangent, "the cotangent");
    const seeds: Seed[] = [];
    cts.forEach((ct, i) => {
      const info = outInfo[i];
      if (ct === null || ct === undefined) return;
      if (!(ct instanceof Tensor)) {
        throw new TypeError(
          `pullback: cotangent leaf ${i} must be a Tensor or null, got ${typeof ct}`,
        );
      }
      if (!info) {
        throw new TypeError(
          `pullback: output leaf ${i} is not a tensor, so its cotangent must be null, got ${ct}`,
        );
      }
      if (fmt(ct.shape) !== fmt(info.shape)) {
        throw new RangeError(
          `pullback: cotangent shape ${fmt(ct.shape)} differs from output leaf ${i} shape ` +
            `${fmt(info.shape)}; cotangents must have exactly the output's shape`,
        );
      }
      if (isFloat(info.dtype) && !isFloat(ct.dtype)) {
        throw new TypeError(
          `pullback: cotangent of output leaf ${i} must be ${info.dtype}, got ${ct}`,
        );
      }
      if (ct.disposed) throw new TypeError(`pullback: cotangent ${ct} was disposed`);
      if (info.node?.traces.has(id)) seeds.push({ node: info.node, index: info.index, ct });
    });
    const found = walk(id, seeds, leafIndex);
    let k = 0;
    return argLeaves.map((leaves, a) =>
      unflattenTree(
        argDefs[a],
        leaves.map((x) => {
          const i = k++;
          if (!(x instanceof Tensor) || !isFloat(x.dtype)) return null;
          return found.get(i) ?? zeros(x.shape, { dtype: x.dtype, device: leafDevice.get(i) });
        }),
      )
    );
  };
  return [out, pullback as Pullback<Out, Args>];
}

interface Seed {
  node: Node;
  index: number;
  ct: Tensor;
}

/** The nodes of trace `id` reachable from the seeds, inputs before the nodes using them. */
function topoOrder(id: number, roots: readonly Node[], leaves: Map<Node, number>): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  // Iterative depth-first search: graphs of deep models are far deeper than the JS stack.
  const stack: [Node, number][] = [];
  for (const root of roots) {
    if (seen.has(root)) continue;
    seen.add(root);
    stack.push([root, 0]);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, i] = top;
      if (!leaves.has(node) && i < node.inputs.length) {
        top[1]++;
        const m = node.inputs[i].node;
        if (m && m.traces.has(id) && !seen.has(m)) {
          seen.add(m);
          stack.push([m, 0]);
        }
      } else {
        stack.pop();
        order.push(node);
      }
    }
  }
  return order;
}

function checkLive(order: readonly Node[], leaves: Map<Node, number>) {
  for (const node of order) {
    if (leaves.has(node)) continue;
    const saved = [
      ...node.inputs.filter((_, i) => isSaved(node, "inputs", i)),
      ...node.outputs.filter((_, i) => isSaved(node, "outputs", i)),
    ];
    for (const t of saved) {
      if (t.disposed) {
        throw new TypeError(
          `pullback: a tensor recorded by ${node.primitive.name} (${t}) was disposed, usually ` +
            "because the scope that ran vjp has ended; call the pullback inside that scope",
        );
      }
    }
  }
}

/**
 * Walks trace `id` backwards from the seeds; returns the cotangent of each leaf reached, by
 * flat argument-leaf index. Every cotangent handle the walk creates is disposed once used.
 */
function walk(id: number, seeds: readonly Seed[], leaves: Map<Node, number>): Map<number, Tensor> {
  const order = topoOrder(id, seeds.map((s) => s.node), leaves);
  checkLive(order, leaves);
  const slots = new Map<Node, (Tensor | undefined)[]>();
  const found = new Map<number, Tensor>();
  const accumulate = (node: Node, index: number, t: Tensor) => {
    let s = slots.get(node);
    if (!s) slots.set(node, s = []);
    const prev = s[index];
    if (prev) {
      s[index] = add(prev, t);
      prev.dispose();
      t.dispose();
    } else s[index] = t;
  };
  try {
    for (const { node, index, ct } of seeds) accumulate(node, index, own(ct));
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k];
      const s = slots.get(node);
      if (!s) continue;
      slots.delete(node);
      const leaf = leaves.get(node);
      if (leaf !== undefined) {
        if (s[0]) found.set(leaf, s[0]);
        continue;
      }
      applyRule(id, node, s, accumulate);
    }
  } catch (e) {
    for (const s of slots.values()) for (const t of s) t?.dispose();
    for (const t of found.values()) t.dispose();
    throw e;
  }
  return found;
}

/** Calls `node`'s VJP rule with the cotangents in `s` (consumed) and routes its results. */
function applyRule(
  id: number,
  node: Node,
  s: (Tensor | undefined)[],
  accumulate: (node: Node, index: number, t: Tensor) => void,
) {
  const prim = node.primitive;
  const temps: Tensor[] = [];
  const gs = node.outputShapes.map((shape, i) => {
    const o = node.outputs[i];
    if (s[i]) return s[i]!;
    if (!o || !isFloat(o.dtype)) return null;
    return temps[temps.length] = zeros(shape, { dtype: o.dtype, device: node.device ?? o.device });
  });
  // While an outer trace is open, the rule's arithmetic must be recorded against the node's
  // outputs as traced values (for rules that use them, e.g. exp), so outer walkers see it.
  const outer = openTracesOf(node.traces) !== null;
  const outputs = outer
    ? node.outputs.map((o, i) =>
      isFloat(o.dtype) && !o.disposed ? (temps[temps.length] = o.view(o.shape, node, i)) : o
    )
    : node.outputs;
  let res: (Tensor | null)[] = [];
  try {
    if (prim.vjp === "none") return;
    const rule = prim.vjp;
    const ctx = { inputs: node.inputs, outputs, params: node.params };
    res = scope(() => rule(gs as Tensor[], ctx));
    if (!Array.isArray(res) || res.length !== node.inputs.length) {
      throw new Error(
        `vjp: the rule of ${prim.name} returned ${
          Array.isArray(res) ? res.length : typeof res
        } cotangents for ${node.inputs.length} inputs`,
      );
    }
    res.forEach((r, i) => {
      const x = node.inputs[i];
      if (!r || !x.node || !x.node.traces.has(id) || !isFloat(x.dtype)) return;
      // Cotangents take the primal's dtype (an f16 input gets an f16 gradient).
      if (r.dtype !== x.dtype) {
        using c = cast(r, x.dtype);
        accumulate(x.node, x.nodeIndex, sumToShape(c, x.shape, prim.name, i));
        return;
      }
      accumulate(x.node, x.nodeIndex, sumToShape(r, x.shape, prim.name, i));
    });
  } finally {
    const keep = new Set([...node.inputs, ...node.outputs]);
    for (const r of res) if (r instanceof Tensor && !keep.has(r)) r.dispose();
    for (const g of s) g?.dispose();
    for (const t of temps) t.dispose();
  }
}

/**
 * Sums a cotangent left in a broadcast shape down to `shape` (over leading axes and over axes
 * where `shape` has size 1). Returns a new handle.
 */
export function sumToShape(r: Tensor, shape: readonly number[], op: string, i: number): Tensor {
  if (fmt(r.shape) === fmt(shape)) return own(r);
  const lead = r.rank - shape.length;
  const bad = () =>
    new RangeError(
      `vjp: the rule of ${op} returned a cotangent of shape ${fmt(r.shape)} for input ${i} ` +
        `of shape ${fmt(shape)}, which is not a broadcast of it`,
    );
  if (lead < 0) {
    try {
      return broadcastTo(r, shape);
    } catch {
      throw bad();
    }
  }
  const axes: number[] = [];
  for (let d = 0; d < r.rank; d++) {
    if (d < lead) axes.push(d);
    else if (shape[d - lead] === 1 && r.shape[d] !== 1) axes.push(d);
    else if (shape[d - lead] !== r.shape[d] && r.shape[d] !== 1) throw bad();
  }
  using summed = sum(r, axes, { keepdims: true });
  const kept = summed.shape.slice(lead);
  using reduced = reshape(summed, kept);
  return fmt(kept) === fmt(shape) ? own(reduced) : broadcastTo(reduced, shape);
}
