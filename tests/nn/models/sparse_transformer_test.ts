import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import {
  sparseTransformerLM,
  type SparseTransformerLMConfig,
} from "../../../nn/models/sparse_transformer.ts";
import * as random from "../../../ops/random.ts";
import { noLeaks, rng, testDevices } from "../../util.ts";
import {
  adamStepLosses,
  assertModelCausal,
  assertTreeFinite,
  assertTreesClose,
  disposeTree,
  initParams,
  paddingMask,
  randomTokens,
} from "./lm_util.ts";

const vocab = 11;
const small: SparseTransformerLMConfig = {
  vocab,
  dModel: 8,
  dFF: 16,
  heads: 2,
  layers: 2,
  pattern: "fixed",
  stride: 4,
  c: 1,
  blockSize: 2,
  maxLen: 16,
  ffChunks: 2,
  lmHeadChunks: 3,
};

Deno.test("sparseTransformerLM: checkpointed blocks give the gradients of stored ones", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(11);
        for (const mode of ["alternate", "split"] as const) {
          const cfg = { ...small, mode, dropout: 0.1 };
          const ckpt = sparseTransformerLM(cfg);
          const stored = sparseTransformerLM({ ...cfg, checkpoint: false });
          const params = initParams(ckpt, 0, device);
          const tokens = randomTokens(rand, [2, 13], vocab, device);
          const targets = randomTokens(rand, [2, 13], vocab, device);
          const mask = paddingMask(rand, [2, 13], device, false);
          using key = random.key(5, { device });
          const opts = { key, training: true, mask };
          const [la, ga] = T.valueAndGrad((p: typeof params) =>
            ckpt.loss(p, tokens, targets, opts)
          )(params);
          const [lb, gb] = T.valueAndGrad((p: typeof params) =>
            stored.loss(p, tokens, targets, opts)
          )(params);
          await T.assertAllClose(la, lb, { rtol: 1e-6, atol: 0 });
          await assertTreesClose(ga, gb, 1e-5);
          disposeTree([la, lb, ga, gb, params, tokens, targets, mask]);
        }
      }));
  }
});

Deno.test("sparseTransformerLM: causal by gradients for both patterns and all modes", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(12);
        const cases: Partial<SparseTransformerLMConfig>[] = [
          { pattern: "strided", stride: 3, mode: "alternate" },
          { pattern: "fixed", stride: 4, c: 2, mode: "merged" },
          { pattern: "fixed", stride: 3, c: 1, mode: "split" },
        ];
        for (const cs of cases) {
          const model = sparseTransformerLM({ ...small, ...cs });
          const params = initParams(model, 1, device);
          await assertModelCausal(
            (x) => model.applyEmbedded(params, x),
            [2, 9, 8],
            vocab,
            device,
            rand,
          );
          disposeTree(params);
        }
      }));
  }
});

Deno.test("sparseTransformerLM: one Adam step lowers the loss on a fixed batch", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(13);
        const model = sparseTransformerLM({ ...small, pattern: "strided", stride: 4 });
        const tokens = randomTokens(rand, [2, 12], vocab, device);
        const targets = randomTokens(rand, [2, 12], vocab, device);
        const [before, after] = await adamStepLosses(
          initParams(model, 2, device),
          (p) => model.loss(p, tokens, targets),
        );
        assert.ok(after < before, `loss ${before} -> ${after}`);
        disposeTree([tokens, targets]);
      }));
  }
});

Deno.test("sparseTransformerLM: odd lengths, length 1, maxLen and a fully padded row stay finite", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(14);
        const model = sparseTransformerLM(small);
        const params = initParams(model, 3, device);
        for (const n of [1, 7, 16]) {
          await T.scope(async () => {
            const tokens = randomTokens(rand, [2, n], vocab, device);
            const mask = paddingMask(rand, [2, n], device);
            const logits = model.apply(params, tokens, { mask });
            assert.deepEqual(logits.shape, [2, n, vocab]);
            await assertTreeFinite(logits, `logits at length ${n}`);
            const [l, g] = T.valueAndGrad((p: typeof params) =>
              model.loss(p, tokens, tokens, { mask })
            )(params);
            await assertTreeFinite([l, g], `loss and gradients at length ${n}`);
          });
        }
        disposeTree(params);
      }));
  }
});

Deno.test("sparseTransformerLM: block-sparse equals the dense masked reference", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(15);
        const sparse = sparseTransformerLM({ ...small, mode: "split" });
        const dense = sparseTransformerLM({ ...small, mode: "split", impl: "dense" });
        const params = initParams(sparse, 4, device);
        await T.scope(async () => {
          const tokens = randomTokens(rand, [2, 11], vocab, device);
          const mask = paddingMask(rand, [2, 11], device);
          await T.assertAllClose(
            sparse.apply(params, tokens, { mask }),
            dense.apply(params, tokens, { mask }),
            { rtol: 1e-5, atol: 1e-5 },
          );
        });
        disposeTree(params);
      }));
  }
});

Deno.test("sparseTransformerLM: residual projections are scaled by 1/sqrt(2N) at init", () =>
  noLeaks(async () => {
    const layers = 8;
    const model = sparseTransformerLM({ ...small, dModel: 32, dFF: 32, layers, mode: "merged" });
    const params = initParams(model, 5, "cpu-reference");
    const std = async (t: T.Tensor) => {
      const d = await t.data();
      return Math.sqrt(Array.from(d).reduce((s, v) => s + v * v, 0) / d.length);
    };
    // wv and wo (and ff.in.w and ff.out.w) share their Glorot scale before the residual scaling.
    let wo = 0, wv = 0, out = 0, inp = 0;
    for (const b of params.blocks) {
      wo += await std(b.attn.wo);
      wv += await std(b.attn.wv);
      out += await std(b.ff.out.w);
      inp += await std(b.ff.in.w);
    }
    const want = 1 / Math.sqrt(2 * layers);
    assert.ok(Math.abs(wo / wv - want) < 0.03, `attention: ${wo / wv} vs ${want}`);
    assert.ok(Math.abs(out / inp - want) < 0.03, `feed-forward: ${out / inp} vs ${want}`);
    disposeTree(params);
  }));

Deno.test("sparseTransformerLM: validation", async (t) => {
  await t.step("config", () => {
    assert.throws(() => sparseTransformerLM({ ...small, pattern: "dense" as never }), /pattern/);
    assert.throws(() => sparseTransformerLM({ ...small, layers: 0 }), /layers/);
    assert.throws(() => sparseTransformerLM({ ...small, mode: "split", heads: 1 }), /heads/);
    assert.throws(() => sparseTransformerLM({ ...small, maxLen: undefined }), /maxLen/);
    assert.throws(() => sparseTransformerLM({ ...small, dropout: -1 }), /dropout/);
  });
  await t.step("inputs", () =>
    noLeaks(() => {
      const model = sparseTransformerLM({ ...small, dropout: 0.1 });
      T.scope(() => {
        const params = model.init(random.key(0));
        const long = T.zeros([1, 17], { dtype: "i32" });
        assert.throws(() => model.apply(params, long), /length 17 must be from 1 to maxLen 16/);
        const ok = T.zeros([1, 4], { dtype: "i32" });
        assert.throws(() => model.apply(params, ok, { training: true }), /PRNG key/);
        const x = T.zeros([1, 4, 7]);
        assert.throws(() => model.applyEmbedded(params, x), /\[batch, len, 8\]/);
      });
    }));
});

Deno.test("sparseTransformerLM: checkpointing lowers the peak bytes of a gradient", () =>
  noLeaks(async () => {
    const device = "cpu-reference", rand = rng(16);
    using tokens = randomTokens(rand, [1, 64], vocab, device);
    const peak = async (checkpoint: boolean) => {
      const model = sparseTransformerLM({ ...small, maxLen: 64, stride: 8, layers: 4, checkpoint });
      const params = initParams(model, 0, device);
      const base = T.memory(device).liveBytes;
      T.resetPeakMemory(device);
      const lg = T.valueAndGrad((p: typeof params) => model.loss(p, tokens, tokens))(params);
      await lg[0].data();
      const bytes = T.memory(device).peakBytes - base;
      disposeTree([lg, params]);
      return bytes;
    };
    const [withCkpt, without] = [await peak(true), await peak(false)];
    assert.ok(withCkpt < 0.8 * without, `checkpointed ${withCkpt} vs stored ${without} bytes`);
  }));
