import assert from "node:assert/strict";
import {
  chunkAttentionCpu,
  chunkAttentionGradCpu,
  keyRow,
} from "../../../kernels/cpu/chunk_attention.ts";
import type { ChunkAttnSpec } from "../../../kernels/specs/chunk_attention.ts";
import { chunkAttentionGradWasm } from "../../../kernels/wasm/chunk_attention_grad.ts";
import type { WasmDevice } from "../../../kernels/wasm/device.ts";
import { assertClose, cpu, randomArray, rng, sameBits, withDevices } from "./helpers.ts";

interface Case {
  groups: number;
  chunks: number;
  kc: number;
  /** Queries per row (default `kc`). */
  nq?: number;
  dim: number;
  offsets: number[];
  causal: boolean;
  selfMask: boolean;
  bias: boolean;
  /** Share of keys masked by their code. */
  padding?: number;
}

type Data = (Float32Array | Int32Array | null)[];

/** A spec and inputs `[q, k, v, qpos, kcode, bias | null, stat, dO, delta]`. */
function inputs(c: Case, rand: () => number): { spec: ChunkAttnSpec; data: Data } {
  const nq = c.nq ?? c.kc;
  const rows = c.groups * c.chunks, nk = c.offsets.length * c.kc;
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
      kcode[r * nk + j] = rand() < (c.padding ?? 0.15) ? -p - 1 : p;
    }
  }
  const fwd: Data = [
    randomArray(rand, rows * nq * c.dim, -2, 2),
    randomArray(rand, rows * c.kc * c.dim, -2, 2),
    randomArray(rand, rows * c.kc * c.dim),
    qpos,
    kcode,
    c.bias ? randomArray(rand, rows * nq * nk) : null,
  ];
  const [, , stat] = chunkAttentionCpu(cpu, upload(fwd), spec).map((s) => s.data);
  const dO = randomArray(rand, rows * nq * c.dim);
  const delta = randomArray(rand, rows * nq);
  return { spec, data: [...fwd, stat as Float32Array, dO, delta] };
}

function upload(data: Data) {
  return data.map((d, i) => d ? cpu.upload(d, i === 3 || i === 4 ? "i32" : "f32") : null);
}

function run(dev: WasmDevice, spec: ChunkAttnSpec, data: Data, batch?: number): Float32Array[] {
  const st = data.map((d, i) => d ? dev.upload(d, i === 3 || i === 4 ? "i32" : "f32") : null);
  const outs = chunkAttentionGradWasm(dev, st, spec, batch);
  const sizes = [spec.rows * spec.nq, spec.rows * spec.kc, spec.rows * spec.kc];
  const res = outs.map((o, i) => dev.readSync(o, "f32", sizes[i] * spec.dim) as Float32Array);
  for (const s of [...st, ...outs]) if (s) dev.free(s);
  return res;
}

// Logits of up to 64 products of values in [-2, 2] summed in f32 against the reference's
// float64 statistics: p is off by about |logit| * 2^-24 relative.
const ATOL = 1e-4, RTOL = 2e-4;

const base: Case = {
  groups: 2,
  chunks: 3,
  kc: 5,
  dim: 8,
  offsets: [0, -1],
  causal: true,
  selfMask: false,
  bias: false,
};

const cases: [string, Case][] = [
  ["look-back, causal (local attention)", base],
  ["LSH: look-back, causal, self mask", { ...base, chunks: 4, kc: 7, dim: 64, selfMask: true }],
  ["look-around both ways, self mask, bias", {
    ...base,
    groups: 1,
    chunks: 2,
    kc: 3,
    dim: 7,
    offsets: [0, -1, 1],
    causal: false,
    selfMask: true,
    bias: true,
  }],
  ["offsets wrapping onto one row", { ...base, chunks: 1, offsets: [0, -1, 2], dim: 5 }],
  ["full attention, no masks", { ...base, chunks: 1, offsets: [0], causal: false, padding: 0 }],
  ["every key padded", { ...base, dim: 3, padding: 1, bias: true }],
  ["more queries than keys", { ...base, nq: 6, kc: 3, dim: 3, causal: false, bias: true }],
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
  ["parallel, dim 64", { ...base, groups: 3, chunks: 4, kc: 16, dim: 64, selfMask: true }],
  ["parallel, odd dim", { ...base, chunks: 5, kc: 13, dim: 33, bias: true }],
  // 300 queries by 1024 slots: logits in blocks of 256 queries (queryBlock).
  ["queries in blocks", { ...base, groups: 1, chunks: 1, offsets: [0], nq: 300, kc: 1024, dim: 3 }],
];

Deno.test("wasm chunk attention backward matches the CPU reference", async (t) => {
  const rand = rng(11);
  await withDevices(async (one, two) => {
    for (const [name, c] of cases) {
      await t.step(name, () => {
        const { spec, data } = inputs(c, rand);
        const want = chunkAttentionGradCpu(cpu, upload(data), spec).map((s) =>
          s.data as Float32Array
        );
        const r1 = run(one, spec, data);
        const r2 = run(two, spec, data);
        ["dq", "dk", "dv"].forEach((what, i) => {
          assertClose(r1[i], want[i], ATOL, RTOL, `${name} ${what}`);
          assert.ok(sameBits(r1[i], r2[i]), `${name} ${what}: 1 and 2 threads differ`);
        });
      });
    }
    await t.step("head widths 1, 3, 5, 8 and 64", () => {
      for (const dim of [1, 3, 5, 8, 64]) {
        const { spec, data } = inputs({ ...base, dim, selfMask: true, bias: true }, rand);
        const want = chunkAttentionGradCpu(cpu, upload(data), spec).map((s) => s.data);
        const [r1, r2] = [run(one, spec, data), run(two, spec, data)];
        r1.forEach((got, i) => {
          assertClose(got, want[i] as Float32Array, ATOL, RTOL, `dim ${dim} output ${i}`);
          assert.ok(sameBits(got, r2[i]), `dim ${dim} output ${i}: 1 and 2 threads differ`);
        });
      }
    });
    await t.step("several batches of row groups", () => {
      const { spec, data } = inputs({ ...base, groups: 5, kc: 16, dim: 24, bias: true }, rand);
      const want = run(two, spec, data);
      // One group (3 rows of 16 queries by 32 slots, p and ds) per batch, then two.
      for (const bytes of [1, 8 * 3 * 32 * 16 * 2]) {
        const got = run(two, spec, data, bytes);
        got.forEach((g, i) => assert.ok(sameBits(g, want[i]), `${bytes} bytes: output ${i}`));
      }
    });
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});
