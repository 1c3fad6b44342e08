import assert from "node:assert/strict";
import { chunkAttentionCpu, keyRow } from "../../../kernels/cpu/chunk_attention.ts";
import type { ChunkAttnSpec } from "../../../kernels/specs/chunk_attention.ts";
import { chunkAttentionWasm } from "../../../kernels/wasm/chunk_attention.ts";
import type { WasmDevice } from "../../../kernels/wasm/device.ts";
import { assertClose, cpu, randomArray, rng, sameBits, withDevices } from "./helpers.ts";

interface Case {
  groups: number;
  chunks: number;
  kc: number;
  dim: number;
  offsets: number[];
  causal: boolean;
  selfMask: boolean;
  bias: boolean;
}

function inputs(c: Case, rand: () => number) {
  const rows = c.groups * c.chunks, nq = c.kc, nk = c.offsets.length * c.kc;
  const spec: ChunkAttnSpec = {
    rows,
    nq,
    nk,
    kc: c.kc,
    offsets: c.offsets,
    chunks: c.chunks,
    dim: c.dim,
    causal: c.causal,
    selfMask: c.selfMask,
    hasBias: c.bias,
    maskValue: -1e9,
    selfValue: -1e5,
  };
  const qpos = new Int32Array(rows * nq), kcode = new Int32Array(rows * nk);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < nq; i++) qpos[r * nq + i] = (r % c.chunks) * c.kc + i;
    for (let j = 0; j < nk; j++) {
      const p = (keyRow(spec, r, Math.floor(j / c.kc)) % c.chunks) * c.kc + (j % c.kc);
      kcode[r * nk + j] = rand() < 0.15 ? -p - 1 : p;
    }
  }
  const data = [
    randomArray(rand, rows * nq * c.dim, -2, 2),
    randomArray(rand, rows * c.kc * c.dim, -2, 2),
    randomArray(rand, rows * c.kc * c.dim),
    qpos,
    kcode,
    c.bias ? randomArray(rand, rows * nq * nk) : null,
  ];
  return { spec, data };
}

async function run(dev: WasmDevice, spec: ChunkAttnSpec, data: (ArrayLike<number> | null)[]) {
  const st = data.map((d, i) =>
    d ? dev.upload(d as Float32Array, i === 3 || i === 4 ? "i32" : "f32") : null
  );
  const outs = chunkAttentionWasm(dev, st, spec);
  const sizes = [spec.rows * spec.nq * spec.dim, spec.rows * spec.nq, spec.rows * spec.nq * 2];
  const res = await Promise.all(outs.map((o, i) => dev.read(o, "f32", sizes[i])));
  for (const s of [...st, ...outs]) if (s) dev.free(s);
  return res as Float32Array[];
}

const cases: [string, Case][] = [
  ["look-back, causal", {
    groups: 2,
    chunks: 3,
    kc: 4,
    dim: 8,
    offsets: [0, -1],
    causal: true,
    selfMask: false,
    bias: false,
  }],
  ["odd dim, self mask, bias", {
    groups: 1,
    chunks: 2,
    kc: 3,
    dim: 7,
    offsets: [0, -1, 1],
    causal: false,
    selfMask: true,
    bias: true,
  }],
  ["size-1 everything", {
    groups: 1,
    chunks: 1,
    kc: 1,
    dim: 1,
    offsets: [0],
    causal: true,
    selfMask: false,
    bias: false,
  }],
  ["parallel", {
    groups: 2,
    chunks: 4,
    kc: 16,
    dim: 33,
    offsets: [0, -1],
    causal: true,
    selfMask: true,
    bias: true,
  }],
  // 520 queries by 520 slots: logits in blocks of 504 queries (queryBlock).
  ["queries in blocks", {
    groups: 1,
    chunks: 1,
    kc: 520,
    dim: 3,
    offsets: [0],
    causal: true,
    selfMask: true,
    bias: true,
  }],
];

Deno.test("wasm chunk attention forward matches the CPU reference", async (t) => {
  const rand = rng(3);
  await withDevices(async (one, two) => {
    for (const [name, c] of cases) {
      await t.step(name, async () => {
        const { spec, data } = inputs(c, rand);
        const cs = data.map((d, i) =>
          d ? cpu.upload(d as Float32Array, i === 3 || i === 4 ? "i32" : "f32") : null
        );
        const want = chunkAttentionCpu(cpu, cs, spec).map((s) => s.data as Float32Array);
        const r1 = await run(one, spec, data);
        const r2 = await run(two, spec, data);
        ["o", "lse", "stat"].forEach((what, i) => {
          assertClose(r1[i], want[i], 1e-5, 1e-5, `${name} ${what}`);
          assert.ok(sameBits(r1[i], r2[i]), `${name} ${what}: 1 and 2 threads differ`);
        });
      });
    }
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});
