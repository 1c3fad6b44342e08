import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { reformerLM, type ReformerLMConfig } from "../../../nn/models/reformer.ts";
import { reformerDecoder, type ReformerDecoderOptions } from "../../../nn/models/decode.ts";
import { noLeaks, rng, testDevices } from "../../util.ts";
import { disposeTree, initParams, randomTokens } from "./lm_util.ts";

const base: ReformerLMConfig = {
  vocab: 11,
  dModel: 8,
  dFF: 16,
  heads: 2,
  layers: 2,
  chunkLen: 3,
  axialShape: [4, 4],
};

/**
 * Decodes `tokens [1, n]` after a prefill of `p` tokens, one step at a time, and checks each
 * position's logits against the model's `apply` (with `override` when given).
 */
async function checkDecode(
  config: ReformerLMConfig,
  device: T.DeviceName,
  seed: number,
  n: number,
  prefixes: number[],
  opts: ReformerDecoderOptions = {},
): Promise<void> {
  const model = reformerLM(config);
  const params = initParams(model, seed, device);
  const tokens = randomTokens(rng(seed), [1, n], config.vocab, device);
  const want = model.apply(params, tokens, opts.lshAsFull ? { attentionOverride: "full" } : {});
  const ids = Array.from(await tokens.data() as Int32Array);
  const all = await want.data() as Float32Array;
  const vocab = config.vocab;
  try {
    const dec = reformerDecoder(config, params, opts);
    assert.equal(dec.maxLen, model.maxLen);
    for (const p of prefixes) {
      const prompt = T.slice(tokens, [0, 0], [1, p]);
      let [logits, state] = dec.prefill(prompt);
      prompt.dispose();
      for (let t = p - 1; t < n; t++) {
        assert.deepEqual(logits.shape, [vocab]);
        assert.equal(state.length, t + 1);
        await T.assertAllClose(await logits.data(), all.subarray(t * vocab, (t + 1) * vocab), {
          rtol: 1e-4,
          atol: 1e-5,
        });
        logits.dispose();
        if (t + 1 < n) {
          const [l, s] = dec.step(state, ids[t + 1]);
          state.dispose();
          [logits, state] = [l, s];
        }
      }
      state.dispose();
    }
  } finally {
    want.dispose();
    tokens.dispose();
    disposeTree(params);
  }
}

Deno.test("reformerDecoder: step logits equal apply's at every position", async (t) => {
  for (const device of testDevices()) {
    await t.step(
      `${device}: full attention`,
      () => noLeaks(() => checkDecode({ ...base, attention: "full" }, device, 1, 9, [1, 4])),
    );
    await t.step(
      `${device}: local attention (the window drops old keys)`,
      () => noLeaks(() => checkDecode({ ...base, attention: "local" }, device, 2, 11, [1, 5])),
    );
    await t.step(
      `${device}: local shared-QK and full layers mixed`,
      () =>
        noLeaks(() =>
          checkDecode(
            { ...base, layers: 3, attention: ["local", "full", "local"], localSharedQK: true },
            device,
            3,
            8,
            [2],
          )
        ),
    );
    await t.step(
      `${device}: LSH layers cached, while the sequence fits one chunk (equal to apply)`,
      () =>
        noLeaks(() =>
          checkDecode(
            { ...base, attention: ["lsh", "local"], nHashes: 2, chunkLen: 16, localChunkLen: 4 },
            device,
            6,
            9,
            [1, 4],
          )
        ),
    );
    await t.step(
      `${device}: LSH prefill over several chunks equals apply over the prompt`,
      () =>
        noLeaks(() =>
          checkDecode({ ...base, attention: "lsh", nHashes: 2, chunkLen: 4 }, device, 7, 14, [14])
        ),
    );
    await t.step(
      `${device}: LSH layers as full attention with lshAsFull`,
      () =>
        noLeaks(() =>
          checkDecode({ ...base, attention: ["lsh", "local"], nHashes: 2 }, device, 4, 7, [3], {
            lshAsFull: true,
          })
        ),
    );
  }
});

Deno.test("reformerDecoder: errors", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() => {
        const config: ReformerLMConfig = { ...base, attention: "full", maxLen: 3 };
        const params = initParams(reformerLM(config), 5, device);
        try {
          assert.throws(
            () => reformerDecoder({ ...config, causal: false }, params),
            /reformerDecoder: the model must be causal/,
          );
          const dec = reformerDecoder(config, params);
          const two = T.tensor([[1, 2], [3, 4]], { dtype: "i32", device });
          assert.throws(() => dec.prefill(two), /reformerDecoder: decoding takes one sequence/);
          two.dispose();
          const tokens = T.tensor([[1, 2, 3]], { dtype: "i32", device });
          const [logits, state] = dec.prefill(tokens);
          tokens.dispose();
          logits.dispose();
          assert.throws(() => dec.step(state, 1), /reformerDecoder: the state holds maxLen 3/);
          state.dispose();
          const one = T.tensor([[1]], { dtype: "i32", device });
          const [l1, s1] = dec.prefill(one);
          one.dispose();
          l1.dispose();
          assert.throws(() => dec.step(s1, 11), /token must be an integer in 0\.\.10, got 11/);
          s1.dispose();
        } finally {
          disposeTree(params);
        }
      }));
  }
});
