/**
 * The CPU reference backend: its device and the kernel table gathered from its family files.
 * It has every kernel, gives synchronous host copies, and is the fallback other CPU-side
 * backends can name.
 * @module
 */
import type { Backend, KernelTable } from "../backend.ts";
import { CpuDevice, type CpuStorage } from "./device.ts";
import { blockSparseKernels } from "./block_sparse.ts";
import { cumprodKernels } from "./cumprod.ts";
import { chunkAttentionKernels } from "./chunk_attention.ts";
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

/** Every CPU kernel by name. */
export const CPU_KERNELS: KernelTable = {
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

/** A new CPU backend (one device with its own memory accounting). */
export function createCpuBackend(): Backend {
  return {
    name: "cpu-reference",
    // Kernels index their inputs' typed arrays, and a Float16Array reads as numbers.
    readsF16: () => true,
    device: new CpuDevice(),
    kernels: CPU_KERNELS,
    toHost: (storage, _dtype, size) => (storage as CpuStorage).data.subarray(0, size),
  };
}
