/**
 * Samples from a checkpoint written by `char_lm.ts` (bytes, printed as text as they come) or
 * `copy_task.ts` (token ids), with temperature and top-k, from a prompt.
 *
 * Reformer models decode incrementally (`nn/models/decode.ts`): the prompt runs through the
 * model once, each layer's keys and values are cached, and each new token costs one position's
 * work per layer plus its attention over the cache (`O(n)` for full attention, `O(chunkLen)` for
 * local). Full and local layers give the logits of a full forward pass. LSH layers also cache
 * each position's buckets and decode as HuggingFace's `past_buckets_states` does: a new query
 * is hashed with the layer's fixed rotations and attends to its sorted chunk window among the
 * cached positions (a full forward pass would re-sort every position instead). Once the context
 * fills `maxLen`, the window slides and positions shift, so every later token is a fresh
 * forward pass over the last `maxLen` tokens, as below.
 *
 * `--no-cache` recomputes: each new token runs the model over the whole context window (the
 * last `maxLen` tokens), and only the last position's logits are read back (the path of the
 * Sparse Transformer too). The LSH rotations are fixed by `--seed`, so earlier positions hash
 * the same way every time. `--lsh-as-full` evaluates LSH layers with full attention instead
 * (same params, a different model).
 *
 * Run: `deno run -A examples/generate.ts --checkpoint runs/char_lm/checkpoint.safetensors
 * --prompt "The " --length 200 --temperature 0.8 --top-k 40`; `--hf DIR` samples from a
 * HuggingFace Reformer folder instead (`--tokens` for its vocabulary, `--prompt` if it has 256).
 * @module
 */
import { random, scope, slice, tensor } from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { loadCheckpoint } from "../io/checkpoint.ts";
import { loadHuggingFaceReformer } from "../io/huggingface_reformer.ts";
import { reformerLM, type ReformerLMConfig } from "../nn/models/reformer.ts";
import { type DecodeState, reformerDecoder } from "../nn/models/decode.ts";
import {
  sparseTransformerLM,
  type SparseTransformerLMConfig,
} from "../nn/models/sparse_transformer.ts";
import { mulberry32 } from "./lib/data.ts";
import { disposeTree, initDevice, parseFlags, runMain, usageError } from "../train/mod.ts";

const USAGE = `usage: deno run -A examples/generate.ts [flags]

Samples tokens from a checkpoint of char_lm.ts (printed as text) or copy_task.ts (token ids).`;

const FLAGS = {
  checkpoint: {
    type: "string",
    default: "runs/char_lm/checkpoint.safetensors",
    help: "Checkpoint to sample from",
  },
  hf: {
    type: "string",
    default: "",
    help: "HuggingFace Reformer folder (config.json, model.safetensors) to sample from instead",
  },
  prompt: { type: "string", default: "The ", help: "Text prompt (byte models)" },
  tokens: { type: "string", default: "", help: "Prompt as token ids, e.g. 0,5,3 (any model)" },
  length: { type: "int", default: 200, min: 1, help: "Tokens to generate" },
  temperature: { type: "float", default: 0.8, min: 0, help: "Softmax temperature (0: greedy)" },
  topK: {
    type: "int",
    default: 40,
    min: 0,
    help: "Sample among the k most likely tokens (0: all)",
  },
  seed: { type: "int", default: 0, help: "Seed of the sampling and the LSH rotations" },
  device: {
    type: "string",
    default: "auto",
    choices: ["auto", "cpu", "webgpu", "cpu-reference"],
    help: "Backend",
  },
  cache: {
    type: "bool",
    default: true,
    help: "Cache keys, values and LSH buckets (Reformer); --no-cache recomputes",
  },
  lshAsFull: {
    type: "bool",
    default: false,
    help: "Evaluate LSH layers with full attention (cached; not the trained model's attention)",
  },
} as const;

/** A model rebuilt from a checkpoint's config: `maxLen` and a last-position logits function. */
export interface Sampler {
  /** The longest context the model takes (callers pass the last `maxLen` tokens). */
  maxLen: number;
  /** Vocabulary size (256: bytes). */
  vocab: number;
  /** How decoding runs, for the log. */
  mode: string;
  /** Logits `[vocab]` of the last position of `context`. */
  next(context: readonly number[]): Promise<Float32Array>;
  dispose(): void;
}

/** The model config and params of a checkpoint written by an example, or of an HF folder. */
export async function loadModel(
  path: string,
  hf: string,
): Promise<{ example?: string; c: Record<string, unknown>; params: unknown }> {
  if (hf) {
    const { config, params } = await loadHuggingFaceReformer(hf);
    return { example: "huggingface", c: config as unknown as Record<string, unknown>, params };
  }
  const { tree, metadata } = await loadCheckpoint<{ params: unknown; opt: unknown }>(path);
  disposeTree(tree.opt);
  let config: { example?: string; model?: Record<string, unknown> };
  try {
    config = JSON.parse(metadata.config ?? "");
  } catch {
    disposeTree(tree.params);
    throw new RangeError(`${path} has no model config in its metadata (not written by an example)`);
  }
  return { example: config.example, c: config.model ?? {}, params: tree.params };
}

/** Options of {@linkcode loadSampler}. */
export interface SamplerOptions {
  /** Decode with `reformerDecoder`'s cache (Reformer models); else recompute per token. */
  cache: boolean;
  /** Evaluate LSH layers with full attention (cached only). */
  lshAsFull: boolean;
  /** A HuggingFace Reformer folder to load instead of the checkpoint ("" for none). */
  hf: string;
  /**
   * Recompute with the LSH rotations `apply` draws without a key (seed `hashSeed + i`, the
   * cached decoder's), instead of ones drawn from `seed`: so a benchmark compares the two paths
   * under the same hashes.
   */
  modelRotations?: boolean;
}

/**
 * Rebuilds the model named by the checkpoint's metadata (or HF's config) and loads its params:
 * a sampler that caches (Reformer models with `o.cache`) or recomputes the context per token.
 */
export async function loadSampler(
  path: string,
  seed: number,
  o: SamplerOptions,
): Promise<Sampler> {
  const { example, c, params } = await loadModel(path, o.hf);
  const tree = { params };

  // deno-lint-ignore no-explicit-any
  let model: { maxLen: number; apply(p: any, t: Tensor, o?: { key?: Tensor }): Tensor };
  let cacheable = false;
  if (example === "mnist_sparse" || "pattern" in c) {
    model = sparseTransformerLM(c as unknown as SparseTransformerLMConfig);
  } else {
    const rm = reformerLM(c as unknown as ReformerLMConfig);
    cacheable = o.cache && c.causal !== false;
    model = rm;
  }
  if (cacheable) {
    return cachedSampler(c as unknown as ReformerLMConfig, tree.params, o.lshAsFull);
  }
  const key = o.modelRotations ? undefined : random.key(seed + 1);
  return {
    maxLen: model.maxLen,
    vocab: c.vocab as number,
    mode: "recompute (a forward pass over the context per token)",
    async next(context) {
      const n = context.length;
      const last = scope(() => {
        const tokens = tensor(Int32Array.from(context), { dtype: "i32", shape: [1, n] });
        const logits = model.apply(tree.params, tokens, { key });
        return slice(logits, [0, n - 1, 0], [1, n, undefined]);
      });
      const data = await last.data() as Float32Array;
      last.dispose();
      return data;
    },
    dispose() {
      disposeTree(tree.params);
      key?.dispose();
    },
  };
}

/**
 * A sampler over `reformerDecoder`: steps when `context` is the cached tokens plus one, and
 * runs a fresh prefill otherwise (the first call, and every call once the window slides).
 */
function cachedSampler(config: ReformerLMConfig, params: unknown, lshAsFull: boolean): Sampler {
  // deno-lint-ignore no-explicit-any
  const dec = reformerDecoder(config, params as any, { lshAsFull });
  let state: DecodeState | null = null;
  let seen: number[] = [];
  const extends1 = (context: readonly number[]) =>
    state !== null && context.length === seen.length + 1 && seen.every((t, i) => t === context[i]);
  return {
    maxLen: dec.maxLen,
    vocab: config.vocab,
    mode: `cached keys/values${
      lshAsFull
        ? " (LSH layers as full attention)"
        : (config.attention ?? "lsh").includes("lsh")
        ? " (LSH layers: cached buckets, HF's past_buckets_states semantics)"
        : ""
    }`,
    async next(context) {
      const [logits, next] = extends1(context)
        ? dec.step(state!, context[context.length - 1])
        : scope(() =>
          dec.prefill(
            tensor(Int32Array.from(context), { dtype: "i32", shape: [1, context.length] }),
          )
        );
      state?.dispose();
      state = next;
      seen = [...context];
      const data = await logits.data() as Float32Array;
      logits.dispose();
      return data;
    },
    dispose() {
      state?.dispose();
      disposeTree(params);
    },
  };
}

/**
 * Draws a token from `logits` with temperature (0: argmax) and top-k (0: all), using `rand`
 * (uniform in [0, 1)).
 */
export function sampleToken(
  logits: ArrayLike<number>,
  temperature: number,
  topK: number,
  rand: () => number,
): number {
  const ids = Array.from({ length: logits.length }, (_, i) => i);
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  if (temperature <= 0) return ids[0];
  const keep = topK > 0 ? ids.slice(0, topK) : ids;
  const top = logits[keep[0]];
  const w = keep.map((i) => Math.exp((logits[i] - top) / temperature));
  let u = rand() * w.reduce((a, b) => a + b, 0);
  for (let j = 0; j < keep.length; j++) {
    u -= w[j];
    if (u < 0) return keep[j];
  }
  return keep[keep.length - 1];
}

async function main(): Promise<void> {
  const f = parseFlags(USAGE, FLAGS);
  const { line } = await initDevice(f.device);
  console.error(line);
  const sampler = await loadSampler(f.checkpoint, f.seed, f);
  console.error(`decoding: ${sampler.mode}`);
  try {
    const bytes = sampler.vocab === 256 && !f.tokens;
    const prompt = f.tokens
      ? f.tokens.split(/[\s,]+/).filter(Boolean).map(Number)
      : Array.from(new TextEncoder().encode(f.prompt));
    if (!prompt.length) throw usageError("the prompt is empty");
    if (prompt.some((t) => !Number.isInteger(t) || t < 0 || t >= sampler.vocab)) {
      throw usageError(`prompt tokens must be integers in 0..${sampler.vocab - 1}`);
    }
    const out = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s));
    const dec = new TextDecoder("utf-8", { fatal: false });
    const show = (t: number) =>
      out(bytes ? dec.decode(new Uint8Array([t]), { stream: true }) : ` ${t}`);
    prompt.forEach(show);
    const rand = mulberry32(f.seed);
    const context = [...prompt];
    const t0 = performance.now();
    for (let i = 0; i < f.length; i++) {
      const window = context.slice(-sampler.maxLen);
      const logits = await sampler.next(window);
      const t = sampleToken(logits, f.temperature, f.topK, rand);
      context.push(t);
      show(t);
    }
    if (bytes) out(dec.decode());
    const s = (performance.now() - t0) / 1000;
    console.error(
      `\n\n${f.length} tokens in ${s.toFixed(1)} s (${(f.length / s).toFixed(1)} tokens/s)`,
    );
  } finally {
    sampler.dispose();
  }
}

if (import.meta.main) await runMain("generate", main);
