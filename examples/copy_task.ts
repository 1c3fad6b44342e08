/**
 * The duplication task of the Reformer paper (§5; docs/algorithms.md#duplication-task): sequences
 * `0 w 0 w` with `w` drawn uniformly from `1 .. vocab-1`; loss and accuracy count only the second
 * copy of `w`, which a causal model can predict exactly by finding the first copy. A Reformer LM is
 * trained with LSH (or full) attention, then evaluated with full attention and with LSH at
 * 1, 2, 4 and 8 hashes, printing a table shaped like the paper's Table 2.
 *
 * Run: `deno task demo` (the small default setting: len 64, vocab 64, about 3 to 4 minutes on
 * a 2-core machine with the software WebGPU adapter), or the paper's setting (len 1024,
 * vocab 128, dModel = dFF = 256, 4 heads, 1 layer) on a GPU; steps and rate here are a starting
 * point, not a tuned recipe:
 *
 *     deno run -A examples/copy_task.ts --device webgpu --len 1024 --vocab 128 --d-model 256 \
 *       --d-ff 256 --heads 4 --layers 1 --chunk-len 64 --n-hashes 4 --batch 16 --steps 20000 \
 *       --lr 1e-3 --eval-every 1000 --checkpoint-every 1000 --out runs/copy_1024
 *
 * `--table` trains all five rows of the paper's Table 2 (full attention, LSH-8, LSH-4, LSH-2,
 * LSH-1; Kitaev, Kaiser, Levskaya 2020, arXiv:2001.04451) one after another, each in its own
 * folder under `--out` (`full`, `lsh-8`, ...; `--resume` reads finished rows back and continues
 * an unfinished one from its checkpoint), evaluates each with every column, and prints the grid
 * next to the paper's. The same flags set the scale, e.g. the paper's:
 *
 *     deno run -A examples/copy_task.ts --table --device webgpu --len 1024 --vocab 128 \
 *       --d-model 256 --d-ff 256 --heads 4 --layers 1 --chunk-len 64 --batch 16 --steps 20000 \
 *       --lr 1e-3 --eval-every 1000 --checkpoint-every 1000 --out runs/copy_table_1024
 *
 * Besides the paper's columns, every model is evaluated with full attention without the
 * shared-QK self mask ("full (no self-mask)"), the evaluation the paper's full column for
 * LSH-trained models (0.8%) evidently used.
 *
 * @module
 */
import { argmax, cast, equal, mul, nn, random, scope, sum, tensor } from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { reformerLM, type ReformerLMParams } from "../nn/models/reformer.ts";
import type { AttentionOverride } from "../nn/models/reversible_blocks.ts";
import { type CopyBatch, copyTaskBatch } from "./lib/data.ts";
import {
  gridTable,
  NO_SELF_MASK,
  PAPER,
  type Row,
  table2,
  TABLE_NOTE,
  TABLE_ROWS,
} from "./lib/table2.ts";
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

const USAGE = `usage: deno run -A examples/copy_task.ts [flags]

Trains a Reformer LM on the duplication task "0 w 0 w" (Reformer paper, section 5) and prints
copy accuracy evaluated with full attention and with LSH at 1, 2, 4 and 8 hashes.`;

const TRAINING = {
  steps: 500,
  batch: 16,
  lr: 3e-3,
  clip: false,
  out: "runs/copy_task",
  evalBatches: 4,
} as const;

const FLAGS = {
  len: { type: "int", default: 64, min: 4, help: "Sequence length (even; |w| = len/2 - 1)" },
  vocab: { type: "int", default: 64, min: 2, help: "Vocabulary size incl. the separator 0" },
  ...modelSizeFlags({ dModel: 64, dFF: 128, heads: 4, layers: 1 }),
  attention: {
    type: "string",
    default: "lsh",
    choices: ["lsh", "full"],
    help: "Training attention",
  },
  nHashes: { type: "int", default: 2, min: 1, help: "LSH hash rounds in training" },
  evalHashes: { type: "string", default: "8,4,2,1", help: "LSH hash rounds to evaluate with" },
  chunkLen: { type: "int", default: 16, min: 1, help: "LSH chunk length" },
  ...trainingFlags(TRAINING),
  table: {
    type: "bool",
    default: false,
    help: "Train every row of the paper's Table 2 (full, LSH-8, LSH-4, LSH-2, LSH-1), each in " +
      "OUT/<row>, and print the grid next to the paper's (--attention and --n-hashes unused)",
  },
  stopAt: {
    type: "float",
    default: 0,
    min: 0,
    max: 1,
    help: "Stop early once the periodic evaluation reaches this copy accuracy (0..1; 0: off)",
  },
} as const;

type Flags = FlagValues<typeof FLAGS>;

/** Batch tensors of a host batch (inputs, targets and the copy mask). */
function batchTensors(b: CopyBatch): { inputs: Tensor; targets: Tensor; mask: Tensor } {
  const shape = b.shape;
  return {
    inputs: tensor(b.inputs, { dtype: "i32", shape }),
    targets: tensor(b.targets, { dtype: "i32", shape }),
    mask: tensor(b.mask, { shape }),
  };
}

/** Masked cross-entropy and the number of correctly copied tokens. */
function lossAndCorrect(logits: Tensor, targets: Tensor, mask: Tensor) {
  const loss = nn.softmaxCrossEntropy(logits, targets, { mask });
  const correct = sum(mul(cast(equal(argmax(logits, -1), targets), "f32"), mask));
  return { loss, correct };
}

/** The model config the flags describe. */
function modelConfig(f: Flags) {
  return {
    vocab: f.vocab,
    dModel: f.dModel,
    dFF: f.dFF,
    heads: f.heads,
    layers: f.layers,
    attention: f.attention as "lsh" | "full",
    nHashes: f.nHashes,
    chunkLen: f.chunkLen,
    maxLen: f.len,
    causal: true,
    precision: f.precision as "f32" | "f16",
  };
}

/**
 * Copy accuracy on held-out batches (step numbers far beyond any training step) with the
 * given attention; the LSH rotations come from a fixed evaluation key.
 */
function evaluator(f: Flags, model: ReturnType<typeof reformerLM>) {
  const copyTokens = f.batch * (f.len / 2 - 1);
  const evalSet = Array.from(
    { length: f.evalBatches },
    (_, i) =>
      copyTaskBatch({
        batch: f.batch,
        len: f.len,
        vocab: f.vocab,
        seed: f.seed,
        step: 2 ** 31 + i,
      }),
  );
  return {
    tokens: evalSet.length * copyTokens,
    async accuracy(params: ReformerLMParams, override?: AttentionOverride): Promise<number> {
      let correct = 0;
      for (let i = 0; i < evalSet.length; i++) {
        const c = scope(() => {
          const { inputs, targets, mask } = batchTensors(evalSet[i]);
          const key = random.foldIn(random.key(f.seed + 1), i);
          const logits = model.apply(params, inputs, { key, attentionOverride: override });
          return lossAndCorrect(logits, targets, mask).correct;
        });
        correct += (await c.data())[0];
        c.dispose();
      }
      return correct / (evalSet.length * copyTokens);
    },
  };
}

/**
 * Trains one model with the flags' settings (its checkpoint, metrics and plot in `f.out`) and
 * evaluates it with every column; null when interrupted.
 */
async function trainRow(f: Flags, evalHashes: number[]): Promise<Row | null> {
  const config = modelConfig(f);
  const model = reformerLM(config);
  const files = runFiles(f.out);
  const evals = evaluator(f, model);
  const copyTokens = f.batch * (f.len / 2 - 1);
  const trained = f.attention === "full" ? "full" : `LSH-${f.nHashes}`;
  console.log(
    `duplication task: len ${f.len}, vocab ${f.vocab}, dModel ${f.dModel}, dFF ${f.dFF}, ` +
      `${f.heads} heads, ${f.layers} layer(s), trained with ${trained}` +
      (f.attention === "lsh" ? ` (chunk ${f.chunkLen})` : "") +
      `, batch ${f.batch}, ${f.steps} steps, lr ${f.lr}, seed ${f.seed}`,
  );

  const result = await train({
    label: "copy",
    plotTitle: `Duplication task, len ${f.len}, vocab ${f.vocab}, trained with ${trained}`,
    initParams: () => model.init(random.key(f.seed)),
    batchAt: (step) =>
      copyTaskBatch({ batch: f.batch, len: f.len, vocab: f.vocab, seed: f.seed, step }),
    lossFn: (params, batch, key) => {
      const { inputs, targets, mask } = batchTensors(batch);
      const logits = model.apply(params, inputs, { key, training: true });
      const { loss, correct } = lossAndCorrect(logits, targets, mask);
      return { loss, metrics: { acc: mul(correct, 1 / copyTokens) } };
    },
    tokensPerStep: f.batch * f.len,
    ...trainOptionsFromFlags(f, { example: "copy_task", model: config, clip: TRAINING.clip }),
    evaluate: async (params) => ({ evalAcc: await evals.accuracy(params) }),
    stopWhen: f.stopAt > 0 ? (e) => e.evalAcc >= f.stopAt : undefined,
  });
  if (result.interrupted) {
    disposeTree(result.params);
    return null;
  }

  // Table 2: the trained model evaluated with full attention (with and without the shared-QK
  // self mask) and with LSH at several hashes.
  const columns: [string, AttentionOverride][] = [
    ["full", "full"],
    [NO_SELF_MASK, { full: { selfMask: false } }],
    ...evalHashes.map((n): [string, AttentionOverride] => [`LSH-${n}`, { lsh: { nHashes: n } }]),
  ];
  const accs: number[] = [];
  for (const [, override] of columns) accs.push(await evals.accuracy(result.params, override));
  disposeTree(result.params);
  const names = columns.map(([n]) => n);
  const table = table2(trained, names, accs);
  console.log(
    `\nCopy accuracy (%) on ${evals.tokens} held-out tokens, shaped like Table 2 of the ` +
      `Reformer paper (the paper's row is at len 1024, vocab 128):\n\n${table}\n`,
  );
  console.log(
    `trained ${runSummary(result)} (${Math.round(result.tokensPerSecond)} tokens/s), ` +
      `peak memory ${(result.peakBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  const row: Row = {
    trained,
    columns: names,
    accs,
    step: result.step,
    stepsRun: result.stepsRun,
    seconds: result.seconds,
    totalSeconds: result.totalSeconds,
  };
  const { step, stepsRun, seconds, totalSeconds } = row;
  const summary = { step, stepsRun, seconds, totalSeconds, trained, columns: names, accs };
  Deno.writeTextFileSync(`${f.out}/table.md`, table + "\n");
  Deno.writeTextFileSync(files.results, JSON.stringify(summary, null, 2) + "\n");
  console.log(
    `files: ${files.checkpoint}, ${files.metrics}, ${files.plot}, ${f.out}/table.md, ` +
      files.results,
  );
  return row;
}

/** The folder of a `--table` row under the run folder (`full`, `lsh-8`, ...). */
function rowFolder(out: string, name: string): string {
  return `${out}/${name.toLowerCase()}`;
}

/** A row a previous `--table` run finished (its `results.json`), or null. */
function finishedRow(out: string, trained: string, evalHashes: number[]): Row | null {
  let r: Row;
  try {
    r = JSON.parse(Deno.readTextFileSync(runFiles(out).results));
  } catch {
    return null;
  }
  const columns = ["full", NO_SELF_MASK, ...evalHashes.map((n) => `LSH-${n}`)];
  const ok = r.trained === trained && Array.isArray(r.accs) && r.accs.length === columns.length &&
    JSON.stringify(r.columns) === JSON.stringify(columns);
  return ok ? r : null;
}

/**
 * `--table`: trains every row of the paper's Table 2 (each in its own folder under `--out`,
 * resumable row by row: with `--resume` a finished row is read back from its `results.json`, an
 * unfinished one goes on from its checkpoint) and prints this run's grid next to the paper's.
 */
async function trainTable(f: Flags, evalHashes: number[]): Promise<void> {
  if (f.resume && f.resume !== "auto") {
    throw usageError("--table resumes each row from its own folder; pass a bare --resume");
  }
  const start = performance.now();
  const rows: Row[] = [];
  for (const r of TABLE_ROWS) {
    const out = rowFolder(f.out, r.name);
    const done = f.resume ? finishedRow(out, r.name, evalHashes) : null;
    if (done) {
      console.log(
        `\n== Table 2 row: trained with ${r.name}: read back from ${runFiles(out).results} ==`,
      );
      rows.push(done);
      continue;
    }
    let resume = "";
    if (f.resume) {
      try {
        if (Deno.statSync(runFiles(out).checkpoint).isFile) resume = "auto";
      } catch { /* no checkpoint yet: this row starts fresh */ }
    }
    console.log(`\n== Table 2 row: trained with ${r.name} (${out}) ==`);
    const row = await trainRow(
      { ...f, attention: r.attention, nHashes: r.nHashes, out, resume },
      evalHashes,
    );
    if (!row) Deno.exit(130);
    rows.push(row);
  }
  const wallSeconds = (performance.now() - start) / 1000;
  const columns = rows[0].columns;
  const grid = gridTable(
    rows.map((r) => [r.trained, ...r.accs.map((a) => (100 * a).toFixed(1))]),
    columns,
  );
  const paper = gridTable(
    TABLE_ROWS.map((
      { name },
    ) => [name, ...columns.map((c) => PAPER[name]?.[c]?.toFixed(1) ?? "-")]),
    columns,
  );
  const copyTokens = f.evalBatches * f.batch * (f.len / 2 - 1);
  const text =
    `Copy accuracy (%) on ${copyTokens} held-out tokens (len ${f.len}, vocab ${f.vocab}); ` +
    `rows: trained with, columns: evaluated with.\n\nThis run:\n\n${grid}\n\n` +
    `Reformer paper, Table 2 (len 1024, vocab 128):\n\n${paper}\n\n${TABLE_NOTE}`;
  console.log(`\n${text}\n`);
  const trainSeconds = rows.reduce((s, r) => s + r.seconds, 0);
  console.log(
    `table: ${rows.length} rows in ${wallSeconds.toFixed(1)} s wall ` +
      `(${trainSeconds.toFixed(1)} s training this run)`,
  );
  const results = {
    rows: rows.map((r) => r.trained),
    columns,
    accs: rows.map((r) => r.accs),
    paper: TABLE_ROWS.map(({ name }) => columns.map((c) => PAPER[name]?.[c] ?? null)),
    steps: rows.map((r) => r.step),
    stepsRun: rows.map((r) => r.stepsRun),
    seconds: rows.map((r) => r.seconds),
    totalSeconds: rows.map((r) => r.totalSeconds),
    wallSeconds,
  };
  Deno.writeTextFileSync(`${f.out}/table.md`, text + "\n");
  Deno.writeTextFileSync(`${f.out}/results.json`, JSON.stringify(results, null, 2) + "\n");
  console.log(
    `files: ${TABLE_ROWS.map((r) => rowFolder(f.out, r.name)).join(", ")}, ` +
      `${f.out}/table.md, ${f.out}/results.json`,
  );
}

async function main(): Promise<void> {
  const f = parseFlags(USAGE, FLAGS);
  const evalHashes = f.evalHashes.split(",").filter(Boolean).map(Number);
  if (evalHashes.some((n) => !Number.isInteger(n) || n < 1)) {
    throw usageError(`--eval-hashes must list positive integers, got ${f.evalHashes}`);
  }
  if (f.len < 4 || f.len % 2) throw usageError(`--len must be even and at least 4, got ${f.len}`);
  const { line } = await initDevice(f.device);
  console.log(line);
  if (f.table) return await trainTable(f, evalHashes);
  if (!(await trainRow(f, evalHashes))) Deno.exit(130);
}

if (import.meta.main) await runMain("copy_task", main);
