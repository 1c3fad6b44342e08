/**
 * Reversible residual blocks (RevNet, Reformer): `(x1, x2) -> (y1, y2)` with
 * `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`. A stack of them is one custom-VJP node whose only
 * residuals are the final output and each block's small saved state; the backward pass
 * rebuilds every block's input from its output (`x2 = y2 - G(y1)`, `x1 = y1 - F(x2)`), pulling
 * the cotangents back through `F` and `G` as it goes, so activation memory does not grow with
 * depth.
 *
 * Replay: `F` and `G` get their PRNG keys (and anything else) through `opts`, which the
 * recomputation passes again unchanged, so dropout masks repeat exactly. Data-dependent state
 * that must not change between the forward pass and the recomputation (LSH bucket
 * assignments) is returned by `F` or `G` as `{ out, saved }` during the forward pass and handed
 * back as their fourth argument during the recomputation and the inverse.
 * @module
 */
import { fmt, Tensor } from "../ops/tensor.ts";
import { scope } from "../ops/scope.ts";
import { add, sub } from "../ops/binary.ts";
import { customFunction } from "./custom.ts";
import { vjp } from "./vjp.ts";
import { treeTensors } from "./pytree.ts";

/** What `F` or `G` may return: the output, with small state to replay in the recomputation. */
export interface RevOutput {
  /** The block's output, shaped like the half it is added to. */
  out: Tensor;
  /** State (a pytree, e.g. i32 bucket ids) handed back as `saved` when recomputing. */
  saved?: unknown;
}

/**
 * One residual function of a reversible block: `(params, x, opts, saved?) -> out`, or
 * `{ out, saved }`. `saved` is undefined during the forward pass and is what the forward pass
 * returned during the recomputation and the inverse; `opts` (PRNG keys, masks) is the same in
 * both. It must be a deterministic function of its arguments.
 */
export type RevFn<P = unknown, O = unknown> = (
  params: P,
  x: Tensor,
  opts: O,
  saved?: unknown,
) => Tensor | RevOutput;

/** Parameters of one block: `F`'s and `G`'s. */
export interface RevParams<PF = unknown, PG = unknown> {
  /** `F`'s parameters. */
  f: PF;
  /** `G`'s parameters. */
  g: PG;
}

/** Per-call options of one block, passed to `F` and `G` unchanged (e.g. dropout keys). */
export interface RevOpts<OF = unknown, OG = unknown> {
  /** `F`'s options. */
  f?: OF;
  /** `G`'s options. */
  g?: OG;
}

/** The state one block's `F` and `G` saved during the forward pass. */
export interface RevSaved {
  /** `F`'s saved state. */
  f?: unknown;
  /** `G`'s saved state. */
  g?: unknown;
}

/** The two halves of a reversible activation, each `[batch, len, dModel]` typically. */
export type Halves = [Tensor, Tensor];

/** A stack of reversible blocks, differentiated as one node that inverts instead of storing. */
export interface ReversibleStack {
  /** The blocks, first to last. */
  readonly blocks: readonly RevBlockFns[];
  /**
   * Runs the stack: `params[i]` and `opts[i]` go to block `i`. Differentiable; under `vjp` the
   * stack keeps only its output (and saved state) and inverts itself in the backward pass.
   */
  apply(params: readonly RevParams[], x: Halves, opts?: readonly RevOpts[]): Halves;
  /** Runs the stack without autodiff and also returns each block's saved state. */
  forwardSaved(
    params: readonly RevParams[],
    x: Halves,
    opts?: readonly RevOpts[],
  ): [Halves, RevSaved[]];
  /** Rebuilds the input from the output (`saved` from {@linkcode forwardSaved} if used). */
  inverse(
    params: readonly RevParams[],
    y: Halves,
    opts?: readonly RevOpts[],
    saved?: readonly RevSaved[],
  ): Halves;
}

/** `F` and `G` of a block. */
export interface RevBlockFns {
  /** Residual function added to the first half. */
  readonly f: RevFn;
  /** Residual function added to the second half. */
  readonly g: RevFn;
}

/** One reversible block: its functions, usable on its own like a one-block stack. */
export interface ReversibleBlock extends RevBlockFns {
  /** `(x1, x2) -> (x1 + F(x2), x2 + G(y1))`; differentiable by inversion. */
  apply(params: RevParams, x: Halves, opts?: RevOpts): Halves;
  /** The block's forward pass without autodiff, with its saved state. */
  forwardSaved(params: RevParams, x: Halves, opts?: RevOpts): [Halves, RevSaved];
  /** `(y1, y2) -> (y1 - F(x2), y2 - G(y1))` with `x2 = y2 - G(y1)`. */
  inverse(params: RevParams, y: Halves, opts?: RevOpts, saved?: RevSaved): Halves;
}

function split(name: string, r: Tensor | RevOutput, like: Tensor): [Tensor, unknown] {
  const [out, saved] = r instanceof Tensor ? [r, undefined] : [r?.out, r?.saved];
  if (!(out instanceof Tensor)) {
    throw new TypeError(`reversible: ${name} must return a Tensor or { out, saved }`);
  }
  if (fmt(out.shape) !== fmt(like.shape)) {
    throw new RangeError(
      `reversible: ${name} returned ${fmt(out.shape)}, but the half it is added to is ` +
        `${fmt(like.shape)}; F and G must preserve the shape`,
    );
  }
  return [out, saved];
}

/** One block forward, in a scope: `[y1, y2, saved]`. */
function blockForward(b: RevBlockFns, p: RevParams, [x1, x2]: Halves, o: RevOpts | undefined) {
  return scope(() => {
    const [fo, sf] = split("F", b.f(p?.f, x2, o?.f), x1);
    const y1 = add(x1, fo);
    const [go, sg] = split("G", b.g(p?.g, y1, o?.g), x2);
    return [y1, add(x2, go), { f: sf, g: sg }] as const;
  });
}

/** One block inverse, in a scope: `[x1, x2]`. */
function blockInverse(b: RevBlockFns, p: RevParams, [y1, y2]: Halves, o?: RevOpts, s?: RevSaved) {
  return scope(() => {
    const [go] = split("G", b.g(p?.g, y1, o?.g, s?.g), y2);
    const x2 = sub(y2, go);
    const [fo] = split("F", b.f(p?.f, x2, o?.f, s?.f), y1);
    return [sub(y1, fo), x2] as Halves;
  });
}

function checkArgs(n: number, params: readonly unknown[], x: unknown, opts?: readonly unknown[]) {
  if (!Array.isArray(params) || params.length !== n) {
    throw new TypeError(
      `reversibleStack: params must be an array with one entry per block (${n}), got ${
        Array.isArray(params) ? params.length : typeof params
      }`,
    );
  }
  if (opts !== undefined && (!Array.isArray(opts) || opts.length !== n)) {
    throw new TypeError(`reversibleStack: opts must be undefined or an array of ${n} entries`);
  }
  if (!Array.isArray(x) || x.length !== 2 || !x.every((t) => t instanceof Tensor)) {
    throw new TypeError("reversibleStack: the input must be a pair of tensors [x1, x2]");
  }
}

/** Runs the blocks forward, freeing each intermediate pair as soon as the next exists. */
function runForward(
  blocks: readonly RevBlockFns[],
  params: readonly RevParams[],
  x: Halves,
  opts: readonly RevOpts[] | undefined,
  keepSaved: boolean,
): [Halves, RevSaved[]] {
  let cur = x;
  const saved: RevSaved[] = [];
  blocks.forEach((b, i) => {
    const [y1, y2, s] = blockForward(b, params[i], cur, opts?.[i]);
    if (cur !== x) cur.forEach((t) => t.dispose());
    if (keepSaved) saved.push(s);
    else treeTensors(s).forEach((t) => t.dispose());
    cur = [y1, y2];
  });
  return [cur === x ? [x[0].view(x[0].shape), x[1].view(x[1].shape)] : cur, saved];
}

/**
 * A stack of reversible blocks run as one differentiable node. Its backward pass walks the
 * blocks in reverse, rebuilding each block's input from its output and pulling back through
 * `G` then `F` (Gomez et al. 2017 §3; docs/algorithms.md#reversible-residual-layers), freeing each
 * block's recomputed activations before the next: peak activation memory is that of one block,
 * whatever the depth.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grad, mul, reversible, reversibleStack, sum, tanh, type Tensor, tensor } from "@longseq/tensor";
 * type T = Tensor;
 * const block = reversible((p: T, x: T) => tanh(mul(x, p)), (p: T, x: T) => tanh(mul(x, p)));
 * const stack = reversibleStack([block, block]);
 * const params = [{ f: tensor([0.5]), g: tensor([2]) }, { f: tensor([1]), g: tensor([-1]) }];
 * const loss = (ps: typeof params) => {
 *   const [y1, y2] = stack.apply(ps, [tensor([1, 2]), tensor([3, 4])]);
 *   return sum(mul(y1, y2));
 * };
 * const grads = grad(loss)(params); // shaped like params
 * assert.deepEqual(grads[1].g.shape, [1]);
 * ```
 */
export function reversibleStack(blocks: readonly RevBlockFns[]): ReversibleStack {
  if (
    !Array.isArray(blocks) ||
    blocks.some((b) => typeof b?.f !== "function" || typeof b?.g !== "function")
  ) {
    throw new TypeError("reversibleStack: expected an array of blocks with f and g functions");
  }
  const list = [...blocks];
  const n = list.length;
  type Args = [readonly RevParams[], Halves, readonly RevOpts[] | undefined];
  const call = customFunction({
    name: `reversibleStack(${n} blocks)`,
    primal: (args) => {
      const [params, x, opts] = args as Args;
      return runForward(list, params, x, opts, false)[0];
    },
    forward: (args) => {
      const [params, x, opts] = args as Args;
      const [y, saved] = runForward(list, params, x, opts, true);
      return [y, saved];
    },
    backward: (residuals, ct, { args, out }) => {
      const [params, , opts] = args as Args;
      const saved = residuals as RevSaved[];
      let [y1, y2] = out as Halves;
      let [dy1, dy2] = ct as Halves;
      const mine = new Set<Tensor>();
      const grads: RevParams[] = new Array(n);
      for (let i = n - 1; i >= 0; i--) {
        const b = list[i], p = params[i], o = opts?.[i], s = saved[i];
        const step = scope(() => {
          const [go, pullG] = vjp((pg, y) => split("G", b.g(pg, y, o?.g, s?.g), y2)[0], p?.g, y1);
          const [dg, gy1] = pullG(dy2);
          const x2 = sub(y2, go);
          const dx1 = add(dy1, gy1);
          // Freed before F's backward, the peak of the step (F's activations are alive then):
          // G's output and input cotangent, and the previous step's y2 and dy1 when ours.
          go.dispose();
          (gy1 as Tensor).dispose();
          if (mine.has(y2)) y2.dispose();
          if (mine.has(dy1)) dy1.dispose();
          const [fo, pullF] = vjp((pf, x) => split("F", b.f(pf, x, o?.f, s?.f), y1)[0], p?.f, x2);
          const [df, gx2] = pullF(dx1);
          return { x1: sub(y1, fo), x2, dx1, dx2: add(dy2, gx2), df, dg };
        });
        for (const t of [y1, y2, dy1, dy2]) if (mine.has(t)) t.dispose();
        ({ x1: y1, x2: y2, dx1: dy1, dx2: dy2 } = step);
        for (const t of [y1, y2, dy1, dy2]) mine.add(t);
        grads[i] = { f: step.df, g: step.dg };
      }
      if (mine.has(y1)) y1.dispose();
      if (mine.has(y2)) y2.dispose();
      return [grads, [dy1, dy2], null];
    },
  });
  return {
    blocks: list,
    apply(params, x, opts) {
      checkArgs(n, params, x, opts);
      return call([params, x, opts]) as Halves;
    },
    forwardSaved(params, x, opts) {
      checkArgs(n, params, x, opts);
      return runForward(list, params, x, opts, true);
    },
    inverse(params, y, opts, saved) {
      checkArgs(n, params, y, opts);
      let cur = y;
      for (let i = n - 1; i >= 0; i--) {
        const next = blockInverse(list[i], params[i], cur, opts?.[i], saved?.[i]);
        if (cur !== y) cur.forEach((t) => t.dispose());
        cur = next;
      }
      return cur === y ? [y[0].view(y[0].shape), y[1].view(y[1].shape)] : cur;
    },
  };
}

/**
 * A reversible residual block `(x1, x2) -> (y1, y2)`, `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`
 * (Gomez et al. 2017 §3; docs/algorithms.md#reversible-residual-layers). `F` and `G` take
 * `(params, x, opts, saved?)`; see {@linkcode RevFn} for how PRNG keys and saved state are
 * replayed. Use the block alone (`apply`, `inverse`) or pass several to
 * {@linkcode reversibleStack}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allClose, mul, reversible, tanh, type Tensor, tensor } from "@longseq/tensor";
 * type T = Tensor;
 * const block = reversible((p: T, x: T) => tanh(mul(x, p)), (p: T, x: T) => mul(x, p));
 * const params = { f: tensor([0.5]), g: tensor([2]) };
 * const y = block.apply(params, [tensor([1]), tensor([2])]);
 * const [x1, x2] = block.inverse(params, y);
 * assert.ok(await allClose(x1, [1]) && await allClose(x2, [2]));
 * ```
 */
export function reversible<PF, PG, OF = unknown, OG = unknown>(
  f: RevFn<PF, OF>,
  g: RevFn<PG, OG>,
): ReversibleBlock {
  if (typeof f !== "function" || typeof g !== "function") {
    throw new TypeError("reversible: F and G must be functions");
  }
  const fns: RevBlockFns = { f: f as RevFn, g: g as RevFn };
  const one = reversibleStack([fns]);
  return {
    ...fns,
    apply: (params, x, opts) => one.apply([params], x, opts && [opts]),
    forwardSaved: (params, x, opts) => {
      const [y, [s]] = one.forwardSaved([params], x, opts && [opts]);
      return [y, s];
    },
    inverse: (params, y, opts, saved) => one.inverse([params], y, opts && [opts], saved && [saved]),
  };
}
