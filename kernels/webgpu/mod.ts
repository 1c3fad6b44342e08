/**
 * The WebGPU backend: its device (created when an adapter exists) and the kernel table
 * gathered from its family files, which carry the same names as the CPU backend's.
 * @module
 */
import type { Backend, KernelTable } from "../backend.ts";
import type { DType } from "../dtype.ts";
import { GpuDevice } from "./device.ts";
import { blockSparseKernels } from "./block_sparse.ts";
import { cumprodKernels } from "./cumprod.ts";
import { CHUNK_ATTN_MAX_BUFFERS, chunkAttentionKernels } from "./chunk_attention.ts";
import { elementwiseKernels } from "./elementwise.ts";
import { indexingKernels } from "./indexing.ts";
import { layerNormKernels } from "./layer_norm.ts";
import { scatterAddGpu } from "./scatter_split.ts";
import { matmulKernels } from "./matmul_split.ts";
import { randomKernels } from "./random.ts";
import { reduceKernels } from "./reduce.ts";
import { scanKernels } from "./scan.ts";
import { scatterCombineKernels } from "./scatter_combine.ts";
import { slicingKernels } from "./slicing.ts";
import { softmaxKernels } from "./softmax.ts";
import { sortKernels } from "./sort.ts";

/** Every WebGPU kernel by name. */
export const WEBGPU_KERNELS: KernelTable = {
  ...elementwiseKernels,
  ...matmulKernels,
  ...reduceKernels,
  ...softmaxKernels,
  ...layerNormKernels,
  ...indexingKernels,
  scatterAdd: scatterAddGpu,
  ...scatterCombineKernels,
  ...scanKernels,
  ...cumprodKernels,
  ...sortKernels,
  ...slicingKernels,
  ...randomKernels,
  ...chunkAttentionKernels,
  ...blockSparseKernels,
};

/**
 * The kernels with an f16 path (they widen f16 to f32 to compute and round on store, or only
 * move f16 values): elementwise ops, data movement, gathers and their scatter-add adjoints,
 * reductions, softmax, matmul, and the fused chunk and block-sparse attention and layer norm
 * (which read their f16 operands under `half` in their spec, so mixed precision needs no f32
 * copies of them).
 */
export const WEBGPU_F16_KERNELS: ReadonlySet<string> = new Set([
  ...Object.keys(elementwiseKernels),
  ...Object.keys(reduceKernels),
  ...Object.keys(softmaxKernels),
  "matmul",
  "place",
  "take",
  "takeAlongAxis",
  "scatterAdd",
  "scatterAddAlongAxis",
  "oneHot",
  "gatherByIndex",
  "scatterByIndex",
  "chunkAttention",
  "chunkAttentionGrad",
  "layerNorm",
  "layerNormGrad",
  "blockSparseAttention",
  "blockSparseAttentionBackward",
]);

/**
 * Throws a TypeError when f16 data reaches a WebGPU kernel without an f16 path (sorting,
 * scans, scatters), instead of a shader compile error; true otherwise.
 */
export function checkF16Kernel(kernel: string, dtypes: readonly DType[]): true {
  if (dtypes.includes("f16") && !WEBGPU_F16_KERNELS.has(kernel)) {
    throw new TypeError(
      `webgpu: kernel "${kernel}" has no f16 version yet; cast the input to f32 first ` +
        "(or run it on the cpu device)",
    );
  }
  return true;
}

/**
 * The kernels that split their work when a tensor exceeds one storage binding (see
 * `windows.ts`); each refuses, naming the op, the layouts it cannot split. Every other kernel
 * is refused such tensors before it runs (the backend's `operandLimit`).
 */
export const WEBGPU_SPLIT_KERNELS: ReadonlySet<string> = new Set([
  ...Object.keys(elementwiseKernels),
  ...Object.keys(reduceKernels),
  ...Object.keys(softmaxKernels),
  ...Object.keys(layerNormKernels),
  ...Object.keys(chunkAttentionKernels),
  "place",
  "matmul",
  "gatherByIndex",
  "scatterByIndex",
  "take",
  "scatterAdd",
  "random",
]);

/** The WebGPU backend on the best adapter, or null when there is none. */
export async function createWebgpuBackend(): Promise<Backend | null> {
  const device = await GpuDevice.create();
  if (!device) return null;
  const buffers = device.device.limits.maxStorageBuffersPerShaderStage;
  return {
    name: "webgpu",
    device,
    kernels: WEBGPU_KERNELS,
    accepts: (kernel, _spec, dtypes) => checkF16Kernel(kernel, dtypes),
    readsF16: (kernel) => WEBGPU_F16_KERNELS.has(kernel),
    // The fused chunk-attention shaders bind more storage buffers than some adapters allow.
    supports: (kernel) => !kernel.startsWith("chunkAttention") || buffers >= CHUNK_ATTN_MAX_BUFFERS,
    operandLimit: (kernel) => WEBGPU_SPLIT_KERNELS.has(kernel) ? undefined : device.maxBindingBytes,
  };
}
