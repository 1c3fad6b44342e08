/**
 * The training loop across a resume: it reports the steps run by this call and the total apart,
 * the metrics' `time` continues from the checkpoint's elapsed time (old checkpoints without it
 * still load), and evaluation lines print their figures with fixed decimals.
 */
import assert from "node:assert/strict";
import { init, loadCheckpoint, mean, optim, random, square, sub, tensor } from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { disposeTree, readMetrics, runFiles, saveRun, train } from "../../train/mod.ts";
import type { TrainOptions } from "../../train/mod.ts";

await init({ backend: "cpu-reference" });

type P = { w: Tensor };

/** Options fitting `w` to 3 (a fresh temp folder per run is the caller's). */
function options(outDir: string, steps: number, lines: string[]): TrainOptions<P, number> {
  return {
    label: "fit",
    outDir,
    steps,
    seed: 0,
    optimizer: optim.adam(0.1),
    initParams: () => ({ w: random.normal(random.key(0), [1]) }),
    batchAt: () => 3,
    lossFn: (p, target) => ({ loss: mean(square(sub(p.w, tensor([target])))) }),
    tokensPerStep: 1,
    config: { task: "fit" },
    evaluate: (p) => p.w.data().then((d) => ({ w: d[0], half: 0.5 })),
    decimals: { w: 2 },
    write: (s) => lines.push(s),
    noSignals: true,
  };
}

/** The `time` of each step row of a run's metrics, by step. */
function times(outDir: string): Map<number, number> {
  const rows = readMetrics(runFiles(outDir).metrics).filter((r) => "loss" in r);
  return new Map(rows.map((r) => [r.step as number, r.time as number]));
}

Deno.test("train across a resume", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "loop_test_" });
  try {
    await t.step("a fresh run: every step is run by this call", async () => {
      const lines: string[] = [];
      const r = await train(options(dir, 3, lines));
      disposeTree(r.params);
      assert.deepEqual([r.step, r.startStep, r.stepsRun], [3, 0, 3]);
      assert.equal(r.totalSeconds, r.seconds);
      // The final evaluation line: each figure with its fixed decimals.
      assert.ok(lines.some((l) => /step 3: w -?\d+\.\d\d half 0\.5000\n/.test(l)), lines.join(""));
    });
    const ckpt = runFiles(dir).checkpoint;
    await t.step("the checkpoint stores the elapsed time", async () => {
      const { tree } = await loadCheckpoint<{ step: number; elapsedMs: number }>(ckpt);
      assert.equal(tree.step, 3);
      const last = Math.max(...times(dir).values());
      assert.ok(tree.elapsedMs >= Math.floor(last * 1000), `${tree.elapsedMs} vs ${last}`);
      disposeTree(tree);
    });
    await t.step("a resume reports the steps of this call and the total apart", async () => {
      const before = times(dir);
      const lines: string[] = [];
      const r = await train({ ...options(dir, 8, lines), resume: ckpt });
      disposeTree(r.params);
      assert.deepEqual([r.step, r.startStep, r.stepsRun], [8, 3, 5]);
      assert.ok(r.totalSeconds >= r.seconds);
      assert.match(lines[0], /^resumed from .* at step 3\n$/);
      const after = times(dir);
      assert.deepEqual([...after.keys()], [1, 2, 3, 4, 5, 6, 7, 8]);
      for (let s = 2; s <= 8; s++) assert.ok(after.get(s)! >= after.get(s - 1)!, `step ${s}`);
      assert.equal(after.get(3), before.get(3));
    });
    await t.step("time continues from the checkpoint's elapsed time", async () => {
      const { tree } = await loadCheckpoint<{ params: P; opt: unknown; step: number }>(ckpt);
      await saveRun(ckpt, { ...tree, step: 8, elapsedMs: 1_000_000 }, { task: "fit" });
      disposeTree(tree);
      const r = await train({ ...options(dir, 10, []), resume: ckpt });
      disposeTree(r.params);
      assert.ok(r.totalSeconds >= 1000 && r.totalSeconds < 1000 + r.seconds + 1);
      const t9 = times(dir).get(9)!;
      assert.ok(t9 >= 1000 && t9 < 1100, `time ${t9}`);
      const rows = readMetrics(runFiles(dir).metrics);
      const evalRow = rows.find((x) => x.step === 10 && "half" in x)!;
      assert.ok((evalRow.time as number) >= 1000);
    });
    await t.step("a checkpoint without the elapsed time still loads", async () => {
      const { tree } = await loadCheckpoint<{ params: P; opt: unknown; step: number }>(ckpt);
      await saveRun(ckpt, { params: tree.params, opt: tree.opt, step: 10 }, { task: "fit" });
      disposeTree(tree);
      const r = await train({ ...options(dir, 12, []), resume: ckpt });
      disposeTree(r.params);
      assert.deepEqual([r.step, r.startStep, r.stepsRun], [12, 10, 2]);
      assert.equal(r.totalSeconds, r.seconds);
      assert.ok(times(dir).get(11)! < 1000);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
