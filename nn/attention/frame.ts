/**
 * The frame every attention layer shares: validate the params, the input and its padding mask,
 * settle the dropout of the call, project queries, keys and values, run the layer's own core
 * in a scope, and apply the output projection. Full, local, LSH and sparse attention each
 * supply only their core.
 * @module
 */
import { Tensor } from "../../ops/tensor.ts";
import { scope } from "../../ops/scope.ts";
import { matmul } from "../../ops/matmul.ts";
import {
  type AttentionParams,
  checkInput,
  checkParams,
  dropoutFor,
  type HeadConfig,
  initAttention,
  type MaskOption,
  outputProjection,
  projectQKV,
  splitHeads,
  zeroPadded,
} from "./core.ts";
import type { ApplyOptions } from "../layer.ts";

/** What the frame hands a core for one call. */
export interface FrameCall<O> {
  /** The input `[batch, len, dModel]`. */
  x: Tensor;
  /** Batch size and length. */
  b: number;
  n: number;
  /** The call's options. */
  opts: O;
  /** Dropout on the probabilities, when training with a positive rate (key checked). */
  dropout?: { rate: number; key?: Tensor };
}

/**
 * Per-head projections `[batch, heads, len, dHead]` (`k` unit-normalised when shared QK; absent
 * when the core asked for none).
 */
export interface Projections {
  q: Tensor;
  k?: Tensor;
  v: Tensor;
}

/** A layer's own part of the computation. */
export interface AttentionCore<O, S> {
  /** `false`: the core derives keys itself (shared QK), so the frame projects only `q`, `v`. */
  keys?: boolean;
  /** Checks beyond the frame's, run before any work (e.g. LSH's rotations or saved buckets). */
  check?(call: FrameCall<O>): void;
  /**
   * Per-head outputs `[batch, heads, len, dHead]` from the projections, run inside the frame's
   * scope; `state` comes back to the caller with the output.
   */
  attend(qkv: Projections, call: FrameCall<O>): Tensor | { o: Tensor; state: S };
}

/** A framed attention layer: `init` and a `run` that also returns the core's state. */
export interface AttentionFrame<O, S> {
  init(key: Tensor): AttentionParams;
  run(params: AttentionParams, x: Tensor, opts?: O): { out: Tensor; state?: S };
}

/**
 * Frames `core` as an attention layer named `op` with head geometry `hc` and probability
 * dropout `rate` (already validated).
 */
export function attentionFrame<O extends ApplyOptions & MaskOption, S = never>(
  op: string,
  hc: HeadConfig,
  rate: number,
  core: AttentionCore<O, S>,
): AttentionFrame<O, S> {
  return {
    init: (key) => initAttention(key, hc),
    run(params, x, opts = {} as O) {
      checkParams(op, params, hc);
      const [b, n] = checkInput(op, x, hc.dModel, opts.mask);
      const call: FrameCall<O> = { x, b, n, opts, dropout: undefined };
      core.check?.(call);
      call.dropout = dropoutFor(op, rate, opts, x);
      return scope(() => {
        // Padded positions of x are zeroed first: inf or NaN there reaches nothing.
        const xs = opts.mask ? zeroPadded(x, opts.mask) : x;
        const qkv = core.keys === false && hc.sharedQK
          ? { q: project(xs, params.wqk!, hc), v: project(xs, params.wv, hc) }
          : projectQKV(params, xs, hc);
        const r = core.attend(qkv, call);
        if (r instanceof Tensor) return { out: outputProjection(params, r) };
        return { out: outputProjection(params, r.o), state: r.state };
      });
    },
  };
}

function project(x: Tensor, w: Tensor, hc: HeadConfig): Tensor {
  using y = matmul(x, w);
  return splitHeads(y, hc.heads);
}
