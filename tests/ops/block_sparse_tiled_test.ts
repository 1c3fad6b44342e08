/**
 * The tiled WebGPU block-sparse kernels (forced with `LONGSEQ_ATTN_KERNEL=tiled`) against the
 * CPU reference: `o`, `lse` and the gradients of q, k, v for both patterns and their parts,
 * with and without a key mask, lengths that are not multiples of the block, blocks larger than
 * the tiled kernels' 32 rows, and head widths 1, 3 and 64.
 */
import * as T from "../../mod.ts";
import { vjp } from "../../autodiff/mod.ts";
import { blockSparsePrimitive, type PatternSpec } from "../../ops/block_sparse.ts";
import { blockLayout } from "../../nn/attention/sparse_patterns.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";

interface Case {
  kind: "strided" | "fixed";
  part: PatternSpec["part"];
  n: number;
  d: number;
  blockSize: number;
  stride: number;
  masked: boolean;
}

function run(c: Case, device: T.DeviceName, seed: number): T.Tensor[] {
  const rand = rng(seed);
  const [b, h] = [2, 2];
  const shape = [b, h, c.n, c.d];
  const size = b * h * c.n * c.d;
  const data = [0, 1, 2, 3].map(() => randomArray(rand, size, -1.5, 1.5));
  const bits = Uint8Array.from({ length: b * c.n }, () => (rand() < 0.75 ? 1 : 0));
  const wl = randomArray(rand, b * h * c.n);
  const pattern: PatternSpec = {
    kind: c.kind,
    stride: c.stride,
    c: c.kind === "fixed" ? Math.max(1, c.stride >> 2) : 0,
    part: c.part,
  };
  const layout = blockLayout(pattern, c.n, c.blockSize);
  return T.scope(() => {
    const [q, k, v, w] = data.map((x) => T.tensor(x, { shape, device }));
    const mask = c.masked ? T.tensor(bits, { shape: [b, c.n], dtype: "bool", device }) : null;
    const wlt = T.tensor(wl, { shape: [b, h, c.n], device });
    const f = (a: T.Tensor, bb: T.Tensor, cc: T.Tensor) => {
      const [o, lse] = blockSparsePrimitive(a, bb, cc, mask, { pattern, layout });
      // Rows without keys have lse = -inf: compare (and differentiate) finite rows only.
      const finite = T.where(T.greater(lse, -1e30), lse, 0);
      return T.add(T.sum(T.mul(o, w)), T.sum(T.mul(finite, wlt)));
    };
    const [o, lse] = blockSparsePrimitive(q, k, v, mask, { pattern, layout });
    const [, pull] = vjp(f, q, k, v);
    return [
      o,
      T.where(T.greater(lse, -1e30), lse, -1),
      ...(pull(T.ones([], { device })) as T.Tensor[]),
    ];
  });
}

const NAMES = ["o", "lse", "dq", "dk", "dv"];

async function compare(c: Case, device: T.DeviceName, seed: number): Promise<void> {
  const want = run(c, "cpu-reference", seed);
  const prev = Deno.env.get("LONGSEQ_ATTN_KERNEL");
  Deno.env.set("LONGSEQ_ATTN_KERNEL", "tiled");
  let got: T.Tensor[];
  try {
    got = run(c, device, seed);
  } finally {
    if (prev === undefined) Deno.env.delete("LONGSEQ_ATTN_KERNEL");
    else Deno.env.set("LONGSEQ_ATTN_KERNEL", prev);
  }
  try {
    for (let i = 0; i < want.length; i++) {
      await T.assertAllClose(got[i], want[i], {
        rtol: 2e-4,
        atol: 2e-4,
        message: `${NAMES[i]} of ${JSON.stringify(c)}`,
      });
    }
  } finally {
    for (const x of [...want, ...got]) x.dispose();
  }
}

const gpu = () => testDevices().filter((d) => d !== "cpu-reference");

Deno.test("tiled block-sparse attention: patterns, parts, masks, odd lengths", async (t) => {
  const cases: Case[] = [];
  for (const kind of ["strided", "fixed"] as const) {
    for (const part of ["a", "b", "union"] as const) {
      for (const masked of [false, true]) {
        cases.push({ kind, part, n: 45, d: 3, blockSize: 4, stride: 8, masked });
      }
    }
  }
  cases.push(
    { kind: "fixed", part: "union", n: 37, d: 1, blockSize: 8, stride: 8, masked: true },
    { kind: "strided", part: "union", n: 70, d: 64, blockSize: 16, stride: 16, masked: true },
    { kind: "fixed", part: "union", n: 100, d: 5, blockSize: 48, stride: 48, masked: false },
  );
  for (const device of gpu()) {
    for (const [i, c] of cases.entries()) {
      await t.step(`${device} ${JSON.stringify(c)}`, () => noLeaks(() => compare(c, device, i)));
    }
  }
});
