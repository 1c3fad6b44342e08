/**
 * Mixed precision through the fused chunk attention and layer norm on every device: f16
 * operands against the same (f16-valued) computation in f32, on both WebGPU attention kernels
 * (per-row and tiled), for every mask, look-around offsets, odd head widths and chunk lengths.
 * On WebGPU the kernels read f16 themselves: outputs and gradients are f16 tensors and the
 * forward pass makes no f32 copy of its operands.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { DeviceName, Tensor } from "../../mod.ts";
import { fusedChunkAttention } from "../../ops/chunk_attention.ts";
import { fusedLayerNorm } from "../../ops/layer_norm.ts";
import { assertAllClose } from "../../ops/testing.ts";
import { noLeaks, randomArray, rng, startWasm, testDevices } from "../util.ts";
import { assertNear, GRAD_RTOL, h, halfValues, RTOL, withKernel } from "./half_compare.ts";

// The wasm backend reads f32 copies of f16 operands (no readsF16): the widened path.
await startWasm();

interface AttnCase {
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

/** Inputs of an attention case, the float ones already f16-valued. */
function attnInputs(c: AttnCase, seed: number) {
  const rand = rng(seed);
  const rows = c.chunks * c.groups, nk = c.offsets.length * c.kc;
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
  return {
    rows,
    nk,
    q: halfValues(rand, rows * c.nq * c.dim, -2, 2),
    k: halfValues(rand, rows * c.kc * c.dim, -2, 2),
    v: halfValues(rand, rows * c.kc * c.dim, -2, 2),
    qpos,
    kcode,
    bias: randomArray(rand, rows * c.nq * nk),
    // Cotangent weights, f16-valued so that both runs back-propagate the same dO.
    w: halfValues(rand, rows * c.nq * c.dim),
    wl: randomArray(rand, rows * c.nq),
  };
}

/** `[o, lse, stat, dq, dk, dv]` of a case with q, k, v of `dtype`. */
function runAttn(c: AttnCase, device: DeviceName, dtype: "f16" | "f32", seed: number): Tensor[] {
  const x = attnInputs(c, seed);
  const { rows, nk } = x;
  return T.scope(() => {
    const q = T.tensor(x.q, { shape: [rows, c.nq, c.dim], device, dtype });
    const k = T.tensor(x.k, { shape: [rows, c.kc, c.dim], device, dtype });
    const v = T.tensor(x.v, { shape: [rows, c.kc, c.dim], device, dtype });
    const qp = T.tensor(x.qpos, { shape: [rows, c.nq], device });
    const kcd = T.tensor(x.kcode, { shape: [rows, nk], device });
    const bias = c.bias ? T.tensor(x.bias, { shape: [rows, c.nq, nk], device }) : null;
    const wt = T.tensor(x.w, { shape: [rows, c.nq, c.dim], device });
    const wlt = T.tensor(x.wl, { shape: [rows, c.nq], device });
    const flags = { causal: c.causal, selfMask: c.selfMask, maskValue: -1e9, selfValue: -1e5 };
    const look = { offsets: c.offsets, chunks: c.chunks };
    const outs = fusedChunkAttention(q, k, v, qp, kcd, bias, flags, look);
    const f = (qq: Tensor, kk: Tensor, vv: Tensor) => {
      const [o, lse] = fusedChunkAttention(qq, kk, vv, qp, kcd, bias, flags, look);
      return T.add(T.sum(T.mul(T.cast(o, "f32"), wt)), T.sum(T.mul(lse, wlt)));
    };
    const [, g] = T.valueAndGrad(f, { argnums: [0, 1, 2] })(q, k, v);
    return [...outs, ...(g as Tensor[])];
  });
}

async function compareAttn(c: AttnCase, device: DeviceName, seed: number): Promise<void> {
  const want = runAttn(c, device, "f32", seed);
  const got = runAttn(c, device, "f16", seed);
  const what = JSON.stringify(c);
  try {
    const [o, lse, stat, dq, dk, dv] = got;
    for (const [name, t] of [["o", o], ["dq", dq], ["dk", dk], ["dv", dv]] as const) {
      assert.equal(t.dtype, "f16", `${name} of ${what}`);
    }
    assert.equal(lse.dtype, "f32");
    assert.equal(stat.dtype, "f32");
    // o: the f32 result rounded to f16, within two ulps (the f32 sums differ only in order).
    const oWant = [...await want[0].data()].map(h);
    await assertAllClose(o, oWant, { rtol: RTOL, atol: 2 ** -24, message: `o of ${what}` });
    // lse and stat come from the same f16 values in f32 arithmetic.
    await assertAllClose(lse, want[1], { rtol: 1e-5, atol: 1e-5, message: `lse of ${what}` });
    await assertAllClose(stat, want[2], { rtol: 1e-5, atol: 1e-5, message: `stat of ${what}` });
    // Gradients read the rounded o (delta) and round on store: f16 tolerance.
    for (const i of [3, 4, 5]) {
      await assertNear(got[i], want[i], GRAD_RTOL, `${["dq", "dk", "dv"][i - 3]} of ${what}`);
    }
  } finally {
    for (const t of [...want, ...got]) t.dispose();
  }
}

const base = { offsets: [-1, 0], chunks: 3, groups: 2 };
/** Kernel choices a device runs: both WebGPU attention kernels, the one path elsewhere. */
const kinds = (device: DeviceName) => device === "webgpu" ? ["rows", "tiled"] as const : [null];

Deno.test("f16 chunk attention: every mask combination against f32 (dim 3, odd chunks)", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    for (const kind of kinds(device)) {
      for (let m = 0; m < 16; m++) {
        const c: AttnCase = {
          ...base,
          dim: 3,
          nq: 7,
          kc: 9,
          causal: !!(m & 1),
          selfMask: !!(m & 2),
          bias: !!(m & 4),
          pad: !!(m & 8),
        };
        const run = () => compareAttn(c, device, 200 + m);
        await t.step(
          `${device}${
            kind ? ` ${kind}` : ""
          } causal ${c.causal} self ${c.selfMask} bias ${c.bias} pad ${c.pad}`,
          () => noLeaks(() => kind ? withKernel(kind, run) : run()),
        );
      }
    }
  }
});

Deno.test("f16 chunk attention: head widths 1, 8 and 64, look-around offsets, tails", async (t) => {
  const cases: AttnCase[] = [
    { ...base, dim: 1, nq: 5, kc: 7, causal: true, selfMask: true, bias: true, pad: true },
    { ...base, dim: 64, nq: 17, kc: 33, causal: true, selfMask: false, bias: false, pad: true },
    {
      dim: 8,
      nq: 9,
      kc: 9,
      offsets: [-2, 0, 1],
      chunks: 3,
      groups: 1,
      causal: false,
      selfMask: true,
      bias: true,
      pad: true,
    },
    {
      dim: 8,
      nq: 40,
      kc: 37,
      offsets: [0],
      chunks: 1,
      groups: 2,
      causal: true,
      selfMask: false,
      bias: false,
      pad: false,
    },
  ];
  for (const device of testDevices({ wasm: true })) {
    for (const kind of kinds(device)) {
      for (const [i, c] of cases.entries()) {
        const run = () => compareAttn(c, device, i);
        await t.step(
          `${device}${kind ? ` ${kind}` : ""} ${JSON.stringify(c)}`,
          () => noLeaks(() => kind ? withKernel(kind, run) : run()),
        );
      }
    }
  }
});

/** `[y, dx, dscale, dbias]` (just `[y, dx]` without affine) of a layer norm of `dtype`. */
function runNorm(
  device: DeviceName,
  dtype: "f16" | "f32",
  rows: number,
  n: number,
  affine: boolean,
  seed: number,
): Tensor[] {
  const rand = rng(seed);
  const xd = halfValues(rand, rows * n, -3, 5);
  const sd = halfValues(rand, n, 0.5, 1.5);
  const bd = halfValues(rand, n);
  const wd = halfValues(rand, rows * n);
  return T.scope(() => {
    const x = T.tensor(xd, { shape: [rows, n], device, dtype });
    const sc = T.tensor(sd, { shape: [n], device, dtype });
    const bi = T.tensor(bd, { shape: [n], device, dtype });
    const w = T.tensor(wd, { shape: [rows, n], device });
    const f = (xx: Tensor, ss: Tensor, bb: Tensor) => {
      const y = fusedLayerNorm(xx, affine ? { scale: ss, bias: bb } : {});
      return T.sum(T.mul(T.cast(y, "f32"), w));
    };
    const y = fusedLayerNorm(x, affine ? { scale: sc, bias: bi } : {});
    const [, g] = T.valueAndGrad(f, { argnums: affine ? [0, 1, 2] : [0] })(x, sc, bi);
    return [y, ...(g as Tensor[])];
  });
}

Deno.test("f16 layer norm: y and gradients against f32, odd widths, with and without affine", async (t) => {
  for (const device of testDevices({ wasm: true })) {
    for (const n of [1, 3, 8, 64, 100, 1000]) {
      for (const affine of [false, true]) {
        const rows = n === 1000 ? 3 : 70;
        await t.step(`${device} rows ${rows} n ${n} affine ${affine}`, () =>
          noLeaks(async () => {
            const want = runNorm(device, "f32", rows, n, affine, n);
            const got = runNorm(device, "f16", rows, n, affine, n);
            try {
              for (const x of got) assert.equal(x.dtype, "f16");
              const yWant = [...await want[0].data()].map(h);
              await assertAllClose(got[0], yWant, { rtol: RTOL, atol: 2 ** -14, message: "y" });
              const names = ["dx", "dscale", "dbias"];
              for (let i = 1; i < got.length; i++) {
                await assertNear(got[i], want[i], GRAD_RTOL, names[i - 1]);
              }
            } finally {
              for (const x of [...want, ...got]) x.dispose();
            }
          }));
      }
    }
  }
});

Deno.test("f16 on webgpu: attention and layer norm read f16 operands without f32 copies", async (t) => {
  if (!testDevices().includes("webgpu")) return;
  const device = "webgpu";
  const [rows, nq, kc, dim] = [4, 64, 64, 64];
  const rand = rng(5);
  const qkvF32 = 4 * rows * (nq + 2 * kc) * dim;
  for (const kind of ["rows", "tiled"] as const) {
    await t.step(`chunk attention (${kind})`, () =>
      noLeaks(() =>
        withKernel(kind, async () => {
          using q = T.tensor(halfValues(rand, rows * nq * dim), {
            shape: [rows, nq, dim],
            device,
            dtype: "f16",
          });
          using k = T.tensor(halfValues(rand, rows * kc * dim), {
            shape: [rows, kc, dim],
            device,
            dtype: "f16",
          });
          using v = T.tensor(halfValues(rand, rows * kc * dim), {
            shape: [rows, kc, dim],
            device,
            dtype: "f16",
          });
          const pos = Int32Array.from({ length: rows * nq }, (_, i) => i % nq);
          using qp = T.tensor(pos, { shape: [rows, nq], device });
          using kcd = T.tensor(pos, { shape: [rows, kc], device });
          const flags = { causal: true, selfMask: false, maskValue: -1e9, selfValue: -1e5 };
          T.resetPeakMemory(device);
          const before = T.memory(device).liveBytes;
          const outs = fusedChunkAttention(q, k, v, qp, kcd, null, flags);
          const added = T.memory(device).peakBytes - before;
          try {
            // o in f16, lse and (max, log sum) in f32: nothing else, and no f32 q, k, v.
            const outBytes = 2 * rows * nq * dim + 4 * rows * nq + 8 * rows * nq;
            assert.equal(outs[0].dtype, "f16");
            assert.ok(added <= outBytes, `forward added ${added} bytes, outputs are ${outBytes}`);
            assert.ok(added < outBytes + qkvF32);
            await outs[0].data();
          } finally {
            outs.forEach((o) => o.dispose());
          }
        })
      ));
  }
  await t.step("layer norm", () =>
    noLeaks(async () => {
      const n = 256, r = 64;
      using x = T.tensor(halfValues(rand, r * n), { shape: [r, n], device, dtype: "f16" });
      using sc = T.ones([n], { device, dtype: "f16" });
      using bi = T.zeros([n], { device, dtype: "f16" });
      T.resetPeakMemory(device);
      const before = T.memory(device).liveBytes;
      using y = fusedLayerNorm(x, { scale: sc, bias: bi });
      const added = T.memory(device).peakBytes - before;
      // y in f16 and the row statistics in f32; an f32 copy of x would add 4 bytes an element.
      const outBytes = 2 * r * n + 8 * r;
      assert.equal(y.dtype, "f16");
      assert.ok(added <= outBytes, `forward added ${added} bytes, outputs are ${outBytes}`);
      await y.data();
    }));
});
