/**
 * Row kernels on tensors larger than one WebGPU storage binding (the limit lowered to a few
 * KiB): reductions, softmax, layer norm, gathers and scatters by index, matmul and the fused
 * chunk attention split their rows into pieces and agree with the unsplit run (bit for bit,
 * except sums split along their summed axis) and with the CPU reference.
 */
import * as T from "../../mod.ts";
import { valueAndGrad } from "../../mod.ts";
import { fusedChunkAttention } from "../../ops/chunk_attention.ts";
import { noLeaks, randomArray, rng } from "../util.ts";
import { gpu, lowered, refusesBinding, splitMatches } from "./large_buffer_util.ts";

const KiB = 1024;
const on = (device: T.DeviceName, seed: number, shape: number[]) =>
  T.tensor(randomArray(rng(seed), shape.reduce((a, b) => a * b, 1), -2, 2), { shape, device });

Deno.test({
  name: "webgpu: reductions and softmax split their rows past the binding limit",
  ignore: !gpu,
  fn: async (t) => {
    const d = gpu!;
    await t.step(
      "sum, max and argmax over the last axis",
      () =>
        noLeaks(() =>
          splitMatches(d, 8 * KiB, (dev) => {
            const x = on(dev, 1, [300, 24]);
            return [T.sum(x, -1), T.max(x, -1), T.cast(T.argmax(x, -1), "f32")];
          }, 1e-6)
        ),
    );
    await t.step(
      "sum over a middle axis (columns)",
      () =>
        noLeaks(() => splitMatches(d, 16 * KiB, (dev) => T.sum(on(dev, 2, [24, 40, 16]), 1), 1e-6)),
    );
    await t.step(
      "sum and max over a long leading axis (slabs)",
      () =>
        noLeaks(() =>
          splitMatches(
            d,
            4 * KiB,
            (dev) => {
              const x = on(dev, 3, [700, 12]);
              return [T.sum(x, 0), T.min(x, 0)];
            },
            1e-5,
            true,
          )
        ),
    );
    await t.step(
      "softmax and log-softmax over rows",
      () =>
        noLeaks(() =>
          splitMatches(d, 4 * KiB, (dev) => {
            const x = on(dev, 4, [150, 40]);
            return [T.softmax(x), T.logSoftmax(x)];
          }, 1e-5)
        ),
    );
  },
});

Deno.test({
  name: "webgpu: layer norm and its gradients split their rows past the binding limit",
  ignore: !gpu,
  fn: () =>
    noLeaks(() =>
      splitMatches(d(), 16 * KiB, (dev) => {
        const x = on(dev, 1, [500, 32]), scale = on(dev, 2, [32]), bias = on(dev, 3, [32]);
        const w = on(dev, 4, [500, 32]);
        const f = (x: T.Tensor, scale: T.Tensor, bias: T.Tensor) =>
          T.sum(T.mul(T.fusedLayerNorm(x, { scale, bias }), w));
        // The loss itself, a sum over every element, is split along its summed axis.
        const [, grads] = valueAndGrad(f, { argnums: [0, 1, 2] })(x, scale, bias);
        return [T.fusedLayerNorm(x, { scale, bias }), ...(grads as T.Tensor[])];
      }, 1e-4)
    ),
});

const d = () => gpu!;

Deno.test({
  name: "webgpu: gathers and scatters by index split their rows past the binding limit",
  ignore: !gpu,
  fn: () =>
    noLeaks(() =>
      splitMatches(d(), 8 * KiB, (dev) => {
        const keys = on(dev, 1, [24, 40]);
        const idx = T.argsort(keys);
        const x = on(dev, 2, [24, 40, 4]);
        const sorted = T.gatherByIndex(x, idx);
        return [sorted, T.scatterByIndex(T.mul(sorted, 2), idx)];
      })
    ),
});

Deno.test({
  name: "webgpu: matmul splits over the batch, the rows or the summed axis",
  ignore: !gpu,
  fn: async (t) => {
    await t.step(
      "batched",
      () =>
        noLeaks(() =>
          splitMatches(
            d(),
            4 * KiB,
            (dev) => T.matmul(on(dev, 1, [12, 20, 8]), on(dev, 2, [12, 8, 16])),
            1e-5,
          )
        ),
    );
    await t.step(
      "rows of A against a shared B",
      () =>
        noLeaks(() =>
          splitMatches(
            d(),
            4 * KiB,
            (dev) => T.matmul(on(dev, 3, [300, 16]), on(dev, 4, [16, 8])),
            1e-5,
          )
        ),
    );
    await t.step("A transposed (a weight gradient), split over k", () =>
      noLeaks(() =>
        splitMatches(
          d(),
          4 * KiB,
          (dev) => T.matmul(on(dev, 5, [400, 8]), on(dev, 6, [400, 12]), { transposeA: true }),
          1e-5,
          true,
        )
      ));
    await t.step(
      "an output too large with a long summed axis is refused",
      () =>
        noLeaks(() =>
          lowered(d(), 4 * KiB, () =>
            T.scope(() => {
              const a = on("webgpu", 7, [400, 40]);
              refusesBinding(d(), "matmul", () => T.matmul(a, a, { transposeA: true }));
            }))
        ),
    );
  },
});

/** Fused chunk attention outputs and gradients in `q`, `k`, `v` on `dev`, with a bias or not. */
const attention = (dev: T.DeviceName, withBias = false): T.Tensor[] => {
  // 4 heads of 4 chunks of 8 queries, each chunk also reading the previous one.
  const heads = 4, nc = 4, chunk = 8, dim = 16, rows = heads * nc;
  const q = on(dev, 1, [rows, chunk, dim]);
  const k = on(dev, 2, [rows, chunk, dim]);
  const v = on(dev, 3, [rows, chunk, dim]);
  const w = on(dev, 4, [rows, chunk, dim]);
  const p = T.reshape(T.arange(0, nc * chunk, 1, { dtype: "i32", device: dev }), [
    1,
    nc,
    chunk,
  ]);
  const pos = T.reshape(T.broadcastTo(p, [heads, nc, chunk]), [rows, chunk]);
  const prev = T.roll(T.reshape(pos, [heads, nc, chunk]), 1, 1);
  const kcode = T.reshape(T.concat([prev, T.reshape(pos, [heads, nc, chunk])], 2), [
    rows,
    2 * chunk,
  ]);
  const bias = withBias ? on(dev, 5, [rows, chunk, 2 * chunk]) : null;
  const flags = { causal: true, selfMask: false, maskValue: -1e9, selfValue: -1e5 };
  const look = { offsets: [-1, 0], chunks: nc };
  const f = (qq: T.Tensor, kk: T.Tensor, vv: T.Tensor) =>
    T.sum(T.mul(fusedChunkAttention(qq, kk, vv, pos, kcode, bias, flags, look)[0], w));
  const [, grads] = valueAndGrad(f, { argnums: [0, 1, 2] })(q, k, v);
  const outs = fusedChunkAttention(q, k, v, pos, kcode, bias, flags, look);
  return [...outs, ...(grads as T.Tensor[])];
};

Deno.test({
  name: "webgpu: fused chunk attention splits over groups of rows past the binding limit",
  ignore: !gpu,
  fn: async (t) => {
    await t.step(
      "per-row kernels",
      () => noLeaks(() => splitMatches(d(), 4 * KiB, attention, 1e-4)),
    );
    await t.step(
      "per-row kernels with a bias",
      () => noLeaks(() => splitMatches(d(), 4 * KiB, (dev) => attention(dev, true), 1e-4)),
    );
    // Hardware adapters run the tiled kernels; the variable picks them on any adapter.
    await t.step("tiled kernels", async () => {
      const before = Deno.env.get("LONGSEQ_ATTN_KERNEL");
      Deno.env.set("LONGSEQ_ATTN_KERNEL", "tiled");
      try {
        await noLeaks(() => splitMatches(d(), 4 * KiB, attention, 1e-4));
      } finally {
        if (before === undefined) Deno.env.delete("LONGSEQ_ATTN_KERNEL");
        else Deno.env.set("LONGSEQ_ATTN_KERNEL", before);
      }
    });
  },
});
