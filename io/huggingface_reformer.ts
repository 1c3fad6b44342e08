/**
 * HuggingFace Reformer checkpoints (`ReformerModelWithLMHead`, `ReformerForMaskedLM`), both
 * ways: {@linkcode loadHuggingFaceReformer} reads a `save_pretrained` folder (config.json and
 * model.safetensors) into a {@linkcode reformerLM} config and params whose `apply` gives HF's
 * logits, and {@linkcode saveHuggingFaceReformer} writes one that HF's `from_pretrained` loads
 * with no missing or unexpected keys.
 *
 * Names, shapes and layouts follow HF: `nn.Linear` weights are `[out, in]` (ours `[in, out]`),
 * axial position weights are `[n1, 1, d1]` and `[1, n2, d2]`, the final layer norm and the head
 * act on both reversible halves (`2 * hidden`), and the head's bias is `lm_head.bias` (an older
 * file's `lm_head.decoder.bias`, the same tensor tied, is accepted too).
 *
 * The head's bias: transformers 4.x adds `lm_head.bias` to the logits, 5.x no longer does (its
 * decoder `Linear` has no bias and is not tied to it); the model here adds it, as 4.x and the
 * original Reformer do, so the two agree on 5.x when that bias is zero.
 *
 * Exactness: HF draws LSH rotations at random on every call; pass the ones it drew as
 * `rotations` to the model's `apply` to compare. The loaded config sets `padMultiple` (HF pads
 * inputs longer than the shortest chunk to a multiple of the chunk lengths' least common
 * multiple before the layers), `localWrap` (HF's local windows wrap around) and
 * `lshRoundWeights: "hf"` (HF normalises LSH probabilities in f32 as `exp(x - logsumexp(x))`).
 * @module
 */
import type { DeviceName } from "../kernels/device.ts";
import { fromTypedArray } from "../ops/creation.ts";
import { fmt, Tensor } from "../ops/tensor.ts";
import type { ReformerLMConfig, ReformerLMParams } from "../nn/models/reformer.ts";
import { attentionTypes } from "../nn/models/reformer_block.ts";
import { encodeSafetensors, type HostTensor, parseSafetensorsHeader } from "./safetensors.ts";
import { reformerConfigFromHF, reformerConfigToHF } from "./huggingface_reformer_config.ts";

export { reformerConfigFromHF, reformerConfigToHF } from "./huggingface_reformer_config.ts";

/** A HuggingFace Reformer as this library's model: `reformerLM(config)` with `params`. */
export interface HuggingFaceReformer {
  /** The `reformerLM` configuration. */
  config: ReformerLMConfig;
  /** Its params (owned by the caller). */
  params: ReformerLMParams;
}

/** Options of {@linkcode loadHuggingFaceReformer}. */
export interface LoadHuggingFaceOptions {
  /** Device of the params (default: the default device). */
  device?: DeviceName;
}

type Path = (string | number)[];

/** One tensor of the checkpoint: its HF name and shape, and where it lives in our params. */
interface Slot {
  name: string;
  hf: number[];
  path: Path;
  /** Our shape: HF's transposed (`nn.Linear` weights) or with unit axes dropped. */
  ours: number[];
  transpose: boolean;
}

/** The tensors of a model with this config, in HF's order. */
function layout(config: ReformerLMConfig): Slot[] {
  const { vocab, dModel: h, dFF, heads, layers } = config;
  const inner = heads * (config.dHead ?? h / heads);
  const types = attentionTypes("huggingfaceReformer", config.attention, layers);
  const out: Slot[] = [];
  const add = (name: string, hf: number[], path: Path, transpose = false, ours?: number[]) =>
    out.push({
      name,
      hf,
      path,
      transpose,
      ours: ours ?? (transpose ? [hf[1], hf[0]] : hf),
    });
  add("reformer.embeddings.word_embeddings.weight", [vocab, h], ["embed", "table"]);
  const shape = config.axialShape ?? [config.maxLen!];
  const e = "reformer.embeddings.position_embeddings";
  if (shape.length === 1) add(`${e}.embedding.weight`, [shape[0], h], ["pos", "tables", 0]);
  else {
    const dims = config.axialDims ?? [Math.floor(h / 2), h - Math.floor(h / 2)];
    add(`${e}.weights.0`, [shape[0], 1, dims[0]], ["pos", "tables", 0], false, [
      shape[0],
      dims[0],
    ]);
    add(`${e}.weights.1`, [1, shape[1], dims[1]], ["pos", "tables", 1], false, [
      shape[1],
      dims[1],
    ]);
  }
  const norm = (name: string, dim: number, path: Path) => {
    add(`${name}.weight`, [dim], [...path, "scale"]);
    add(`${name}.bias`, [dim], [...path, "bias"]);
  };
  types.forEach((t, i) => {
    const l = `reformer.encoder.layers.${i}`;
    const f: Path = ["blocks", i, "f"], g: Path = ["blocks", i, "g"];
    norm(`${l}.attention.layer_norm`, h, [...f, "norm"]);
    const proj = t === "lsh" ? [["query_key", "wqk"], ["value", "wv"]] : [
      ["query", "wq"],
      ["key", "wk"],
      ["value", "wv"],
    ];
    for (const [hfName, ours] of proj) {
      add(`${l}.attention.self_attention.${hfName}.weight`, [inner, h], [...f, "attn", ours], true);
    }
    add(`${l}.attention.output.dense.weight`, [h, inner], [...f, "attn", "wo"], true);
    norm(`${l}.feed_forward.layer_norm`, h, [...g, "norm"]);
    add(`${l}.feed_forward.dense.dense.weight`, [dFF, h], [...g, "ff", "in", "w"], true);
    add(`${l}.feed_forward.dense.dense.bias`, [dFF], [...g, "ff", "in", "b"]);
    add(`${l}.feed_forward.output.dense.weight`, [h, dFF], [...g, "ff", "out", "w"], true);
    add(`${l}.feed_forward.output.dense.bias`, [h], [...g, "ff", "out", "b"]);
  });
  norm("reformer.encoder.layer_norm", 2 * h, ["norm"]);
  add("lm_head.decoder.weight", [vocab, 2 * h], ["head", "w"], true);
  add("lm_head.bias", [vocab], ["head", "b"]);
  return out;
}

/** `[rows, cols]` row-major to `[cols, rows]`. */
function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  }
  return out;
}

/** Half-precision bits to f32 (IEEE binary16). */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * The f32 values of one stored tensor: F32 as is, F16 and BF16 widened (exactly), other dtypes
 * refused by name.
 */
function floatData(name: string, format: string, raw: Uint8Array): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (format === "F32") {
    const out = new Float32Array(raw.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  if (format === "F16" || format === "BF16") {
    const out = new Float32Array(raw.byteLength / 2);
    const u = new Uint32Array(1), f = new Float32Array(u.buffer);
    for (let i = 0; i < out.length; i++) {
      const bits = view.getUint16(2 * i, true);
      if (format === "F16") out[i] = halfToFloat(bits);
      else {
        u[0] = bits << 16;
        out[i] = f[0];
      }
    }
    return out;
  }
  throw new TypeError(
    `loadHuggingFaceReformer: tensor ${JSON.stringify(name)} has dtype ${format}; ` +
      "expected F32, F16 or BF16",
  );
}

function setPath(root: Record<string | number, unknown>, path: Path, value: unknown): void {
  let node = root;
  path.slice(0, -1).forEach((k, i) => {
    if (node[k] === undefined) node[k] = typeof path[i + 1] === "number" ? [] : {};
    node = node[k] as Record<string | number, unknown>;
  });
  node[path.at(-1)!] = value;
}

function getPath(root: unknown, path: Path): unknown {
  return path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)?.[k], root);
}

/**
 * Checks that a checkpoint's tensors are exactly those of `config`'s model (missing and
 * unexpected names listed) with HF's shapes, and returns our params built from them
 * (`device`: where to put them, default the default device).
 *
 * @param tensors name to `{ shape, data }` (`data` f32, HF's layout: e.g.
 * `reformer.embeddings.word_embeddings.weight` is `[vocab, dModel]`, linear weights are
 * `[out, in]`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random } from "@longseq/tensor";
 * const config: nn.ReformerLMConfig = {
 *   vocab: 32, dModel: 8, dFF: 16, heads: 2, layers: 2, maxLen: 16, chunkLen: 4,
 * };
 * const hf = await nn.reformerParamsToHF(config, nn.reformerLM(config).init(random.key(0)));
 * const tensors = new Map(
 *   [...hf].map(([name, t]) => [name, { shape: t.shape, data: t.data as Float32Array }]),
 * );
 * const params = nn.reformerParamsFromHF(config, tensors);
 * assert.deepEqual(params.embed.table.shape, [32, 8]);
 * tensors.delete("lm_head.bias");
 * assert.throws(() => nn.reformerParamsFromHF(config, tensors), /missing: lm_head.bias/);
 * ```
 */
export function reformerParamsFromHF(
  config: ReformerLMConfig,
  tensors: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  device?: DeviceName,
): ReformerLMParams {
  const slots = layout(config);
  const alias = "lm_head.decoder.bias";
  const get = (name: string) =>
    tensors.get(name) ?? (name === "lm_head.bias" ? tensors.get(alias) : undefined);
  const missing = slots.filter((s) => !get(s.name)).map((s) => s.name);
  const known = new Set([...slots.map((s) => s.name), alias]);
  const unexpected = [...tensors.keys()].filter((n) => !known.has(n));
  if (missing.length || unexpected.length) {
    throw new RangeError(
      "loadHuggingFaceReformer: the checkpoint does not match its config.json" +
        (missing.length ? `; missing: ${missing.join(", ")}` : "") +
        (unexpected.length ? `; unexpected: ${unexpected.join(", ")}` : ""),
    );
  }
  for (const s of slots) {
    const t = get(s.name)!;
    if (fmt(t.shape) !== fmt(s.hf)) {
      throw new RangeError(
        `loadHuggingFaceReformer: ${s.name} is ${fmt(t.shape)} but config.json implies ${
          fmt(s.hf)
        }`,
      );
    }
  }
  const params: Record<string, unknown> = {};
  for (const s of slots) {
    const t = get(s.name)!;
    const data = s.transpose ? transpose2d(t.data, s.hf[0], s.hf[1]) : t.data;
    setPath(params, s.path, fromTypedArray(data, s.ours, "f32", device));
  }
  return params as unknown as ReformerLMParams;
}

/**
 * HF's tensors for `config`'s model with `params`: names, shapes and layouts as
 * `save_pretrained` writes them. Throws, naming the param, on a shape that does not match.
 * The values are f32 host tensors in HF's layout (linear weights `[out, in]`, ours `[in, out]`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random } from "@longseq/tensor";
 * const config: nn.ReformerLMConfig = {
 *   vocab: 32, dModel: 8, dFF: 16, heads: 2, layers: 2, maxLen: 16, chunkLen: 4,
 * };
 * const params = nn.reformerLM(config).init(random.key(0));
 * const hf = await nn.reformerParamsToHF(config, params);
 * const emb = hf.get("reformer.embeddings.word_embeddings.weight")!;
 * assert.deepEqual([emb.dtype, emb.shape], ["f32", [32, 8]]);
 * assert.deepEqual(hf.get("lm_head.decoder.weight")!.shape, [32, 16]); // [vocab, 2 * dModel]
 * ```
 */
export async function reformerParamsToHF(
  config: ReformerLMConfig,
  params: ReformerLMParams,
): Promise<Map<string, HostTensor>> {
  const slots = layout(config);
  for (const s of slots) {
    const t = getPath(params, s.path);
    if (!(t instanceof Tensor) || fmt(t.shape) !== fmt(s.ours) || t.dtype !== "f32") {
      throw new TypeError(
        `saveHuggingFaceReformer: params.${s.path.join(".")} must be f32 ${fmt(s.ours)}, got ${
          t instanceof Tensor ? `${t.dtype}${fmt(t.shape)}` : typeof t
        }`,
      );
    }
  }
  const host = await Promise.all(slots.map((s) => (getPath(params, s.path) as Tensor).data()));
  const out = new Map<string, HostTensor>();
  slots.forEach((s, i) => {
    const d = host[i] as Float32Array;
    const data = s.transpose ? transpose2d(d, s.hf[1], s.hf[0]) : Float32Array.from(d);
    out.set(s.name, { dtype: "f32", shape: s.hf, data });
  });
  return out;
}

/**
 * Loads a HuggingFace Reformer saved with `save_pretrained` (safetensors): `dir/config.json`
 * and `dir/model.safetensors`. Validates the file against the config (every expected tensor
 * present with HF's shape, nothing unexpected), widens F16/BF16 weights to f32, and returns
 * the config and params of the equal {@linkcode reformerLM}. Settings the model cannot compute
 * are refused by name (see {@linkcode reformerConfigFromHF}).
 *
 * @example
 * ```ts ignore
 * import { nn, tensor } from "@longseq/tensor";
 * const { config, params } = await nn.loadHuggingFaceReformer("reformer-model");
 * const logits = nn.reformerLM(config).apply(params, tensor([[5, 6, 7]], { dtype: "i32" }));
 * ```
 */
export async function loadHuggingFaceReformer(
  dir: string,
  opts: LoadHuggingFaceOptions = {},
): Promise<HuggingFaceReformer> {
  const read = async (file: string) => {
    try {
      return await Deno.readFile(`${dir}/${file}`);
    } catch (e) {
      throw new Error(
        `loadHuggingFaceReformer: cannot read ${dir}/${file} (${(e as Error).message})` +
          (file === "model.safetensors" ? "; save with safe_serialization=True" : ""),
        { cause: e },
      );
    }
  };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(await read("config.json")));
  } catch (e) {
    if ((e as Error).message.startsWith("loadHuggingFaceReformer")) throw e;
    throw new SyntaxError(`loadHuggingFaceReformer: ${dir}/config.json is not JSON`);
  }
  const config = reformerConfigFromHF(json);
  const bytes = await read("model.safetensors");
  const { entries, dataStart } = parseSafetensorsHeader(bytes);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of entries) {
    const raw = bytes.subarray(dataStart + e.offsets[0], dataStart + e.offsets[1]);
    tensors.set(e.name, { shape: e.shape, data: floatData(e.name, e.format, raw) });
  }
  return { config, params: reformerParamsFromHF(config, tensors, opts.device) };
}

/** HF's config fields typed float: written with a decimal point (`0.0`), as Python's strict
 * config validation rejects an integer there. */
const FLOAT_KEYS = new Set([
  "layer_norm_eps",
  "hidden_dropout_prob",
  "lsh_attention_probs_dropout_prob",
  "local_attention_probs_dropout_prob",
  "axial_norm_std",
  "initializer_range",
]);

function configJson(hf: Record<string, unknown>): string {
  const text = JSON.stringify(
    hf,
    (k, v) => (FLOAT_KEYS.has(k) && typeof v === "number" ? `@float:${v}` : v),
    2,
  );
  return text.replace(/"@float:([^"]+)"/g, (_, v: string) => (/[.eE]/.test(v) ? v : `${v}.0`)) +
    "\n";
}

/**
 * Writes `config` and `params` of a {@linkcode reformerLM} as a HuggingFace checkpoint in `dir`
 * (created if needed): `config.json` and `model.safetensors`, which
 * `ReformerModelWithLMHead.from_pretrained(dir)` (causal) or `ReformerForMaskedLM` loads with
 * no missing or unexpected keys. Refuses, by name, settings HF cannot express (see
 * {@linkcode reformerConfigToHF}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random } from "@longseq/tensor";
 * const config: nn.ReformerLMConfig = {
 *   vocab: 32, dModel: 8, dFF: 16, heads: 2, layers: 2, maxLen: 16, chunkLen: 4,
 * };
 * const params = nn.reformerLM(config).init(random.key(0));
 * const dir = await Deno.makeTempDir();
 * await nn.saveHuggingFaceReformer(dir, config, params);
 * const loaded = await nn.loadHuggingFaceReformer(dir); // reads it back
 * assert.equal(loaded.config.vocab, 32);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveHuggingFaceReformer(
  dir: string,
  config: ReformerLMConfig,
  params: ReformerLMParams,
): Promise<void> {
  const hf = reformerConfigToHF(config);
  const tensors = await reformerParamsToHF(config, params);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(tensors, { format: "pt" }));
  await Deno.writeTextFile(`${dir}/config.json`, configJson(hf));
}
