import assert from "node:assert/strict";
import {
  blockSparseBackwardCpu,
  blockSparseForwardCpu,
} from "../../../kernels/cpu/block_sparse.ts";
import type { BlockSparseSpec, PatternSpec } from "../../../kernels/specs/block_sparse.ts";
import {
  blockSparseBackwardWasm,
  blockSparseForwardWasm,
} from "../../../kernels/wasm/block_sparse.ts";
import type { WasmDevice } from "../../../kernels/wasm/device.ts";
import { blockLayout } from "../../../nn/attention/sparse_patterns.ts";
import { assertClose, cpu, randomArray, rng, sameBits, withDevices } from "./helpers.ts";

interface Case {
  kind: PatternSpec["kind"];
  part: PatternSpec["part"];
  n: number;
  d: number;
  blockSize: number;
  stride: number;
  masked: boolean;
  /** Build the layout from this part instead (fewer tiles than the pattern touches). */
  layoutPart?: PatternSpec["part"];
}

/** Spec and inputs `[q, k, v, mask | null]`, then `[dout, delta]` for the backward. */
function inputs(c: Case, rand: () => number) {
  const [batch, heads] = [2, 2];
  const pattern: PatternSpec = {
    kind: c.kind,
    stride: c.stride,
    c: c.kind === "fixed" ? Math.max(1, c.stride >> 2) : 0,
    part: c.part,
  };
  const spec: BlockSparseSpec = {
    groups: batch * heads,
    heads,
    n: c.n,
    d: c.d,
    pattern,
    layout: blockLayout({ ...pattern, part: c.layoutPart ?? c.part }, c.n, c.blockSize),
  };
  const size = batch * heads * c.n * c.d;
  const qkv = [0, 1, 2].map(() => randomArray(rand, size, -1.5, 1.5));
  const mask = c.masked
    ? Uint8Array.from({ length: batch * c.n }, () => (rand() < 0.75 ? 1 : 0))
    : null;
  const grads = [randomArray(rand, size), randomArray(rand, batch * heads * c.n)];
  return { spec, qkv, mask, grads };
}

type In = ReturnType<typeof inputs>;

function cpuRun({ spec, qkv, mask, grads }: In): Float32Array[] {
  const [q, k, v] = qkv.map((x) => cpu.upload(x, "f32"));
  const m = mask ? cpu.upload(mask, "bool") : null;
  const [o, lse] = blockSparseForwardCpu(cpu, q, k, v, m, spec);
  const [dout, delta] = grads.map((x) => cpu.upload(x, "f32"));
  const back = blockSparseBackwardCpu(cpu, [q, k, v, dout, lse, delta], m, spec);
  return [o, lse, ...back].map((s) => s.data as Float32Array);
}

/** `[o, lse, dq, dk, dv]`; the backward takes the reference's `lse` so both see the same. */
function wasmRun(dev: WasmDevice, { spec, qkv, mask, grads }: In, lseIn: Float32Array) {
  const [q, k, v, dout, delta, lse] = [...qkv, ...grads, lseIn].map((x) => dev.upload(x, "f32"));
  const m = mask ? dev.upload(mask, "bool") : null;
  const fwd = blockSparseForwardWasm(dev, [q, k, v, m], spec);
  const back = blockSparseBackwardWasm(dev, [q, k, v, dout, lse, delta, m], spec);
  const size = spec.groups * spec.n;
  const res = [...fwd, ...back].map((s, i) =>
    dev.readSync(s, "f32", i === 1 ? size : size * spec.d) as Float32Array
  );
  for (const s of [q, k, v, dout, delta, lse, m, ...fwd, ...back]) if (s) dev.free(s);
  return res;
}

const cases: Case[] = [];
for (const kind of ["strided", "fixed"] as const) {
  for (const part of ["a", "b", "union"] as const) {
    for (const masked of [false, true]) {
      cases.push({ kind, part, n: 37, d: 5, blockSize: 8, stride: 6, masked });
    }
  }
}
cases.push(
  { kind: "strided", part: "union", n: 64, d: 64, blockSize: 16, stride: 8, masked: true },
  { kind: "fixed", part: "union", n: 50, d: 3, blockSize: 7, stride: 10, masked: false },
  { kind: "fixed", part: "b", n: 9, d: 1, blockSize: 4, stride: 3, masked: true },
  { kind: "strided", part: "a", n: 1, d: 8, blockSize: 4, stride: 2, masked: false },
  { kind: "strided", part: "union", n: 130, d: 33, blockSize: 32, stride: 11, masked: true },
  { kind: "fixed", part: "union", n: 100, d: 16, blockSize: 8, stride: 12, masked: true },
  {
    kind: "strided",
    part: "union",
    n: 90,
    d: 12,
    blockSize: 8,
    stride: 16,
    masked: false,
    layoutPart: "a",
  },
);

Deno.test("wasm block-sparse attention matches the CPU reference", async (t) => {
  const rand = rng(5);
  await withDevices(async (one, two) => {
    for (const c of cases) {
      await t.step(JSON.stringify(c), () => {
        const data = inputs(c, rand);
        const want = cpuRun(data);
        const r1 = wasmRun(one, data, want[1]);
        const r2 = wasmRun(two, data, want[1]);
        ["o", "lse", "dq", "dk", "dv"].forEach((what, i) => {
          assertClose(r1[i], want[i], 2e-5, 1e-4, what);
          assert.ok(sameBits(r1[i], r2[i]), `${what}: 1 and 2 threads differ`);
        });
      });
    }
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});
