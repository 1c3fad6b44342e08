/**
 * A functional tensor library for long-sequence training on Deno's WebGPU, with a CPU
 * reference backend: immutable tensors, pure ops with NumPy broadcasting, and scoped memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { add, init, matmul, scope, tensor } from "@longseq/tensor";
 * await init({ quiet: true });
 * const y = scope(() => {
 *   const a = tensor([[1, 2], [3, 4]]);
 *   return add(matmul(a, a), 1);
 * });
 * assert.deepEqual(await y.array(), [[8, 11], [16, 23]]);
 * ```
 * @module
 */
export { type NestedArray, Tensor } from "./ops/tensor.ts";
export type { DType, TypedArray } from "./kernels/dtype.ts";
export type { Device, DeviceName, MemoryInfo, Storage } from "./kernels/device.ts";
export {
  devices,
  flush,
  init,
  type InitOptions,
  type InitResult,
  memory,
  releasePooledMemory,
  resetPeakMemory,
  setPoolLimit,
  sync,
} from "./ops/device.ts";
export { keep, scope } from "./ops/scope.ts";
export {
  arange,
  type CreateOptions,
  eye,
  full,
  ones,
  onesLike,
  tensor,
  type TensorOptions,
  toDevice,
  zeros,
  zerosLike,
} from "./ops/creation.ts";
export {
  abs,
  cos,
  erf,
  exp,
  log,
  log1p,
  neg,
  relu,
  rsqrt,
  sigmoid,
  sign,
  sin,
  sqrt,
  square,
  tanh,
} from "./ops/unary.ts";
export { ceil, floor, mod, round } from "./ops/rounding.ts";
export { atan, expm1, log2, tan } from "./ops/transcendental.ts";
export { elu, leakyRelu, silu, softplus } from "./ops/activations.ts";
export { gelu } from "./ops/gelu.ts";
export { isfinite, isnan, logicalXor } from "./ops/logical.ts";
export { add, cast, div, maximum, minimum, mul, pow, sub, type TensorLike } from "./ops/binary.ts";
export {
  type BinaryFn,
  clip,
  equal,
  greater,
  greaterEqual,
  less,
  lessEqual,
  logicalAnd,
  logicalNot,
  logicalOr,
  notEqual,
  where,
} from "./ops/compare.ts";
export { broadcastTo, expandDims, reshape, squeeze, transpose } from "./ops/shape.ts";
export { flatten, flip, moveaxis, repeat, roll, tile } from "./ops/rearrange.ts";
export { tri, tril, triu } from "./ops/triangular.ts";
export { fullLike, linspace, type LinspaceOptions, meshgrid } from "./ops/grids.ts";
export {
  allClose,
  assertAllClose,
  type CloseOptions,
  closeReport,
  mulberry32,
  type Values,
} from "./ops/testing.ts";
export { oneHot, scatterAdd, scatterAddAlongAxis, take, takeAlongAxis } from "./ops/indexing.ts";
export {
  scatter,
  type ScatterCombine,
  scatterMax,
  scatterMin,
  type ScatterMode,
  scatterSet,
} from "./ops/scatter_combine.ts";
export { cumsum, type CumsumOptions } from "./ops/cumsum.ts";
export { cumprod, type CumprodOptions } from "./ops/cumprod.ts";
export {
  argsort,
  gatherByIndex,
  scatterByIndex,
  sort,
  type SortOptions,
  sortWithIndices,
} from "./ops/sort.ts";
export { concat, pad, slice, split, stack } from "./ops/slicing.ts";
export * from "./autodiff/mod.ts";
export * as optim from "./optim/mod.ts";
export { max, mean, min, type ReduceOptions, sum, variance } from "./ops/reduce.ts";
export { argmax, argmin } from "./ops/arg_reduce.ts";
export { prod } from "./ops/prod.ts";
export { all, any } from "./ops/any_all.ts";
export { std, type StdOptions } from "./ops/std.ts";
export { norm, type NormOrd, outer } from "./ops/linalg.ts";
export { logSoftmax, logsumexp, softmax } from "./ops/softmax.ts";
export { fusedLayerNorm, type FusedLayerNormOptions } from "./ops/layer_norm.ts";
export { matmul, type MatmulOptions } from "./ops/matmul.ts";
export { einsum } from "./ops/einsum.ts";
export { topk, type TopkOptions } from "./ops/topk.ts";
export { random } from "./ops/random.ts";
export * as nn from "./nn/mod.ts";
export * as train from "./train/mod.ts";
export * from "./io/mod.ts";
