/**
 * The WebAssembly SIMD backend: {@linkcode WasmDevice} (one shared, growable
 * `WebAssembly.Memory`; `await WasmDevice.create({ threads })`, `dispose()` to stop its
 * workers) and its kernels, each `(device, inputs, spec) => output` like the CPU reference's.
 *
 * {@linkcode WASM_KERNELS} lists them under the module's own names with one calling
 * convention; the backend `init` registers (`backend.ts`) adapts the registry's kernel names and
 * specs to these kernels, and runs every call they do not take on the CPU reference.
 * @module
 */
import type { MatmulSpec } from "../specs/matmul.ts";
import type { ReduceLayout } from "../specs/reduce.ts";
import type { StridedInput } from "../strided.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { elementwiseSupported, elementwiseWasm, type WasmElementwiseOp } from "./elementwise.ts";
import { matmulWasm } from "./matmul.ts";
import { layerNormGradWasm, type LayerNormSpec, layerNormWasm } from "./layer_norm.ts";
import { chunkAttentionSupported, chunkAttentionWasm } from "./chunk_attention.ts";
import type { ChunkAttnSpec } from "../specs/chunk_attention.ts";
import { reduceWasm, softmaxWasm, type WasmReduceOp, type WasmSoftmaxOp } from "./reduce.ts";

export { WasmDevice, type WasmDeviceOptions, WasmStorage } from "./device.ts";
export { ThreadPool } from "./threads.ts";
export { type JobFn, type Kernels, Runtime } from "./runtime.ts";
export type { MatmulSpec } from "../specs/matmul.ts";
export type { ReduceLayout } from "../specs/reduce.ts";
export type { StridedInput } from "../strided.ts";
export type { Device, MemoryInfo, Storage } from "../device.ts";
export type { DType, TypedArray } from "../dtype.ts";
export { hasRelaxedSimd } from "./emit.ts";
export { elementwiseSupported, elementwiseWasm, type WasmElementwiseOp } from "./elementwise.ts";
export { matmulWasm } from "./matmul.ts";
export { layerNormGradWasm, type LayerNormSpec, layerNormWasm } from "./layer_norm.ts";
export { chunkAttentionSupported, chunkAttentionWasm } from "./chunk_attention.ts";
export { chunkAttentionGradSupported, chunkAttentionGradWasm } from "./chunk_attention_grad.ts";
export { blockSparseBackwardWasm, blockSparseForwardWasm } from "./block_sparse.ts";
export type { ChunkAttnSpec } from "../specs/chunk_attention.ts";
export { reduceWasm, softmaxWasm, type WasmReduceOp, type WasmSoftmaxOp } from "./reduce.ts";
export { BINARY_OPS, UNARY_OPS, type WasmBinaryOp, type WasmUnaryOp } from "./module.ts";

/** Spec of the `elementwise` kernel: the op, and how each input is read over `outShape`. */
export interface ElementwiseSpec {
  /** The op. */
  readonly op: WasmElementwiseOp;
  /** The output's shape. */
  readonly outShape: readonly number[];
  /** Per input: its strides over `outShape` (0 where broadcast). */
  readonly strides: readonly (readonly number[])[];
  /** Per input: its element offset. */
  readonly offsets: readonly number[];
}

/** Spec of the `reduce` and `softmax` kernels. */
export interface ReduceSpec<Op extends string> {
  /** The reduction. */
  readonly op: Op;
  /** The input seen as `[outer, n, inner]`, reduced over `n`. */
  readonly layout: ReduceLayout;
}

/** One kernel: whether it takes these inputs, and the kernel itself. All inputs are f32. */
export interface WasmKernel<Spec> {
  /** Whether `run` takes this spec (else run the op on the fallback backend). */
  supports(spec: Spec): boolean;
  /** Runs the kernel, returning a new storage. */
  run(device: WasmDevice, inputs: readonly WasmStorage[], spec: Spec): WasmStorage;
}

function strided(inputs: readonly WasmStorage[], spec: ElementwiseSpec): StridedInput[] {
  return inputs.map((storage, i) => ({
    storage,
    dtype: "f32",
    strides: spec.strides[i],
    offset: spec.offsets[i],
  }));
}

/** The wasm kernels by name. */
export const WASM_KERNELS: {
  readonly matmul: WasmKernel<MatmulSpec>;
  readonly elementwise: WasmKernel<ElementwiseSpec>;
  readonly reduce: WasmKernel<ReduceSpec<WasmReduceOp>>;
  readonly softmax: WasmKernel<ReduceSpec<WasmSoftmaxOp>>;
  readonly chunkAttention: {
    /** Whether `run` takes this spec. */
    supports(spec: ChunkAttnSpec): boolean;
    /** Inputs `[q, k, v, qpos, kcode, bias | null]`; returns `[o, lse, stat]`. */
    run(
      device: WasmDevice,
      inputs: readonly (WasmStorage | null)[],
      spec: ChunkAttnSpec,
    ): [WasmStorage, WasmStorage, WasmStorage];
  };
  readonly layerNorm: {
    /** Whether `run` takes this spec. */
    supports(spec: LayerNormSpec): boolean;
    /** Inputs `[x, gamma | null, beta | null]`; returns `[y, mean, rstd]`. */
    run(
      device: WasmDevice,
      inputs: readonly (WasmStorage | null)[],
      spec: LayerNormSpec,
    ): [WasmStorage, WasmStorage, WasmStorage];
  };
  readonly layerNormGrad: {
    /** Whether `run` takes this spec. */
    supports(spec: LayerNormSpec): boolean;
    /**
     * Inputs `[x, mean, rstd, dy, gamma | null]`; returns `[dx]`, or `[dx, dgamma, dbeta]`
     * with `gamma`.
     */
    run(
      device: WasmDevice,
      inputs: readonly (WasmStorage | null)[],
      spec: LayerNormSpec,
    ): WasmStorage[];
  };
} = {
  matmul: { supports: () => true, run: (d, [a, b], spec) => matmulWasm(d, a, b, spec) },
  elementwise: {
    supports: (spec) =>
      elementwiseSupported(
        spec.op,
        spec.strides.map((strides) => ({
          storage: { byteLength: 0 },
          dtype: "f32",
          strides,
          offset: 0,
        })),
      ),
    run: (d, inputs, spec) => elementwiseWasm(d, spec.op, strided(inputs, spec), spec.outShape),
  },
  reduce: {
    supports: (spec) => ["sum", "max", "min"].includes(spec.op),
    run: (d, [x], spec) => reduceWasm(d, x, spec.layout, spec.op),
  },
  softmax: {
    supports: (spec) => ["softmax", "logSoftmax", "logsumexp"].includes(spec.op),
    run: (d, [x], spec) => softmaxWasm(d, x, spec.layout, spec.op),
  },
  chunkAttention: {
    supports: chunkAttentionSupported,
    run: (d, inputs, spec) => chunkAttentionWasm(d, [...inputs], spec),
  },
  layerNorm: {
    supports: () => true,
    run: (d, inputs, spec) => layerNormWasm(d, [...inputs], spec),
  },
  layerNormGrad: {
    supports: () => true,
    run: (d, inputs, spec) => layerNormGradWasm(d, [...inputs], spec),
  },
};
