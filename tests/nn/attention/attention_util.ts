/** Shared helpers of the attention tests: random params, causality by gradients, NaN checks. */
import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { vjp } from "../../../autodiff/mod.ts";
import type { AttentionParams } from "../../../nn/attention/core.ts";
import { randomArray } from "../../util.ts";
import type { RefParams } from "./attention_ref.ts";

/** Random weights (uniform, scaled so logits are O(1)) as JS arrays and as tensors. */
export function makeParams(
  rand: () => number,
  dModel: number,
  heads: number,
  dHead: number,
  shared: boolean,
  device: T.DeviceName,
  scale = 0.6,
): { ref: RefParams; params: AttentionParams } {
  const inner = heads * dHead;
  const names = shared ? ["wqk", "wv", "wo"] : ["wq", "wk", "wv", "wo"];
  const ref: Record<string, Float32Array> = {};
  const params: Record<string, T.Tensor> = {};
  for (const name of names) {
    const shape = name === "wo" ? [inner, dModel] : [dModel, inner];
    ref[name] = randomArray(rand, shape[0] * shape[1], -scale, scale);
    params[name] = T.tensor(ref[name], { shape, device });
  }
  return { ref: ref as unknown as RefParams, params: params as unknown as AttentionParams };
}

/** Disposes every tensor of a params object. */
export function disposeParams(p: AttentionParams): void {
  for (const t of Object.values(p)) (t as T.Tensor | undefined)?.dispose();
}

/**
 * Asserts `d out_i / d x_j == 0` exactly for every `j > i` (and not all zero for `j <= i`), by
 * one pullback per output position `i` with a random cotangent on that position only.
 */
export async function assertCausal(
  f: (x: T.Tensor) => T.Tensor,
  xData: Float32Array,
  shape: [number, number, number],
  device: T.DeviceName,
  rand: () => number,
): Promise<void> {
  const [b, n, d] = shape;
  using x = T.tensor(xData, { shape, device });
  for (let i = 0; i < n; i++) {
    const ctData = new Float32Array(b * n * d);
    for (let bi = 0; bi < b; bi++) {
      for (let e = 0; e < d; e++) ctData[(bi * n + i) * d + e] = 2 * rand() - 1;
    }
    const dx = T.scope(() => {
      const [, pull] = vjp(f, x);
      const ct = T.tensor(ctData, { shape, device });
      return pull(ct)[0] as T.Tensor;
    });
    const g = await dx.data();
    dx.dispose();
    let earlier = 0;
    for (let bi = 0; bi < b; bi++) {
      for (let j = 0; j < n; j++) {
        for (let e = 0; e < d; e++) {
          const v = g[(bi * n + j) * d + e];
          if (j > i && v !== 0) {
            assert.fail(`output ${i} depends on later input ${j} (batch ${bi}): d = ${v}`);
          }
          if (j <= i) earlier += Math.abs(v);
        }
      }
    }
    assert.ok(earlier > 0, `output ${i} should depend on some input j <= ${i}`);
  }
}

/** Asserts every value is finite. */
export async function assertFinite(t: T.Tensor, what: string): Promise<void> {
  const d = await t.data();
  const bad = Array.from(d).findIndex((v) => !Number.isFinite(v));
  assert.equal(bad, -1, `${what}: non-finite value ${d[bad]} at ${bad}`);
}
