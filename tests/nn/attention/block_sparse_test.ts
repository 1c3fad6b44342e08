import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { grad, vjp } from "../../../autodiff/mod.ts";
import { blockSparsePrimitive } from "../../../ops/block_sparse.ts";
import { sum } from "../../../ops/reduce.ts";
import {
  blockSparseAttention,
  denseMaskedAttention,
  gatherSparseAttention,
} from "../../../nn/attention/sparse.ts";
import {
  blockLayout,
  patternMask,
  type PatternSpec,
} from "../../../nn/attention/sparse_patterns.ts";
import { checkGrad } from "../../autodiff/gradcheck.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

type Dev = T.DeviceName;
type Part = PatternSpec["part"];
const PARTS = ["a", "b", "union"] as const;
const KINDS = ["strided", "fixed"] as const;
const spec = (kind: "strided" | "fixed", part: Part, stride = 3, c = 1): PatternSpec => ({
  kind,
  stride,
  c: kind === "fixed" ? c : 0,
  part,
});
const close = { rtol: 1e-5, atol: 1e-6 };

/** Random `[b, h, n, d]` operands and, if asked, a padding mask with some padded keys. */
function operands(rand: () => number, shape: number[], device: Dev, masked: boolean) {
  const size = shape.reduce((a, b) => a * b, 1);
  const [q, k, v] = [0, 1, 2].map(() =>
    T.tensor(randomArray(rand, size, -1.5, 1.5), { shape, device })
  );
  const [b, , n] = shape;
  const bits = Uint8Array.from({ length: b * n }, () => (rand() < 0.75 ? 1 : 0));
  const keyMask = masked ? T.tensor(bits, { shape: [b, n], dtype: "bool", device }) : null;
  return { q, k, v, keyMask };
}

/** The dense boolean mask of a pattern and an optional key mask: `[b, 1, n, n]` or `[n, n]`. */
function denseMask(p: PatternSpec, n: number, keyMask: T.Tensor | null, device: Dev) {
  const m = patternMask(p, n, { device });
  return keyMask ? T.logicalAnd(m, T.reshape(keyMask, [keyMask.shape[0], 1, 1, n])) : m;
}

// [len, blockSize, stride, padded]: lengths that are and are not multiples of the block,
// blocks smaller and larger than the stride.
const CASES: [number, number, number, boolean][] = [
  [12, 4, 3, false],
  [13, 4, 3, true],
  [10, 3, 4, true],
  [9, 16, 3, false],
];

Deno.test("block-sparse attention equals dense masked attention and the gather composition", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        for (const [n, bs, stride, masked] of CASES) {
          for (const kind of KINDS) {
            for (const part of PARTS) {
              const outs = T.scope(() => {
                const { q, k, v, keyMask } = operands(rng(n + bs), [2, 2, n, 5], device, masked);
                const pattern = spec(kind, part, stride, 2);
                const o = { pattern, blockSize: bs, keyMask };
                return [
                  blockSparseAttention(q, k, v, o),
                  gatherSparseAttention(q, k, v, o),
                  denseMaskedAttention(q, k, v, denseMask(pattern, n, keyMask, device)),
                ];
              });
              await T.assertAllClose(outs[0], outs[2], close);
              await T.assertAllClose(outs[1], outs[2], close);
              outs.forEach((x) => x.dispose());
            }
          }
        }
      }));
  }
});

Deno.test("block-sparse gradients (fused VJP) equal dense masked attention's", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        for (const [n, bs, stride, masked] of CASES.slice(1, 3)) {
          for (const kind of KINDS) {
            for (const part of PARTS) {
              const rand = rng(3 * n + bs);
              const grads = T.scope(() => {
                const { q, k, v, keyMask } = operands(rand, [1, 2, n, 4], device, masked);
                const ct = T.tensor(randomArray(rand, 2 * n * 4), { shape: [1, 2, n, 4], device });
                const pattern = spec(kind, part, stride, 2);
                const mask = denseMask(pattern, n, keyMask, device);
                const fns = [
                  (a: T.Tensor, b: T.Tensor, c: T.Tensor) =>
                    blockSparseAttention(a, b, c, { pattern, blockSize: bs, keyMask }),
                  (a: T.Tensor, b: T.Tensor, c: T.Tensor) => denseMaskedAttention(a, b, c, mask),
                ];
                return fns.map((f) => vjp(f, q, k, v)[1](ct) as T.Tensor[]);
              });
              for (let i = 0; i < 3; i++) await T.assertAllClose(grads[0][i], grads[1][i], close);
              grads.flat().forEach((x) => x.dispose());
            }
          }
        }
      }));
  }
});

Deno.test("the kernels read only the tiles the layout lists", async (t) => {
  // Drop every off-diagonal tile from a union layout: the result must equal dense attention
  // with the pattern restricted to the diagonal blocks, forward and backward.
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const [n, bs] = [11, 4];
        const pattern = spec("strided", "union", 3);
        const full = blockLayout(pattern, n, bs);
        const nb = full.nBlocks;
        const diag = Int32Array.from({ length: nb }, (_, i) => i);
        const ptr = Int32Array.from({ length: nb + 1 }, (_, i) => i);
        const layout = { ...full, rowPtr: ptr, cols: diag, colPtr: ptr, rows: diag, tiles: nb };
        const rand = rng(17);
        const res = T.scope(() => {
          const { q, k, v } = operands(rand, [1, 1, n, 3], device, false);
          const ct = T.tensor(randomArray(rand, n * 3), { shape: [1, 1, n, 3], device });
          const keep = new Uint8Array(n * n);
          for (let i = 0; i < n; i++) {
            for (let j = 0; j <= i; j++) {
              const same = Math.floor(i / bs) === Math.floor(j / bs);
              keep[i * n + j] = same && (i - j < 3 || (i - j) % 3 === 0) ? 1 : 0;
            }
          }
          const mask = T.tensor(keep, { shape: [n, n], dtype: "bool", device });
          const sparse = (a: T.Tensor, b: T.Tensor, c: T.Tensor) =>
            blockSparsePrimitive(a, b, c, null, { pattern, layout })[0];
          const dense = (a: T.Tensor, b: T.Tensor, c: T.Tensor) =>
            denseMaskedAttention(a, b, c, mask);
          return [sparse, dense].map((f) => {
            const [y, pull] = vjp(f, q, k, v);
            return [y, ...(pull(ct) as T.Tensor[])];
          });
        });
        for (let i = 0; i < 4; i++) await T.assertAllClose(res[0][i], res[1][i], close);
        res.flat().forEach((x) => x.dispose());
      }));
  }
});

Deno.test("block-sparse primitive: finite differences for o and lse", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const rand = rng(23);
      for (
        const [kind, part, masked] of [["fixed", "b", true], ["strided", "union", false]] as const
      ) {
        const pattern = spec(kind, part, 3, 1);
        const layout = blockLayout(pattern, 7, 2);
        for (const out of [0, 1]) {
          await checkGrad(
            {
              name: `blockSparse ${kind} ${part} output ${out}`,
              inputs: [{ shape: [1, 2, 7, 3] }, { shape: [1, 2, 7, 3] }, { shape: [1, 2, 7, 3] }],
              fn: ([q, k, v], dev) => {
                const keyMask = masked
                  ? T.tensor([[true, false, true, true, false, true, true]], {
                    dtype: "bool",
                    device: dev,
                  })
                  : null;
                const [o, lse] = blockSparsePrimitive(q, k, v, keyMask, { pattern, layout });
                // Rows without keys have lse = -inf (no gradient); compare finite rows only.
                return out === 0 ? o : T.where(T.greater(lse, -1e30), lse, 0);
              },
            },
            device,
            rand,
          );
        }
      }
    });
  }
});

/** Layer output with the three implementations, for one config. */

Deno.test("block-sparse and dense op errors, and second-order gradients are refused", async () => {
  await noLeaks(() => {
    const pattern = spec("fixed", "a", 2, 1);
    using q = T.ones([1, 2, 6, 3]);
    using q3 = T.ones([2, 6, 3]);
    using k5 = T.ones([1, 2, 5, 3]);
    using m = T.ones([1, 6]);
    using mb = T.ones([1, 5], { dtype: "bool" });
    const o = { pattern, blockSize: 2 };
    const bsa = blockSparseAttention, gsa = gatherSparseAttention;
    assert.throws(() => bsa(q, k5, q, o), /blockSparseAttention: q, k and v must share one shape/);
    assert.throws(() => gsa(q3, q3, q3, o), /gatherSparseAttention: q, k and v must share/);
    assert.throws(() => bsa(q, q, q, { ...o, keyMask: m }), /key mask must be a bool Tensor/);
    assert.throws(() => bsa(q, q, q, { ...o, keyMask: mb }), /must be \[batch, n\] = \[1,6\]/);
    assert.throws(() => gsa(q, q, q, { ...o, keyMask: mb }), /keyMask must be \[batch, len\]/);
    assert.throws(() => bsa(q, q, q, { ...o, blockSize: 0 }), /blockSize must be an integer/);
    assert.throws(
      () => bsa(q, q, q, { ...o, pattern: { ...pattern, c: 9 } }),
      /at most the stride/,
    );
    const layout = blockLayout(pattern, 5, 2);
    assert.throws(
      () => blockSparsePrimitive(q, q, q, null, { pattern, layout }),
      /layout was made for length 5 but q has length 6/,
    );
    using mask = T.ones([6, 6], { dtype: "bool" });
    using m5 = T.ones([5, 5], { dtype: "bool" });
    assert.throws(() => denseMaskedAttention(q, q, q, m), /mask must be a bool Tensor/);
    assert.throws(() => denseMaskedAttention(q, q, q, m5), /denseMaskedAttention: shapes/);
    assert.throws(() => denseMaskedAttention(q, k5, q, mask), /k \[1,2,5,3\] and v/);
    const f = (x: T.Tensor) => sum(blockSparseAttention(x, x, x, o));
    assert.throws(
      () => T.scope(() => grad((x: T.Tensor) => sum(grad(f)(x)))(q)),
      /second-order gradients are not supported/,
    );
    if (T.devices().includes("webgpu")) {
      using g = T.ones([1, 2, 6, 3], { device: "webgpu" });
      using c = T.ones([1, 2, 6, 3], { device: "cpu-reference" });
      assert.throws(() => bsa(g, c, g, o), /different devices/);
    }
  });
});
