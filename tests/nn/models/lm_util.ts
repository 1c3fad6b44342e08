/** Shared helpers of the language-model tests: gradient trees, causality, finiteness. */
import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { vjp } from "../../../autodiff/mod.ts";
import { randomArray } from "../../util.ts";

/** Token ids as an i32 tensor `[batch, len]`, uniform in `[0, vocab)`. */
export function randomTokens(
  rand: () => number,
  [b, n]: [number, number],
  vocab: number,
  device: T.DeviceName,
): T.Tensor {
  const ids = Int32Array.from({ length: b * n }, () => Math.floor(rand() * vocab));
  return T.tensor(ids, { shape: [b, n], dtype: "i32", device });
}

/** A bool padding mask `[batch, len]`: random, first position real, last row fully padded. */
export function paddingMask(
  rand: () => number,
  [b, n]: [number, number],
  device: T.DeviceName,
  fullyPaddedLast = true,
): T.Tensor {
  const rows = Array.from(
    { length: b },
    (_, i) =>
      Array.from(
        { length: n },
        (_, j) => (fullyPaddedLast && i === b - 1 ? false : j === 0 || rand() < 0.7),
      ),
  );
  return T.tensor(rows, { device });
}

/**
 * Asserts that two gradient trees agree leaf by leaf: `max |a - b| <= rel * max |b| + abs`.
 */
export async function assertTreesClose(
  a: unknown,
  b: unknown,
  rel: number,
  abs = 1e-7,
): Promise<void> {
  const la = T.treeTensors(a), lb = T.treeTensors(b);
  assert.equal(la.length, lb.length, "trees have different numbers of leaves");
  for (let i = 0; i < la.length; i++) {
    assert.deepEqual(la[i].shape, lb[i].shape, `leaf ${i}: shapes differ`);
    const u = await la[i].data(), v = await lb[i].data();
    let diff = 0, scale = 0;
    for (let j = 0; j < u.length; j++) {
      diff = Math.max(diff, Math.abs(u[j] - v[j]));
      scale = Math.max(scale, Math.abs(v[j]));
    }
    assert.ok(Number.isFinite(diff), `leaf ${i}: non-finite values`);
    assert.ok(
      diff <= rel * scale + abs,
      `leaf ${i} [${la[i].shape}]: max difference ${diff} > ${rel} * ${scale}`,
    );
  }
}

/** Asserts every value of every tensor in `tree` is finite. */
export async function assertTreeFinite(tree: unknown, what: string): Promise<void> {
  for (const [i, t] of T.treeTensors(tree).entries()) {
    const d = await t.data();
    const bad = Array.from(d).findIndex((v) => !Number.isFinite(v));
    assert.equal(bad, -1, `${what} (leaf ${i}): non-finite value ${d[bad]} at ${bad}`);
  }
}

/**
 * Causality by gradients for a whole model: with `f: x [b, n, d] -> logits [b, n, vocab]`,
 * asserts `d logits_i / d x_j == 0` exactly for `j > i` and not all zero for `j <= i`.
 */
export async function assertModelCausal(
  f: (x: T.Tensor) => T.Tensor,
  shape: [number, number, number],
  vocab: number,
  device: T.DeviceName,
  rand: () => number,
): Promise<void> {
  const [b, n, d] = shape;
  using x = T.tensor(randomArray(rand, b * n * d), { shape, device });
  for (let i = 0; i < n; i++) {
    const ct = new Float32Array(b * n * vocab);
    for (let bi = 0; bi < b; bi++) {
      for (let v = 0; v < vocab; v++) ct[(bi * n + i) * vocab + v] = 2 * rand() - 1;
    }
    const dx = T.scope(() => {
      const [, pull] = vjp(f, x);
      return pull(T.tensor(ct, { shape: [b, n, vocab], device }))[0] as T.Tensor;
    });
    const g = await dx.data();
    dx.dispose();
    let earlier = 0;
    for (let bi = 0; bi < b; bi++) {
      for (let j = 0; j < n; j++) {
        for (let e = 0; e < d; e++) {
          const v = g[(bi * n + j) * d + e];
          if (j > i && v !== 0) {
            assert.fail(`logits ${i} depend on later input ${j} (batch ${bi}): d = ${v}`);
          }
          if (j <= i) earlier += Math.abs(v);
        }
      }
    }
    assert.ok(earlier > 0, `logits ${i} should depend on some input j <= ${i}`);
  }
}

/** Disposes every tensor in a tree (the library's). */
export const disposeTree = T.disposeTree;

/**
 * One Adam step on a fixed batch: returns the losses before and after (disposes `params`).
 */
export async function adamStepLosses<P>(
  params: P,
  loss: (p: P) => T.Tensor,
  lr = 1e-2,
): Promise<[number, number]> {
  const opt = T.optim.adam(lr);
  const [before, next] = T.scope(() => {
    const state = opt.init(params);
    const [l, g] = T.valueAndGrad(loss)(params);
    const [updates] = opt.update(g, state, params);
    return [l, T.optim.applyUpdates(params, updates)] as const;
  });
  const after = T.scope(() => loss(next));
  const out: [number, number] = [(await before.data())[0], (await after.data())[0]];
  before.dispose();
  after.dispose();
  disposeTree(next);
  disposeTree(params);
  return out;
}

/** `layer.init` with a fresh key from `seed` on `device` (the key is disposed). */
export function initParams<P>(
  layer: { init(key: T.Tensor): P },
  seed: number,
  device: T.DeviceName,
): P {
  using key = T.random.key(seed, { device });
  return layer.init(key);
}
