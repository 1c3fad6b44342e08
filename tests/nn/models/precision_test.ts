import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { reformerLM, type ReformerLMConfig } from "../../../nn/models/reformer.ts";
import { sparseTransformerLM } from "../../../nn/models/sparse_transformer.ts";
import { chunkAttention } from "../../../nn/attention/chunk_attention.ts";
import { train } from "../../../train/mod.ts";
import { noLeaks, rng, testDevices } from "../../util.ts";
import { assertTreesClose, disposeTree, initParams, randomTokens } from "./lm_util.ts";

const reformer: ReformerLMConfig = {
  vocab: 11,
  dModel: 8,
  dFF: 16,
  heads: 2,
  layers: 3,
  attention: ["lsh", "local", "full"],
  nHashes: 2,
  chunkLen: 4,
  axialShape: [4, 4],
};

/** Loss and gradients of `model.loss` at `params` (f32 master params). */
function lossAndGrad<P>(
  model: { loss(p: P, tokens: T.Tensor, targets: T.Tensor): T.Tensor },
  params: P,
  tokens: T.Tensor,
) {
  return T.valueAndGrad((p: P) => model.loss(p, tokens, tokens))(params);
}

Deno.test("precision: f16 models track their f32 twins from the same f32 params", async (t) => {
  for (const device of testDevices()) {
    await t.step(`reformerLM (lsh, local, full) on ${device}`, () =>
      noLeaks(async () => {
        const m32 = reformerLM(reformer), m16 = reformerLM({ ...reformer, precision: "f16" });
        const params = initParams(m32, 3, device);
        const tokens = randomTokens(rng(5), [2, 13], reformer.vocab, device);
        const [l32, g32] = lossAndGrad(m32, params, tokens);
        const [l16, g16] = lossAndGrad(m16, params, tokens);
        assert.equal(l16.dtype, "f32");
        assert.ok(T.treeTensors(g16).every((g) => g.dtype === "f32"), "master grads are f32");
        const [a, b] = [await l32.array() as number, await l16.array() as number];
        assert.ok(Math.abs(a - b) < 5e-3 * Math.abs(a), `loss ${b} vs ${a}`);
        // f16 keeps about 3 decimal digits; the gradients of 3 layers stay within a few percent.
        await assertTreesClose(g16, g32, 0.05, 1e-3);
        const logits = m16.apply(params, tokens);
        assert.equal(logits.dtype, "f32");
        disposeTree([params, tokens, l32, g32, l16, g16, logits]);
      }));
    await t.step(`sparseTransformerLM (fixed pattern) on ${device}`, () =>
      noLeaks(async () => {
        const cfg = {
          vocab: 9,
          dModel: 8,
          dFF: 16,
          heads: 2,
          layers: 2,
          pattern: "fixed" as const,
          stride: 4,
          c: 2,
          maxLen: 16,
        };
        const m32 = sparseTransformerLM(cfg);
        const m16 = sparseTransformerLM({ ...cfg, precision: "f16" });
        const params = initParams(m32, 4, device);
        const tokens = randomTokens(rng(6), [1, 16], cfg.vocab, device);
        const [l32, g32] = lossAndGrad(m32, params, tokens);
        const [l16, g16] = lossAndGrad(m16, params, tokens);
        const [a, b] = [await l32.array() as number, await l16.array() as number];
        assert.ok(Math.abs(a - b) < 5e-3 * Math.abs(a), `loss ${b} vs ${a}`);
        await assertTreesClose(g16, g32, 0.05, 1e-3);
        disposeTree([params, tokens, l32, g32, l16, g16]);
      }));
    await t.step(
      `f16 attention uses the f16 mask constants on ${device}`,
      () =>
        noLeaks(async () => {
          // Causal shared-QK: position 0 sees only itself, so its lse is the self constant.
          const ones = (dtype: T.DType) => T.full([1, 3, 2], 0.5, { dtype, device });
          const pos = T.tensor(new Int32Array([0, 1, 2]), { device });
          const masks = { qpos: pos, kpos: pos, causal: true, selfMask: true };
          for (const [dtype, self] of [["f32", -1e5], ["f16", -1e3]] as const) {
            using x = ones(dtype);
            const { o, lse } = chunkAttention(x, x, x, masks);
            assert.equal(o.dtype, dtype);
            assert.equal(lse.dtype, "f32", "softmax statistics stay f32");
            const l = await lse.data();
            assert.ok(Math.abs(l[0] - self) < 1e-6 * Math.abs(self), `${dtype}: lse[0] = ${l[0]}`);
            o.dispose();
            lse.dispose();
          }
          pos.dispose();
        }),
    );
    await t.step(
      `gatherByIndex and scatterByIndex move f16 exactly on ${device}`,
      () =>
        noLeaks(async () => {
          const vals = [1.5, -2.25, 65504, 6e-8, -0, 3.140625];
          const f16 = vals.map(Math.f16round);
          using x = T.tensor(vals, { dtype: "f16", shape: [1, 3, 2], device });
          using idx = T.tensor(new Int32Array([2, 0, 1]), { shape: [1, 3], device });
          using g = T.gatherByIndex(x, idx);
          using back = T.scatterByIndex(g, idx);
          assert.equal(g.dtype, "f16");
          assert.deepEqual(Array.from(await g.data()), [4, 5, 0, 1, 2, 3].map((i) => f16[i]));
          assert.deepEqual(Array.from(await back.data()), f16);
        }),
    );
    await t.step(`layers keep f16 activations f16 on ${device}`, () =>
      noLeaks(async () => {
        const ln = T.nn.layerNorm({ dim: 4 });
        const ff = T.nn.linear({ inFeatures: 4, outFeatures: 3 });
        const lp = initParams(ln, 0, device), fp = initParams(ff, 0, device);
        const half = (tree: unknown) =>
          T.mapTree(tree, (l) => l instanceof T.Tensor ? T.cast(l, "f16") : l);
        const [lp16, fp16] = [half(lp), half(fp)] as [typeof lp, typeof fp];
        using x = T.tensor([[1, 2, 3, 5], [0.5, -1, 2, 0]], { dtype: "f16", device });
        using y = ln.apply(lp16, x);
        using z = ff.apply(fp16, y);
        assert.deepEqual([y.dtype, z.dtype], ["f16", "f16"]);
        using x32 = T.cast(x, "f32");
        using y32 = ln.apply(lp, x32);
        const [a, b] = [await y.data(), await y32.data()];
        a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 2e-3, `${v} vs ${b[i]}`));
        disposeTree([lp, fp, lp16, fp16]);
      }));
    await t.step(`training with loss scaling on ${device}`, () =>
      noLeaks(async () => {
        const model = reformerLM({ ...reformer, precision: "f16" });
        const outDir = await Deno.makeTempDir();
        const tokens = randomTokens(rng(7), [2, 16], reformer.vocab, device);
        const lines: string[] = [];
        const result = await train({
          label: "f16",
          outDir,
          steps: 6,
          seed: 0,
          optimizer: T.optim.adam(1e-2),
          lossScale: { initScale: 2 ** 10, growthInterval: 2 },
          initParams: () => initParams(model, 1, device),
          batchAt: () => tokens,
          lossFn: (p, b: T.Tensor) => ({ loss: model.loss(p, b, b) }),
          tokensPerStep: 32,
          config: {},
          write: (s) => lines.push(s),
          noSignals: true,
        });
        const log = Deno.readTextFileSync(`${outDir}/metrics.jsonl`).trim().split("\n")
          .map((l) => JSON.parse(l)).filter((r) => "loss" in r);
        assert.deepEqual(log.map((r) => r.lossScale), [1024, 1024, 2048, 2048, 4096, 4096]);
        assert.ok(log[5].loss < log[0].loss, `loss ${log[0].loss} -> ${log[5].loss}`);
        assert.ok(
          log[0].loss > 1 && log[0].loss < 4,
          `the logged loss is unscaled: ${log[0].loss}`,
        );
        disposeTree([result.params, tokens]);
        await Deno.remove(outDir, { recursive: true });
      }));
  }
});

Deno.test("precision: an unknown precision is refused", () => {
  assert.throws(
    () => reformerLM({ ...reformer, precision: "bf16" as "f16" }),
    /reformerLM: precision must be "f32" or "f16", got "bf16"/,
  );
});
