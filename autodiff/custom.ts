/**
 * Custom gradients and the memory strategies built on them: `customVjp(f, {fwd, bwd})` and
 * `remat(f)` (rematerialisation). Each is one primitive (created per wrapper) whose node holds only what its
 * forward pass chose to keep; `reversible.ts` builds on the same machinery.
 * @module
 */
import { bind, definePrimitive, holdFor, openTracesOf } from "../ops/primitive.ts";
import { Tensor } from "../ops/tensor.ts";
import { scope } from "../ops/scope.ts";
import {
  flattenTree,
  leafCount,
  leavesLike,
  type TreeDef,
  treeTensors,
  unflattenTree,
} from "./pytree.ts";
import { type Cotangent, vjp } from "./vjp.ts";

/** What a custom backward pass sees besides its residuals. */
export interface CustomContext {
  /** The arguments, rebuilt from the node's own handles (traced by any outer open trace). */
  readonly args: unknown[];
  /** The output, rebuilt from the node's own handles. */
  readonly out: unknown;
}

/** The three parts of a custom-gradient function (internal). */
export interface CustomImpl {
  /** Name used in errors. */
  readonly name: string;
  /** Evaluation when nothing is traced: no residuals are kept. */
  primal(args: unknown[]): unknown;
  /** Evaluation on untraced copies of traced arguments: `[output, residuals]`. */
  forward(args: unknown[]): [unknown, unknown];
  /** One cotangent pytree (or null) per argument. */
  backward(residuals: unknown, cotangent: unknown, ctx: CustomContext): unknown[];
}

interface CustomParams {
  argDef: TreeDef;
  leaves: unknown[];
  tensorAt: number[];
  outDef?: TreeDef;
  outLeaves?: unknown[];
  outTensorAt?: number[];
  residuals?: unknown;
}

function rebuild(def: TreeDef, leaves: readonly unknown[], at: readonly number[], ts: unknown[]) {
  const all = [...leaves];
  at.forEach((pos, j) => (all[pos] = ts[j]));
  return unflattenTree(def, all);
}

/**
 * Makes a function of `args` that evaluates `impl` as one primitive: when any tensor argument
 * is traced by an open `vjp`, its forward runs untraced and its node keeps only the residuals.
 */
export function customFunction(impl: CustomImpl): (args: unknown[]) => unknown {
  const prim = definePrimitive<CustomParams>({
    name: impl.name,
    forward: (inputs, p) => {
      const [outs] = scope(() => {
        const views = inputs.map((t) => t.view(t.shape));
        const args = rebuild(p.argDef, p.leaves, p.tensorAt, views) as unknown[];
        const [out, residuals] = impl.forward(args);
        const [outLeaves, outDef] = flattenTree(out);
        for (const t of outLeaves) {
          if (t instanceof Tensor && t.node && openTracesOf(t.node.traces)) {
            throw new TypeError(
              `${impl.name}: the output depends on a traced tensor that is not an argument ` +
                "(captured from an enclosing scope); pass every tensor to differentiate as an " +
                "argument",
            );
          }
        }
        p.outDef = outDef;
        p.outTensorAt = [];
        outLeaves.forEach((x, i) => x instanceof Tensor && p.outTensorAt!.push(i));
        p.outLeaves = outLeaves.map((x) => (x instanceof Tensor ? null : x));
        p.residuals = residuals;
        return [p.outTensorAt.map((i) => outLeaves[i] as Tensor), residuals] as const;
      });
      return [...outs];
    },
    vjp: (cts, ctx) => {
      const p = ctx.params;
      const args = rebuild(p.argDef, p.leaves, p.tensorAt, [...ctx.inputs]) as unknown[];
      const out = rebuild(p.outDef!, p.outLeaves!, p.outTensorAt!, [...ctx.outputs]);
      const ct = rebuild(p.outDef!, p.outLeaves!.map(() => null), p.outTensorAt!, [...cts]);
      const res = impl.backward(p.residuals, ct, { args, out });
      return flattenCotangents(impl.name, p, args, res);
    },
  });
  return (args) => {
    const [leaves, argDef] = flattenTree(args);
    const tensorAt: number[] = [];
    leaves.forEach((x, i) => x instanceof Tensor && tensorAt.push(i));
    const inputs = tensorAt.map((i) => leaves[i] as Tensor);
    const traced = inputs.some((t) => t.node && openTracesOf(t.node.traces));
    if (!traced) return impl.primal(args);
    const p: CustomParams = { argDef, leaves: leaves.map(() => null), tensorAt };
    leaves.forEach((x, i) => !(x instanceof Tensor) && (p.leaves[i] = x));
    const outs = bind(prim, inputs, p);
    // The residuals belong to the node, like the views `bind` keeps (see `scope`).
    const node = outs.find((t) => t.node)?.node;
    if (node) holdFor(node, treeTensors(p.residuals));
    return rebuild(p.outDef!, p.outLeaves!, p.outTensorAt!, outs);
  };
}

/** Checks a backward pass's result and lines it up with the primitive's tensor inputs. */
function flattenCotangents(
  name: string,
  p: CustomParams,
  args: unknown[],
  res: unknown,
): (Tensor | null)[] {
  if (!Array.isArray(res) || res.length !== args.length) {
    throw new TypeError(
      `${name}: the backward pass must return an array with one cotangent (or null) per ` +
        `argument (${args.length}), got ${
          Array.isArray(res) ? `${res.length} entries` : typeof res
        }`,
    );
  }
  const defs = p.argDef.kind === "array" ? p.argDef.children : [];
  const flat: unknown[] = [];
  const owner: number[] = [];
  defs.forEach((def, i) => {
    const leaves = leavesLike(name, def, res[i], `the cotangent returned for argument ${i}`);
    flat.push(...leaves);
    for (let k = leafCount(def); k > 0; k--) owner.push(i);
  });
  return p.tensorAt.map((pos) => {
    const ct = flat[pos];
    if (ct === null || ct === undefined) return null;
    if (!(ct instanceof Tensor)) {
      throw new TypeError(
        `${name}: the cotangent for argument ${owner[pos]} must hold tensors or null, ` +
          `got ${typeof ct}`,
      );
    }
    return ct;
  });
}

/** Throws if a custom backward pass is about to be differentiated by an open outer trace. */
function refuseHigherOrder(name: string, args: unknown[]) {
  for (const t of flattenTree(args)[0]) {
    if (t instanceof Tensor && t.node && openTracesOf(t.node.traces)) {
      throw new TypeError(
        `${name}: cannot differentiate the backward pass of a customVjp function (grad of ` +
          "grad): its residuals were computed without tracing. Differentiate the plain " +
          "function instead, or use remat, which supports it",
      );
    }
  }
}

/** The rules of {@linkcode customVjp}. */
export interface CustomVjpRules<Args extends unknown[], Out, R> {
  /** Forward pass: the output and the residuals the backward pass needs. */
  fwd: (...args: Args) => [Out, R];
  /**
   * Backward pass: given the residuals and the output's cotangent, one cotangent per
   * argument (shaped like it), or null for an argument that gets none.
   */
  bwd: (residuals: R, cotangent: Cotangent<Out>) => unknown[];
}

/**
 * Gives `f` a hand-written gradient. `fwd(...args)` returns `[output, residuals]` (any pytree
 * of tensors to keep for the backward pass); `bwd(residuals, cotangent)` returns one cotangent
 * per argument. Without tracing, the wrapper just calls `f`. When differentiated, the forward
 * runs untraced, so the graph holds only the residuals: this is how memory strategies are
 * written. Arguments and output may be pytrees. First order only: differentiating through
 * `bwd` itself (grad of grad) throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { customVjp, exp, grad, mul, sum, type Tensor, tensor } from "@longseq/tensor";
 * const myExp = customVjp((x: Tensor) => exp(x), {
 *   fwd: (x) => { const y = exp(x); return [y, y]; },
 *   bwd: (y, g) => [mul(g, y)],
 * });
 * assert.deepEqual(await grad((x: Tensor) => sum(myExp(x)))(tensor([0])).array(), [1]);
 * ```
 */
export function customVjp<Args extends unknown[], Out, R>(
  f: (...args: Args) => Out,
  rules: CustomVjpRules<Args, Out, R>,
): (...args: Args) => Out {
  if (
    typeof f !== "function" || typeof rules?.fwd !== "function" || typeof rules?.bwd !== "function"
  ) {
    throw new TypeError("customVjp: expected a function and { fwd, bwd } functions");
  }
  const name = `customVjp(${f.name || "anonymous"})`;
  const call = customFunction({
    name,
    primal: (args) => f(...(args as Args)),
    forward: (args) => {
      const r = rules.fwd(...(args as Args));
      if (!Array.isArray(r) || r.length !== 2) {
        throw new TypeError(`${name}: fwd must return [output, residuals]`);
      }
      return r as [unknown, unknown];
    },
    backward: (residuals, ct, ctx) => {
      refuseHigherOrder(name, ctx.args);
      return rules.bwd(residuals as R, ct as Cotangent<Out>);
    },
  });
  return (...args: Args) => call(args) as Out;
}

/**
 * Rematerialisation: `remat(f)` computes the same values, but when differentiated it keeps
 * only its arguments during the forward pass and re-runs `f` in the backward pass, so the
 * activations inside `f` exist only while that piece of the backward pass runs (the Sparse
 * Transformer's "recomputation", JAX's `remat`). `f` must be a deterministic function of its
 * arguments: pass PRNG keys as arguments (never draw fresh ones inside), and the re-run
 * reproduces dropout masks exactly. Grad of grad through `remat` works.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, grad, remat, sum, tanh, type Tensor, tensor } from "@longseq/tensor";
 * const block = remat((x: Tensor) => tanh(x));
 * const g = grad((x: Tensor) => sum(block(x)))(tensor([0.5]));
 * assert.ok(await allClose(g, [1 - Math.tanh(0.5) ** 2])); // d tanh(x) / dx
 * ```
 */
export function remat<Args extends unknown[], Out>(
  f: (...args: Args) => Out,
): (...args: Args) => Out {
  if (typeof f !== "function") {
    throw new TypeError(`remat: f must be a function, got ${typeof f}`);
  }
  const call = customFunction({
    name: `remat(${f.name || "anonymous"})`,
    primal: (args) => f(...(args as Args)),
    forward: (args) => [f(...(args as Args)), null],
    backward: (_, ct, ctx) => {
      // The node's own handles of the arguments: traced by an outer trace when one is open,
      // which makes the recomputation (and so this backward pass) differentiable again.
      const [, pullback] = vjp(f, ...(ctx.args as Args));
      return pullback(ct as Cotangent<Out>) as unknown[];
    },
  });
  return (...args: Args) => call(args) as Out;
}

/**
 * Rematerialisation under its former name.
 *
 * @deprecated Renamed {@linkcode remat} ("checkpoint" also names the files of `io/`); this
 * alias goes in the next release.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkpoint, remat } from "@longseq/tensor";
 * assert.equal(checkpoint, remat); // use remat
 * ```
 */
export const checkpoint: typeof remat = remat;
