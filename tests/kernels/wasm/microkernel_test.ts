import assert from "node:assert/strict";
import { hasRelaxedSimd, ModuleBuilder } from "../../../kernels/wasm/emit.ts";
import { microkernel } from "../../../kernels/wasm/gen_matmul.ts";
import { assertClose, randomArray, rng } from "./helpers.ts";

Deno.test("matmul microkernel: mul+add fallback and relaxed madd agree with a direct product", async () => {
  const MR = 6, NR = 8, kc = 13; // kc not a multiple of the unroll
  const m = new ModuleBuilder({ initial: 1, maximum: 1, shared: true });
  const variants = hasRelaxedSimd() ? [false, true] : [false];
  for (const relaxed of variants) microkernel(m, relaxed, MR, NR, 4, `mm_${relaxed}`);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const { instance } = await WebAssembly.instantiate(m.build(), { env: { memory } });
  const F = new Float32Array(memory.buffer);
  const rand = rng(1);
  const a = randomArray(rand, kc * MR), b = randomArray(rand, kc * NR);
  const c0 = randomArray(rand, MR * NR);
  F.set(a, 0);
  F.set(b, 1024);
  const want = new Float32Array(MR * NR);
  for (let r = 0; r < MR; r++) {
    for (let q = 0; q < NR; q++) {
      let s = 0;
      for (let p = 0; p < kc; p++) s += a[p * MR + r] * b[p * NR + q];
      want[r * NR + q] = s;
    }
  }
  for (const relaxed of variants) {
    const mm = instance.exports[`mm_${relaxed}`] as (...x: number[]) => void;
    // C at byte 8192 with row stride 64 bytes (16 floats; columns 8-15 must stay untouched).
    F.fill(-7, 2048, 2048 + 16 * MR);
    mm(0, 4096, 8192, 64, kc, 0);
    const got = Float32Array.from(
      { length: MR * NR },
      (_, i) => F[2048 + 16 * Math.floor(i / NR) + (i % NR)],
    );
    assertClose(got, want, 1e-5, 0, `relaxed=${relaxed}`);
    for (let r = 0; r < MR; r++) assert.equal(F[2048 + 16 * r + NR], -7);
    // Accumulate: C += product.
    for (let i = 0; i < MR * NR; i++) F[2048 + 16 * Math.floor(i / NR) + (i % NR)] = c0[i];
    mm(0, 4096, 8192, 64, kc, 1);
    const acc = Float32Array.from(
      { length: MR * NR },
      (_, i) => F[2048 + 16 * Math.floor(i / NR) + (i % NR)],
    );
    assertClose(acc, want.map((v, i) => v + c0[i]), 1e-5, 0, `accumulate relaxed=${relaxed}`);
  }
});
