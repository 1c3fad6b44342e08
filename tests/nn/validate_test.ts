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
