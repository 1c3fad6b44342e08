/**
 * Combinators that build layers from layers: `serial` (composition) and `residual`
 * (`x + f(x)`).
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { add } from "../../ops/binary.ts";
import * as random from "../../ops/random.ts";
import type { ApplyOptions, Layer } from "../layer.ts";
import { checkKey, checkLayer } from "../validate.ts";

/**
 * `n` keys derived from `key` (or `n` undefineds without one). Deriving per child keeps the
 * children's randomness independent and the whole replayable from the one key.
 */
export function childKeys(op: string, key: unknown, n: number): (Tensor | undefined)[] {
  checkKey(op, key);
  if (key === undefined) return new Array(n).fill(undefined);
  return random.splitN(key, n);
}

/** Any layer (what {@linkcode serial} accepts). */
// deno-lint-ignore no-explicit-any
export type AnyLayer = Layer<any, any, any, any>;
/** The params type of a layer. */
export type ParamsOf<L> = L extends Layer<infer P, infer _X, infer _Y, infer _O> ? P : never;
/** The input type of a layer's `apply`. */
export type InputOf<L> = L extends Layer<infer _P, infer X, infer _Y, infer _O> ? X : never;
/** The output type of a layer's `apply`. */
export type OutputOf<L> = L extends Layer<infer _P, infer _X, infer Y, infer _O> ? Y : never;
/** The params of `serial(...layers)`: a tuple of each layer's params. */
export type SerialParams<Ls extends readonly AnyLayer[]> = {
  -readonly [K in keyof Ls]: ParamsOf<Ls[K]>;
};

/**
 * Runs layers one after another: `y = f_n(...f_2(f_1(x)))`. Params are an array with one entry
 * per layer; `init(key)` and a training `key` are split into one key per layer (so a
 * single-layer stack does not draw the same numbers as the bare layer).
 * Intermediate activations are freed as soon as the next layer has consumed them.
 *
 * Shapes: whatever the layers map; each layer's output is the next one's input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const mlp = nn.serial(
 *   nn.linear({ inFeatures: 4, outFeatures: 8 }),
 *   nn.dropout({ rate: 0.1 }),
 *   nn.linear({ inFeatures: 8, outFeatures: 2 }),
 * );
 * const params = mlp.init(random.key(0)); // [LinearParams, {}, LinearParams]
 * const y = mlp.apply(params, ones([3, 4]));
 * assert.deepEqual(y.shape, [3, 2]);
 * assert.deepEqual(params[2].w.shape, [8, 2]);
 * ```
 */
export function serial<Ls extends readonly [AnyLayer, ...AnyLayer[]]>(
  ...layers: Ls
): Layer<
  SerialParams<Ls>,
  InputOf<Ls[0]>,
  OutputOf<Ls extends readonly [...AnyLayer[], infer L] ? L : never>
>;
export function serial(...layers: AnyLayer[]): Layer<unknown[], unknown, unknown> {
  if (layers.length === 0) throw new RangeError("serial: needs at least one layer");
  layers.forEach((l, i) => checkLayer("serial", l, `layer ${i}`));
  return {
    init(key) {
      const keys = random.splitN(key, layers.length);
      try {
        return layers.map((l, i) => l.init(keys[i]));
      } finally {
        for (const k of keys) k.dispose();
      }
    },
    apply(params, x, opts: ApplyOptions = {}) {
      if (!Array.isArray(params) || params.length !== layers.length) {
        throw new TypeError(
          `serial: params must be an array of ${layers.length} entries (one per layer), got ${
            Array.isArray(params) ? `${params.length} entries` : typeof params
          }`,
        );
      }
      const keys = childKeys("serial", opts.key, layers.length);
      let y = x;
      try {
        layers.forEach((l, i) => {
          const next = l.apply(params[i], y, { ...opts, key: keys[i] });
          if (y !== x && y instanceof Tensor) y.dispose();
          y = next;
        });
        return y;
      } catch (e) {
        if (y !== x && y instanceof Tensor) y.dispose();
        throw e;
      } finally {
        for (const k of keys) k?.dispose();
      }
    },
  };
}

/**
 * A residual connection around `layer`: `y = x + layer(x)`. Params and init are the inner
 * layer's. The inner layer must preserve the shape (or broadcast to it).
 *
 * Shapes: `x: [...]` to the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { add, allClose, nn, ones, random } from "@longseq/tensor";
 * const inner = nn.linear({ inFeatures: 4, outFeatures: 4 });
 * const block = nn.residual(inner);
 * const params = block.init(random.key(0));
 * const x = ones([2, 4]);
 * assert.ok(await allClose(block.apply(params, x), add(x, inner.apply(params, x))));
 * ```
 */
export function residual<P, O extends ApplyOptions>(
  layer: Layer<P, Tensor, Tensor, O>,
): Layer<P, Tensor, Tensor, O> {
  checkLayer("residual", layer);
  return {
    init: (key) => layer.init(key),
    apply(params, x, opts) {
      if (!(x instanceof Tensor)) {
        throw new TypeError(`residual: x must be a Tensor, got ${typeof x}`);
      }
      const fx: unknown = layer.apply(params, x, opts);
      if (!(fx instanceof Tensor)) {
        throw new TypeError(`residual: the inner layer must return a Tensor, got ${typeof fx}`);
      }
      try {
        if (fmt(fx.shape) !== fmt(x.shape)) {
          throw new RangeError(
            `residual: the inner layer maps ${fmt(x.shape)} to ${fmt(fx.shape)}; ` +
              "it must keep the shape",
          );
        }
        return add(x, fx);
      } finally {
        fx.dispose();
      }
    },
  };
}
