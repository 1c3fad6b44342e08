/**
 * The fused layer-norm primitive: one kernel normalises each row over the last axis, applies
 * the optional scale and shift, and keeps the row's mean and `rstd = 1 / sqrt(var + eps)`; its
 * VJP is one fused backward kernel that rebuilds the normalised row from `x`, `mean` and
 * `rstd`. A traced call therefore keeps `x`, `gamma` and two numbers per row for the backward
 * pass, never the centred or normalised copies a composition of elementwise ops would.
 * @module
 */
import type { LayerNormSpec } from "../kernels/specs/layer_norm.ts";
import { bind, definePrimitive, type KernelOutput, refuseSecondOrder } from "./primitive.ts";
import { fmt, sizeOf, type Tensor } from "./tensor.ts";
import { checkTensor, sameDevice } from "./validate.ts";
import { zeros } from "./creation.ts";
import { launchWidened } from "./widen.ts";

export type { LayerNormSpec } from "../kernels/specs/layer_norm.ts";

const f32 = (...shapes: (readonly number[])[]): KernelOutput[] =>
  shapes.map((shape) => ({ shape, dtype: "f32" }));

const gradPrim = definePrimitive<LayerNormSpec>({
  name: "layerNormGrad",
  forward: ([x, ...rest], s) =>
    launchWidened(
      "layerNormGrad",
      [x, ...rest],
      s,
      f32(x.shape, ...(s.affine ? [[s.n], [s.n]] : [])),
      [0, 1, 2],
    ),
  vjp: refuseSecondOrder("fusedLayerNorm", "a composition of mean, sub, rsqrt and mul"),
});

const fwdPrim = definePrimitive<LayerNormSpec>({
  name: "layerNorm",
  // x and gamma, then mean and rstd: never y (nor beta, which the gradient does not read).
  saves: { inputs: [0, 1], outputs: [1, 2] },
  forward: ([x, ...rest], s) => {
    const lead = x.shape.slice(0, -1);
    return launchWidened("layerNorm", [x, ...rest], s, f32(x.shape, lead, lead), [0]);
  },
  // The mean and rstd outputs are internal (fusedLayerNorm returns y alone): their
  // cotangents are zeros and are not read.
  vjp: ([dy], { inputs, outputs: [, mean, rstd], params: s }) => {
    const [x, gamma] = inputs;
    const grads = bind(gradPrim, [x, mean, rstd, dy, ...(s.affine ? [gamma] : [])], s);
    return s.affine ? grads : [grads[0]];
  },
});

/** Options of {@linkcode fusedLayerNorm}. */
export interface FusedLayerNormOptions {
  /** Multiplies the normalised values, `[n]` of x's dtype (default: none, i.e. 1). */
  scale?: Tensor;
  /** Added after scaling, `[n]` of x's dtype (default: none, i.e. 0). Needs `scale`. */
  bias?: Tensor;
  /** Added to the variance before the square root (default `1e-6`). */
  eps?: number;
}

/**
 * Layer normalisation over the last axis as one fused primitive:
 * `y = (x - mean) / sqrt(var + eps) * scale + bias`, with the mean and population variance of
 * each row. Forward and backward are one kernel each on every backend; the backward pass
 * keeps only `x`, `scale` and each row's mean and `rstd`. Differentiable in `x`, `scale` and
 * `bias` (first order; the backward kernel refuses a second derivative). This is the op under
 * the `nn.layerNorm` layer, exported as `fusedLayerNorm` so as not to clash with that layer.
 *
 * Shapes: `x [..., n]` (f32 or f16, `n >= 1`, any leading shape including size 0) to
 * `y [..., n]` of x's dtype; `scale`, `bias [n]` of x's dtype. f16 (mixed precision) is
 * normalised in f32 arithmetic, with the mean and `rstd` kept in f32. `scale` and `bias` come together or not at all: `bias` alone is
 * refused, and a `scale` without `bias` adds zeros.
 *
 * @example
 * ```ts
 * import { assertAllClose, fusedLayerNorm, tensor } from "@longseq/tensor";
 * const x = tensor([[1, 2, 3], [5, 5, 5]]);
 * await assertAllClose(fusedLayerNorm(x), [[-1.2247443, 0, 1.2247443], [0, 0, 0]]);
 * const y = fusedLayerNorm(x, { scale: tensor([1, 2, 3]), bias: tensor([0, 0, 1]) });
 * await assertAllClose(y, [[-1.2247443, 0, 4.6742329], [0, 0, 1]]);
 * ```
 */
export function fusedLayerNorm(x: Tensor, options: FusedLayerNormOptions = {}): Tensor {
  const op = "fusedLayerNorm";
  const { scale, bias, eps = 1e-6 } = options ?? {};
  checkTensor(op, "x", x);
  if (x.dtype !== "f32" && x.dtype !== "f16") {
    throw new TypeError(
      `${op}: x must be f32 or f16, got ${x.dtype}${fmt(x.shape)}; cast it first`,
    );
  }
  const n = x.shape[x.rank - 1];
  if (x.rank === 0 || n < 1) {
    throw new RangeError(`${op}: x needs a last axis of length >= 1, got ${fmt(x.shape)}`);
  }
  if (typeof eps !== "number" || !(eps >= 0) || eps === Infinity) {
    throw new RangeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  }
  if (bias !== undefined && scale === undefined) {
    throw new TypeError(`${op}: bias needs a scale (pass ones for an unscaled shift)`);
  }
  const affine = scale !== undefined;
  for (const [name, t] of [["scale", scale], ["bias", bias]] as const) {
    if (t === undefined) continue;
    checkTensor(op, name, t);
    if (t.dtype !== x.dtype || fmt(t.shape) !== fmt([n])) {
      throw new RangeError(
        `${op}: ${name} must be ${x.dtype}[${n}] (x's dtype), got ${t.dtype}${fmt(t.shape)}`,
      );
    }
  }
  const xs = [x];
  if (affine) xs.push(scale!);
  if (affine) xs.push(bias ?? zeros([n], { device: x.device, dtype: x.dtype }));
  sameDevice(op, xs);
  const spec: LayerNormSpec = { rows: sizeOf(x.shape.slice(0, -1)), n, eps, affine };
  try {
    const [y, mean, rstd] = bind(fwdPrim, xs, spec);
    mean.dispose();
    rstd.dispose();
    return y;
  } finally {
    if (affine && bias === undefined) xs[2].dispose();
  }
}
