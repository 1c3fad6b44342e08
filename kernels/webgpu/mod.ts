/**
 * The WebGPU backend: its device (created when an adapter exists) and the kernel table
 * gathered from its family files, which carry the same names as the CPU backend's.
 * @module
 */
import type { Backend, KernelTable } from "../backend.ts";
import { GpuDevice } from "./device.ts";
import { blockSparseKernels } from "./block_sparse.ts";
import { cumprodKernels } from "./cumprod.ts";
import { CHUNK_ATTN_MAX_BUFFERS, chunkAttentionKernels } from "./chunk_attention.ts";
import { elementwiseKernels } from "./elementwise.ts";
import { indexingKernels } from "./indexing.ts";
import { layerNormKernels } from "./layer_norm.ts";
import { matmulKernels } from "./matmul.ts";
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
  ...scatterCombineKernels,
  ...scanKernels,
  ...cumprodKernels,
  ...sortKernels,
  ...slicingKernels,
  ...randomKernels,
  ...chunkAttentionKernels,
  ...blockSparseKernels,
};

/** The WebGPU backend on the best adapter, or null when there is none. */
export async function createWebgpuBackend(): Promise<Backend | null> {
  const device = await GpuDevice.create();
  if (!device) return null;
  const buffers = device.device.limits.maxStorageBuffersPerShaderStage;
  return {
    name: "webgpu",
    device,
    kernels: WEBGPU_KERNELS,
    // The fused chunk-attention shaders bind more storage buffers than some adapters allow.
    supports: (kernel) => !kernel.startsWith("chunkAttention") || buffers >= CHUNK_ATTN_MAX_BUFFERS,
  };
}
