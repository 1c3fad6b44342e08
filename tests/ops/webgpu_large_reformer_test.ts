/**
 * A tiny Reformer LM training step on WebGPU with the storage-binding limit lowered to 16 KiB,
 * so its activations, sorted LSH queries and keys and their gradients (32-128 KiB) all take the
 * split paths, gives the loss and gradients of the run with the adapter's limit, in f32 and in
 * mixed precision (f16). Sums split
 * along their summed axis (bias gradients, weight gradients `x^T @ dy`) add in another order,
 * so gradients agree to rounding.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { nn, random, valueAndGrad } from "../../mod.ts";
import type { ReformerLMParams } from "../../nn/models/reformer.ts";
import { noLeaks } from "../util.ts";
import { gpu, lowered, values } from "./large_buffer_util.ts";

const LEN = 256;

/**
 * Loss and gradients of one step of a 1-layer LSH Reformer on `LEN` tokens, as numbers, in
 * `precision` (f16: mixed precision, f16 params and activations).
 */
async function step(precision: "f32" | "f16"): Promise<number[][]> {
  const model = nn.reformerLM({
    layers: 1,
    dModel: 32,
    dFF: 64,
    heads: 4,
    nHashes: 2,
    chunkLen: 16,
    vocab: 16,
    attention: "lsh",
    axialShape: [16, LEN / 16],
    ffChunks: 2,
    lmHeadChunks: 2,
    reversible: true,
    precision,
  });
  const out = T.scope(() => {
    const device = "webgpu";
    const params = model.init(random.key(0, { device }));
    const tokens = random.randint(random.key(1, { device }), [1, LEN + 1], 0, 16);
    const x = T.slice(tokens, [0, 0], [1, LEN]), y = T.slice(tokens, [0, 1], [1, LEN + 1]);
    const loss = (p: ReformerLMParams) =>
      model.loss(p, x, y, { key: random.key(5, { device }), training: true });
    const [value, grads] = valueAndGrad(loss)(params);
    return [value as T.Tensor, ...T.treeTensors(grads)];
  });
  return await values(out);
}

/** Checks the split step's loss and gradients against the whole step's, within `tol`. */
async function splitStepMatches(precision: "f32" | "f16", tol: number) {
  const whole = await step(precision);
  const [split, seen] = await lowered(gpu!, 16 * 1024, () => step(precision));
  assert.ok(seen.windows > 100, `only ${seen.windows} windows were bound`);
  assert.ok(seen.largest <= 16 * 1024, `a binding of ${seen.largest} bytes`);
  assert.equal(split.length, whole.length);
  assert.ok(Math.abs(split[0][0] - whole[0][0]) <= 1e-6 * Math.abs(whole[0][0]), "loss");
  whole.forEach((w, k) => {
    const scale = Math.max(1e-3, ...w.map(Math.abs));
    w.forEach((v, i) => {
      const d = Math.abs(v - split[k][i]);
      if (!(d <= tol * scale)) assert.fail(`gradient ${k}[${i}]: ${split[k][i]} vs ${v}`);
    });
  });
}

Deno.test({
  name: "webgpu: a Reformer training step splits past the binding limit and matches",
  ignore: !gpu,
  fn: async (t) => {
    await t.step("f32", () => noLeaks(() => splitStepMatches("f32", 1e-4)));
    await t.step({
      name: "f16 (mixed precision)",
      ignore: !gpu?.hasF16,
      fn: () => noLeaks(() => splitStepMatches("f16", 1e-2)),
    });
  },
});
