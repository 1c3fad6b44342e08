/**
 * A training loop to import: `train.train(...)` runs `valueAndGrad` and an optimizer step per
 * batch inside a `scope`, logs metrics as JSON lines, draws a progress bar and an SVG loss
 * curve, saves safetensors checkpoints atomically (every N steps, at the end and on Ctrl-C),
 * resumes from them, and evaluates periodically. The pieces it is built from (progress bar,
 * metrics log, line chart, run files, a typed command-line flag parser) are exported too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mean, optim, random, square, sub, tensor, train } from "@longseq/tensor";
 * const outDir = await Deno.makeTempDir();
 * // Fit w to 3 with Adam: loss = mean((w - 3)^2).
 * const result = await train.train({
 *   label: "fit",
 *   outDir,
 *   steps: 20,
 *   seed: 0,
 *   optimizer: optim.adam(0.3),
 *   initParams: () => ({ w: random.normal(random.key(0), [1]) }),
 *   batchAt: () => 3,
 *   lossFn: (p, target, _key) => ({ loss: mean(square(sub(p.w, tensor([target])))) }),
 *   tokensPerStep: 1,
 *   config: {},
 *   write: () => {},
 *   noSignals: true,
 * });
 * assert.equal(result.step, 20);
 * assert.ok(result.last.loss < 1);
 * train.disposeTree(result.params);
 * await Deno.remove(outDir, { recursive: true });
 * ```
 * @module
 */
export {
  type LossOutput,
  train,
  type TrainOptimizer,
  type TrainOptions,
  type TrainResult,
} from "./loop.ts";
export { type FlagTrainOptions, trainOptionsFromFlags } from "./flag_options.ts";
export { disposeTree, runSummary, stepKey } from "./steps.ts";
export {
  MetricsLog,
  ProgressBar,
  type ProgressOptions,
  readMetrics,
  type StepInfo,
} from "./progress.ts";
export * from "./format.ts";
export { type ChartOptions, escapeXml, lineChartSvg, niceTicks, type Series } from "./plot.ts";
export { type CkptTree, type RunFiles, runFiles, saveRun, writeLossPlot } from "./run_files.ts";
export {
  flagHelp,
  type FlagSpec,
  type FlagValues,
  initDevice,
  parseFlags,
  runMain,
  type TrainingDefaults,
  type TrainingFlag,
  trainingFlags,
  type TrainingFlagTable,
  type TrainingFlagValues,
  type TypedFlagSpec,
  usageError,
} from "./cli.ts";
