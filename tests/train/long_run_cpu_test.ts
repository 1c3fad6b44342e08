/**
 * A 1,000-step training run on the CPU backend (WebAssembly SIMD) leaks nothing: live tensors
 * and bytes are the same at every evaluation, and nothing is left once the params are disposed.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { reformerLM } from "../../nn/models/reformer.ts";
import { train } from "../../train/mod.ts";
import { startWasm } from "../util.ts";

Deno.test("1,000 training steps on the cpu backend keep memory flat and leak nothing", async () => {
  await startWasm();
  const device = "cpu";
  const model = reformerLM({
    vocab: 8,
    dModel: 8,
    dFF: 16,
    heads: 2,
    layers: 1,
    nHashes: 2,
    chunkLen: 4,
    maxLen: 16,
  });
  const ids = Int32Array.from({ length: 2 * 16 }, (_, i) => (i * 5 + 3) % 8);
  const tokens = T.tensor(ids, { shape: [2, 16], dtype: "i32", device });
  const before = T.memory(device);
  const outDir = await Deno.makeTempDir();
  const seen: { tensors: number; bytes: number }[] = [];
  try {
    const result = await train({
      label: "long",
      outDir,
      steps: 1000,
      seed: 0,
      optimizer: T.optim.adam(1e-2),
      initParams: () => {
        using key = T.random.key(0, { device });
        return model.init(key);
      },
      batchAt: () => tokens,
      lossFn: (p, b: T.Tensor) => ({ loss: model.loss(p, b, b) }),
      tokensPerStep: 32,
      config: {},
      checkpointEvery: 0,
      logEvery: 50,
      evalEvery: 100,
      evaluate: () => {
        const m = T.memory(device);
        seen.push({ tensors: m.liveTensors, bytes: m.liveBytes });
        return Promise.resolve({});
      },
      write: () => {},
      noSignals: true,
    });
    assert.equal(result.step, 1000);
    assert.ok(result.last.loss < 2, `the loss fell: ${result.last.loss}`);
    assert.ok(seen.length >= 10, `evaluations: ${seen.length}`);
    for (const s of seen) assert.deepEqual(s, seen[0], "memory is flat across the run");
    T.disposeTree(result.params);
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
  const after = T.memory(device);
  assert.equal(after.liveTensors, before.liveTensors);
  assert.equal(after.liveBytes, before.liveBytes);
  tokens.dispose();
});
