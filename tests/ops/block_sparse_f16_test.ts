/**
 * Mixed precision through the block-sparse attention primitive on every device (and both
 * WebGPU kernels): f16 q, k, v against the same f16-valued computation in f32, for both
 * patterns and their parts, with and without a key mask, odd lengths and head widths. On
 * WebGPU the kernels read f16 themselves: no f32 copy of q, k, v is made.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { DeviceName, Tensor } from "../../mod.ts";
import { vjp } from "../../autodiff/mod.ts";
import { blockSparsePrimitive, type PatternSpec } from "../../ops/block_sparse.ts";
import { blockLayout } from "../../nn/attention/sparse_patterns.ts";
import { assertAllClose } from "../../ops/testing.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";
import { assertNear, assertRounded, GRAD_RTOL, halfValues, withKernel } from "./half_compare.ts";

// The wasm backend reads f32 copies of f16 operands (no readsF16): the widened path.
await startWasm();

interface Case {
  kind: "strided" | "fixed";
  part: PatternSpec["part"];
  n: number;
  d: number;
  blockSize: number;
  stride: number;
  masked: boolean;
}

const patternOf = (c: Case): PatternSpec => ({
  kind: c.kind,
  stride: c.stride,
  c: c.kind === "fixed" ? Math.max(1, c.stride >> 2) : 0,
  part: c.part,
});

/** `[o, lse, dq, dk, dv]` with q, k, v of `dtype` (`lse` -1 on rows without keys). */
function run(c: Case, device: DeviceName, dtype: "f16" | "f32", seed: number): Tensor[] {
  const rand = rng(seed);
  const [b, hd] = [2, 2];
  const shape = [b, hd, c.n, c.d];
  const size = b * hd * c.n * c.d;
  const data = [0, 1, 2, 3].map(() => halfValues(rand, size, -1.5, 1.5));
  const bits = Uint8Array.from({ length: b * c.n }, () => (rand() < 0.75 ? 1 : 0));
  const wl = randomArray(rand, b * hd * c.n);
  const pattern = patternOf(c);
  const layout = blockLayout(pattern, c.n, c.blockSize);
  return T.scope(() => {
    const [q, k, v] = data.slice(0, 3).map((x) => T.tensor(x, { shape, device, dtype }));
    const w = T.tensor(data[3], { shape, device });
    const mask = c.masked ? T.tensor(bits, { shape: [b, c.n], dtype: "bool", device }) : null;
    const wlt = T.tensor(wl, { shape: [b, hd, c.n], device });
    const f = (x: Tensor, y: Tensor, z: Tensor) => {
      const [o, lse] = blockSparsePrimitive(x, y, z, mask, { pattern, layout });
      const finite = T.where(T.greater(lse, -1e30), lse, 0);
      return T.add(T.sum(T.mul(T.cast(o, "f32"), w)), T.sum(T.mul(finite, wlt)));
    };
    const [o, lse] = blockSparsePrimitive(q, k, v, mask, { pattern, layout });
    const [, pull] = vjp(f, q, k, v);
    return [
      o,
      T.where(T.greater(lse, -1e30), lse, -1),
      ...(pull(T.ones([], { device })) as Tensor[]),
    ];
  });
}

async function compare(c: Case, device: DeviceName, seed: number): Promise<void> {
  const want = run(c, device, "f32", seed);
  const got = run(c, device, "f16", seed);
  const what = JSON.stringify(c);
  try {
    for (const i of [0, 2, 3, 4]) assert.equal(got[i].dtype, "f16");
    await assertRounded(got[0], want[0], 2 ** -24, `o of ${what}`);
    await assertAllClose(got[1], want[1], { rtol: 1e-5, atol: 1e-5, message: `lse of ${what}` });
    for (const i of [2, 3, 4]) {
      await assertNear(got[i], want[i], GRAD_RTOL, `${["dq", "dk", "dv"][i - 2]} of ${what}`);
    }
  } finally {
    for (const t of [...want, ...got]) t.dispose();
  }
}

const kinds = (device: DeviceName) => device === "webgpu" ? ["rows", "tiled"] as const : [null];

const CASES: Case[] = [
  { kind: "strided", part: "union", n: 13, d: 3, blockSize: 4, stride: 4, masked: false },
  { kind: "strided", part: "a", n: 37, d: 8, blockSize: 8, stride: 5, masked: true },
  { kind: "strided", part: "b", n: 20, d: 1, blockSize: 4, stride: 3, masked: true },
  { kind: "fixed", part: "union", n: 37, d: 64, blockSize: 16, stride: 8, masked: true },
  { kind: "fixed", part: "a", n: 21, d: 3, blockSize: 8, stride: 8, masked: false },
  { kind: "fixed", part: "b", n: 40, d: 8, blockSize: 40, stride: 8, masked: false },
];

Deno.test("f16 block-sparse attention: both patterns and parts against f32", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    for (const kind of kinds(device)) {
      for (const [i, c] of CASES.entries()) {
        const go = () => compare(c, device, 300 + i);
        await t.step(
          `${device}${kind ? ` ${kind}` : ""} ${JSON.stringify(c)}`,
          () => noLeaks(() => kind ? withKernel(kind, go) : go()),
        );
      }
    }
  }
});

Deno.test("f16 block-sparse attention on webgpu: no f32 copies of q, k, v", async (t) => {
  if (!testDevices().includes("webgpu")) return;
  const device = "webgpu";
  const [b, hd, n, d] = [2, 2, 64, 32];
  const pattern: PatternSpec = { kind: "strided", stride: 8, c: 0, part: "union" };
  const layout = blockLayout(pattern, n, 16);
  const size = b * hd * n * d;
  for (const kind of ["rows", "tiled"] as const) {
    await t.step(kind, () =>
      noLeaks(() =>
        withKernel(kind, async () => {
          const rand = rng(9);
          using q = T.tensor(halfValues(rand, size), {
            shape: [b, hd, n, d],
            device,
            dtype: "f16",
          });
          T.resetPeakMemory(device);
          const before = T.memory(device).liveBytes;
          const [o, lse] = blockSparsePrimitive(q, q, q, null, { pattern, layout });
          const added = T.memory(device).peakBytes - before;
          try {
            // o in f16, lse in f32 and the uploaded tile list (u32); an f32 copy of q alone
            // would add 4 bytes an element.
            const outBytes = 2 * size + 4 * b * hd * n;
            const listBytes = 4 * (layout.rowPtr.length + Math.max(1, layout.cols.length));
            assert.equal(o.dtype, "f16");
            assert.ok(added <= outBytes + listBytes, `forward added ${added}, outputs ${outBytes}`);
            await o.data();
          } finally {
            o.dispose();
            lse.dispose();
          }
        })
      ));
  }
});
