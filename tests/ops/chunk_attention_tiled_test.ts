/**
 * The tiled WebGPU chunk-attention kernels (forced with `LONGSEQ_ATTN_KERNEL=tiled`, which a
 * software adapter would not pick by itself) against the CPU reference: forward outputs and
 * the gradients of q, k, v, on sizes that are not multiples of the tiles and every mask.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { valueAndGrad } from "../../mod.ts";
import { fusedChunkAttention } from "../../ops/chunk_attention.ts";
import type { GpuDevice } from "../../kernels/webgpu/device.ts";
import { attentionKernelKind, tileShape } from "../../kernels/webgpu/chunk_attention_tiled.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";

interface Case {
  dim: number;
  nq: number;
  kc: number;
  offsets: number[];
  chunks: number;
  groups: number;
  causal: boolean;
  selfMask: boolean;
  bias: boolean;
  pad: boolean;
}

/** Runs the op on `device` with the given kernel choice: `[o, lse, stat, dq, dk, dv]`. */
function run(c: Case, device: T.DeviceName, seed: number): T.Tensor[] {
  const rand = rng(seed);
  const rows = c.chunks * c.groups, nk = c.offsets.length * c.kc;
  const qd = randomArray(rand, rows * c.nq * c.dim, -2, 2);
  const kd = randomArray(rand, rows * c.kc * c.dim, -2, 2);
  const vd = randomArray(rand, rows * c.kc * c.dim, -2, 2);
  const qpos = new Int32Array(rows * c.nq), kcode = new Int32Array(rows * nk);
  for (let r = 0; r < rows; r++) {
    const ch = r % c.chunks;
    for (let i = 0; i < c.nq; i++) qpos[r * c.nq + i] = ch * c.kc + i;
    c.offsets.forEach((o, b) => {
      const src = (((ch + o) % c.chunks) + c.chunks) % c.chunks;
      for (let j = 0; j < c.kc; j++) {
        const pos = src * c.kc + j;
        kcode[r * nk + b * c.kc + j] = c.pad && rand() < 0.2 ? -pos - 1 : pos;
      }
    });
  }
  const biasD = randomArray(rand, rows * c.nq * nk);
  const w = randomArray(rand, rows * c.nq * c.dim);
  const wl = randomArray(rand, rows * c.nq);
  return T.scope(() => {
    const q = T.tensor(qd, { shape: [rows, c.nq, c.dim], device });
    const k = T.tensor(kd, { shape: [rows, c.kc, c.dim], device });
    const v = T.tensor(vd, { shape: [rows, c.kc, c.dim], device });
    const qp = T.tensor(qpos, { shape: [rows, c.nq], device });
    const kcd = T.tensor(kcode, { shape: [rows, nk], device });
    const bias = c.bias ? T.tensor(biasD, { shape: [rows, c.nq, nk], device }) : null;
    const wt = T.tensor(w, { shape: [rows, c.nq, c.dim], device });
    const wlt = T.tensor(wl, { shape: [rows, c.nq], device });
    const flags = { causal: c.causal, selfMask: c.selfMask, maskValue: -1e9, selfValue: -1e5 };
    const look = { offsets: c.offsets, chunks: c.chunks };
    const outs = fusedChunkAttention(q, k, v, qp, kcd, bias, flags, look);
    const f = (qq: T.Tensor, kk: T.Tensor, vv: T.Tensor) => {
      const [o, lse] = fusedChunkAttention(qq, kk, vv, qp, kcd, bias, flags, look);
      return T.add(T.sum(T.mul(o, wt)), T.sum(T.mul(lse, wlt)));
    };
    const [, g] = valueAndGrad(f, { argnums: [0, 1, 2] })(q, k, v);
    return [...outs, ...(g as T.Tensor[])];
  });
}

const NAMES = ["o", "lse", "stat", "dq", "dk", "dv"];

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
const base = { offsets: [-1, 0], chunks: 3, groups: 2 };

Deno.test("tiled chunk attention: every mask combination (dim 3, odd chunk lengths)", async (t) => {
  for (const device of gpu()) {
    for (let m = 0; m < 16; m++) {
      const c: Case = {
        ...base,
        dim: 3,
        nq: 19,
        kc: 21,
        causal: !!(m & 1),
        selfMask: !!(m & 2),
        bias: !!(m & 4),
        pad: !!(m & 8),
      };
      await t.step(
        `${device} causal ${c.causal} self ${c.selfMask} bias ${c.bias} pad ${c.pad}`,
        () => noLeaks(() => compare(c, device, 100 + m)),
      );
    }
  }
});

Deno.test("tiled chunk attention: head widths 1 and 64, tails, one chunk and three offsets", async (t) => {
  const cases: Case[] = [
    { ...base, dim: 1, nq: 5, kc: 7, causal: true, selfMask: true, bias: true, pad: true },
    { ...base, dim: 64, nq: 17, kc: 33, causal: true, selfMask: false, bias: false, pad: true },
    { ...base, dim: 64, nq: 3, kc: 5, causal: false, selfMask: true, bias: true, pad: false },
    {
      dim: 5,
      nq: 9,
      kc: 9,
      offsets: [-2, 0, 1],
      chunks: 3,
      groups: 1,
      causal: false,
      selfMask: true,
      bias: false,
      pad: true,
    },
    {
      dim: 8,
      nq: 40,
      kc: 70,
      offsets: [0],
      chunks: 1,
      groups: 2,
      causal: true,
      selfMask: false,
      bias: true,
      pad: false,
    },
  ];
  for (const device of gpu()) {
    for (const [i, c] of cases.entries()) {
      await t.step(`${device} ${JSON.stringify(c)}`, () => noLeaks(() => compare(c, device, i)));
    }
  }
});

Deno.test("attention kernel selection: software adapter -> rows, GPU -> tiled, env overrides", () => {
  const fake = (description: string, workgroupBytes = 16384) =>
    ({
      description,
      device: { limits: { maxComputeWorkgroupStorageSize: workgroupBytes } },
    }) as unknown as GpuDevice;
  const prev = Deno.env.get("LONGSEQ_ATTN_KERNEL");
  try {
    Deno.env.delete("LONGSEQ_ATTN_KERNEL");
    assert.equal(attentionKernelKind(fake("llvmpipe (LLVM 15.0.6, 256 bits) (software)")), "rows");
    assert.equal(attentionKernelKind(fake("NVIDIA H200")), "tiled");
    Deno.env.set("LONGSEQ_ATTN_KERNEL", "rows");
    assert.equal(attentionKernelKind(fake("NVIDIA H200")), "rows");
    Deno.env.set("LONGSEQ_ATTN_KERNEL", "tiled");
    assert.equal(attentionKernelKind(fake("llvmpipe (software)")), "tiled");
    Deno.env.set("LONGSEQ_ATTN_KERNEL", "bogus");
    assert.equal(attentionKernelKind(fake("NVIDIA H200")), "tiled");
  } finally {
    if (prev === undefined) Deno.env.delete("LONGSEQ_ATTN_KERNEL");
    else Deno.env.set("LONGSEQ_ATTN_KERNEL", prev);
  }
  // The largest tile within the workgroup memory, smaller tiles below it, none when too wide.
  const fwd = (d: number) => (a: number, b: number) => 4 * ((a + 2 * b) * (d + 1) + a * b);
  assert.deepEqual(tileShape(fake("gpu", 32768), fwd(64)), { a: 16, b: 32, l: 8 });
  assert.deepEqual(tileShape(fake("gpu", 16384), fwd(64)), { a: 16, b: 16, l: 8 });
  assert.equal(tileShape(fake("gpu", 16384), fwd(8192)), null);
});
