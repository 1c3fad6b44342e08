/**
 * Layers as pure `{ init, apply }` pairs, combinators and losses. Params are plain nested
 * objects of tensors; randomness comes from explicit keys (`random.key`), so every layer is
 * replayable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, ones, random } from "@longseq/tensor";
 * const model = nn.serial(
 *   nn.linear({ inFeatures: 4, outFeatures: 16 }),
 *   nn.residual(nn.chunked(nn.feedForward({ dModel: 16, dFF: 64 }), { chunks: 2 })),
 *   nn.layerNorm({ dim: 16 }),
 * );
 * const params = model.init(random.key(0));
 * const y = model.apply(params, ones([2, 6, 4]));
 * assert.deepEqual(y.shape, [2, 6, 16]);
 * ```
 * @module
 */
export type { ApplyOptions, Layer } from "./layer.ts";
export { linear, type LinearOptions, type LinearParams } from "./layers/linear.ts";
export { embedding, type EmbeddingOptions, type EmbeddingParams } from "./layers/embedding.ts";
export { layerNorm, type LayerNormOptions, type LayerNormParams } from "./layers/layer_norm.ts";
export { rmsNorm, type RmsNormOptions, type RmsNormParams } from "./layers/rms_norm.ts";
export {
  activation,
  ACTIVATION_NAMES,
  type ActivationFn,
  type ActivationName,
  resolveActivation,
} from "./layers/activation.ts";
export { applyDropout, dropout, type DropoutOptions } from "./layers/dropout.ts";
export {
  feedForward,
  type FeedForwardOptions,
  type FeedForwardParams,
} from "./layers/feed_forward.ts";
export { chunked, chunkedSum, type ChunkFn, type ChunkSpec } from "./layers/chunked.ts";
export {
  type AnyLayer,
  type InputOf,
  type OutputOf,
  type ParamsOf,
  residual,
  serial,
  type SerialParams,
} from "./layers/combinators.ts";
export {
  axialPositions,
  type AxialPositionsOptions,
  type AxialPositionsParams,
} from "./layers/axial_positions.ts";
export {
  bitsPerToken,
  chunkedLmLoss,
  type ChunkedLmLossOptions,
  type ChunkPrelude,
  type CrossEntropyOptions,
  type CrossEntropyStats,
  perplexity,
  softmaxCrossEntropy,
  softmaxCrossEntropyStats,
} from "./losses.ts";

// ---------------------------------------------------------------------------------------------
// Attention layers (attention, localAttention, lshAttention, sparseAttention) and models are
// exported below by their owners.
// ---------------------------------------------------------------------------------------------
export { attention, type AttentionApplyOptions, type AttentionConfig } from "./attention/full.ts";
export {
  type AttentionParams,
  type MaskOption,
  type MaskValues,
  maskValues,
} from "./attention/core.ts";
export { chunkAttention, type ChunkMasks } from "./attention/chunk_attention.ts";
export { localAttention, type LocalAttentionConfig } from "./attention/local.ts";
export {
  type LshApplyOptions,
  lshAttention,
  type LshAttentionConfig,
  type LshAttentionLayer,
  type LshSaved,
} from "./attention/lsh.ts";
export {
  type BucketSpec,
  defaultBuckets,
  hashBuckets,
  randomRotations,
} from "./attention/lsh_hash.ts";
export {
  blockSparseAttention,
  type BlockSparseOptions,
  denseMaskedAttention,
  gatherSparseAttention,
  type ProbDropout,
  sparseAttention,
  type SparseAttentionConfig,
} from "./attention/sparse.ts";
export {
  type BlockLayout,
  blockLayout,
  fixedPattern,
  layoutTiles,
  patternMask,
  type PatternMaskOptions,
  type PatternSpec,
  stridedPattern,
} from "./attention/sparse_patterns.ts";
export {
  type AttentionOverride,
  type ReformerAttention,
  type ReformerAttnParams,
  type ReformerBlockParams,
  type ReformerFFParams,
  type ReversibleBlocks,
  reversibleBlocks,
  type ReversibleBlocksConfig,
  type ReversibleBlocksOptions,
} from "./models/reversible_blocks.ts";
export type { ReformerActivation, ReformerBlockConfig } from "./models/reformer_block.ts";
export {
  type LanguageModel,
  type ReformerApplyOptions,
  reformerLM,
  type ReformerLMConfig,
  type ReformerLMParams,
  type ReformerLossOptions,
} from "./models/reformer.ts";
export {
  type SparseApplyOptions,
  type SparseBlockParams,
  type SparseLossOptions,
  sparseTransformerLM,
  type SparseTransformerLMConfig,
  type SparseTransformerLMParams,
} from "./models/sparse_transformer.ts";
export type {
  LanguageModelConfig,
  LanguageModelParams,
  LmFrameConfig,
  LmFrameParams,
  LmLossOptions,
  Precision,
} from "./models/language_model.ts";
// HuggingFace Reformer checkpoints (in io/, exported here beside the model they load).
export {
  type HuggingFaceReformer,
  type LoadHuggingFaceOptions,
  loadHuggingFaceReformer,
  reformerConfigFromHF,
  reformerConfigToHF,
  reformerParamsFromHF,
  reformerParamsToHF,
  saveHuggingFaceReformer,
} from "../io/huggingface_reformer.ts";
export {
  type DecodeState,
  type LayerCache,
  type LshLayerCache,
  type ReformerDecoder,
  reformerDecoder,
  type ReformerDecoderOptions,
} from "./models/decode.ts";
