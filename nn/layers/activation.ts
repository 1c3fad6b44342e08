/**
 * Activation functions by name, and the parameter-free activation layer for `nn.serial`.
 * @module
 */
import type { Tensor } from "../../ops/tensor.ts";
import { relu, sigmoid, tanh } from "../../ops/unary.ts";
import { gelu } from "../../ops/gelu.ts";
import { elu, leakyRelu, silu, softplus } from "../../ops/activations.ts";
import type { Layer } from "../layer.ts";

/** An elementwise activation function. */
export type ActivationFn = (x: Tensor) => Tensor;

/**
 * Names of the built-in activations. `"gelu"` is the tanh approximation, as JAX's
 * `jax.nn.gelu` default and this library's `gelu` (PyTorch's `nn.GELU()` default is the exact
 * form: use `"geluExact"`, or `"gelu_exact"`, the name Reformer configs use for Hugging Face's
 * `gelu`); `"geluTanh"` and `"gelu_new"` (the Hugging Face name) name the tanh approximation
 * explicitly. `"leakyRelu"` uses slope 0.01 and `"elu"` alpha 1; pass a
 * function such as `(x) => leakyRelu(x, 0.2)` for other constants.
 */
export type ActivationName =
  | "relu"
  | "gelu"
  | "geluTanh"
  | "gelu_new"
  | "geluExact"
  | "gelu_exact"
  | "silu"
  | "tanh"
  | "sigmoid"
  | "softplus"
  | "elu"
  | "leakyRelu";

const ACTIVATIONS: Readonly<Record<ActivationName, ActivationFn>> = {
  relu,
  gelu: (x) => gelu(x),
  geluTanh: (x) => gelu(x, { approximate: true }),
  gelu_new: (x) => gelu(x, { approximate: true }),
  geluExact: (x) => gelu(x, { approximate: false }),
  gelu_exact: (x) => gelu(x, { approximate: false }),
  silu,
  tanh,
  sigmoid,
  softplus,
  elu: (x) => elu(x),
  leakyRelu: (x) => leakyRelu(x),
};

/**
 * The built-in activation names, in a stable order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * assert.ok(nn.ACTIVATION_NAMES.includes("gelu_exact"));
 * ```
 */
export const ACTIVATION_NAMES: readonly ActivationName[] = Object.freeze(
  Object.keys(ACTIVATIONS) as ActivationName[],
);

/**
 * The function for an activation name, or `fn` itself when given a function. Throws a
 * TypeError naming `op` and the known names otherwise. The function maps `x [...]` to `[...]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, tensor } from "@longseq/tensor";
 * const relu = nn.resolveActivation("myLayer", "relu");
 * assert.deepEqual(await relu(tensor([-1, 2])).array(), [0, 2]);
 * assert.throws(() => nn.resolveActivation("myLayer", "swish" as nn.ActivationName), /myLayer/);
 * ```
 */
export function resolveActivation(op: string, act: ActivationName | ActivationFn): ActivationFn {
  if (typeof act === "function") return act;
  if (typeof act === "string" && Object.hasOwn(ACTIVATIONS, act)) return ACTIVATIONS[act];
  throw new TypeError(
    `${op}: activation must be a function or one of ${
      ACTIVATION_NAMES.map((n) => JSON.stringify(n)).join(", ")
    }; got ${typeof act === "string" ? JSON.stringify(act) : typeof act}`,
  );
}

/**
 * A parameter-free layer applying an activation elementwise, for `nn.serial`: `init` returns
 * `{}` and `apply(params, x)` returns `act(x)`. Accepts a name (see {@linkcode ActivationName})
 * or any function of a tensor.
 *
 * Shapes: `x [...]` to `[...]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random, tensor } from "@longseq/tensor";
 * const mlp = nn.serial(
 *   nn.linear({ inFeatures: 2, outFeatures: 4 }),
 *   nn.activation("silu"),
 *   nn.linear({ inFeatures: 4, outFeatures: 1 }),
 * );
 * const y = mlp.apply(mlp.init(random.key(0)), tensor([[1, 2]]));
 * assert.deepEqual(y.shape, [1, 1]);
 * const relu = nn.activation("relu");
 * assert.deepEqual(await relu.apply(relu.init(random.key(0)), tensor([-1, 2])).array(), [0, 2]);
 * ```
 */
export function activation(act: ActivationName | ActivationFn): Layer<Record<string, never>> {
  const fn = resolveActivation("activation", act);
  return {
    init: () => ({}),
    apply: (_params, x) => fn(x),
  };
}
