/**
 * The files of a training run: where they live in the output folder, the checkpoint's tree and
 * metadata, how a resumed run's settings are compared with its checkpoint's, and the loss
 * plot drawn from the metrics.
 * @module
 */
import { saveCheckpoint } from "../io/checkpoint.ts";
import { readMetrics } from "./progress.ts";
import { lineChartSvg } from "./plot.ts";

/** The tree a training checkpoint holds. */
export interface CkptTree<P> {
  /** The model's params (a tree of tensors). */
  params: P;
  /** The optimizer state (a tree of tensors and numbers). */
  opt: unknown;
  /** Steps done. */
  step: number;
  /**
   * Milliseconds of training so far, counting earlier runs (absent in checkpoints written
   * before it was stored; they load as 0).
   */
  elapsedMs?: number;
}

/** The paths {@linkcode runFiles} returns. */
export interface RunFiles {
  /** `outDir/checkpoint.safetensors`: params, optimizer state, step, elapsed time. */
  checkpoint: string;
  /** `outDir/metrics.jsonl`: one JSON object per logged step or evaluation. */
  metrics: string;
  /** `outDir/loss.svg`: the loss curve. */
  plot: string;
  /** `outDir/results.json`: a script's final figures (written by the script, not the loop). */
  results: string;
}

/**
 * Paths of the files a run writes into `outDir`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFiles } from "@longseq/tensor/train";
 * assert.equal(runFiles("runs/x").checkpoint, "runs/x/checkpoint.safetensors");
 * assert.equal(runFiles("runs/x").results, "runs/x/results.json");
 * ```
 */
export function runFiles(outDir: string): RunFiles {
  return {
    checkpoint: `${outDir}/checkpoint.safetensors`,
    metrics: `${outDir}/metrics.jsonl`,
    plot: `${outDir}/loss.svg`,
    results: `${outDir}/results.json`,
  };
}

/**
 * Saves params, optimizer state, step and elapsed time to `path` (atomically: a temporary file
 * renamed over it), with `config` as JSON in the `config` metadata entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCheckpoint, tensor } from "@longseq/tensor";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveRun(path, { params: { w: tensor([1, 2]) }, opt: {}, step: 5 }, { lr: 0.1 });
 * const { tree, metadata } = await loadCheckpoint<{ step: number }>(path);
 * assert.equal(tree.step, 5);
 * assert.deepEqual(JSON.parse(metadata.config), { lr: 0.1 });
 * await Deno.remove(path);
 * ```
 */
export async function saveRun<P>(
  path: string,
  tree: CkptTree<P>,
  config: Record<string, unknown>,
): Promise<void> {
  await saveCheckpoint(path, tree, { metadata: { config: JSON.stringify(config) } });
}

/** Settings that may change between a run and its resumption without a note. */
const RUN_CONTROL = new Set([
  "steps",
  "resume",
  "out",
  "device",
  "logEvery",
  "checkpointEvery",
  "evalEvery",
]);

/** Dotted keys (one level deep) whose values differ between two configs. */
export function configDiff(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const flat = (c: Record<string, unknown>) => {
    const out = new Map<string, string>();
    for (const [k, v] of Object.entries(c)) {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        for (const [k2, v2] of Object.entries(v)) {
          if (!RUN_CONTROL.has(k2)) out.set(`${k}.${k2}`, JSON.stringify(v2));
        }
      } else out.set(k, JSON.stringify(v));
    }
    return out;
  };
  const fa = flat(a), fb = flat(b);
  return [...new Set([...fa.keys(), ...fb.keys()])].filter((k) => fa.get(k) !== fb.get(k));
}

/** Drops metrics rows after `step` (a run that went on past its last checkpoint). */
export function truncateMetrics(path: string, step: number): void {
  let rows: Record<string, unknown>[];
  try {
    rows = readMetrics(path);
  } catch {
    return;
  }
  const kept = rows.filter((r) => typeof r.step !== "number" || r.step <= step);
  Deno.writeTextFileSync(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
}

/**
 * Writes the loss curve of `outDir/metrics.jsonl` as `outDir/loss.svg`: training and
 * evaluation bits (`bpb`, `bpd`, `validBpb`, `testBpd`) where the run logs them, else the
 * training loss in nats. Writes nothing when there are no metrics.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeLossPlot } from "@longseq/tensor/train";
 * const outDir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${outDir}/metrics.jsonl`, '{"step":1,"loss":2}\n{"step":2,"loss":1}\n');
 * writeLossPlot(outDir, "Loss");
 * assert.ok((await Deno.readTextFile(`${outDir}/loss.svg`)).startsWith("<svg"));
 * await Deno.remove(outDir, { recursive: true });
 * ```
 */
export function writeLossPlot(outDir: string, title: string): void {
  const files = runFiles(outDir);
  let rows: Record<string, unknown>[];
  try {
    rows = readMetrics(files.metrics);
  } catch {
    return;
  }
  const bits = rows.some((r) => typeof r.bpb === "number" || typeof r.bpd === "number");
  const pick = bits ? /^(bpb|bpd|validBpb|testBpd)$/ : /^loss$/;
  const series = new Map<string, [number, number][]>();
  for (const r of rows) {
    if (typeof r.step !== "number") continue;
    for (const [k, v] of Object.entries(r)) {
      if (typeof v !== "number" || !pick.test(k)) continue;
      if (!series.has(k)) series.set(k, []);
      series.get(k)!.push([r.step, v]);
    }
  }
  if (!series.size) return;
  const names: Record<string, string> = {
    loss: "training loss",
    bpb: "training",
    bpd: "training",
    validBpb: "validation",
    testBpd: "test",
  };
  const svg = lineChartSvg(
    [...series].map(([k, points]) => ({ name: names[k] ?? k, points })),
    { title, xLabel: "step", yLabel: bits ? "bits per token" : "nats per token", logY: !bits },
  );
  Deno.writeTextFileSync(files.plot, svg);
}
