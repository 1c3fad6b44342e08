/**
 * HuggingFace `ReformerConfig` (config.json) to and from a {@linkcode ReformerLMConfig}: every
 * setting HF can express that the Reformer LM computes, and a named refusal for the rest.
 * @module
 */
import type { ReformerLMConfig } from "../nn/models/reformer.ts";
import type { ReformerActivation, ReformerAttention } from "../nn/models/reformer_block.ts";
import { attentionTypes } from "../nn/models/reformer_block.ts";

/** HF's `hidden_act` names and the feed-forward activations they are. */
const ACT_FROM_HF: Readonly<Record<string, ReformerActivation>> = {
  relu: "relu",
  gelu: "gelu_exact",
  gelu_new: "gelu",
  gelu_pytorch_tanh: "gelu",
};
const ACT_TO_HF: Readonly<Record<ReformerActivation, string>> = {
  relu: "relu",
  gelu_exact: "gelu",
  gelu: "gelu_new",
};

const refuse = (key: string, value: unknown, why: string): never => {
  throw new RangeError(
    `huggingfaceReformer: config.json ${key} = ${JSON.stringify(value)}: ${why}`,
  );
};

function posInt(c: Record<string, unknown>, key: string, dflt?: number): number {
  const v = c[key] ?? dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    return refuse(key, v, "must be a positive integer");
  }
  return v;
}

function nonNegInt(c: Record<string, unknown>, key: string, dflt: number): number {
  const v = c[key] ?? dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    return refuse(key, v, "must be an integer >= 0");
  }
  return v;
}

function intList(c: Record<string, unknown>, key: string): number[] {
  const v = c[key];
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x > 0)) {
    return refuse(key, v, "must be a list of positive integers");
  }
  return v as number[];
}

function rate(c: Record<string, unknown>, key: string, dflt: number): number {
  const v = c[key] ?? dflt;
  if (typeof v !== "number" || !(v >= 0 && v < 1)) return refuse(key, v, "must be in [0, 1)");
  return v;
}

/**
 * The Reformer LM configuration a HuggingFace `ReformerConfig` (the parsed config.json)
 * describes. Throws a RangeError naming the key and value of any setting the model cannot
 * compute (an attention type other than `"lsh"`/`"local"`, an activation other than `relu`,
 * `gelu`, `gelu_new`, axial positions over other than two factors, tied embeddings, ...).
 *
 * HF's `gelu` is the exact (erf) GELU (`activation: "gelu_exact"`), `gelu_new` the tanh
 * approximation (`"gelu"`). `num_buckets: null` leaves `nBuckets` unset: both then choose
 * the count from the length, but HF fixes it at its first call. `hash_seed` becomes `hashSeed`,
 * which makes our rotations deterministic, not equal to torch's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * const config: nn.ReformerLMConfig = {
 *   vocab: 32, dModel: 8, dFF: 16, heads: 2, layers: 2, maxLen: 16, chunkLen: 4,
 * };
 * const hf = nn.reformerConfigToHF(config);
 * const back = nn.reformerConfigFromHF(hf);
 * assert.deepEqual([back.vocab, back.dModel, back.activation], [32, 8, "gelu"]);
 * assert.throws(() => nn.reformerConfigFromHF({ ...hf, hidden_act: "swish" }), RangeError);
 * ```
 */
export function reformerConfigFromHF(hf: unknown): ReformerLMConfig {
  if (hf === null || typeof hf !== "object" || Array.isArray(hf)) {
    throw new TypeError("huggingfaceReformer: config.json must hold a JSON object");
  }
  const c = hf as Record<string, unknown>;
  if (c.model_type !== undefined && c.model_type !== "reformer") {
    refuse("model_type", c.model_type, 'must be "reformer"');
  }
  const layersList = c.attn_layers ?? ["local", "lsh", "local", "lsh", "local", "lsh"];
  if (
    !Array.isArray(layersList) || layersList.length === 0 ||
    !layersList.every((t) => t === "lsh" || t === "local")
  ) {
    refuse("attn_layers", layersList, 'must be a non-empty list of "lsh" and "local"');
  }
  const attention = layersList as ReformerAttention[];
  const act = String(c.hidden_act ?? "relu");
  if (!(act in ACT_FROM_HF)) {
    refuse("hidden_act", c.hidden_act, `supported: ${Object.keys(ACT_FROM_HF).join(", ")}`);
  }
  if (c.tie_word_embeddings === true) {
    refuse("tie_word_embeddings", true, "the head [vocab, 2*hidden] cannot share the embedding");
  }
  const dModel = posInt(c, "hidden_size", 256);
  const maxPos = posInt(c, "max_position_embeddings", 4096);
  let axialShape: number[], axialDims: number[];
  if (c.axial_pos_embds ?? true) {
    axialShape = intList(c, "axial_pos_shape");
    axialDims = intList(c, "axial_pos_embds_dim");
    if (axialShape.length !== 2) {
      refuse("axial_pos_shape", axialShape, "HF's axial positions take exactly two factors");
    }
    if (axialDims.length !== 2 || axialDims[0] + axialDims[1] !== dModel) {
      refuse("axial_pos_embds_dim", axialDims, `must be two widths summing to ${dModel}`);
    }
  } else {
    axialShape = [maxPos];
    axialDims = [dModel];
  }
  const nb = c.num_buckets ?? null;
  const evenList = Array.isArray(nb) && nb.length > 0 &&
    nb.every((f) => Number.isInteger(f) && f >= 2 && f % 2 === 0);
  if (nb !== null && !(Number.isInteger(nb) && (nb as number) >= 2 && (nb as number) % 2 === 0)) {
    if (!evenList) refuse("num_buckets", nb, "must be an even integer, a list of them, or null");
  }
  const hashSeed = c.hash_seed ?? null;
  if (hashSeed !== null && !(Number.isSafeInteger(hashSeed) && (hashSeed as number) >= 0)) {
    refuse("hash_seed", hashSeed, "must be null or an integer >= 0");
  }
  const eps = c.layer_norm_eps ?? 1e-12;
  if (typeof eps !== "number" || !(eps >= 0)) refuse("layer_norm_eps", eps, "must be >= 0");
  const hasLsh = attention.includes("lsh");
  const lshLen = posInt(c, "lsh_attn_chunk_length", 64);
  const localLen = posInt(c, "local_attn_chunk_length", 64);
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const kinds = new Set(attention);
  const config: ReformerLMConfig = {
    vocab: posInt(c, "vocab_size", 320),
    dModel,
    dFF: posInt(c, "feed_forward_size", 512),
    heads: posInt(c, "num_attention_heads", 12),
    dHead: posInt(c, "attention_head_size", 64),
    layers: attention.length,
    attention,
    nHashes: posInt(c, "num_hashes", 1),
    chunkLen: lshLen,
    localChunkLen: localLen,
    chunksBefore: nonNegInt(c, "lsh_num_chunks_before", 1),
    chunksAfter: nonNegInt(c, "lsh_num_chunks_after", 0),
    localChunksBefore: nonNegInt(c, "local_num_chunks_before", 1),
    localChunksAfter: nonNegInt(c, "local_num_chunks_after", 0),
    localWrap: true,
    lshRoundWeights: "hf",
    padMultiple: kinds.size === 2
      ? (lshLen * localLen) / gcd(lshLen, localLen)
      : hasLsh
      ? lshLen
      : localLen,
    causal: !!(c.is_decoder ?? false),
    activation: ACT_FROM_HF[act],
    layerNormEps: eps as number,
    dropout: rate(c, "hidden_dropout_prob", 0.05),
    attentionDropout: hasLsh
      ? rate(c, "lsh_attention_probs_dropout_prob", 0)
      : rate(c, "local_attention_probs_dropout_prob", 0.05),
    axialShape,
    axialDims,
    maxLen: Math.min(maxPos, axialShape.reduce((a, b) => a * b, 1)),
  };
  if (nb !== null) config.nBuckets = nb as number | number[];
  if (hashSeed !== null) config.hashSeed = hashSeed as number;
  return config;
}

/**
 * The HuggingFace `ReformerConfig` (config.json contents) of a Reformer LM configuration:
 * `ReformerModelWithLMHead` for a causal model, `ReformerForMaskedLM` otherwise. Throws,
 * naming the setting, for a model HF cannot express: `"full"` attention, shared-QK local
 * attention, non-wrapping local windows in a non-causal model, axial positions over more
 * than two factors, or a longest length other than the positions' capacity.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * const config: nn.ReformerLMConfig = {
 *   vocab: 32, dModel: 8, dFF: 16, heads: 2, layers: 2, maxLen: 16, chunkLen: 4,
 * };
 * const hf = nn.reformerConfigToHF(config);
 * assert.deepEqual(hf.architectures, ["ReformerModelWithLMHead"]); // causal by default
 * assert.deepEqual(hf.attn_layers, ["lsh", "lsh"]);
 * assert.equal(hf.hidden_act, "gelu_new"); // our (tanh) "gelu"
 * assert.throws(() => nn.reformerConfigToHF({ ...config, attention: "full" }), RangeError);
 * ```
 */
export function reformerConfigToHF(config: ReformerLMConfig): Record<string, unknown> {
  const no = (key: string, value: unknown, why: string): never => {
    throw new RangeError(
      `saveHuggingFaceReformer: config.${key} = ${JSON.stringify(value)}: ${why}`,
    );
  };
  const types = attentionTypes("saveHuggingFaceReformer", config.attention, config.layers);
  if (types.includes("full")) no("attention", config.attention, 'HF has no "full" attention');
  if (config.localSharedQK) no("localSharedQK", true, "HF's local attention has its own keys");
  const causal = config.causal ?? true;
  if (!causal && types.includes("local") && !config.localWrap) {
    no("localWrap", config.localWrap, "HF's local windows wrap around (set localWrap: true)");
  }
  const shape = config.axialShape ? [...config.axialShape] : [config.maxLen!];
  const dims = config.axialDims ? [...config.axialDims] : null;
  if (shape.length > 2) no("axialShape", shape, "HF's axial positions take two factors");
  const capacity = shape.reduce((a, b) => a * b, 1);
  const dHead = config.dHead ?? config.dModel / config.heads;
  const dropout = config.dropout ?? 0;
  const attnDrop = config.attentionDropout ?? dropout;
  const chunkLen = config.chunkLen ?? 64;
  const axial = shape.length === 2;
  const hf: Record<string, unknown> = {
    architectures: [causal ? "ReformerModelWithLMHead" : "ReformerForMaskedLM"],
    model_type: "reformer",
    attn_layers: types,
    vocab_size: config.vocab,
    hidden_size: config.dModel,
    num_attention_heads: config.heads,
    attention_head_size: dHead,
    feed_forward_size: config.dFF,
    hidden_act: ACT_TO_HF[config.activation ?? "gelu"],
    is_decoder: causal,
    num_hashes: config.nHashes ?? 1,
    num_buckets: config.nBuckets ?? null,
    lsh_attn_chunk_length: chunkLen,
    local_attn_chunk_length: config.localChunkLen ?? chunkLen,
    lsh_num_chunks_before: config.chunksBefore ?? 1,
    lsh_num_chunks_after: config.chunksAfter ?? 0,
    local_num_chunks_before: config.localChunksBefore ?? 1,
    local_num_chunks_after: config.localChunksAfter ?? 0,
    layer_norm_eps: config.layerNormEps ?? 1e-6,
    hidden_dropout_prob: dropout,
    lsh_attention_probs_dropout_prob: attnDrop,
    local_attention_probs_dropout_prob: attnDrop,
    axial_pos_embds: axial,
    axial_pos_shape: axial ? shape : [1, 1],
    axial_pos_embds_dim: axial
      ? dims ?? [Math.floor(config.dModel / 2), config.dModel - Math.floor(config.dModel / 2)]
      : [0, config.dModel],
    max_position_embeddings: axial ? (config.maxLen ?? capacity) : capacity,
    hash_seed: config.hashSeed ?? null,
    tie_word_embeddings: false,
    chunk_size_lm_head: 0,
    pad_token_id: 0,
    eos_token_id: 2,
  };
  if (!axial && config.maxLen !== undefined && config.maxLen !== capacity) {
    no("maxLen", config.maxLen, `HF's position table holds exactly ${capacity} positions`);
  }
  return hf;
}
