import assert from "node:assert/strict";
import { randomArray, rng, sameBits, withDevices } from "./helpers.ts";

Deno.test("gemm_acc gives the bits of axpys row by row, for any layout of A", async (t) => {
  const rand = rng(9);
  await withDevices(async (dev) => {
    const K = dev.runtime.kernels;
    for (
      const [M, N, Kd] of [[1, 1, 1], [4, 8, 3], [7, 13, 5], [9, 64, 17], [6, 3, 64], [5, 0, 4]]
    ) {
      for (const transposed of [false, true]) {
        await t.step(`${M}x${N}x${Kd}${transposed ? ", A transposed" : ""}`, () => {
          const a = dev.upload(randomArray(rand, M * Kd), "f32");
          const b = dev.upload(randomArray(rand, Kd * (N + 2)), "f32");
          const c0 = randomArray(rand, M * (N + 1));
          const c1 = dev.upload(c0, "f32"), c2 = dev.upload(c0, "f32");
          // A[i, k] at i * lam + k * lak; B and C with padded rows.
          const [lam, lak] = transposed ? [4, 4 * M] : [4 * Kd, 4];
          K.gemm_acc(c1.offset, 4 * (N + 1), a.offset, lam, lak, b.offset, 4 * (N + 2), M, N, Kd);
          for (let i = 0; i < M; i++) {
            K.axpys(
              c2.offset + 4 * i * (N + 1),
              b.offset,
              a.offset + i * lam,
              Kd,
              N,
              4 * (N + 2),
              lak,
            );
          }
          const got = dev.readSync(c1, "f32", M * (N + 1)) as Float32Array;
          const want = dev.readSync(c2, "f32", M * (N + 1)) as Float32Array;
          assert.ok(sameBits(got, want));
          let naive = 0;
          for (let k = 0; k < Kd; k++) {
            naive += dev.readSync(a, "f32", M * Kd)[(M - 1) * lam / 4 + k * lak / 4] *
              dev.readSync(b, "f32", Kd * (N + 2))[k * (N + 2) + N - 1];
          }
          if (N > 0) {
            const last = (M - 1) * (N + 1) + N - 1;
            assert.ok(Math.abs(got[last] - c0[last] - naive) < 1e-4);
          }
          for (const s of [a, b, c1, c2]) dev.free(s);
        });
      }
    }
  });
});
