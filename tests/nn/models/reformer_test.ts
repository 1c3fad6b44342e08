import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { reformerLM, type ReformerLMConfig } from "../../../nn/models/reformer.ts";
import { reversibleBlocks } from "../../../nn/models/reversible_blocks.ts";
import * as random from "../../../ops/random.ts";
import { grad } from "../../../autodiff/mod.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";
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
const small: ReformerLMConfig = {
  vocab,
  dModel: 8,
  dFF: 16,
  heads: 2,
  layers: 3,
  attention: ["lsh", "local", "full"],
  nHashes: 2,
  chunkLen: 4,
  axialShape: [4, 4],
  ffChunks: 2,
  lmHeadChunks: 3,
};

Deno.test("reversibleBlocks: inversion gives the gradients of stored activations", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(1);
        const cfg = {
          dModel: 8,
          dFF: 16,
          heads: 2,
          layers: 2,
          attention: ["lsh", "local"] as ("lsh" | "local")[],
          nHashes: 3,
          chunkLen: 4,
          causal: true,
          ffChunks: 3,
          dropout: 0.2,
        };
        const rev = reversibleBlocks(cfg), stored = reversibleBlocks({ ...cfg, reversible: false });
        const params = initParams(rev, 0, device);
        const shape = [2, 11, 8];
        const x1 = T.tensor(randomArray(rand, 176), { shape, device });
        const x2 = T.tensor(randomArray(rand, 176), { shape, device });
        const w = T.tensor(randomArray(rand, 176), { shape, device });
        const key = random.key(3, { device });
        const mask = paddingMask(rand, [2, 11], device, false);
        const lossOf = (m: typeof rev) => (p: typeof params, a: T.Tensor, b: T.Tensor) => {
          const [y1, y2] = m.apply(p, [a, b], { key, training: true, mask });
          return T.sum(T.mul(T.add(y1, T.mul(y2, 0.5)), w));
        };
        const [ga, gb] = T.scope(() => [
          grad(lossOf(rev), { argnums: [0, 1, 2] })(params, x1, x2),
          grad(lossOf(stored), { argnums: [0, 1, 2] })(params, x1, x2),
        ]);
        await assertTreesClose(ga, gb, 1e-4);
        // Inversion: the outputs of both runs agree too.
        const [ya, yb] = T.scope(() => [
          rev.apply(params, [x1, x2], { key, training: true, mask }),
          stored.apply(params, [x1, x2], { key, training: true, mask }),
        ]);
        await assertTreesClose(ya, yb, 1e-6);
        disposeTree([ga, gb, ya, yb, params, x1, x2, w, key, mask]);
      }));
  }
});

Deno.test("reformerLM: reversible gradients equal non-reversible ones (dropout, mask, odd length)", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(2);
        const cfg = { ...small, dropout: 0.1 };
        const rev = reformerLM(cfg), stored = reformerLM({ ...cfg, reversible: false });
        const params = initParams(rev, 0, device);
        const tokens = randomTokens(rand, [2, 13], vocab, device);
        const targets = randomTokens(rand, [2, 13], vocab, device);
        const mask = paddingMask(rand, [2, 13], device, false);
        const key = random.key(9, { device });
        const opts = { key, training: true, mask };
        const [la, ga] = T.valueAndGrad((p: typeof params) => rev.loss(p, tokens, targets, opts))(
          params,
        );
        const [lb, gb] = T.valueAndGrad((p: typeof params) =>
          stored.loss(p, tokens, targets, opts)
        )(params);
        await T.assertAllClose(la, lb, { rtol: 1e-6, atol: 0 });
        await assertTreesClose(ga, gb, 1e-4);
        disposeTree([la, lb, ga, gb, params, tokens, targets, mask, key]);
      }));
  }
});

Deno.test("reformerLM: causal by gradients for LSH, local and full attention", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(3);
        for (const attention of ["lsh", "local", "full"] as const) {
          const model = reformerLM({ ...small, layers: 2, attention, chunkLen: 3 });
          const params = initParams(model, 1, device);
          await assertModelCausal(
            (x) => model.applyEmbedded(params, x),
            [2, 8, 8],
            vocab,
            device,
            rand,
          );
          disposeTree(params);
        }
      }));
  }
});

Deno.test("reformerLM: one Adam step lowers the loss on a fixed batch", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(4);
        const model = reformerLM(small);
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

Deno.test("reformerLM: odd lengths, length 1, maxLen and a fully padded row stay finite", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(5);
        const model = reformerLM(small);
        const params = initParams(model, 3, device);
        for (const n of [1, 5, 16]) {
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
            // Everything masked: the mean over no position is 0.
            const none = T.zeros([2, n], { dtype: "bool", device });
            const l0 = model.loss(params, tokens, tokens, { mask: none });
            assert.equal((await l0.data())[0], 0);
          });
        }
        disposeTree(params);
      }));
  }
});

Deno.test("reformerLM: attentionOverride swaps LSH and full shared-QK attention", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(6);
        const base = { ...small, layers: 2, chunkLen: 4 };
        const lsh = reformerLM({ ...base, attention: "lsh", nHashes: 2 });
        const full = reformerLM({ ...base, attention: "full" });
        const lsh4 = reformerLM({ ...base, attention: "lsh", nHashes: 4 });
        const params = initParams(lsh, 4, device);
        const tokens = randomTokens(rand, [2, 13], vocab, device);
        const key = random.key(8, { device });
        await T.scope(async () => {
          // Trained with LSH, evaluated with full attention, and the other way round.
          const asFull = lsh.apply(params, tokens, { attentionOverride: "full" });
          await T.assertAllClose(asFull, full.apply(params, tokens), { rtol: 1e-6, atol: 1e-6 });
          for (const opts of [{}, { key }]) {
            const asLsh4 = full.apply(params, tokens, {
              ...opts,
              attentionOverride: { lsh: { nHashes: 4 } },
            });
            const want = lsh4.apply(params, tokens, opts);
            await T.assertAllClose(asLsh4, want, { rtol: 1e-6, atol: 1e-6 });
            // "lsh" on a full model uses the configured LSH settings, which differ from full.
            const asLsh = await full.apply(params, tokens, { ...opts, attentionOverride: "lsh" })
              .data();
            const asIs = await full.apply(params, tokens, opts).data();
            assert.ok(asLsh.some((v, i) => Math.abs(v - asIs[i]) > 1e-3), "LSH equals full");
          }
          // { full: { selfMask: false } } lets a token attend to itself; { full: {} } is "full".
          const noSelf = await lsh.apply(params, tokens, {
            attentionOverride: { full: { selfMask: false } },
          }).data();
          const masked = await asFull.data();
          assert.ok(noSelf.some((v, i) => Math.abs(v - masked[i]) > 1e-3), "self mask ignored");
          await T.assertAllClose(
            lsh.apply(params, tokens, { attentionOverride: { full: {} } }),
            asFull,
            { rtol: 0, atol: 0 },
          );
          // With one chunk holding the sequence, LSH is full shared-QK attention.
          const short = randomTokens(rand, [2, 4], vocab, device);
          await T.assertAllClose(
            lsh.apply(params, short),
            lsh.apply(params, short, { attentionOverride: "full" }),
            { rtol: 2e-5, atol: 2e-6 },
          );
        });
        disposeTree([params, tokens, key]);
      }));
  }
});

Deno.test("reformerLM: validation", async (t) => {
  await t.step("config", () => {
    assert.throws(() => reformerLM({ ...small, attention: [] }), /attention must/);
    assert.throws(() => reformerLM({ ...small, attention: ["lsh", "full"] }), /3 layers/);
    assert.throws(() => reformerLM({ ...small, attention: "dense" as never }), /attention must/);
    assert.throws(() => reformerLM({ ...small, axialDims: [3, 3] }), /sum to dModel 8/);
    assert.throws(() => reformerLM({ ...small, maxLen: 17 }), /exceeds the 16 positions/);
    assert.throws(() => reformerLM({ ...small, axialShape: undefined }), /maxLen or axialShape/);
    assert.throws(() => reformerLM({ ...small, dropout: 1 }), /dropout/);
    assert.throws(() => reformerLM({ ...small, layers: 0 }), /layers/);
  });
  await t.step("inputs", () =>
    noLeaks(() => {
      const model = reformerLM({ ...small, dropout: 0.1 });
      T.scope(() => {
        const params = model.init(random.key(0));
        const long = T.zeros([1, 17], { dtype: "i32" });
        assert.throws(() => model.apply(params, long), /length 17 must be from 1 to maxLen 16/);
        const f = T.zeros([1, 4]);
        assert.throws(() => model.apply(params, f), /tokens must be i32/);
        const ok = T.zeros([1, 4], { dtype: "i32" });
        assert.throws(() => model.apply(params, ok, { training: true }), /PRNG key/);
        const tgt = T.zeros([1, 5], { dtype: "i32" });
        assert.throws(() => model.loss(params, ok, tgt), /targets \[1,5\] must match/);
        assert.throws(
          () => model.apply(params, ok, { attentionOverride: "sparse" as never }),
          /attentionOverride/,
        );
        assert.throws(
          () => model.apply(params, ok, { attentionOverride: { full: { selfMask: 1 } } as never }),
          /attentionOverride/,
        );
      });
    }));
});

/** Peak bytes above the live bytes at the start, of one loss-and-gradient evaluation. */
async function gradPeak(
  model: ReturnType<typeof reformerLM>,
  tokens: T.Tensor,
  device: T.DeviceName,
): Promise<number> {
  const params = initParams(model, 0, device);
  const base = T.memory(device).liveBytes;
  T.resetPeakMemory(device);
  const lg = T.valueAndGrad((p: typeof params) => model.loss(p, tokens, tokens))(params);
  await lg[0].data();
  const peak = T.memory(device).peakBytes - base;
  disposeTree([lg, params]);
  return peak;
}

Deno.test("reformerLM: reversible activation memory does not grow with depth", () =>
  noLeaks(async () => {
    const device = "cpu-reference", rand = rng(7);
    using tokens = randomTokens(rand, [1, 64], vocab, device);
    const cfg = { ...small, dModel: 16, dFF: 64, attention: "lsh" as const, chunkLen: 16 };
    const peak = (layers: number, reversible: boolean) =>
      gradPeak(reformerLM({ ...cfg, axialShape: [8, 8], layers, reversible }), tokens, device);
    const [rev2, rev6, st2, st6] = [
      await peak(2, true),
      await peak(6, true),
      await peak(2, false),
      await peak(6, false),
    ];
    // Four more layers add their params and gradients only; stored activations grow much more.
    assert.ok(rev6 < st6, `reversible ${rev6} vs stored ${st6} bytes`);
    assert.ok(rev6 - rev2 < 0.2 * (st6 - st2), `growth ${rev6 - rev2} vs ${st6 - st2} bytes`);
  }));
