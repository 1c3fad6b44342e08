/**
 * The training loop: one step (`valueAndGrad` + optimizer update
 * inside a `scope`), metrics read back in batches (one readback per `logEvery` steps,
 * since a GPU readback costs milliseconds), a progress bar, JSON-lines metrics and an SVG loss
 * curve, safetensors checkpoints every N steps written atomically, `--resume`, and a checkpoint
 * on Ctrl-C. Everything random is a function of `(seed, step)`: the data batch, the step's PRNG
 * key, and the initial params, so a resumed run reproduces an uninterrupted one.
 * @module
 */
import { memory } from "../ops/device.ts";
import { scope } from "../ops/scope.ts";
import { stack } from "../ops/slicing.ts";
import { mul } from "../ops/binary.ts";
import type { Tensor } from "../ops/tensor.ts";
import { treeTensors, valueAndGrad } from "../autodiff/mod.ts";
import * as optim from "../optim/mod.ts";
import { loadCheckpoint } from "../io/checkpoint.ts";
import { MetricsLog, ProgressBar } from "./progress.ts";
import { formatFigures } from "./format.ts";
import {
  type CkptTree,
  configDiff,
  runFiles,
  saveRun,
  truncateMetrics,
  writeLossPlot,
} from "./run_files.ts";
import { disposeTree, stepKey } from "./steps.ts";

/** What a loss function returns: the scalar loss, plus scalar metrics to log (e.g. accuracy). */
export interface LossOutput {
  /** f32 scalar, differentiated. */
  loss: Tensor;
  /** f32 scalars, not differentiated; logged as `name` per step. */
  metrics?: Record<string, Tensor>;
}

/**
 * What {@linkcode train} needs of an optimizer: the shape of every `optim.GradientTransformation`
 * (`init` makes the state for a params tree; `update` turns gradients into updates and a new
 * state, never mutating its inputs).
 */
export interface TrainOptimizer {
  /** The initial state for `params`. */
  init(params: unknown): unknown;
  /** `[updates, newState]` for gradients `updates` shaped like the params. */
  update<U>(updates: U, state: unknown, params?: unknown): [U, unknown];
}

/** Options of {@linkcode train}. */
export interface TrainOptions<P, B> {
  /** Short name shown before the progress bar. */
  label: string;
  /** Title of the loss plot (default: `label`). */
  plotTitle?: string;
  /** Folder for `checkpoint.safetensors`, `metrics.jsonl` and `loss.svg` (created). */
  outDir: string;
  /** Step to stop after (a resumed run continues up to it). */
  steps: number;
  /** Seed of the step keys (the data and init use their own, see the example). */
  seed: number;
  /** The optimizer: any `optim.GradientTransformation` (e.g. `optim.adam(1e-3)`). */
  optimizer: TrainOptimizer;
  /** Fresh params, built in a `scope` (when resuming: the template the checkpoint must match). */
  initParams: () => P;
  /** Host-side batch number `step` (0-based); must depend only on `step` for resumes. */
  batchAt: (step: number) => B;
  /** The loss of `params` on `batch`; `key` is this step's PRNG key (dropout, LSH hashing). */
  lossFn: (params: P, batch: B, key: Tensor) => LossOutput;
  /** Tokens per step (for tokens/s). */
  tokensPerStep: number;
  /** Save a checkpoint every this many steps (0: only at the end and on Ctrl-C). */
  checkpointEvery?: number;
  /** Read metrics back every this many steps (default 1 on the CPU, 10 on WebGPU). */
  logEvery?: number;
  /** Checkpoint to resume from (a path), or undefined for a fresh start. */
  resume?: string;
  /** Stored in the checkpoint's metadata as JSON (model config, flags). */
  config: Record<string, unknown>;
  /** Optional evaluation every `evalEvery` steps and at the end; returns figures to log. */
  evaluate?: (params: P, step: number) => Promise<Record<string, number>>;
  /** Steps between evaluations (default: only at the end). */
  evalEvery?: number;
  /** Stop early once `evaluate`'s figures satisfy this (checked after each evaluation). */
  stopWhen?: (figures: Record<string, number>) => boolean;
  /**
   * Decimals of each figure in the progress and evaluation lines, by name (default 4 for
   * every figure); `metrics.jsonl` keeps full precision.
   */
  decimals?: Readonly<Record<string, number>>;
  /** Where progress goes (default: the terminal). */
  write?: (text: string) => void;
  /** Skip installing the Ctrl-C handler (tests). */
  noSignals?: boolean;
  /**
   * Dynamic loss scaling, for f16 training (`precision: "f16"` models): `true` for the
   * defaults, or `optim.LossScaleOptions`. The optimizer is wrapped in
   * `optim.dynamicLossScale` (its state, scale included, is what checkpoints hold), the loss
   * is multiplied by the current scale before differentiation, the logged `loss` is the
   * unscaled one, and the scale is logged as the `lossScale` figure.
   */
  lossScale?: boolean | optim.LossScaleOptions;
}

/** The aux key that carries the unscaled loss out of the differentiated function. */
const UNSCALED = "\u0000unscaledLoss";

/** What {@linkcode train} returns. */
export interface TrainResult<P> {
  /** Final params (the caller owns them). */
  params: P;
  /** The step reached (counting the steps before a resume). */
  step: number;
  /** The step this call started from (0, or the checkpoint's step when resuming). */
  startStep: number;
  /** Steps run by this call: `step - startStep`. */
  stepsRun: number;
  /** True when Ctrl-C stopped the run early (a checkpoint was saved). */
  interrupted: boolean;
  /** The last logged figures (loss and metrics). */
  last: Record<string, number>;
  /** The last evaluation's figures, if any. */
  evaluation: Record<string, number>;
  /** Wall seconds spent in this call. */
  seconds: number;
  /** Wall seconds of training in all, counting the runs before a resume (from the checkpoint). */
  totalSeconds: number;
  /** Tokens per second over this call. */
  tokensPerSecond: number;
  /** Peak live bytes on the default device during the run. */
  peakBytes: number;
}

/**
 * Runs the training loop. Each step: batch `batchAt(step)`, key `stepKey(seed, step)`,
 * `valueAndGrad(lossFn)`, `optimizer.update`, `applyUpdates`, all inside one `scope`, after
 * which the old params and state are disposed (live memory stays flat). Loss and metrics are
 * kept on the device and read back together every `logEvery` steps, then appended to
 * `metrics.jsonl` (`{"step":…,"loss":…,<metrics>,"time":<seconds in all>}`; evaluations add
 * rows of their own). Checkpoints go to `outDir/checkpoint.safetensors` (params, optimizer
 * state, step and elapsed time), every `checkpointEvery` steps, at the end and on Ctrl-C; with
 * `resume` the run goes on from one, its metrics time continuing from the checkpoint's.
 * Throws a RangeError when the loss stops being finite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mean, optim, square, sub, type Tensor, tensor, zeros } from "@longseq/tensor";
 * import { disposeTree, runFiles } from "@longseq/tensor/train";
 * const outDir = await Deno.makeTempDir();
 * const opts = {
 *   label: "fit",
 *   outDir,
 *   seed: 0,
 *   optimizer: optim.sgd(0.25),
 *   initParams: () => ({ w: zeros([2]) }), // fit w to [1, 2]
 *   batchAt: (_step: number) => [1, 2],
 *   lossFn: (p: { w: Tensor }, y: number[]) => ({ loss: mean(square(sub(p.w, tensor(y)))) }),
 *   tokensPerStep: 2,
 *   config: {},
 *   write: () => {},
 *   noSignals: true,
 * };
 * const first = await train({ ...opts, steps: 4 });
 * disposeTree(first.params);
 * const more = await train({ ...opts, steps: 10, resume: runFiles(outDir).checkpoint });
 * assert.deepEqual([more.startStep, more.stepsRun, more.step], [4, 6, 10]);
 * assert.ok(more.last.loss < first.last.loss);
 * disposeTree(more.params);
 * await Deno.remove(outDir, { recursive: true });
 * ```
 */
export async function train<P, B>(o: TrainOptions<P, B>): Promise<TrainResult<P>> {
  const files = runFiles(o.outDir);
  Deno.mkdirSync(o.outDir, { recursive: true });
  const write = o.write ?? ((s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s)));
  const say = (s: string) => write(`${s}\n`);

  const optimizer: TrainOptimizer = o.lossScale
    ? optim.dynamicLossScale(o.optimizer, o.lossScale === true ? {} : o.lossScale)
    : o.optimizer;
  let params = scope(() => o.initParams());
  let opt = optimizer.init(params);
  let start = 0;
  let secondsBefore = 0;
  if (o.resume) {
    // Checkpoints from before `elapsedMs` was stored load with the template's 0.
    const { tree, metadata } = await loadCheckpoint<Required<CkptTree<P>>>(o.resume, {
      like: { params, opt, step: 0, elapsedMs: 0 },
    });
    disposeTree(params);
    disposeTree(opt);
    params = tree.params;
    opt = await optim.restoreSteps(tree.opt);
    start = tree.step;
    secondsBefore = tree.elapsedMs / 1000;
    if (start > o.steps) {
      disposeTree(params);
      disposeTree(opt);
      throw new RangeError(
        `${o.resume} is at step ${start}, beyond the ${o.steps} steps of this run ` +
          "(pass a larger --steps to train on)",
      );
    }
    const differs = configDiff(metadata.config ? JSON.parse(metadata.config) : {}, o.config);
    truncateMetrics(files.metrics, start);
    say(`resumed from ${o.resume} at step ${start}`);
    if (differs.length) {
      say(`note: these settings differ from the checkpoint's: ${differs.join(", ")}`);
    }
  }
  const log = new MetricsLog(files.metrics, { truncate: !o.resume });
  const logEvery = o.logEvery ?? (params && treeTensors(params)[0]?.device === "webgpu" ? 10 : 1);
  // Plain lines only where fresh metrics were read back (every a multiple of logEvery).
  const every = Math.max(1, Math.ceil(Math.round((o.steps - start) / 20) / logEvery)) * logEvery;
  const bar = new ProgressBar({
    total: o.steps,
    start,
    label: o.label,
    write,
    every,
    decimals: o.decimals,
    startSeconds: secondsBefore,
  });
  const t0 = performance.now();
  /** Training seconds so far, counting the runs before a resume. */
  const elapsed = () => secondsBefore + (performance.now() - t0) / 1000;
  let stopRequested = false;
  let interrupted = false;
  const onSigint = () => {
    if (stopRequested) Deno.exit(130);
    stopRequested = true;
    bar.log("Ctrl-C: saving a checkpoint after this step (press again to quit now)");
  };
  if (!o.noSignals) Deno.addSignalListener("SIGINT", onSigint);

  const grads = valueAndGrad(
    (p: P, batch: B, key: Tensor, scale: Tensor | null) => {
      const out = o.lossFn(p, batch, key);
      if (!scale) return [out.loss, out.metrics ?? {}];
      const aux = { ...out.metrics, lossScale: scale.view([]), [UNSCALED]: out.loss };
      return [mul(out.loss, scale), aux];
    },
    { hasAux: true },
  );
  type Pending = { step: number; values: Tensor };
  let pending: Pending[] = [];
  let metricNames: string[] = [];
  let last: Record<string, number> = {};
  let evaluation: Record<string, number> = {};
  let lastYield = performance.now();
  let tokensDone = 0;

  const flushMetrics = async () => {
    if (!pending.length) return;
    const all = scope(() => stack(pending.map((p) => p.values)));
    const data = await all.data();
    all.dispose();
    const width = metricNames.length + 1;
    pending.forEach((p, i) => {
      const rec: Record<string, number> = { loss: data[i * width] };
      metricNames.forEach((n, j) => (rec[n] = data[i * width + j + 1]));
      log.log({ step: p.step, ...rec, time: Number(elapsed().toFixed(3)) });
      last = rec;
      p.values.dispose();
    });
    pending = [];
    if (!Number.isFinite(last.loss)) {
      throw new RangeError(`training diverged: loss is ${last.loss} at step ${pendingStep}`);
    }
  };
  let pendingStep = start;
  const checkpoint = async (step: number) => {
    const elapsedMs = Math.round(elapsed() * 1000);
    await saveRun(files.checkpoint, { params, opt, step, elapsedMs }, o.config);
    writeLossPlot(o.outDir, o.plotTitle ?? o.label);
  };
  let evaluatedAt = -1;
  const runEval = async (step: number) => {
    if (!o.evaluate || evaluatedAt === step) return;
    evaluatedAt = step;
    await flushMetrics();
    evaluation = await o.evaluate(params, step);
    log.log({ step, ...evaluation, time: Number(elapsed().toFixed(3)) });
    bar.log(`step ${step}: ${formatFigures(evaluation, o.decimals)}`);
  };

  let step = start;
  try {
    while (step < o.steps) {
      const batch = o.batchAt(step);
      using key = stepKey(o.seed, step);
      const next = scope(() => {
        const scale = o.lossScale ? (opt as optim.LossScaleState<unknown>).scale : null;
        const [[scaled, aux], g] = grads(params, batch, key, scale);
        const { [UNSCALED]: unscaled, ...metrics } = aux;
        const loss = unscaled ?? scaled;
        const [updates, state] = optimizer.update(g, opt, params);
        metricNames = Object.keys(metrics);
        const values = stack([loss, ...metricNames.map((n) => metrics[n])].map((t) => t.view([])));
        return { params: optim.applyUpdates(params, updates), opt: state, values };
      });
      disposeTree(params);
      disposeTree(opt);
      params = next.params;
      opt = next.opt;
      step++;
      pendingStep = step;
      pending.push({ step, values: next.values });
      tokensDone += o.tokensPerStep;
      if (pending.length >= logEvery || step === o.steps) await flushMetrics();
      bar.update(step, {
        loss: last.loss,
        tokens: o.tokensPerStep,
        extra: Object.fromEntries(Object.entries(last).filter(([k]) => k !== "loss")),
      });
      if (o.checkpointEvery && step % o.checkpointEvery === 0 && step < o.steps) {
        await flushMetrics();
        await checkpoint(step);
      }
      if (o.evalEvery && step % o.evalEvery === 0 && step < o.steps) {
        await runEval(step);
        if (o.stopWhen?.(evaluation)) break;
      }
      // Let the event loop deliver Ctrl-C (a CPU-only loop never awaits anything real).
      if (performance.now() - lastYield > 100) {
        await new Promise((r) => setTimeout(r, 0));
        lastYield = performance.now();
      }
      if (stopRequested) {
        interrupted = true;
        break;
      }
    }
    await flushMetrics();
    bar.done();
    if (!interrupted) await runEval(step);
    await checkpoint(step);
    say(`${interrupted ? "interrupted; " : ""}checkpoint: ${files.checkpoint} (step ${step})`);
  } finally {
    if (!o.noSignals) Deno.removeSignalListener("SIGINT", onSigint);
    log.close();
    for (const p of pending) p.values.dispose();
  }
  disposeTree(opt);
  const seconds = (performance.now() - t0) / 1000;
  return {
    params,
    step,
    startStep: start,
    stepsRun: step - start,
    interrupted,
    last,
    evaluation,
    seconds,
    totalSeconds: secondsBefore + seconds,
    tokensPerSecond: tokensDone / Math.max(seconds, 1e-9),
    peakBytes: memory().peakBytes,
  };
}
