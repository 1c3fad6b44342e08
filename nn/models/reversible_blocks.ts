/**
 * The Reformer's layer stack (Reformer §3; docs/algorithms.md#reversible-residual-layers):
 * reversible residual blocks whose `F` is attention (LSH, local or full shared-QK) on a
 * layer-normed input and whose `G` is a chunked feed-forward on a layer-normed input. Built on
 * autodiff's `reversibleStack`, so activation memory does not grow with depth; LSH bucket
 * assignments are returned as saved state and replayed in the recomputation, and every dropout
 * mask is replayed from its key.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { scope } from "../../ops/scope.ts";
import { add } from "../../ops/binary.ts";
import * as random from "../../ops/random.ts";
import {
  type Halves,
  type ReversibleStack,
  reversibleStack,
  type RevFn,
  type RevOpts,
  type RevParams,
} from "../../autodiff/reversible.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import {
  type AttentionOverride,
  type BranchOpts,
  type ReformerAttention,
  reformerBlock,
  type ReformerBlockConfig,
  type ReformerBlockParams,
} from "./reformer_block.ts";

export {
  type AttentionOverride,
  attentionTypes,
  type ReformerActivation,
  type ReformerAttention,
  type ReformerAttnParams,
  type ReformerBlockParams,
  type ReformerFFParams,
} from "./reformer_block.ts";

/** Configuration of {@linkcode reversibleBlocks}. */
export interface ReversibleBlocksConfig extends ReformerBlockConfig {
  /**
   * Differentiate by inversion (default true). `false` runs the same math with stored
   * activations: for tests and for comparing memory.
   */
  reversible?: boolean;
}

/** Options of {@linkcode reversibleBlocks}'s `apply`. */
export interface ReversibleBlocksOptions extends ApplyOptions {
  /** Padding mask `[batch, len]`: true (or non-zero) marks real tokens. */
  mask?: Tensor;
  /** Evaluate the shared-QK layers with another attention; see {@linkcode AttentionOverride}. */
  attentionOverride?: AttentionOverride;
  /**
   * Explicit LSH rotations per layer, `[heads, dHead, nHashes, rotSize/2]` (HF's layout), or
   * undefined for a layer to hash as usual; entries of non-LSH layers are ignored. For exact
   * comparisons with another implementation that drew its own rotations.
   */
  rotations?: readonly (Tensor | undefined)[];
}

/** The Reformer layer stack. `apply` maps the halves `(x1, x2)` to `(y1, y2)`. */
export interface ReversibleBlocks
  extends Layer<ReformerBlockParams[], Halves, Halves, ReversibleBlocksOptions> {
  /** The attention type of each layer. */
  readonly types: readonly ReformerAttention[];
}

/** Checks an override and names it (the key of the cache of stacks built for it). */
function overrideName(op: string, o: AttentionOverride | undefined): string {
  if (o === undefined) return "";
  if (o === "full" || o === "lsh") return o;
  const full = (o as { full?: { selfMask?: unknown } })?.full;
  if (full !== null && typeof full === "object" && Object.keys(o).length === 1) {
    const m = full.selfMask;
    if (m === undefined || typeof m === "boolean") return m === false ? "full-noself" : "full";
  }
  const l = (o as { lsh?: unknown })?.lsh;
  if (l === null || typeof l !== "object") {
    throw new TypeError(
      `${op}: attentionOverride must be "full", "lsh", { lsh: { nHashes } } or ` +
        `{ full: { selfMask } }, got ${JSON.stringify(o)}`,
    );
  }
  return JSON.stringify(l);
}

/**
 * The Reformer layer stack: `layers` reversible blocks `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`
 * with `F = dropout(attention(layerNorm(.)))` and `G = dropout(feedForward(layerNorm(.)))`,
 * `G` run over `ffChunks` slices of the sequence. Differentiated by inversion: the backward
 * pass rebuilds each block's input from its output, replaying the LSH buckets of the forward
 * pass and every dropout mask (all keys derive from `opts.key`).
 *
 * Shapes: each half `[batch, len, dModel]`, any `len >= 1`; `opts.mask [batch, len]`.
 * Params: one `{ f: { norm, attn }, g: { norm, ff } }` per layer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const stack = nn.reversibleBlocks({
 *   dModel: 8, dFF: 16, heads: 2, layers: 2, attention: ["lsh", "local"],
 *   nHashes: 2, chunkLen: 4, causal: true, ffChunks: 2,
 * });
 * const params = stack.init(random.key(0));
 * const [y1, y2] = stack.apply(params, [ones([1, 10, 8]), ones([1, 10, 8])]);
 * assert.deepEqual([y1.shape, y2.shape], [[1, 10, 8], [1, 10, 8]]);
 * ```
 */
export function reversibleBlocks(config: ReversibleBlocksConfig): ReversibleBlocks {
  const op = "reversibleBlocks";
  const def = reformerBlock(op, config);
  const { types, dropRate, attnRate } = def;
  const { dModel, layers } = config;
  const isReversible = config.reversible ?? true;

  // One stack per attention override, built on first use.
  const stacks = new Map<string, ReversibleStack>();
  const stackFor = (o: AttentionOverride | undefined): ReversibleStack => {
    const name = overrideName(op, o);
    let s = stacks.get(name);
    if (!s) {
      s = reversibleStack(
        types.map((_, i) => ({ f: def.f(def.attention(i, o)) as RevFn, g: def.g as RevFn })),
      );
      stacks.set(name, s);
    }
    return s;
  };

  return {
    types,
    init: (key) => def.init(key),
    apply(params, x, opts = {}) {
      checkHalves(op, x, dModel);
      if (!Array.isArray(params) || params.length !== layers) {
        throw new TypeError(
          `${op}: params must be an array of ${layers} blocks, got ${
            Array.isArray(params) ? `${params.length} entries` : typeof params
          }`,
        );
      }
      if (opts.key !== undefined && !(opts.key instanceof Tensor)) {
        throw new TypeError(`${op}: opts.key must be a PRNG key tensor (random.key)`);
      }
      if (opts.training && (dropRate > 0 || attnRate > 0) && !opts.key) {
        throw new TypeError(`${op}: training with dropout needs a PRNG key (opts.key)`);
      }
      const rot = opts.rotations;
      if (rot !== undefined && (!Array.isArray(rot) || rot.length !== layers)) {
        throw new TypeError(
          `${op}: opts.rotations must hold one entry (a tensor or undefined) per layer (${layers})`,
        );
      }
      const stack = stackFor(opts.attentionOverride);
      return scope(() => {
        const keys = opts.key ? random.splitN(opts.key, 2 * layers) : [];
        const revOpts: RevOpts<BranchOpts, BranchOpts>[] = types.map((_, i) => ({
          f: {
            key: keys[2 * i],
            training: !!opts.training,
            mask: opts.mask,
            rotations: opts.rotations?.[i],
          },
          g: { key: keys[2 * i + 1], training: !!opts.training },
        }));
        if (isReversible) return stack.apply(params as RevParams[], x, revOpts);
        return storedForward(stack, params, x, revOpts);
      });
    },
  };
}

/** The same blocks with ordinary stored activations (`reversible: false`). */
function storedForward(
  stack: ReversibleStack,
  params: readonly RevParams[],
  [x1, x2]: Halves,
  opts: readonly RevOpts[],
): Halves {
  const outOf = (r: Tensor | { out: Tensor }) => (r instanceof Tensor ? r : r.out);
  let a = x1, b = x2;
  stack.blocks.forEach((blk, i) => {
    const y1 = add(a, outOf(blk.f(params[i].f, b, opts[i].f)));
    const y2 = add(b, outOf(blk.g(params[i].g, y1, opts[i].g)));
    [a, b] = [y1, y2];
  });
  return [a, b];
}

function checkHalves(op: string, x: unknown, dModel: number): void {
  if (!Array.isArray(x) || x.length !== 2 || !x.every((t) => t instanceof Tensor)) {
    throw new TypeError(`${op}: the input must be a pair of tensors [x1, x2]`);
  }
  const [a, b] = x as Tensor[];
  if (a.rank !== 3 || a.shape[2] !== dModel || fmt(a.shape) !== fmt(b.shape)) {
    throw new RangeError(
      `${op}: both halves must be [batch, len, ${dModel}], got ${fmt(a.shape)} and ${fmt(b.shape)}`,
    );
  }
}
