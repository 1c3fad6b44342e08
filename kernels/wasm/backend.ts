/**
 * The wasm backend as a registry plug-in: its kernels under the registry's kernel names
 * (`matmul`, `add`, `exp`, `sum`, `softmax`, `chunkAttention`, `chunkAttentionGrad`, ...),
 * each adapting the registry's spec to the wasm kernel's call (the fused `layerNorm` and
 * `layerNormGrad` too; `sort`, `random` and the indexing kernels, which give the reference's
 * bits). Every other kernel, and every call a kernel here does not take (a dtype it was not
 * written for, an elementwise op's layout it cannot read, too many chunk offsets), runs on the
 * CPU reference on copies (`fallback: "cpu-reference"`, see `launch`).
 * @module
 */
import type { PermSpec, SortSpec } from "../specs/sort.ts";
export {
  WASM_COMPARE_OPS,
  WASM_DOUBLED_OPS,
  WASM_ELEMENTWISE_OPS,
  WASM_INTEGER_OPS,
} from "./elementwise_ops.ts";
import { sortSupported, sortWasm } from "./sort.ts";
import type { RandomParams } from "../specs/random.ts";
import { randomWasm } from "./random.ts";
import type { AlongIndexSpec, AxisIndexSpec, OneHotSpec } from "../specs/indexing.ts";
import {
  indexingSupported,
  oneHotSupported,
  oneHotWasm,
  scatterAddWasm,
  takeWasm,
} from "./indexing.ts";
import { scatterAddAlongWasm, takeAlongWasm } from "./indexing_along.ts";
import { permuteSupported, permuteWasm } from "./permute.ts";
import type { Backend, KernelTable } from "../backend.ts";
import type { DType } from "../dtype.ts";
import type { ElementwiseSpec } from "../specs/elementwise.ts";
import type { MatmulSpec } from "../specs/matmul.ts";
import type { ArgReduceSpec, ReduceSpec, SoftmaxSpec } from "../specs/reduce.ts";
import { argReduceSupported, argReduceWasm } from "./arg_reduce.ts";
import { type ChunkAttnSpec, withBias } from "../specs/chunk_attention.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import {
  elementwiseAccepts,
  isWasmElementwise,
  WASM_ELEMENTWISE_KERNELS,
} from "./elementwise_ops.ts";
import { matmulWasm } from "./matmul.ts";
import { reduceWasm, softmaxWasm } from "./reduce.ts";
import { chunkAttentionSupported, chunkAttentionWasm } from "./chunk_attention.ts";
import type { LayerNormSpec } from "../specs/layer_norm.ts";
import { layerNormGradWasm, layerNormWasm } from "./layer_norm.ts";
import { chunkAttentionGradSupported, chunkAttentionGradWasm } from "./chunk_attention_grad.ts";
import { blockSparseBackwardWasm, blockSparseForwardWasm } from "./block_sparse.ts";
import type { BlockSparseSpec } from "../specs/block_sparse.ts";

type W = WasmStorage;

/** Every wasm kernel by registry name. */
export const WASM_BACKEND_KERNELS: KernelTable = {
  ...WASM_ELEMENTWISE_KERNELS,
  matmul: (d: WasmDevice, [a, b]: W[], s: MatmulSpec) => matmulWasm(d, a, b, s),
  sum: (d: WasmDevice, [x]: W[], s: ReduceSpec) => reduceWasm(d, x, s.layout, "sum"),
  max: (d: WasmDevice, [x]: W[], s: ReduceSpec) => reduceWasm(d, x, s.layout, "max"),
  min: (d: WasmDevice, [x]: W[], s: ReduceSpec) => reduceWasm(d, x, s.layout, "min"),
  argmax: (d: WasmDevice, [x]: W[], s: ArgReduceSpec) => argReduceWasm(d, x, s.layout, "argmax"),
  argmin: (d: WasmDevice, [x]: W[], s: ArgReduceSpec) => argReduceWasm(d, x, s.layout, "argmin"),
  softmax: (d: WasmDevice, [x]: W[], s: SoftmaxSpec) => softmaxWasm(d, x, s, "softmax"),
  logSoftmax: (d: WasmDevice, [x]: W[], s: SoftmaxSpec) => softmaxWasm(d, x, s, "logSoftmax"),
  chunkAttention: (d: WasmDevice, xs: W[], s: ChunkAttnSpec) =>
    chunkAttentionWasm(d, withBias(xs, s), s),
  layerNorm: (d: WasmDevice, xs: W[], s: LayerNormSpec) =>
    layerNormWasm(d, s.affine ? xs : [xs[0], null, null], s),
  layerNormGrad: (d: WasmDevice, xs: W[], s: LayerNormSpec) =>
    layerNormGradWasm(d, s.affine ? xs : xs.slice(0, 4), s),
  chunkAttentionGrad: (d: WasmDevice, xs: W[], s: ChunkAttnSpec) =>
    chunkAttentionGradWasm(d, withBias(xs, s), s),
  blockSparseAttention: (d: WasmDevice, xs: W[], s: BlockSparseSpec) =>
    blockSparseForwardWasm(d, xs, s),
  blockSparseAttentionBackward: (d: WasmDevice, xs: W[], s: BlockSparseSpec) =>
    blockSparseBackwardWasm(d, xs, s),
  gatherByIndex: (d: WasmDevice, [x, i]: W[], s: PermSpec) => permuteWasm(d, x, i, s, false),
  scatterByIndex: (d: WasmDevice, [x, i]: W[], s: PermSpec) => permuteWasm(d, x, i, s, true),
  sort: (d: WasmDevice, [x]: W[], s: SortSpec) => sortWasm(d, x, s),
  random: (d: WasmDevice, [keys]: W[], s: RandomParams) => randomWasm(d, keys, s),
  take: (d: WasmDevice, [x, i]: W[], s: AxisIndexSpec) => takeWasm(d, x, i, s),
  scatterAdd: (d: WasmDevice, [x, i, u]: W[], s: AxisIndexSpec) => scatterAddWasm(d, x, i, u, s),
  takeAlongAxis: (d: WasmDevice, [x, i]: W[], s: AlongIndexSpec) => takeAlongWasm(d, x, i, s),
  scatterAddAlongAxis: (d: WasmDevice, [x, i, u]: W[], s: AlongIndexSpec) =>
    scatterAddAlongWasm(d, x, i, u, s),
  oneHot: (d: WasmDevice, [i]: W[], s: OneHotSpec) => oneHotWasm(d, i, s),
};

/**
 * Whether the wasm kernel `name` takes this call: the dtypes each kernel was written for (f32
 * unless its case says otherwise; chunk attention's positions and codes are i32), and what
 * each kernel's own check asks.
 */
export function wasmAccepts(name: string, spec: unknown, dtypes: readonly DType[]): boolean {
  if (isWasmElementwise(name)) return elementwiseAccepts(name, spec as ElementwiseSpec);
  switch (name) {
    case "sum":
    case "max":
    case "min": {
      const s = spec as ReduceSpec;
      return s.dtype === "f32" && s.outDtype === "f32";
    }
    case "argmax":
    case "argmin": {
      const s = spec as ArgReduceSpec;
      return s.dtype === "f32" && argReduceSupported(s.layout);
    }
    case "chunkAttention":
      return chunkAttentionSupported(spec as ChunkAttnSpec) &&
        dtypes.every((t, i) => t === (i === 3 || i === 4 ? "i32" : "f32"));
    case "chunkAttentionGrad":
      return chunkAttentionGradSupported(spec as ChunkAttnSpec) &&
        dtypes.every((t, i) => t === (i === 3 || i === 4 ? "i32" : "f32"));
    case "blockSparseAttention":
    case "blockSparseAttentionBackward": {
      // f32 operands, then the optional bool key mask.
      const f32s = name === "blockSparseAttention" ? 3 : 6;
      return dtypes.every((t, i) => t === (i < f32s ? "f32" : "bool"));
    }
    case "gatherByIndex":
    case "scatterByIndex":
      return permuteSupported(dtypes[0]) && dtypes[1] === "i32";
    case "take":
    case "scatterAdd":
    case "takeAlongAxis":
    case "scatterAddAlongAxis": {
      // x, indices, then the updates of the scatters, which share x's dtype.
      const s = spec as AxisIndexSpec | AlongIndexSpec;
      return indexingSupported(s.dtype, s.indexDtype) &&
        dtypes.every((t, i) => t === (i === 1 ? s.indexDtype : s.dtype));
    }
    case "oneHot":
      return oneHotSupported(spec as OneHotSpec) && dtypes[0] === (spec as OneHotSpec).indexDtype;
    case "random":
      return dtypes[0] === "u32";
    case "sort":
      return sortSupported((spec as SortSpec).dtype) && dtypes[0] === (spec as SortSpec).dtype;
    default:
      return dtypes.every((t) => t === "f32");
  }
}

/** The wasm backend over `device`; kernels it lacks or declines run on the CPU reference. */
export function createWasmBackend(device: WasmDevice): Backend {
  return {
    name: "cpu",
    device,
    kernels: WASM_BACKEND_KERNELS,
    fallback: "cpu-reference",
    toHost: (storage, dtype, size) => device.readSync(storage, dtype, size),
    accepts: wasmAccepts,
  };
}
