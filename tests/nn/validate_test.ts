import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import {
  checkDropoutRate,
  checkIntAtLeast,
  checkKey,
  checkLastDim,
  checkLayer,
  checkParam,
  checkPositiveInt,
} from "../../nn/validate.ts";
import { checkLearningRate, checkNumber } from "../../optim/validate.ts";

Deno.test("nn validation: integers, dropout rates, tensors and layers", () => {
  checkPositiveInt("op", "n", 3);
  for (const bad of [0, -1, 1.5, "2", NaN, undefined]) {
    assert.throws(
      () => checkPositiveInt("op", "n", bad),
      /^RangeError: op: n must be a positive integer/,
    );
  }
  assert.equal(checkIntAtLeast("op", "k", 0, 0), 0);
  assert.throws(() => checkIntAtLeast("op", "k", 1, 2), /op: k must be an integer >= 2, got 1/);
  checkDropoutRate("op", 0);
  checkDropoutRate("op", 0.99);
  for (const bad of [1, -0.1, NaN, "0.1"]) {
    assert.throws(
      () => checkDropoutRate("op", bad),
      /op: dropout rate must be a number in \[0, 1\)/,
    );
  }
  checkKey("op", undefined);
  assert.throws(() => checkKey("op", 3), /^TypeError: op: opts.key must be a PRNG key tensor/);
  using x = T.zeros([2, 3]);
  checkLastDim("op", x, 3);
  assert.throws(() => checkLastDim("op", x, 4), /last axis 4/);
  checkParam("op", "w", x, [2, 3]);
  assert.throws(
    () => checkParam("op", "w", x, [3, 2]),
    /param w has shape \[2,3\], expected \[3,2\]/,
  );
  assert.throws(
    () => checkLayer("serial", { init() {} }, "layer 1"),
    /serial: layer 1 must be a layer/,
  );
});

Deno.test("optim validation: a learning rate is not a dropout rate", () => {
  assert.equal(checkLearningRate("sgd", 3), 3); // any finite number
  const s = (step: number) => 1 / (step + 1);
  assert.equal(checkLearningRate("sgd", s), s);
  assert.throws(
    () => checkLearningRate("sgd", Infinity),
    /sgd: learning rate must be a finite number/,
  );
  assert.throws(
    () => checkNumber("adam", "b1", 1, { max: 1, exclusiveMax: true }),
    /b1 .* \[-Infinity, 1\)/,
  );
});

Deno.test("nn errors quote a string given where a number belongs", () => {
  // deno-lint-ignore no-explicit-any
  const s = (v: string) => v as any;
  const quoted = (v: string) => new RegExp(`got ${JSON.stringify(v)} \\(a string\\)`);
  assert.throws(() => T.nn.layerNorm({ dim: 4, eps: s("1e-6") }), quoted("1e-6"));
  assert.throws(() => T.nn.rmsNorm({ dim: 4, eps: s("1e-6") }), quoted("1e-6"));
  assert.throws(() => T.nn.embedding({ vocab: 3, dim: 2, initStd: s("1") }), quoted("1"));
  assert.throws(
    () => T.nn.linear({ inFeatures: 2, outFeatures: 2, initStd: s("0.1") }),
    quoted("0.1"),
  );
  assert.throws(() => T.nn.chunked((_p, x) => x, { chunks: 2 }, s("1")), quoted("1"));
  assert.throws(() => T.nn.attention({ dModel: 8, heads: 2, dHead: s("4") }), quoted("4"));
  assert.throws(
    () =>
      T.nn.sparseAttention({
        dModel: 8,
        heads: 2,
        pattern: "strided",
        stride: 4,
        mode: "merged",
        impl: s("x"),
      }),
    quoted("x"),
  );
  const pos = T.nn.axialPositions({ shape: [2, 2], dims: [2, 2] });
  assert.throws(() => pos.apply({ tables: [] }, s("4")), quoted("4"));
  const lm = { vocab: 8, dModel: 8, dFF: 8, heads: 2, layers: 1, chunkLen: 4, axialShape: [2, 2] };
  assert.throws(() => T.nn.reformerLM({ ...lm, dropout: s("0.1") }), quoted("0.1"));
  assert.throws(() => T.nn.reformerLM({ ...lm, hashSeed: s("1") }), quoted("1"));
});
